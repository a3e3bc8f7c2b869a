-- kbl.ops.elementwise: arithmetic with tensors or numbers, math functions,
-- activations, comparisons and logic. Each is kbl.NAME(t, ...) and t:NAME(...).
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, is_tensor, register = T.wrap, T.live, T.is_tensor, T.register

local M = {}

local U = {neg = C.KBL_NEG, abs = C.KBL_ABS, exp = C.KBL_EXP, log = C.KBL_LOG, log1p = C.KBL_LOG1P,
   sqrt = C.KBL_SQRT, rsqrt = C.KBL_RSQRT, square = C.KBL_SQUARE, relu = C.KBL_RELU,
   sigmoid = C.KBL_SIGMOID, tanh = C.KBL_TANH, silu = C.KBL_SILU, reciprocal = C.KBL_RECIPROCAL,
   sign = C.KBL_SIGN, logical_not = C.KBL_LOGICAL_NOT, sin = C.KBL_SIN, cos = C.KBL_COS}
local AFFINE, POW_SCALAR, RPOW_SCALAR = C.KBL_AFFINE, C.KBL_POW_SCALAR, C.KBL_RPOW_SCALAR
local kbl_unary, kbl_binary = C.kbl_unary, C.kbl_binary

local function unary(op, t, p0, p1)
   if not is_tensor(t) then error('kbl: expected a tensor, got ' .. type(t), 3) end
   return wrap(kbl_unary(op, live(t), p0 or 0, p1 or 0))
end
M.unary = unary

for name, op in pairs(U) do
   M[name] = function(t) return unary(op, t) end
end

-- A number as a 0-dim tensor of the other operand's dtype, on its device.
local function scalar_like(x, t)
   local p = live(t)
   return wrap(C.kbl_full_on(p.device, 0, nil, x, p.dtype))
end
M.scalar_like = scalar_like

local function binary(op, a, b)
   if type(a) == 'number' then a = scalar_like(a, b) end
   if type(b) == 'number' then b = scalar_like(b, a) end
   if not is_tensor(a) or not is_tensor(b) then
      error(string.format('kbl: expected tensors or numbers, got %s and %s', type(a), type(b)), 3)
   end
   return wrap(kbl_binary(op, live(a), live(b)))
end
M.binary = binary

function M.add(a, b, alpha)
   if alpha and alpha ~= 1 then b = type(b) == 'number' and b * alpha or M.mul(b, alpha) end
   if type(b) == 'number' and is_tensor(a) then return unary(AFFINE, a, 1, b) end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, b, 1, a) end
   return binary(C.KBL_ADD, a, b)
end

function M.sub(a, b)
   if type(b) == 'number' and is_tensor(a) then return unary(AFFINE, a, 1, -b) end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, b, -1, a) end
   return binary(C.KBL_SUB, a, b)
end

function M.mul(a, b)
   if type(b) == 'number' and is_tensor(a) then return unary(AFFINE, a, b, 0) end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, b, a, 0) end
   return binary(C.KBL_MUL, a, b)
end

-- True division, as PyTorch: integer tensors give float32 (also for t / 1).
function M.div(a, b)
   if type(b) == 'number' and is_tensor(a) then
      if live(a).dtype > 1 then a = wrap(C.kbl_to_dtype(live(a), 0)) end
      return unary(AFFINE, a, 1 / b, 0)
   end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, unary(U.reciprocal, b), a, 0) end
   return binary(C.KBL_DIV, a, b)
end

function M.pow(a, b)
   if type(b) == 'number' and is_tensor(a) then return unary(POW_SCALAR, a, b) end
   if type(a) == 'number' and is_tensor(b) then return unary(RPOW_SCALAR, b, a) end
   return binary(C.KBL_POW, a, b)
end

function M.maximum(a, b) return binary(C.KBL_MAXIMUM, a, b) end
function M.minimum(a, b) return binary(C.KBL_MINIMUM, a, b) end
function M.eq(a, b) return binary(C.KBL_EQ, a, b) end
function M.ne(a, b) return binary(C.KBL_NE, a, b) end
function M.lt(a, b) return binary(C.KBL_LT, a, b) end
function M.le(a, b) return binary(C.KBL_LE, a, b) end
function M.gt(a, b) return binary(C.KBL_GT, a, b) end
function M.ge(a, b) return binary(C.KBL_GE, a, b) end
function M.logical_and(a, b) return binary(C.KBL_LOGICAL_AND, a, b) end
function M.logical_or(a, b) return binary(C.KBL_LOGICAL_OR, a, b) end
function M.logical_xor(a, b) return binary(C.KBL_LOGICAL_XOR, a, b) end

-- clamp(t, min, max): either bound may be nil
function M.clamp(t, lo, hi)
   return unary(C.KBL_CLAMP, t, lo or -math.huge, hi or math.huge)
end

-- where(cond, a, b): a where cond is non-zero, else b; a and b may be numbers
-- (taking the other's dtype, float32 when both are numbers)
function M.where(cond, a, b)
   if not is_tensor(cond) then error('kbl: where expects a condition tensor, got ' .. type(cond), 2) end
   local like = is_tensor(a) and a or is_tensor(b) and b or nil
   if not like then
      if type(a) ~= 'number' or type(b) ~= 'number' then
         error(string.format('kbl: where expects tensors or numbers, got %s and %s', type(a), type(b)), 2)
      end
      like = wrap(C.kbl_zeros(0, nil, 0))
   end
   if type(a) == 'number' then a = scalar_like(a, like) end
   if type(b) == 'number' then b = scalar_like(b, like) end
   if not is_tensor(a) or not is_tensor(b) then
      error(string.format('kbl: where expects tensors or numbers, got %s and %s', type(a), type(b)), 2)
   end
   return wrap(C.kbl_where(live(cond), live(a), live(b)))
end

-- ---- activations -------------------------------------------------------------

function M.leaky_relu(t, slope) return unary(C.KBL_LEAKY_RELU, t, slope or 0.01) end
function M.elu(t, alpha) return unary(C.KBL_ELU, t, alpha or 1) end
function M.softplus(t, beta, threshold) return unary(C.KBL_SOFTPLUS, t, beta or 1, threshold or 20) end

-- gelu(t) is exact (erf); gelu(t, 'tanh') the tanh approximation, as PyTorch.
function M.gelu(t, approximate)
   if approximate == 'tanh' then return unary(C.KBL_GELU_TANH, t) end
   if approximate ~= nil and approximate ~= 'none' then
      error("kbl: gelu approximate must be 'none' or 'tanh', got " .. tostring(approximate), 2)
   end
   return unary(C.KBL_GELU, t)
end

for name, fn in pairs(M) do
   if name ~= 'unary' and name ~= 'binary' and name ~= 'scalar_like' then register(name, fn) end
end

return M
