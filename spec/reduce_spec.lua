-- reductions: sum/mean over dims, lists of dims, all dims, keepdim and negative
-- dims; var/std, logsumexp and norm against PyTorch fixtures; max/min with
-- 1-based indices; argmax/argmin; dim errors; gradient checks.
local kbl = require 'kbl'
local H = require 'helper'
local F = require 'fixtures.ops'

local f64 = {dtype = 'float64'}
local function t64(v) return kbl.tensor(v, f64) end

local function error_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

-- x[i][j][k] = 12 (i-1) + 4 (j-1) + (k-1): 0..23 in a [2, 3, 4] block
local function block() return kbl.arange(24):reshape(2, 3, 4):double() end

describe('sum and mean', function()
   local x = block()

   it('reduce one dim', function()
      H.assert_close(x:sum(1), {{12, 14, 16, 18}, {20, 22, 24, 26}, {28, 30, 32, 34}})
      H.assert_close(x:sum(3), {{6, 22, 38}, {54, 70, 86}})
      H.assert_close(x:mean(2), {{4, 5, 6, 7}, {16, 17, 18, 19}})
   end)

   it('reduce negative dims, counting from the end', function()
      H.assert_close(x:sum(-1), x:sum(3))
      H.assert_close(x:sum(-3), x:sum(1))
      H.assert_close(x:mean(-2), x:mean(2))
   end)

   it('reduce a list of dims', function()
      H.assert_close(x:sum({1, 3}), {60, 92, 124})
      H.assert_close(x:sum({3, 1}), {60, 92, 124})
      H.assert_close(x:mean({2, -1}), {5.5, 17.5})
      H.assert_close(x:sum({}), 276)    -- an empty list means all dims
   end)

   it('reduce all dims to a 0-dim tensor', function()
      local s = x:sum()
      assert.equal(0, s:dim())
      assert.equal(276, s:item())
      assert.equal(11.5, x:mean():item())
      assert.equal(276, x:sum({1, 2, 3}):item())
   end)

   it('keep reduced dims as size 1 with keepdim', function()
      assert.same({2, 1, 4}, x:sum(2, true):size())
      assert.same({1, 3, 1}, x:mean({1, 3}, true):size())
      assert.same({1, 1, 1}, x:sum(nil, true):size())
      H.assert_close(x:sum(3, true), {{{6}, {22}, {38}}, {{54}, {70}, {86}}})
   end)

   it('read strided views', function()
      local m = kbl.tensor{{1, 2, 3}, {4, 5, 6}}:t()
      H.assert_close(m:sum(1), {6, 15})
      H.assert_close(m:sum(2), {5, 7, 9})
   end)

   it('sum integers as int64 and average them as float32', function()
      local i = kbl.tensor({{1, 2}, {3, 4}}, {dtype = 'int32'})
      assert.equal('int64', i:sum().dtype)
      assert.equal(10, i:sum():item())
      assert.equal('float32', i:mean().dtype)
      H.assert_close(i:mean(1), {2, 3})
   end)

   it('sum big float32 tensors accurately', function()
      local ones = kbl.ones(1000, 1000)
      assert.equal(1e6, ones:sum():item())
      assert.equal(1000, ones:sum(1)[7])
   end)
end)

describe('var, std, logsumexp and norm', function()
   local function check(name, fn, tol)
      local c = F[name]
      local x = t64(c.x)
      x.requires_grad = true
      local y = fn(x)
      H.assert_close(y, c.out, tol or 1e-10, name)
      local probe = c.probe and t64(c.probe) or 1
      ;(y * probe):sum():backward()
      H.assert_close(x.grad, c.grad, tol or 1e-9, name .. ' grad')
   end

   it('var and std with correction 0 and 1 match PyTorch', function()
      for _, c in ipairs{0, 1} do
         check('var_dim2_c' .. c, function(x) return x:var(2, false, c) end)
         check('var_dims13_c' .. c, function(x) return x:var({1, 3}, false, c) end)
         check('var_all_c' .. c, function(x) return x:var(nil, false, c) end)
         check('std_dim3_c' .. c, function(x) return x:std(3, true, c) end)
         check('std_all_c' .. c, function(x) return x:std(nil, false, c) end)
      end
   end)

   it('var and std default to the unbiased estimate', function()
      local x = t64{1, 2, 3, 4}
      H.assert_close(x:var(), 5 / 3)
      H.assert_close(x:var(1, false, 0), 1.25)
      H.assert_close(x:std(), math.sqrt(5 / 3))
   end)

   it('logsumexp matches PyTorch, stable for large values', function()
      check('logsumexp_dim2', function(x) return x:logsumexp(2) end)
      check('logsumexp_dims13', function(x) return x:logsumexp({1, 3}) end)
      check('logsumexp_all', function(x) return x:logsumexp() end)
      check('logsumexp_keepdim', function(x) return x:logsumexp(3, true) end)
      H.assert_close(kbl.tensor{1000, 1000}:logsumexp(), 1000 + math.log(2), 1e-6)
      H.assert_close(kbl.tensor{-1000, -1000}:logsumexp(), -1000 + math.log(2), 1e-6)
   end)

   it('logsumexp of a row of -inf is -inf, and -inf entries add nothing', function()
      local c = F.logsumexp_inf
      assert.equal(-math.huge, c.out[2])
      for _, dtype in ipairs{'float64', 'float32'} do
         local r = kbl.tensor(c.x, {dtype = dtype}):logsumexp(2):tolist()
         assert.equal(-math.huge, r[2])
         -- (assert_close does not take equal infinities, so the finite rows are compared alone)
         H.assert_close(t64{r[1], r[3]}, {c.out[1], c.out[3]}, 1e-6)
      end
   end)

   it('norm p = 1, 2, 3 and math.huge match PyTorch', function()
      for _, p in ipairs{{'1', 1}, {'2', 2}, {'3', 3}, {'inf', math.huge}} do
         check('norm_p' .. p[1] .. '_dim2', function(x) return x:norm(p[2], 2) end)
         check('norm_p' .. p[1] .. '_all', function(x) return x:norm(p[2]) end)
      end
   end)

   it('norm keeps dims and defaults to p = 2', function()
      local x = t64{{3, 4}, {6, 8}}
      H.assert_close(x:norm(), math.sqrt(125))
      H.assert_close(x:norm(2, 2, true), {{5}, {10}})
      H.assert_close(x:norm(math.huge, {1, 2}), 8)
      H.assert_close(x:norm(1, -1), {7, 14})
   end)
end)

describe('max, min, argmax, argmin', function()
   local x = t64{{3, 9, 1, 9}, {-2, 0, -7, 5}}

   it('give values and 1-based indices along a dim', function()
      local v, i = x:max(2)
      H.assert_close(v, {9, 5})
      assert.same({2, 4}, i:tolist())    -- the first of tied maxima
      assert.equal('int64', i.dtype)
      v, i = x:min(1)
      H.assert_close(v, {-2, 0, -7, 5})
      assert.same({2, 2, 2, 2}, i:tolist())
      v, i = x:min(-1, true)
      assert.same({2, 1}, v:size())
      assert.same({{3}, {3}}, i:tolist())
   end)

   it('reduce over all elements with a flat 1-based position', function()
      local v, i = x:max()
      assert.equal(0, v:dim())
      assert.equal(9, v:item())
      assert.equal(2, i:item())
      v, i = x:min()
      assert.equal(-7, v:item())
      assert.equal(7, i:item())
   end)

   it('argmax and argmin count from 1', function()
      assert.same({2, 4}, x:argmax(2):tolist())
      assert.same({2, 2, 2, 2}, x:argmin(1):tolist())
      assert.same({1, 1, 1, 1}, x:argmax(1):tolist())
      assert.equal(2, x:argmax():item())
      assert.equal(7, x:argmin():item())
      assert.same({{2}, {4}}, x:argmax(2, true):tolist())
      -- the index of a value picks it back out
      local idx = kbl.tensor{5, 1, 8, 3}:argmax():item()
      assert.equal(8, kbl.tensor{5, 1, 8, 3}[idx])
   end)

   it('work on integer tensors, keeping their dtype', function()
      local i = kbl.tensor({{4, 1}, {2, 8}}, {dtype = 'int32'})
      local v, p = i:max(1)
      assert.equal('int32', v.dtype)
      assert.same({4, 8}, v:tolist())
      assert.same({1, 2}, p:tolist())
   end)

   it('let NaN win, as PyTorch', function()
      local v, i = t64{1, 0 / 0, 3}:max(1)
      assert.is_true(v:item() ~= v:item())
      assert.equal(2, i:item())
   end)

   it('refuse an empty tensor', function()
      assert.matches('empty', error_of(function() return kbl.zeros(0):max() end))
   end)
end)

describe('dimension errors', function()
   local x = block()

   it('name the dim as Lua counts it', function()
      local msg = error_of(function() return x:sum(4) end)
      assert.matches('sum', msg)
      assert.matches('dimension 4', msg)
      assert.matches('3 dims', msg)
      assert.matches('dimension %-4', error_of(function() return x:mean(-4) end))
      assert.matches('dimension 5', error_of(function() return x:max(5) end))
      assert.matches('argmin', error_of(function() return x:argmin(9) end))
      assert.matches('dimension 4', error_of(function() return x:var(4) end))
      assert.matches('dimension 7', error_of(function() return x:logsumexp({1, 7}) end))
      assert.matches('dimension 4', error_of(function() return x:norm(2, 4) end))
   end)

   it('refuse dim 0, non-integers and repeats', function()
      assert.matches('count from 1', error_of(function() return x:sum(0) end))
      assert.matches('count from 1', error_of(function() return x:sum(1.5) end))
      assert.matches('dimension 1 listed twice', error_of(function() return x:sum({1, -3}) end))
   end)

   it('refuse var of an integer tensor', function()
      assert.matches('var', error_of(function() return kbl.tensor({1, 2}, {dtype = 'int64'}):var() end))
   end)
end)

describe('reduction gradients (float64 finite differences)', function()
   local a = H.leaf{3, 4}
   local b = H.leaf{2, 3, 4}

   it('of sum and mean', function()
      H.gradcheck(function(x) return x:sum() end, {a})
      H.gradcheck(function(x) return x:sum(1) end, {a})
      H.gradcheck(function(x) return x:sum(-1, true) end, {a})
      H.gradcheck(function(x) return x:sum({1, 3}) end, {b})
      H.gradcheck(function(x) return x:mean() end, {b})
      H.gradcheck(function(x) return x:mean({2, 3}, true) end, {b})
      H.gradcheck(function(x) return x:t():sum(2) end, {a})
   end)

   it('of var, std, logsumexp and norm', function()
      for _, c in ipairs{0, 1} do
         H.gradcheck(function(x) return x:var(2, false, c) end, {a})
         H.gradcheck(function(x) return x:std({1, 3}, true, c) end, {b})
      end
      H.gradcheck(function(x) return x:var() end, {b})
      H.gradcheck(function(x) return x:logsumexp(1) end, {a})
      H.gradcheck(function(x) return x:logsumexp({1, 2}, true) end, {b})
      for _, p in ipairs{1, 2, 3} do
         H.gradcheck(function(x) return x:norm(p, 2) end, {a})
         H.gradcheck(function(x) return x:norm(p) end, {b})
      end
      H.gradcheck(function(x) return x:norm(math.huge, 1) end, {a})
      H.gradcheck(function(x) return x:norm(math.huge) end, {b})
   end)

   it('of std and norm at zero: 0, as PyTorch, not NaN', function()
      for _, fn in ipairs{
         function(x) return x:std(2) end,
         function(x) return x:std(nil, false, 0) end,
         function(x) return x:norm(2, 2) end,
         function(x) return x:norm(3) end,
      } do
         local z = kbl.zeros({2, 3}, {dtype = 'float64', requires_grad = true})
         fn(z):sum():backward()
         H.assert_close(z.grad, {{0, 0, 0}, {0, 0, 0}})
      end
      -- a zero row next to a non-zero one keeps the latter's gradient
      local x = t64{{0, 0}, {3, 4}}
      x.requires_grad = true
      x:norm(2, 2):sum():backward()
      H.assert_close(x.grad, {{0, 0}, {0.6, 0.8}})
      local c = t64{{2, 2, 2}, {1, 2, 3}}
      c.requires_grad = true
      c:std(2):sum():backward()
      H.assert_close(c.grad, {{0, 0, 0}, {-0.5, 0, 0.5}})
   end)

   it('refuse norm with p <= 0', function()
      assert.matches('p must be positive', error_of(function() return kbl.ones(3):norm(0) end))
   end)

   it('of max and min, into the arg position', function()
      H.gradcheck(function(x) return (x:max(2)) end, {a})
      H.gradcheck(function(x) return (x:min(1, true)) end, {a})
      H.gradcheck(function(x) return (x:max()) end, {b})
      H.gradcheck(function(x) return (x:min()) end, {b})
      H.gradcheck(function(x) return (x:max(-2)) end, {b})
      local x = t64{{1, 7, 3}, {9, 2, 4}}
      x.requires_grad = true
      local v = x:max(2)
      v:sum():backward()
      H.assert_close(x.grad, {{0, 1, 0}, {1, 0, 0}})
      x.grad = nil
      ;(x:min() * 3):backward()
      H.assert_close(x.grad, {{3, 0, 0}, {0, 0, 0}})
   end)
end)
