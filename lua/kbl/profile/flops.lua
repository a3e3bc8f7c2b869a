--- kbl.profile.flops: floating-point operations of the ops that have a count
-- worth a GFLOP/s figure (a multiply-add counts 2, as in the GEMM literature;
-- bias additions are left out). Each takes shapes as lists of sizes: the
-- output's, then the first two inputs'. A backward node does the forward's
-- work once for each of those inputs that takes a gradient.
local M = {}

local function numel(s)
   local n = 1
   for _, v in ipairs(s) do n = n * v end
   return n
end
M.numel = numel

local FORWARD = {
   -- a [..., M, K] times b [..., K, N]: K multiply-adds an output element
   matmul = function(out, a) return 2 * numel(out) * a[#a] end,
   -- x [..., in] times weight [out, in]
   linear = function(out, x) return 2 * numel(out) * x[#x] end,
   -- weight [out, in / groups, kh, kw]: that many multiply-adds an output element
   conv2d = function(out, _, w) return 2 * numel(out) * w[2] * w[3] * w[4] end,
   -- weight [in, out / groups, kh, kw]: that many for each input element
   conv_transpose2d = function(_, x, w) return 2 * numel(x) * w[2] * w[3] * w[4] end,
}
M.FORWARD = FORWARD

-- The forward count of op name over shapes, or nil when it has none (or a
-- shape is missing).
function M.forward(name, out, a, b)
   local f = FORWARD[name]
   if not f or not out or not a then return nil end
   if (name == 'conv2d' or name == 'conv_transpose2d') and (not b or #b ~= 4) then return nil end
   if #a == 0 then return nil end
   return f(out, a, b)
end

-- A backward node's count: the forward's times the gradients it makes (bits
-- 0 and 1 of needs_grad).
function M.backward(name, out, a, b, needs_grad)
   local fwd = M.forward(name, out, a, b)
   if not fwd then return nil end
   local grads = (needs_grad % 2) + (math.floor(needs_grad / 2) % 2)
   return fwd * grads
end

return M
