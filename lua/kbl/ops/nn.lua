-- kbl.ops.nn: matrix products, softmax and the losses. Class labels count from
-- 1 (so that meta.class_names[label] works); they are shifted for the C core.
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local E = require 'kbl.ops.elementwise'
local R = require 'kbl.ops.reduce'
local I = require 'kbl.ops.index'
local C = lib.C
local wrap, live, register, is_tensor = T.wrap, T.live, T.register, T.is_tensor

local M = {}

function M.matmul(a, b) return wrap(C.kbl_matmul(live(a), live(b))) end
M.mm = M.matmul
M.bmm = M.matmul

function M.dot(a, b)
   if live(a).ndim ~= 1 or live(b).ndim ~= 1 then error('kbl: dot expects two 1-dim tensors', 2) end
   return M.matmul(a, b)
end

-- linear(x, weight [out, in], bias [out] or nil) = x·Wᵀ + b
function M.linear(x, w, b)
   return wrap(C.kbl_linear(live(x), live(w), b and live(b) or nil))
end

function M.softmax(t, dim)
   local p = live(t)
   return wrap(C.kbl_softmax(p, R.check_dim('softmax', dim or -1, p.ndim)))
end
function M.log_softmax(t, dim)
   local p = live(t)
   return wrap(C.kbl_log_softmax(p, R.check_dim('log_softmax', dim or -1, p.ndim)))
end

local reductions = {none = 0, mean = 1, sum = 2}
local function reduction_id(r)
   local id = reductions[r or 'mean']
   if not id then error("kbl: reduction must be 'mean', 'sum' or 'none', got " .. tostring(r), 3) end
   return id
end
M.reduction_id = reduction_id

local function reduce(t, r)
   local id = reduction_id(r)
   if id == 1 then return R.mean(t) elseif id == 2 then return R.sum(t) end
   return t
end

-- cross_entropy(logits [N, C] or [N, C, d...], labels 1..C, opts):
-- opts.weight [C], opts.ignore_index (a label, default -100), opts.label_smoothing,
-- opts.reduction ('mean', 'sum', 'none')
function M.cross_entropy(logits, labels, opts)
   opts = opts or {}
   local lp = live(labels)
   if lp.dtype ~= 3 and lp.dtype ~= 2 then
      error('kbl: cross_entropy labels must be an int64 tensor of classes 1..C, got ' .. lib.dtype_names[lp.dtype], 2)
   end
   local zero_based = wrap(C.kbl_unary(C.KBL_AFFINE, lp, 1, -1))
   local ignore = opts.ignore_index or -100
   local lg = live(logits)
   local r = C.kbl_cross_entropy(lg, live(zero_based), opts.weight and live(opts.weight) or nil,
      ignore - 1, opts.label_smoothing or 0, reduction_id(opts.reduction))
   if r == nil and lg.ndim >= 2 then
      local classes = tonumber(lg.shape[1])
      local v, pos = I.first_out_of_range(labels, classes, ignore)
      if v then
         error(string.format('kbl: cross_entropy: label %d at position %s is out of range for %d classes '
            .. '(labels count from 1 to %d)', v, pos, classes, classes), 2)
      end
   end
   return wrap(r)
end

-- binary_cross_entropy_with_logits(logits, target, opts{weight, pos_weight, reduction})
function M.binary_cross_entropy_with_logits(x, target, opts)
   opts = opts or {}
   return wrap(C.kbl_binary_cross_entropy_with_logits(live(x), live(target),
      opts.weight and live(opts.weight) or nil, opts.pos_weight and live(opts.pos_weight) or nil,
      reduction_id(opts.reduction)))
end

local function check_pair(name, a, b)
   if not is_tensor(a) or not is_tensor(b) then error('kbl: ' .. name .. ' expects two tensors', 3) end
   local sa, sb = a:size(), b:size()
   local same = #sa == #sb
   for i = 1, #sa do same = same and sa[i] == sb[i] end
   if not same then
      error(string.format('kbl: %s: input [%s] and target [%s] differ in shape', name,
         table.concat(sa, ', '), table.concat(sb, ', ')), 3)
   end
end

function M.mse_loss(a, b, opts)
   check_pair('mse_loss', a, b)
   return reduce(E.square(E.sub(a, b)), (opts or {}).reduction)
end

function M.l1_loss(a, b, opts)
   check_pair('l1_loss', a, b)
   return reduce(E.abs(E.sub(a, b)), (opts or {}).reduction)
end

-- huber_loss(a, b, {delta = 1}): 0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta) beyond
function M.huber_loss(a, b, opts)
   check_pair('huber_loss', a, b)
   opts = opts or {}
   local delta = opts.delta or 1
   local d = E.sub(a, b)
   local ad = E.abs(d)
   local quad = E.mul(E.square(d), 0.5)
   local lin = E.mul(E.sub(ad, 0.5 * delta), delta)
   return reduce(E.where(E.le(ad, delta), quad, lin), opts.reduction)
end

for name, fn in pairs(M) do
   if name ~= 'reduction_id' then register(name, fn) end
end

return M
