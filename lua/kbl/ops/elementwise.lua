--- kbl.ops.elementwise: arithmetic with tensors or numbers, math functions,
-- activations, comparisons and logic. Each is kbl.NAME(t, ...) and t:NAME(...).
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live, is_tensor, register = T.wrap, T.live, T.is_tensor, T.register

local M = {}

local kbl_unary, kbl_binary = C.kbl_unary, C.kbl_binary

local function unary(op, t, p0, p1)
   if not is_tensor(t) then error('kbl: expected a tensor, got ' .. type(t), 3) end
   return wrap(kbl_unary(op, live(t), p0 or 0, p1 or 0))
end
--- Runs a unary op of core/ops_unary.def by its enum (for the op modules).
-- @local
M.unary = unary

-- The unary ops from core/ops_unary.def, in enum order: {name, op, grad ('x',
-- 'y' or false), kind ('internal', 'api' or 'activation'), p0, p1}. Each op of
-- kind api or activation is kbl.NAME(t, p0, p1) with the table's defaults.
local grads, kinds = {[0] = false, 'x', 'y'}, {[0] = 'internal', 'api', 'activation'}
local unary_ops, U = {}, {}
for op = 0, C.KBL_UNARY_COUNT - 1 do
   local i = C.kbl_unary_info(op)
   local u = {name = ffi.string(i.name), op = op, grad = grads[i.grad], kind = kinds[i.kind], p0 = i.p0, p1 = i.p1}
   unary_ops[#unary_ops + 1], U[u.name] = u, op
   if u.kind ~= 'internal' then
      local d0, d1 = u.p0, u.p1
      M[u.name] = function(t, p0, p1) return unary(op, t, p0 or d0, p1 or d1) end
   end
end
M.unary_ops = unary_ops
local AFFINE, POW_SCALAR, RPOW_SCALAR = U.affine, U.pow_scalar, U.rpow_scalar

-- A number as a 0-dim tensor of the other operand's dtype, on its device.
local function scalar_like(x, t)
   local p = live(t)
   return wrap(C.kbl_full_on(p.device, 0, nil, x, p.dtype))
end
--- A number as a 0-dim tensor of another tensor's dtype and device.
-- @local
M.scalar_like = scalar_like

local function binary(op, a, b)
   if type(a) == 'number' then a = scalar_like(a, b) end
   if type(b) == 'number' then b = scalar_like(b, a) end
   if not is_tensor(a) or not is_tensor(b) then
      error(string.format('kbl: expected tensors or numbers, got %s and %s', type(a), type(b)), 3)
   end
   return wrap(kbl_binary(op, live(a), live(b)))
end
--- Runs a binary op of core/ops_binary.def by its enum (for the op modules).
-- @local
M.binary = binary

--- a + alpha * b, elementwise with broadcasting; either may be a number. Also `a + b`.
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @tparam[opt=1] number alpha
-- @treturn tensor
-- @usage local y = x:add(1); local z = x + y
function M.add(a, b, alpha)
   if alpha and alpha ~= 1 then b = type(b) == 'number' and b * alpha or M.mul(b, alpha) end
   if type(b) == 'number' and is_tensor(a) then return unary(AFFINE, a, 1, b) end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, b, 1, a) end
   return binary(C.KBL_ADD, a, b)
end

--- a - b, elementwise with broadcasting; either may be a number. Also `a - b`.
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local d = x:sub(y)
function M.sub(a, b)
   if type(b) == 'number' and is_tensor(a) then return unary(AFFINE, a, 1, -b) end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, b, -1, a) end
   return binary(C.KBL_SUB, a, b)
end

--- a * b, elementwise with broadcasting; either may be a number. Also `a * b`.
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local y = x:mul(2)
function M.mul(a, b)
   if type(b) == 'number' and is_tensor(a) then return unary(AFFINE, a, b, 0) end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, b, a, 0) end
   return binary(C.KBL_MUL, a, b)
end

--- a / b, true division as PyTorch: integer tensors give float32. Also `a / b`.
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local half = x:div(2)
function M.div(a, b)
   if type(b) == 'number' and is_tensor(a) then
      if live(a).dtype > 1 then a = wrap(C.kbl_to_dtype(live(a), 0)) end
      return unary(AFFINE, a, 1 / b, 0)
   end
   if type(a) == 'number' and is_tensor(b) then return unary(AFFINE, unary(U.reciprocal, b), a, 0) end
   return binary(C.KBL_DIV, a, b)
end

--- a ^ b, elementwise; either may be a number. Also `a ^ b`.
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local sq = x:pow(2)
function M.pow(a, b)
   if type(b) == 'number' and is_tensor(a) then return unary(POW_SCALAR, a, b) end
   if type(a) == 'number' and is_tensor(b) then return unary(RPOW_SCALAR, b, a) end
   return binary(C.KBL_POW, a, b)
end

-- The other binary ops of core/ops_binary.def (maximum, comparisons, logic)
-- are kbl.NAME(a, b) with tensors or numbers.
for op = 0, C.KBL_BINARY_COUNT - 1 do
   local name = ffi.string(C.kbl_binary_name(op))
   if not M[name] then M[name] = function(a, b) return binary(op, a, b) end end
end

--- a == b, elementwise with broadcasting: a uint8 tensor of 1 and 0.
-- @function eq
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local mask = x:eq(0)

--- a ~= b, elementwise with broadcasting: a uint8 tensor of 1 and 0.
-- @function ne
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local mask = x:ne(0)

--- a < b, elementwise with broadcasting: a uint8 tensor of 1 and 0.
-- @function lt
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local mask = x:lt(0)

--- a <= b, elementwise with broadcasting: a uint8 tensor of 1 and 0.
-- @function le
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local mask = x:le(0)

--- a > b, elementwise with broadcasting: a uint8 tensor of 1 and 0.
-- @function gt
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local mask = x:gt(0)

--- a >= b, elementwise with broadcasting: a uint8 tensor of 1 and 0.
-- @function ge
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local mask = x:ge(0)

--- The larger of a and b, elementwise with broadcasting (differentiable).
-- @function maximum
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local y = kbl.maximum(x, 0)

--- The smaller of a and b, elementwise with broadcasting (differentiable).
-- @function minimum
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local y = kbl.minimum(x, 0)

--- Logical and of two tensors read as booleans (non-zero is true): uint8 1 and 0.
-- @function logical_and
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local both = kbl.logical_and(x:gt(0), y:gt(0))

--- Logical or of two tensors read as booleans (non-zero is true): uint8 1 and 0.
-- @function logical_or
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local both = kbl.logical_or(x:gt(0), y:gt(0))

--- Logical xor of two tensors read as booleans (non-zero is true): uint8 1 and 0.
-- @function logical_xor
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor uint8
-- @usage local both = kbl.logical_xor(x:gt(0), y:gt(0))

--- t's values limited to [lo, hi]; either bound may be nil.
-- @tparam tensor t
-- @tparam[opt] number lo
-- @tparam[opt] number hi
-- @treturn tensor
-- @usage local p = x:clamp(0, 1)
function M.clamp(t, lo, hi)
   return unary(U.clamp, t, lo or -math.huge, hi or math.huge)
end

--- a where cond is non-zero, else b; a and b may be numbers (taking the other's dtype,
-- float32 when both are numbers).
-- @tparam tensor cond
-- @param a a tensor or a number
-- @param b a tensor or a number
-- @treturn tensor
-- @usage local y = kbl.where(x:gt(0), x, 0)
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

--- GELU: exact (erf) by default; 'tanh' for the tanh approximation, as PyTorch.
-- Also an activation: blocks.Dense{n, activation = 'gelu'}.
-- @tparam tensor t
-- @tparam[opt='none'] string approximate 'none' or 'tanh'
-- @treturn tensor
-- @usage local y = x:gelu()
function M.gelu(t, approximate)
   if approximate == 'tanh' then return unary(U.gelu_tanh, t) end
   if approximate ~= nil and approximate ~= 'none' then
      error("kbl: gelu approximate must be 'none' or 'tanh', got " .. tostring(approximate), 2)
   end
   return unary(U.gelu, t)
end

for name, fn in pairs(M) do
   if name ~= 'unary' and name ~= 'binary' and name ~= 'scalar_like' and name ~= 'unary_ops' then register(name, fn) end
end

return M
