--- kbl.ops.nn: matrix products, softmax and the losses. Class labels count from
-- 1 (so that meta.class_names[label] works); they are shifted for the C core.
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local E = require 'kbl.ops.elementwise'
local R = require 'kbl.ops.reduce'
local I = require 'kbl.ops.index'
local C = lib.C
local wrap, live, register, is_tensor = T.wrap, T.live, T.register, T.is_tensor

local M = {}

--- Matrix product with PyTorch's rules: vectors, matrices, and batches (broadcast) of them.
-- kbl.mm and kbl.bmm are the same function.
-- @tparam tensor a [..., n, k] (or [k])
-- @tparam tensor b [..., k, m] (or [k])
-- @treturn tensor [..., n, m]
-- @usage local y = x:matmul(w)
function M.matmul(a, b) return wrap(C.kbl_matmul(live(a), live(b))) end
--- Matrix product (the same function as matmul).
-- @tparam tensor a [n, k]
-- @tparam tensor b [k, m]
-- @treturn tensor [n, m]
-- @usage local c = kbl.mm(a, b)
M.mm = M.matmul
--- Batched matrix product (the same function as matmul).
-- @tparam tensor a [B, n, k]
-- @tparam tensor b [B, k, m]
-- @treturn tensor [B, n, m]
-- @usage local c = kbl.bmm(a, b)
M.bmm = M.matmul

--- The dot product of two vectors.
-- @tparam tensor a [n]
-- @tparam tensor b [n]
-- @treturn tensor 0-dim
-- @usage local d = kbl.dot(u, v):item()
function M.dot(a, b)
   if live(a).ndim ~= 1 or live(b).ndim ~= 1 then error('kbl: dot expects two 1-dim tensors', 2) end
   return M.matmul(a, b)
end

--- x·Wᵀ + b, the fully connected layer's op.
-- @tparam tensor x [..., in]
-- @tparam tensor w weight [out, in]
-- @tparam[opt] tensor b bias [out]
-- @treturn tensor [..., out]
-- @usage local y = kbl.linear(x, w, b)
function M.linear(x, w, b)
   return wrap(C.kbl_linear(live(x), live(w), b and live(b) or nil))
end

--- Softmax along a dim.
-- @tparam tensor t
-- @tparam number dim from 1
-- @treturn tensor
-- @usage local p = logits:softmax(2)
function M.softmax(t, dim)
   local p = live(t)
   return wrap(C.kbl_softmax(p, R.check_dim('softmax', dim or -1, p.ndim)))
end
--- Log-softmax along a dim (stable).
-- @tparam tensor t
-- @tparam number dim from 1
-- @treturn tensor
-- @usage local lp = logits:log_softmax(2)
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
--- A loss's reduction name to the core's id.
-- @local
M.reduction_id = reduction_id

local function reduce(t, r)
   local id = reduction_id(r)
   if id == 1 then return R.mean(t) elseif id == 2 then return R.sum(t) end
   return t
end

--- Cross-entropy of logits against class labels (from 1), fused with the log-softmax.
-- @tparam tensor logits [N, C] or [N, C, d...]
-- @tparam tensor labels int64 1..C, [N] or [N, d...]
-- @tparam[opt] table opts {weight = [C] tensor, ignore_index = -100 (a label to skip), label_smoothing = 0,
-- reduction = 'mean' | 'sum' | 'none'}
-- @treturn tensor 0-dim (or per element with reduction 'none')
-- @usage local loss = kbl.cross_entropy(logits, batch.y)
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

--- Binary cross-entropy of logits against 0/1 targets, computed stably.
-- @tparam tensor x logits
-- @tparam tensor target same shape, values in [0, 1]
-- @tparam[opt] table opts {weight, pos_weight, reduction = 'mean'}
-- @treturn tensor
-- @usage local loss = kbl.binary_cross_entropy_with_logits(scores, targets)
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

--- Mean squared error.
-- @tparam tensor a prediction
-- @tparam tensor b target
-- @tparam[opt] table opts {reduction = 'mean' | 'sum' | 'none'}
-- @treturn tensor
-- @usage local loss = kbl.mse_loss(pred, y)
function M.mse_loss(a, b, opts)
   check_pair('mse_loss', a, b)
   return reduce(E.square(E.sub(a, b)), (opts or {}).reduction)
end

--- Mean absolute error.
-- @tparam tensor a prediction
-- @tparam tensor b target
-- @tparam[opt] table opts {reduction = 'mean' | 'sum' | 'none'}
-- @treturn tensor
-- @usage local loss = kbl.l1_loss(pred, y)
function M.l1_loss(a, b, opts)
   check_pair('l1_loss', a, b)
   return reduce(E.abs(E.sub(a, b)), (opts or {}).reduction)
end

--- Huber loss: 0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta) beyond.
-- @tparam tensor a prediction
-- @tparam tensor b target
-- @tparam[opt] table opts {delta = 1, reduction = 'mean'}
-- @treturn tensor
-- @usage local loss = kbl.huber_loss(pred, y, {delta = 0.5})
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
