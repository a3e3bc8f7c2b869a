--- kbl.metrics: streaming metrics. Each is an object with `.name`,
-- `:update(pred, target)`, `:result()` (a number, or a table for per-class
-- values and the confusion matrix), `:reset()`, and `:state()` /
-- `:set_state(s)` (plain numbers, for checkpoints). Predictions are scores
-- [N, C] (the argmax is the class) or int64 labels; targets are labels 1..C
-- (or one-hot [N, C]). Binary scores [N] or [N, 1] count as class 1 at or above
-- `threshold` (0.5) and 0 below, against 0/1 targets.
local kbl = require 'kbl'

local M = {}

local function copy(v)
   if type(v) ~= 'table' then return v end
   local o = {}
   for k, x in pairs(v) do o[k] = copy(x) end
   return o
end

local Metric = {}
Metric.__index = Metric
function Metric:reset() self.s = self.fresh(self) end
function Metric:state() return copy(self.s) end
function Metric:set_state(s) self.s = copy(s) end
function Metric:__tostring() return 'metrics.' .. self.type_name .. ': ' .. tostring(self:result()) end

local function define(type_name, name, defaults, fresh, update, result)
   local cls = setmetatable({}, {__index = Metric})
   cls.__index = cls
   cls.__tostring = Metric.__tostring
   cls.result, cls.fresh = result, fresh
   -- metrics look at values only: no graph is recorded through them
   cls.update = function(self, pred, ...)
      if kbl.is_tensor(pred) then pred = pred:detach() end
      return update(self, pred, ...)
   end
   M[type_name] = function(opts)
      opts = opts or {}
      local self = setmetatable({type_name = type_name}, cls)
      for k, v in pairs(defaults) do self[k] = v end
      for k, v in pairs(opts) do
         if defaults[k] == nil then
            local keys = {}
            for d in pairs(defaults) do keys[#keys + 1] = d end
            table.sort(keys)
            error(string.format("metrics.%s: unknown option '%s' (options: %s)", type_name, tostring(k),
               table.concat(keys, ', ')), 2)
         end
         self[k] = v
      end
      self.name = opts.name or (type(name) == 'function' and name(self) or name)
      self:reset()
      return self
   end
end

local function is_float(t) return t.dtype == 'float32' or t.dtype == 'float64' end

-- Predicted labels: argmax of scores [N, C], thresholded binary scores, or labels as given.
local function pred_labels(self, pred)
   if not kbl.is_tensor(pred) then error('metrics.' .. self.type_name .. ': prediction must be a tensor', 3) end
   if not is_float(pred) then return pred end
   if pred:dim() >= 2 and pred:size(2) > 1 then return pred:argmax(2) end
   return kbl.ge(pred:reshape({-1}), self.threshold or 0.5):to('int64')
end

local function target_labels(self, target, n)
   if not kbl.is_tensor(target) then error('metrics.' .. self.type_name .. ': target must be a tensor', 3) end
   if is_float(target) and target:dim() >= 2 and target:size(2) > 1 then target = target:argmax(2) end
   target = target:reshape({-1}):to('int64')
   if target:size(1) ~= n then
      error(string.format('metrics.%s: %d predictions but %d targets', self.type_name, n, target:size(1)), 3)
   end
   return target
end

local function count_true(mask) return mask:to('int64'):sum():item() end

--- The share of predictions equal to the target.
-- @function Accuracy
-- @option threshold binary scores at or above it count as class 1
-- @option name the key in the logs (default 'accuracy')
-- @usage local m = metrics.Accuracy{}; m:update(logits, y); print(m:result())
define('Accuracy', 'accuracy', {threshold = 0.5, name = false}, function() return {correct = 0, total = 0} end,
   function(self, pred, target)
      local p = pred_labels(self, pred):reshape({-1})
      local t = target_labels(self, target, p:size(1))
      self.s.correct = self.s.correct + count_true(kbl.eq(p, t))
      self.s.total = self.s.total + p:size(1)
   end,
   function(self) return self.s.total > 0 and self.s.correct / self.s.total or 0 end)

--- The share of examples whose target is among the k highest scores (ties count for the target).
-- @function TopKAccuracy
-- @option k how many of the highest scores count
-- @option name the key in the logs (default 'topK_accuracy')
-- @usage local m = metrics.TopKAccuracy{k = 3}
define('TopKAccuracy', function(self) return 'top' .. self.k .. '_accuracy' end, {k = 5, name = false},
   function() return {correct = 0, total = 0} end,
   function(self, pred, target)
      if not kbl.is_tensor(pred) or not is_float(pred) or pred:dim() ~= 2 then
         error('metrics.TopKAccuracy: prediction must be scores [N, C]', 2)
      end
      local n = pred:size(1)
      local t = target_labels(self, target, n)
      local st = pred:gather(2, t:view({n, 1}))
      local above = kbl.gt(pred, st):to('int64'):sum(2)
      self.s.correct = self.s.correct + count_true(kbl.lt(above, self.k))
      self.s.total = self.s.total + n
   end,
   function(self) return self.s.total > 0 and self.s.correct / self.s.total or 0 end)

--- The running (weighted) mean of numbers or of tensors' elements: update(value, weight = 1).
-- @function Mean
-- @option name the key in the logs (default 'mean')
-- @usage local m = metrics.Mean{}; m:update(loss:item())
define('Mean', 'mean', {name = false}, function() return {total = 0, count = 0} end,
   function(self, value, weight)
      if kbl.is_tensor(value) then
         self.s.total = self.s.total + value:to('float64'):sum():item() * (weight or 1)
         self.s.count = self.s.count + value:numel() * (weight or 1)
      elseif type(value) == 'number' then
         self.s.total = self.s.total + value * (weight or 1)
         self.s.count = self.s.count + (weight or 1)
      else
         error('metrics.Mean:update expects a number or a tensor', 2)
      end
   end,
   function(self) return self.s.count > 0 and self.s.total / self.s.count or 0 end)

-- The confusion counts shared by ConfusionMatrix, Precision, Recall and F1:
-- s.matrix[true][predicted], classes 1..num_classes (from the scores' width
-- when not given).
local function confusion_update(self, pred, target)
   local p = pred_labels(self, pred):reshape({-1})
   local n = p:size(1)
   local t = target_labels(self, target, n)
   local binary = is_float(pred) and (pred:dim() < 2 or pred:size(2) == 1)
   local C = self.num_classes or (binary and 2) or (is_float(pred) and pred:size(2))
   if not C then error('metrics.' .. self.type_name .. ' needs num_classes for label predictions', 3) end
   self.num_classes = C
   local m = self.s.matrix
   if #m == 0 then
      for i = 1, C do
         m[i] = {}
         for j = 1, C do m[i][j] = 0 end
      end
   end
   local pl, tl = p:tolist(), t:tolist()
   local shift = binary and 1 or 0 -- binary 0/1 become classes 1/2
   for i = 1, n do
      local a, b = tl[i] + shift, pl[i] + shift
      if a < 1 or a > C or b < 1 or b > C or a % 1 ~= 0 or b % 1 ~= 0 then
         local bad = (a < 1 or a > C) and a or b
         error(string.format('metrics.%s: label %d is outside 1..%d', self.type_name, bad, C), 3)
      end
      m[a][b] = m[a][b] + 1
   end
end

--- Counts of (true, predicted) classes: result().matrix[true][predicted], classes 1..num_classes.
-- @function ConfusionMatrix
-- @option num_classes the class count (default: the scores' width)
-- @option threshold binary scores at or above it count as class 1
-- @option name the key in the logs (default 'confusion_matrix')
-- @usage local cm = metrics.ConfusionMatrix{num_classes = 10}
define('ConfusionMatrix', 'confusion_matrix', {num_classes = false, threshold = 0.5, name = false},
   function() return {matrix = {}} end, confusion_update,
   function(self) return copy(self.s.matrix) end)

-- Per-class precision, recall and F1 from the confusion counts; a class with a
-- zero denominator scores 0 (as scikit-learn's zero_division = 0).
local function per_class(m)
   local C = #m
   local P, R, F, support = {}, {}, {}, {}
   for c = 1, C do
      local tp, col, row = m[c][c], 0, 0
      for k = 1, C do col = col + m[k][c]; row = row + m[c][k] end
      P[c] = col > 0 and tp / col or 0
      R[c] = row > 0 and tp / row or 0
      F[c] = (P[c] + R[c]) > 0 and 2 * P[c] * R[c] / (P[c] + R[c]) or 0
      support[c] = row
   end
   return {precision = P, recall = R, f1 = F, support = support}
end

local function averaged(self, which)
   local m = self.s.matrix
   if #m == 0 then return self.average == 'none' and {} or 0 end
   local pc = per_class(m)
   local v = pc[which]
   if self.average == 'none' then return v end
   if self.average == 'micro' then
      -- single-label: micro precision = recall = F1 = accuracy
      local tp, total = 0, 0
      for c = 1, #m do
         tp = tp + m[c][c]
         total = total + pc.support[c]
      end
      return total > 0 and tp / total or 0
   end
   local sum, wsum = 0, 0
   for c = 1, #m do
      local w = self.average == 'weighted' and pc.support[c] or 1
      sum, wsum = sum + v[c] * w, wsum + w
   end
   return wsum > 0 and sum / wsum or 0
end

--- The share of predictions of a class that are right, per class then averaged (a class with a zero denominator scores 0).
-- @function Precision
-- @option num_classes the class count (default: the scores' width)
-- @option average 'macro', 'micro', 'weighted' or 'none' (a table per class)
-- @option threshold binary scores at or above it count as class 1
-- @option name the key in the logs
-- @usage local m = metrics.Precision{average = 'macro'}

--- The share of examples of a class that are found, per class then averaged (a class with a zero denominator scores 0).
-- @function Recall
-- @option num_classes the class count (default: the scores' width)
-- @option average 'macro', 'micro', 'weighted' or 'none' (a table per class)
-- @option threshold binary scores at or above it count as class 1
-- @option name the key in the logs
-- @usage local m = metrics.Recall{average = 'macro'}

--- The harmonic mean of precision and recall, per class then averaged (a class with a zero denominator scores 0).
-- @function F1
-- @option num_classes the class count (default: the scores' width)
-- @option average 'macro', 'micro', 'weighted' or 'none' (a table per class)
-- @option threshold binary scores at or above it count as class 1
-- @option name the key in the logs
-- @usage local m = metrics.F1{average = 'macro'}

-- Precision, Recall, F1 {num_classes, average = 'macro' | 'micro' | 'weighted' |
-- 'none' (a table per class)}
for type_name, which in pairs{Precision = 'precision', Recall = 'recall', F1 = 'f1'} do
   define(type_name, function(self)
      return self.average == 'macro' and which or (which .. '_' .. self.average)
   end, {num_classes = false, average = 'macro', threshold = 0.5, name = false},
      function(self)
         local ok = {macro = true, micro = true, weighted = true, none = true}
         if not ok[self.average] then
            error(string.format("metrics.%s: average must be 'macro', 'micro', 'weighted' or 'none', got %s",
               type_name, tostring(self.average)), 4)
         end
         return {matrix = {}}
      end,
      confusion_update,
      function(self) return averaged(self, which) end)
end

--- The running mean absolute error over all elements.
-- @function MAE
-- @option name the key in the logs (default 'mae')
-- @usage local m = metrics.MAE{}; m:update(pred, y)

--- The running mean squared error over all elements.
-- @function MSE
-- @option name the key in the logs (default 'mse')
-- @usage local m = metrics.MSE{}; m:update(pred, y)

-- MAE{} and MSE{}: the running mean absolute / squared error over all elements.
for type_name, f in pairs{MAE = 'abs', MSE = 'square'} do
   define(type_name, type_name:lower(), {name = false}, function() return {total = 0, count = 0} end,
      function(self, pred, target)
         if target.dtype ~= pred.dtype then target = target:to(pred.dtype) end
         if target:numel() == pred:numel() then target = target:view(pred:size()) end
         local d = pred - target
         d = f == 'abs' and d:abs() or d:square()
         self.s.total = self.s.total + d:to('float64'):sum():item()
         self.s.count = self.s.count + pred:numel()
      end,
      function(self) return self.s.count > 0 and self.s.total / self.s.count or 0 end)
end

return M
