--- kbl.losses: losses as callable objects over kbl's ops: `loss(pred, target)`
-- -> a 0-dim tensor (or per-element with reduction = 'none'); `.name` names it.
-- Class labels count from 1. Each takes reduction = 'mean' | 'sum' | 'none'.
--   local ce = losses.CrossEntropy{label_smoothing = 0.1}
--   local l = ce(logits, batch.y)
local kbl = require 'kbl'

local M = {}

local REDUCTIONS = {mean = true, sum = true, none = true}

local function reduce(t, r)
   if r == 'mean' then return t:mean() elseif r == 'sum' then return t:sum() end
   return t
end

-- Defines losses.NAME{options}: fn(self, pred, target) computes it.
local function define(type_name, name, defaults, fn)
   local mt = {__index = {}}
   mt.__call = function(self, pred, target)
      if not kbl.is_tensor(pred) or not kbl.is_tensor(target) then
         error(string.format('losses.%s expects (prediction, target) tensors, got %s and %s', type_name,
            kbl.is_tensor(pred) and 'a tensor' or type(pred), kbl.is_tensor(target) and 'a tensor' or type(target)), 2)
      end
      return fn(self, pred, target)
   end
   mt.__tostring = function() return 'losses.' .. type_name end
   M[type_name] = function(opts)
      opts = opts or {}
      local self = {name = name, type_name = type_name}
      for k, v in pairs(defaults) do self[k] = v end
      for k, v in pairs(opts) do
         if defaults[k] == nil and k ~= 'weight' and k ~= 'pos_weight' and k ~= 'ignore_index' then
            local keys = {}
            for d in pairs(defaults) do keys[#keys + 1] = d end
            table.sort(keys)
            error(string.format("losses.%s: unknown option '%s' (options: %s)", type_name, tostring(k),
               table.concat(keys, ', ')), 2)
         end
         self[k] = v
      end
      if not REDUCTIONS[self.reduction] then
         error(string.format("losses.%s: reduction must be 'mean', 'sum' or 'none', got %s", type_name,
            tostring(self.reduction)), 2)
      end
      return setmetatable(self, mt)
   end
end

-- A per-class weight given as a Lua list, as a tensor of the prediction's dtype.
local function weight_of(self, key, pred)
   local w = self[key]
   if w == nil or kbl.is_tensor(w) then return w end
   self._cache = self._cache or {}
   local c = self._cache[key .. pred.dtype .. pred.device]
   if not c then
      c = kbl.keep(kbl.tensor(w, {dtype = pred.dtype, device = pred.device}))
      self._cache[key .. pred.dtype .. pred.device] = c
   end
   return c
end

-- target as a float tensor shaped like pred ([N] and [N, 1] are taken as one shape)
local function like_pred(pred, target)
   if target.dtype ~= pred.dtype then target = target:to(pred.dtype) end
   if target:numel() == pred:numel() and target:dim() ~= pred:dim() then target = target:view(pred:size()) end
   return target
end

local LOG_EPS = 1e-7

--- Cross-entropy of logits (or probabilities) against int64 labels 1..C, as torch.nn.functional.cross_entropy.
-- @function CrossEntropy
-- loss(pred [N, C] or [N, C, d...], target) -> a 0-dim tensor.
-- @option label_smoothing targets smoothed towards uniform by this much
-- @option from_logits false: pred are probabilities
-- @option reduction 'mean', 'sum' or 'none'
-- @option weight per-class weights, a list or a tensor [C] (optional)
-- @option ignore_index a label whose examples do not count (optional)
-- @usage local ce = losses.CrossEntropy{label_smoothing = 0.1}; local l = ce(logits, batch.y)
define('CrossEntropy', 'cross_entropy', {label_smoothing = 0, from_logits = true, reduction = 'mean'},
   function(self, pred, target)
      local x = pred
      if not self.from_logits then x = pred:clamp(LOG_EPS, 1):log() end
      return kbl.cross_entropy(x, target, {weight = weight_of(self, 'weight', pred), ignore_index = self.ignore_index,
         label_smoothing = self.label_smoothing, reduction = self.reduction})
   end)

--- Cross-entropy against dense targets [N, C] (one-hot or probabilities): -sum_c t_c log p_c.
-- @function CategoricalCrossEntropy
-- @option label_smoothing targets smoothed towards uniform by this much
-- @option from_logits false: pred are probabilities
-- @option reduction 'mean', 'sum' or 'none'
-- @option weight per-class weights (optional)
-- @usage local l = losses.CategoricalCrossEntropy{}(logits, soft_targets)
define('CategoricalCrossEntropy', 'categorical_cross_entropy',
   {label_smoothing = 0, from_logits = true, reduction = 'mean'},
   function(self, pred, target)
      if pred:dim() < 2 then error('losses.CategoricalCrossEntropy: prediction must be [N, C, ...]', 3) end
      target = like_pred(pred, target)
      local logp = self.from_logits and pred:log_softmax(2) or pred:clamp(LOG_EPS, 1):log()
      local ls = self.label_smoothing
      if ls > 0 then target = target * (1 - ls) + ls / pred:size(2) end
      local w = weight_of(self, 'weight', pred)
      local prod = target * logp
      if w then
         local shape = {1, pred:size(2)}
         for _ = 3, pred:dim() do shape[#shape + 1] = 1 end
         prod = prod * w:view(shape)
      end
      return reduce(-prod:sum(2), self.reduction)
   end)

--- Binary cross-entropy against targets in [0, 1]; with from_logits = false each log is clamped at -100, as torch.nn.BCELoss.
-- @function BinaryCrossEntropy
-- @option from_logits false: pred are probabilities
-- @option reduction 'mean', 'sum' or 'none'
-- @option weight per-element weights (optional)
-- @option pos_weight the weight of positive examples, per class (optional)
-- @usage local l = losses.BinaryCrossEntropy{}(scores, targets)
define('BinaryCrossEntropy', 'binary_cross_entropy', {from_logits = true, reduction = 'mean'},
   function(self, pred, target)
      target = like_pred(pred, target)
      if self.from_logits then
         return kbl.binary_cross_entropy_with_logits(pred, target, {weight = weight_of(self, 'weight', pred),
            pos_weight = weight_of(self, 'pos_weight', pred), reduction = self.reduction})
      end
      local lp = pred:log():clamp(-100, nil)
      local lq = (1 - pred):log():clamp(-100, nil)
      local l = -(target * lp + (1 - target) * lq)
      local w = weight_of(self, 'weight', pred)
      if w then l = l * w end
      return reduce(l, self.reduction)
   end)

--- Mean squared error.
-- @function MSE
-- @option reduction 'mean', 'sum' or 'none'
-- @usage local l = losses.MSE{}(pred, y)
define('MSE', 'mse', {reduction = 'mean'}, function(self, pred, target)
   return kbl.mse_loss(pred, like_pred(pred, target), {reduction = self.reduction})
end)

--- Mean absolute error.
-- @function MAE
-- @option reduction 'mean', 'sum' or 'none'
-- @usage local l = losses.MAE{}(pred, y)
define('MAE', 'mae', {reduction = 'mean'}, function(self, pred, target)
   return kbl.l1_loss(pred, like_pred(pred, target), {reduction = self.reduction})
end)

--- Huber loss: 0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta) beyond.
-- @function Huber
-- @option delta where the quadratic part ends
-- @option reduction 'mean', 'sum' or 'none'
-- @usage local l = losses.Huber{delta = 0.5}(pred, y)
define('Huber', 'huber', {delta = 1, reduction = 'mean'}, function(self, pred, target)
   return kbl.huber_loss(pred, like_pred(pred, target), {delta = self.delta, reduction = self.reduction})
end)

-- losses.get('cross_entropy' | 'CrossEntropy' | {type = 'Huber', delta = 2} | a loss) -> a loss
local by_name = {cross_entropy = 'CrossEntropy', categorical_cross_entropy = 'CategoricalCrossEntropy',
   binary_cross_entropy = 'BinaryCrossEntropy', mse = 'MSE', mae = 'MAE', huber = 'Huber'}
--- A loss from a name, a spec table or a loss.
-- @param spec 'cross_entropy', 'CrossEntropy', {type = 'Huber', delta = 2}, or a loss (returned as it is)
-- @treturn table the loss
-- @usage local l = losses.get('mse')
function M.get(spec)
   if type(spec) == 'table' and getmetatable(spec) and getmetatable(spec).__call then return spec end
   if type(spec) == 'function' then return spec end
   local name, opts = spec, {}
   if type(spec) == 'table' then
      name = spec.type or spec[1]
      for k, v in pairs(spec) do if k ~= 'type' and k ~= 1 then opts[k] = v end end
   end
   local ctor = M[by_name[name] or name]
   if type(ctor) ~= 'function' or name == 'get' then
      error("losses: unknown loss '" .. tostring(name) .. "' (losses: CrossEntropy, CategoricalCrossEntropy, "
         .. 'BinaryCrossEntropy, MSE, MAE, Huber)', 2)
   end
   return ctor(opts)
end

return M
