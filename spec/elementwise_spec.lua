-- elementwise ops: arithmetic with tensors and numbers, math functions,
-- activations (against PyTorch fixtures), comparisons and logic, NumPy
-- broadcasting, type promotion, operators, errors, and a float64 gradient
-- check for every differentiable op.
local kbl = require 'kbl'
local H = require 'helper'
local F = require 'fixtures.ops'

local f64 = {dtype = 'float64'}
local function t64(v) return kbl.tensor(v, f64) end

-- the message of the error fn raises
local function error_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

describe('elementwise arithmetic', function()
   local a = kbl.tensor{{1, -2, 3}, {4, 5, -6}}
   local b = kbl.tensor{{2, 4, -1}, {0.5, -5, 3}}

   it('adds, subtracts, multiplies and divides tensors', function()
      H.assert_close(kbl.add(a, b), {{3, 2, 2}, {4.5, 0, -3}})
      H.assert_close(kbl.sub(a, b), {{-1, -6, 4}, {3.5, 10, -9}})
      H.assert_close(kbl.mul(a, b), {{2, -8, -3}, {2, -25, -18}})
      H.assert_close(kbl.div(a, b), {{0.5, -0.5, -3}, {8, -1, -2}})
      H.assert_close(a:add(b, 2), {{5, 6, 1}, {5, -5, 0}})   -- a + alpha * b
   end)

   it('takes a number on either side', function()
      local x = kbl.tensor{1, 2, 4}
      H.assert_close(x + 1, {2, 3, 5})
      H.assert_close(1 + x, {2, 3, 5})
      H.assert_close(x - 1, {0, 1, 3})
      H.assert_close(10 - x, {9, 8, 6})
      H.assert_close(x * 3, {3, 6, 12})
      H.assert_close(3 * x, {3, 6, 12})
      H.assert_close(x / 4, {0.25, 0.5, 1})
      H.assert_close(4 / x, {4, 2, 1})
      H.assert_close(x ^ 2, {1, 4, 16})
      H.assert_close(2 ^ x, {2, 4, 16})
      H.assert_close(x ^ 0.5, {1, math.sqrt(2), 2})
      H.assert_close(kbl.add(x, 2, 3), {7, 8, 10})         -- a + alpha * b with a number b
      H.assert_close(kbl.pow(x, kbl.tensor{2, 3, 0.5}), {1, 8, 2})
   end)

   it('has the operators + - * / ^ and unary minus', function()
      local x, y = kbl.tensor{1, 2}, kbl.tensor{3, 5}
      H.assert_close(x + y, {4, 7})
      H.assert_close(x - y, {-2, -3})
      H.assert_close(x * y, {3, 10})
      H.assert_close(x / y, {1 / 3, 0.4})
      H.assert_close(y ^ x, {3, 25})
      H.assert_close(-x, {-1, -2})
      H.assert_close(-(x - y) * 2, {4, 6})
   end)

   it('computes the math functions', function()
      local x = t64{0.25, 1, 4}
      H.assert_close(x:neg(), {-0.25, -1, -4})
      H.assert_close(t64{-1.5, 0, 2}:abs(), {1.5, 0, 2})
      H.assert_close(x:exp(), {math.exp(0.25), math.exp(1), math.exp(4)}, 1e-12)
      H.assert_close(x:log(), {math.log(0.25), 0, math.log(4)}, 1e-12)
      H.assert_close(x:log1p(), {math.log(1.25), math.log(2), math.log(5)}, 1e-12)
      H.assert_close(t64{1e-10}:log1p(), {1e-10}, 1e-15)   -- accurate near 0
      H.assert_close(x:sqrt(), {0.5, 1, 2})
      H.assert_close(x:rsqrt(), {2, 1, 0.5})
      H.assert_close(x:square(), {0.0625, 1, 16})
      H.assert_close(x:reciprocal(), {4, 1, 0.25})
      H.assert_close(t64{-3, 0, 0.5}:sign(), {-1, 0, 1})
      H.assert_close(t64{-3, 0.5, 7}:clamp(-1, 2), {-1, 0.5, 2})
      H.assert_close(t64{-3, 0.5, 7}:clamp(0), {0, 0.5, 7})
      H.assert_close(t64{-3, 0.5, 7}:clamp(nil, 1), {-3, 0.5, 1})
      H.assert_close(t64{-3, 0.5, 7}:clamp(2, 1), {1, 1, 1})   -- min(max(x, lo), hi), as PyTorch
      assert.is_true(t64{0 / 0}:clamp(0, 1):item() ~= t64{0 / 0}:clamp(0, 1):item())
   end)

   it('takes the elementwise maximum and minimum, propagating NaN', function()
      local x, y = t64{1, 5, -2}, t64{3, 2, -2}
      H.assert_close(kbl.maximum(x, y), {3, 5, -2})
      H.assert_close(kbl.minimum(x, y), {1, 2, -2})
      H.assert_close(x:max(y), {3, 5, -2})     -- max with a tensor argument
      local m = kbl.maximum(t64{0 / 0, 1}, t64{1, 0 / 0}):tolist()
      assert.is_true(m[1] ~= m[1] and m[2] ~= m[2])
   end)

   it('selects with where, broadcasting condition and branches', function()
      local cond = kbl.tensor({1, 0, 1}, {dtype = 'uint8'})
      H.assert_close(kbl.where(cond, t64{1, 2, 3}, t64{10, 20, 30}), {1, 20, 3})
      H.assert_close(kbl.where(cond, t64{1, 2, 3}, 0), {1, 0, 3})
      H.assert_close(kbl.where(cond, -1, t64{10, 20, 30}), {-1, 20, -1})
      H.assert_close(kbl.where(cond, 1, 0), {1, 0, 1})
      local col = kbl.tensor({{1}, {0}}, {dtype = 'uint8'})
      H.assert_close(kbl.where(col, t64{1, 2}, t64{{5, 6}, {7, 8}}), {{1, 2}, {7, 8}})
      -- any non-zero condition counts as true
      H.assert_close(kbl.where(kbl.tensor{0.5, 0}, t64{1, 2}, t64{3, 4}), {1, 4})
   end)
end)

describe('activations', function()
   local x = t64{-2, -0.5, 0, 0.5, 3}

   it('relu, leaky_relu, sigmoid, tanh by hand', function()
      H.assert_close(x:relu(), {0, 0, 0, 0.5, 3})
      H.assert_close(x:leaky_relu(), {-0.02, -0.005, 0, 0.5, 3})
      H.assert_close(x:leaky_relu(0.2), {-0.4, -0.1, 0, 0.5, 3})
      local sig, th = {}, {}
      for i, v in ipairs(x:tolist()) do
         sig[i] = 1 / (1 + math.exp(-v))
         th[i] = math.tanh(v)
      end
      H.assert_close(x:sigmoid(), sig, 1e-12)
      H.assert_close(x:tanh(), th, 1e-12)
      -- sigmoid saturates without overflow
      H.assert_close(t64{-1000, 1000}:sigmoid(), {0, 1})
      H.assert_close(kbl.tensor{-100, 100}:sigmoid(), {0, 1})
   end)

   -- What keeps these ops fused rather than composites of primitives (see the
   -- table in core/ops_unary.def and bench/unary_fused.lua): float32 precision
   -- where 2 sigmoid(2x) - 1 (tanh near 0) or 1 + tanh u (gelu_tanh's negative
   -- tail) cancel, and finite gradients where exp overflows.
   it('keep float32 precision and finite gradients where composites lose them', function()
      local v = {1e-6, -3e-4, 0.01, 0.4, -2, -5, -8}
      local x32 = kbl.tensor(v)
      local th, gt = x32:tanh(), x32:gelu('tanh')
      for i, xv in ipairs(x32:tolist()) do
         local r = math.tanh(xv)
         assert.is_true(math.abs(th[i] - r) <= 1e-6 * math.abs(r), 'tanh(' .. xv .. ') = ' .. th[i])
         local u = math.sqrt(2 / math.pi) * (xv + 0.044715 * xv ^ 3)
         r = xv / (1 + math.exp(-2 * u))   -- x sigmoid(2u), exact in the tail
         assert.is_true(math.abs(gt[i] - r) <= 1e-5 * math.abs(r), 'gelu_tanh(' .. xv .. ') = ' .. gt[i])
      end
      for _, name in ipairs{'sigmoid', 'tanh', 'silu', 'softplus', 'elu', 'gelu', 'gelu_tanh'} do
         local big = kbl.tensor{-200, -90, -13, 13, 90, 200}:requires_grad_()
         local y = name == 'gelu_tanh' and big:gelu('tanh') or big[name](big)
         y:sum():backward()
         for i, g in ipairs(big.grad:tolist()) do
            assert.is_true(g == g and math.abs(g) < math.huge, name .. "'s gradient at " .. big[i] .. ': ' .. g)
         end
      end
   end)

   local cases = {
      gelu = function(t) return t:gelu() end,
      gelu_tanh = function(t) return t:gelu('tanh') end,
      elu = function(t) return t:elu() end,
      elu_alpha = function(t) return t:elu(0.5) end,
      softplus = function(t) return t:softplus() end,
      softplus_beta = function(t) return t:softplus(2, 5) end,
      silu = function(t) return t:silu() end,
   }
   for name, fn in pairs(cases) do
      it(name .. ' matches PyTorch in value and gradient', function()
         local c = F[name]
         local xi = t64(c.x)
         xi.requires_grad = true
         local y = fn(xi)
         H.assert_close(y, c.out, 1e-10, name)
         ;(y * t64(c.probe)):sum():backward()
         H.assert_close(xi.grad, c.grad, 1e-9, name .. ' grad')
         -- float32 agrees too, within float32 precision
         H.assert_close(fn(kbl.tensor(c.x)), c.out, 1e-5, name .. ' float32')
      end)
   end

   it('rejects an unknown gelu approximation', function()
      assert.matches("gelu approximate must be 'none' or 'tanh'", error_of(function() x:gelu('fast') end))
   end)
end)

describe('comparisons and logic', function()
   local a, b = kbl.tensor{1, 2, 3}, kbl.tensor{3, 2, 1}

   it('give uint8 results', function()
      assert.same({0, 1, 0}, kbl.eq(a, b):tolist())
      assert.same({1, 0, 1}, kbl.ne(a, b):tolist())
      assert.same({1, 0, 0}, kbl.lt(a, b):tolist())
      assert.same({1, 1, 0}, kbl.le(a, b):tolist())
      assert.same({0, 0, 1}, kbl.gt(a, b):tolist())
      assert.same({0, 1, 1}, kbl.ge(a, b):tolist())
      assert.same({0, 0, 1}, a:gt(2):tolist())
      assert.equal('uint8', a:lt(b).dtype)
      local p, q = kbl.tensor({1, 1, 0, 0}, {dtype = 'uint8'}), kbl.tensor({1, 0, 1, 0}, {dtype = 'uint8'})
      assert.same({1, 0, 0, 0}, kbl.logical_and(p, q):tolist())
      assert.same({1, 1, 1, 0}, kbl.logical_or(p, q):tolist())
      assert.same({0, 1, 1, 0}, kbl.logical_xor(p, q):tolist())
      assert.same({0, 0, 1, 1}, kbl.logical_not(p):tolist())
      assert.same({1, 0, 1}, kbl.logical_not(kbl.tensor{0, 2.5, 0}):tolist())
      assert.equal('uint8', kbl.logical_and(a, b).dtype)
   end)

   it('compare mixed dtypes after promotion and broadcast', function()
      local i = kbl.tensor({1, 2}, {dtype = 'int64'})
      assert.same({{0, 1}, {0, 0}}, kbl.gt(i, kbl.tensor{{1.5}, {2.5}}):tolist())
   end)

   it('carry no gradient', function()
      local x = t64{1, 2}
      x.requires_grad = true
      local c = x:gt(1.5)
      assert.is_false(c.requires_grad)
      assert.is_nil(c.grad_fn)
      assert.is_false(kbl.logical_not(x).requires_grad)
      assert.is_false(x:sign().requires_grad)
   end)
end)

describe('broadcasting', function()
   it('broadcasts [3,1] with [1,4]', function()
      local r = kbl.tensor{{1}, {2}, {3}} * kbl.tensor{{10, 20, 30, 40}}
      assert.same({3, 4}, r:size())
      H.assert_close(r, {{10, 20, 30, 40}, {20, 40, 60, 80}, {30, 60, 90, 120}})
   end)

   it('adds leading dims', function()
      local r = kbl.ones(2, 3, 4) + kbl.tensor{1, 2, 3, 4}
      assert.same({2, 3, 4}, r:size())
      H.assert_close(r[2][3], {2, 3, 4, 5})
      local s = kbl.ones(5, 1, 3) - kbl.ones(4, 1)
      assert.same({5, 4, 3}, s:size())
   end)

   it('broadcasts 0-dim tensors', function()
      local s = kbl.tensor(3)
      assert.equal(0, s:dim())
      local r = s * kbl.tensor{{1, 2}, {3, 4}}
      H.assert_close(r, {{3, 6}, {9, 12}})
      local z = s + kbl.tensor(4)
      assert.equal(0, z:dim())
      assert.equal(7, z:item())
   end)

   it('reads views: transposed and expanded operands', function()
      local m = kbl.tensor{{1, 2, 3}, {4, 5, 6}}
      H.assert_close(m:t() + kbl.tensor{{10, 20}}, {{11, 24}, {12, 25}, {13, 26}})
      H.assert_close(kbl.tensor{1, 2}:expand(3, 2) * 2, {{2, 4}, {2, 4}, {2, 4}})
   end)

   it('names both shapes when they do not broadcast', function()
      local msg = error_of(function() return kbl.ones(2, 3) + kbl.ones(4) end)
      assert.matches('add', msg)
      assert.matches('[2, 3]', msg, 1, true)
      assert.matches('[4]', msg, 1, true)
      msg = error_of(function() return kbl.mul(kbl.ones(3, 2), kbl.ones(2, 3)) end)
      assert.matches('mul', msg)
      assert.matches('[3, 2]', msg, 1, true)
      assert.matches('[2, 3]', msg, 1, true)
      msg = error_of(function() return kbl.where(kbl.ones(5):gt(0), kbl.ones(2), kbl.ones(2)) end)
      assert.matches('where', msg)
   end)

   it('rejects non-tensor operands clearly', function()
      assert.matches('expected tensors or numbers', error_of(function() return kbl.maximum(kbl.ones(2), 'x') end))
   end)
end)

describe('type promotion', function()
   local i32 = kbl.tensor({1, 2}, {dtype = 'int32'})
   local i64 = kbl.tensor({7, -7}, {dtype = 'int64'})

   it('promotes int with float to the float type', function()
      local r = i32 + kbl.tensor({0.5, 0.25}, f64)
      assert.equal('float64', r.dtype)
      H.assert_close(r, {1.5, 2.25})
      r = i64 + kbl.tensor{0.5, 0.5}
      assert.equal('float32', r.dtype)
      H.assert_close(r, {7.5, -6.5})
      assert.equal('float64', (kbl.tensor{1} * kbl.tensor({2}, f64)).dtype)
   end)

   it('keeps integer arithmetic integer', function()
      assert.equal('int32', (i32 + i32).dtype)
      assert.equal('int64', (i32 * i64).dtype)
      assert.equal('int64', (i64 - 1).dtype)
      assert.equal('int64', (i64 * 3).dtype)
      assert.same({21, -21}, (i64 * 3):tolist())
      assert.equal('int64', (-i64).dtype)
      assert.equal('int64', i64:abs().dtype)
      assert.same({7, 7}, i64:abs():tolist())
      assert.equal('uint8', (kbl.tensor({1}, {dtype = 'uint8'}) + kbl.tensor({2}, {dtype = 'uint8'})).dtype)
      assert.equal('int64', (i64 ^ 2).dtype)
      assert.same({343, -343}, (i64 ^ 3):tolist())
      assert.equal('int64', i64:clamp(-5, 5).dtype)
      assert.same({5, -5}, i64:clamp(-5, 5):tolist())
      assert.same({5, -7}, i64:clamp(nil, 5):tolist())
      assert.equal('int64', kbl.maximum(i64, i64).dtype)
   end)

   it('gives float results for division and non-integer scalars, as PyTorch', function()
      local q = i64 / kbl.tensor({2, 2}, {dtype = 'int64'})
      assert.equal('float32', q.dtype)
      H.assert_close(q, {3.5, -3.5})
      assert.equal('float32', (i64 / 2).dtype)
      H.assert_close(i64 / 2, {3.5, -3.5})
      assert.equal('float32', (i64 / 1).dtype)
      assert.equal('float32', (i32 + 0.5).dtype)
      assert.equal('float32', i32:exp().dtype)
      assert.equal('float32', i32:sqrt().dtype)
   end)
end)

describe('elementwise gradients (float64 finite differences)', function()
   local function pos(shape) return H.leaf(shape, {positive = true}) end

   it('of the binary ops', function()
      local a, b = H.leaf{2, 3}, H.leaf{2, 3}
      H.gradcheck(kbl.add, {a, b})
      H.gradcheck(kbl.sub, {a, b})
      H.gradcheck(kbl.mul, {a, b})
      H.gradcheck(function(x, y) return x:add(y, -2.5) end, {a, b})
      H.gradcheck(kbl.div, {a, pos{2, 3}})
      H.gradcheck(kbl.pow, {pos{2, 3}, b})
      H.gradcheck(kbl.maximum, {a, b})
      H.gradcheck(kbl.minimum, {a, b})
   end)

   it('of ops with a number on either side', function()
      local a = H.leaf{5}
      local p = pos{5}
      H.gradcheck(function(x) return x + 2 end, {a})
      H.gradcheck(function(x) return 2 - x end, {a})
      H.gradcheck(function(x) return x * 3 end, {a})
      H.gradcheck(function(x) return x / 4 end, {a})
      H.gradcheck(function(x) return 3 / x end, {p})
      H.gradcheck(function(x) return x ^ 3 end, {a})
      H.gradcheck(function(x) return x ^ 2 end, {a})
      H.gradcheck(function(x) return x ^ 0.7 end, {p})
      H.gradcheck(function(x) return 1.5 ^ x end, {a})
      H.gradcheck(function(x) return -x end, {a})
   end)

   it('summing back to broadcast input shapes', function()
      local col, row = H.leaf{3, 1}, H.leaf{1, 4}
      H.gradcheck(kbl.add, {col, row})
      H.gradcheck(kbl.mul, {col, row})
      H.gradcheck(kbl.sub, {H.leaf{2, 3, 4}, H.leaf{4}})
      H.gradcheck(kbl.div, {H.leaf{2, 3}, pos{3}})
      H.gradcheck(kbl.pow, {pos{3, 1}, H.leaf{2}})
      H.gradcheck(kbl.maximum, {H.leaf{2, 3}, H.leaf{2, 1}})
      local s = H.leaf{}
      H.gradcheck(kbl.mul, {s, H.leaf{2, 3}})
      local x = H.leaf{3, 1}
      x.grad = nil
      kbl.sum(x * kbl.ones(3, 4, {dtype = 'float64'})):backward()
      assert.same({3, 1}, x.grad:size())
      H.assert_close(x.grad, {{4}, {4}, {4}})
   end)

   it('giving tied maximum/minimum inputs half the gradient each', function()
      local a, b = t64{1, 2}, t64{1, 3}
      a.requires_grad, b.requires_grad = true, true
      kbl.maximum(a, b):sum():backward()
      H.assert_close(a.grad, {0.5, 0})
      H.assert_close(b.grad, {0.5, 1})
   end)

   it('of pow at a zero base: 0 where the limit is 0, as PyTorch', function()
      local a, b = t64{0, 2}, t64{2, 3}
      a.requires_grad, b.requires_grad = true, true
      kbl.pow(a, b):sum():backward()
      H.assert_close(a.grad, {0, 12})
      H.assert_close(b.grad, {0, 8 * math.log(2)}, 1e-12)
      local z = t64{0, 3}
      z.requires_grad = true
      ;(z ^ 0):sum():backward()
      H.assert_close(z.grad, {0, 0})
   end)

   it('of where, into both branches', function()
      local cond = kbl.tensor({{1, 0, 1}, {0, 0, 1}}, {dtype = 'uint8'})
      H.gradcheck(function(x, y) return kbl.where(cond, x, y) end, {H.leaf{2, 3}, H.leaf{2, 3}})
      H.gradcheck(function(x, y) return kbl.where(cond, x, y) end, {H.leaf{3}, H.leaf{2, 1}})
   end)

   -- Every differentiable op of core/ops_unary.def, by its table's name, so an
   -- op added there is checked here without a line of its own; a fixture says
   -- where an op needs positive inputs or other parameters than its defaults.
   local fixtures = {
      log = {pos = true}, log1p = {pos = true}, sqrt = {pos = true}, rsqrt = {pos = true},
      reciprocal = {pos = true}, rpow_scalar = {p = {{2}, {0.5}}},
      clamp = {p = {{-0.5, 0.5}, {0.3, math.huge}}}, leaky_relu = {p = {{0.01}, {0.1}}},
      elu = {p = {{1}, {0.7}}}, softplus = {p = {{1, 20}, {2, 1}}},
      affine = {p = {{2, -1}}}, pow_scalar = {p = {{2}, {3}, {0}, {1.5, pos = true}}},
   }
   it('of every unary op in the table', function()
      local E = require 'kbl.ops.elementwise'
      local a, p, checked = H.leaf{2, 3}, pos{2, 3}, 0
      for _, u in ipairs(E.unary_ops) do
         if u.grad then
            local f = fixtures[u.name] or {}
            for _, ps in ipairs(f.p or {{u.p0, u.p1}}) do
               local ok, err = pcall(H.gradcheck, function(x) return E.unary(u.op, x, ps[1] or u.p0, ps[2] or u.p1) end,
                  {(f.pos or ps.pos) and p or a})
               assert(ok, u.name .. ': ' .. tostring(err))
            end
            checked = checked + 1
         end
      end
      assert.is_true(checked >= 22, 'checked ' .. checked)
   end)

   it('of every binary op in the table (core/ops_binary.def) with a float result', function()
      local ffi, C = require 'ffi', require('kbl.lib').C
      local checked = 0
      for op = 0, C.KBL_BINARY_COUNT - 1 do
         local name = ffi.string(C.kbl_binary_name(op))
         local a, b = pos{2, 3}, pos{3}
         if kbl[name](a, b).dtype == 'float64' then
            local ok, err = pcall(H.gradcheck, kbl[name], {a, b})
            assert(ok, name .. ': ' .. tostring(err))
            checked = checked + 1
         end
      end
      assert.is_true(checked >= 7, 'checked ' .. checked)
   end)

   it('of the parameterised activations through their functions', function()
      local a = H.leaf{3, 4}
      H.gradcheck(function(x) return x:clamp(0.3) end, {a})
      H.gradcheck(function(x) return x:leaky_relu(0.1) end, {a})
      H.gradcheck(function(x) return x:elu(0.7) end, {a})
      H.gradcheck(function(x) return x:gelu('tanh') end, {a})
      H.gradcheck(function(x) return x:softplus(2, 1) end, {a})
   end)

   it('through integer-to-float promotion', function()
      local i = kbl.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = 'int64'})
      H.gradcheck(function(x) return x * i end, {H.leaf{2, 3}})
      H.gradcheck(function(x) return i / x end, {pos{3}})
   end)
end)
