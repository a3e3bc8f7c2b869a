-- indexing ops: index_select, gather, scatter_add, masked_fill, cat, stack,
-- split/chunk, pad, one_hot and flip, with 1-based indices and labels, the
-- errors that name what the caller wrote, and float64 gradient checks.
local kbl = require 'kbl'
local H = require 'helper'

local f64 = {dtype = 'float64'}
local function t64(v) return kbl.tensor(v, f64) end
local function i64(v) return kbl.tensor(v, {dtype = 'int64'}) end

local function error_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

-- x[i][j] = 10 i + j
local function grid() return t64{{11, 12, 13, 14}, {21, 22, 23, 24}, {31, 32, 33, 34}} end

describe('index_select', function()
   local x = grid()

   it('picks rows and columns by 1-based index, repeats allowed', function()
      H.assert_close(x:index_select(1, i64{3, 1}), {{31, 32, 33, 34}, {11, 12, 13, 14}})
      H.assert_close(x:index_select(2, {4, 4, 1}), {{14, 14, 11}, {24, 24, 21}, {34, 34, 31}})
      H.assert_close(x:index_select(-1, kbl.tensor({2}, {dtype = 'int32'})), {{12}, {22}, {32}})
      local b = kbl.arange(24):reshape(2, 3, 4)
      assert.same({{{4, 5, 6, 7}}, {{16, 17, 18, 19}}}, b:index_select(2, {2}):tolist())
      assert.equal('int64', b:index_select(2, {2}).dtype)
      assert.same({0, 4}, x:index_select(1, {}):size())
   end)

   it('names an out-of-range index as the caller wrote it', function()
      local msg = error_of(function() return x:index_select(1, {1, 4}) end)
      assert.matches('index_select: index 4 at position 2 is out of range for dim 1 of size 3', msg)
      msg = error_of(function() return x:index_select(2, i64{0}) end)
      assert.matches('index 0 at position 1 is out of range for dim 2 of size 4', msg)
      assert.matches('dimension 3 out of range', error_of(function() return x:index_select(3, {1}) end))
      assert.matches('int64', error_of(function() return x:index_select(1, kbl.tensor{1}) end))
   end)
end)

describe('gather and scatter_add', function()
   local x = grid()

   it('gather picks along a dim by 1-based index', function()
      local idx = i64{{1, 4}, {2, 2}, {3, 1}}
      H.assert_close(x:gather(2, idx), {{11, 14}, {22, 22}, {33, 31}})
      H.assert_close(x:gather(1, i64{{3, 1, 2, 3}}), {{31, 12, 23, 34}})
      -- a strided input
      H.assert_close(x:t():gather(1, i64{{2, 3, 1}}), {{12, 23, 31}})
   end)

   it('gather picks the labelled logit of each row (the CE pattern)', function()
      local logits = t64{{0.1, 0.7, 0.2}, {0.5, 0.4, 0.1}}
      H.assert_close(logits:gather(2, i64{{2}, {1}}), {{0.7}, {0.5}})
   end)

   it('gather names a bad index and a bad shape', function()
      local msg = error_of(function() return x:gather(2, i64{{1, 5}, {1, 1}, {1, 1}}) end)
      assert.matches('gather: index 5 at position [1, 2] is out of range for dim 2 of size 4', msg, 1, true)
      msg = error_of(function() return x:gather(2, i64{1, 2}) end)
      assert.matches('as many dims', msg)
      msg = error_of(function() return x:gather(2, i64{{1}, {1}, {1}, {1}}) end)
      assert.matches('larger than input', msg)
   end)

   it('scatter_add adds src into a copy at 1-based positions, summing repeats', function()
      local r = kbl.zeros(3):scatter_add(1, i64{1, 1, 3, 1}, kbl.tensor{1, 2, 3, 4})
      assert.same({7, 0, 3}, r:tolist())
      local base = t64{{1, 1, 1}, {1, 1, 1}}
      r = base:scatter_add(2, i64{{3, 3}, {1, 2}}, t64{{5, 6}, {7, 8}})
      H.assert_close(r, {{1, 1, 12}, {8, 9, 1}})
      H.assert_close(base, {{1, 1, 1}, {1, 1, 1}})     -- the input is left alone
      -- scatter_add undoes nothing gather does not: sum of gathered rows
      local g = kbl.zeros(2, 4, f64):scatter_add(1, i64{{1, 2, 1, 2}}, t64{{1, 2, 3, 4}})
      H.assert_close(g, {{1, 0, 3, 0}, {0, 2, 0, 4}})
   end)

   it('scatter_add names a bad index and mismatched source', function()
      local msg = error_of(function() return kbl.zeros(3):scatter_add(1, i64{4}, kbl.ones(1)) end)
      assert.matches('scatter_add: index 4 at position 1 is out of range for dim 1 of size 3', msg)
      msg = error_of(function() return kbl.zeros(3):scatter_add(1, i64{1}, kbl.ones(1, f64)) end)
      assert.matches('dtype', msg)
   end)
end)

describe('masked_fill', function()
   it('fills where the mask is set, broadcasting the mask', function()
      local x = grid()
      H.assert_close(x:masked_fill(x:gt(22), -1), {{11, 12, 13, 14}, {21, 22, -1, -1}, {-1, -1, -1, -1}})
      local col = kbl.tensor({{1}, {0}, {1}}, {dtype = 'uint8'})
      H.assert_close(x:masked_fill(col, 0), {{0, 0, 0, 0}, {21, 22, 23, 24}, {0, 0, 0, 0}})
      H.assert_close(x:masked_fill(x:lt(0), -math.huge), x)
      local m = kbl.tensor{1, 2}:masked_fill(kbl.tensor({1, 0}, {dtype = 'uint8'}), -math.huge):tolist()
      assert.equal(-math.huge, m[1])
      assert.equal('int64', i64{1, 2}:masked_fill(i64{1, 0}:gt(0), 7).dtype)
   end)

   it('refuses a mask that does not broadcast', function()
      local msg = error_of(function() return grid():masked_fill(kbl.ones(2):gt(0), 0) end)
      assert.matches('[2]', msg, 1, true)
      assert.matches('[3, 4]', msg, 1, true)
   end)
end)

describe('cat and stack', function()
   it('cat joins along a dim', function()
      local a, b = t64{{1, 2}, {3, 4}}, t64{{5, 6}}
      H.assert_close(kbl.cat({a, b}), {{1, 2}, {3, 4}, {5, 6}})
      H.assert_close(kbl.cat({a, a}, 2), {{1, 2, 1, 2}, {3, 4, 3, 4}})
      H.assert_close(kbl.cat({a, a:t()}, -1), {{1, 2, 1, 3}, {3, 4, 2, 4}})
      H.assert_close(kbl.cat({t64{1}, t64{2, 3}, t64{}}), {1, 2, 3})
   end)

   it('cat promotes dtypes as arithmetic does', function()
      local r = kbl.cat({i64{1, 2}, kbl.tensor{0.5}})
      assert.equal('float32', r.dtype)
      H.assert_close(r, {1, 2, 0.5})
      assert.equal('float64', kbl.cat({kbl.tensor{1}, t64{2}}).dtype)
      assert.equal('int64', kbl.cat({i64{1}, kbl.tensor({2}, {dtype = 'int32'})}).dtype)
   end)

   it('cat names the tensors whose shapes differ', function()
      local msg = error_of(function() return kbl.cat({kbl.ones(2, 2), kbl.ones(2, 2), kbl.ones(1, 3)}, 1) end)
      assert.matches('cat: tensor 3 [1, 3] float32 does not match tensor 1 [2, 2] float32', msg, 1, true)
      assert.matches('dimension 3 out of range', error_of(function() return kbl.cat({kbl.ones(2, 2)}, 3) end))
      assert.matches('non%-empty list', error_of(function() return kbl.cat({}) end))
      assert.matches('element 2 is not a tensor', error_of(function() return kbl.cat({kbl.ones(2), 3}) end))
   end)

   it('stack joins along a new dim', function()
      local a, b = t64{1, 2}, t64{3, 4}
      local s = kbl.stack({a, b})
      assert.same({2, 2}, s:size())
      H.assert_close(s, {{1, 2}, {3, 4}})
      H.assert_close(kbl.stack({a, b}, 2), {{1, 3}, {2, 4}})
      H.assert_close(kbl.stack({a, b}, -1), {{1, 3}, {2, 4}})
      assert.same({2, 3, 2}, kbl.stack({kbl.ones(2, 3), kbl.zeros(2, 3)}, 3):size())
      assert.same({2}, kbl.stack({kbl.tensor(1), kbl.tensor(2)}):size())
      local msg = error_of(function() return kbl.stack({kbl.ones(2), kbl.ones(3)}) end)
      assert.matches('[3]', msg, 1, true)
      assert.matches('dimension 3 out of range', error_of(function() return kbl.stack({a, b}, 3) end))
   end)

   it('split and chunk round-trip with cat', function()
      local x = kbl.arange(20):reshape(4, 5):double()
      local parts = x:split(2, 2)
      assert.equal(3, #parts)
      assert.same({4, 1}, parts[3]:size())
      H.assert_close(kbl.cat(parts, 2), x)
      parts = x:split({1, 3}, 1)
      assert.same({3, 5}, parts[2]:size())
      H.assert_close(kbl.cat(parts, 1), x)
      local chunks = x:chunk(2, 1)
      assert.equal(2, #chunks)
      H.assert_close(kbl.cat(chunks), x)
      chunks = x:chunk(3, 2)
      H.assert_close(kbl.cat(chunks, -1), x)
   end)
end)

describe('pad', function()
   local x = t64{{1, 2}, {3, 4}}

   it('pads the last dims with zeros or a value', function()
      H.assert_close(kbl.pad(x, {1, 0}), {{0, 1, 2}, {0, 3, 4}})
      H.assert_close(x:pad({0, 1, 1, 0}, 9), {{9, 9, 9}, {1, 2, 9}, {3, 4, 9}})
      assert.same({4, 6}, x:pad({2, 2, 1, 1}):size())
   end)

   it('crops with negative amounts', function()
      H.assert_close(x:pad({-1, 0}), {{2}, {4}})
      H.assert_close(x:pad({1, -1, -1, 0}), {{0, 3}})
   end)

   it('refuses too many pairs and crops below zero', function()
      assert.matches('pairs', error_of(function() return x:pad({1, 1, 1, 1, 1, 1}) end))
      assert.matches('below size zero', error_of(function() return x:pad({-2, -1}) end))
      assert.matches('pairs', error_of(function() return x:pad({1}) end))
   end)
end)

describe('one_hot and flip', function()
   it('one_hot takes labels 1..C', function()
      local r = kbl.one_hot(i64{1, 3, 2}, 3)
      assert.equal('int64', r.dtype)
      assert.same({{1, 0, 0}, {0, 0, 1}, {0, 1, 0}}, r:tolist())
      assert.same({2, 2, 4}, kbl.one_hot(i64{{1, 2}, {3, 4}}, 4):size())
      -- argmax of a one-hot row gives the label back
      assert.same({1, 3, 2}, r:argmax(2):tolist())
   end)

   it('one_hot names an out-of-range label', function()
      local msg = error_of(function() return kbl.one_hot(i64{1, 4}, 3) end)
      assert.matches('one_hot: label 4 at position 2 is out of range for 3 classes', msg)
      msg = error_of(function() return kbl.one_hot(i64{{1, 0}}, 3) end)
      assert.matches('label 0 at position [1, 2]', msg, 1, true)
      assert.matches('positive', error_of(function() return kbl.one_hot(i64{1}, 0) end))
   end)

   it('flip reverses along dims', function()
      local x = grid()
      H.assert_close(x:flip(1), {{31, 32, 33, 34}, {21, 22, 23, 24}, {11, 12, 13, 14}})
      H.assert_close(x:flip(-1)[1], {14, 13, 12, 11})
      H.assert_close(x:flip({1, 2})[1], {34, 33, 32, 31})
      H.assert_close(x:flip({}), x)
      assert.same({3, 2, 1}, i64{1, 2, 3}:flip(1):tolist())
      assert.matches('dimension 3 out of range', error_of(function() return x:flip(3) end))
   end)
end)

describe('index gradients (float64 finite differences)', function()
   it('of index_select, with repeated indices', function()
      H.gradcheck(function(x) return x:index_select(1, {3, 1, 3}) end, {H.leaf{3, 4}})
      H.gradcheck(function(x) return x:index_select(-1, i64{2, 2, 4}) end, {H.leaf{2, 3, 4}})
   end)

   it('of gather', function()
      H.gradcheck(function(x) return x:gather(2, i64{{1, 4, 1}, {2, 2, 3}, {3, 1, 1}}) end, {H.leaf{3, 4}})
      H.gradcheck(function(x) return x:gather(1, i64{{3, 1, 2, 3}}) end, {H.leaf{3, 4}})
   end)

   it('of scatter_add, into both inputs', function()
      local idx = i64{{3, 3}, {1, 2}}
      H.gradcheck(function(a, s) return a:scatter_add(2, idx, s) end, {H.leaf{2, 3}, H.leaf{2, 2}})
      H.gradcheck(function(a, s) return a:scatter_add(1, i64{1, 1, 3, 1}, s) end, {H.leaf{3}, H.leaf{4}})
      -- a source larger than the index: its unused elements get zero gradient
      H.gradcheck(function(a, s) return a:scatter_add(1, i64{{2, 1}}, s) end, {H.leaf{3, 2}, H.leaf{2, 3}})
      local s = kbl.tensor({1, 2, 3, 4}, {dtype = 'float64', requires_grad = true})
      kbl.zeros(3, f64):scatter_add(1, i64{1, 3}, s):backward(t64{5, 6, 7})
      H.assert_close(s.grad, {5, 7, 0, 0})
   end)

   it('of masked_fill', function()
      local mask = kbl.tensor({{1, 0, 0}, {0, 1, 1}}, {dtype = 'uint8'})
      H.gradcheck(function(x) return x:masked_fill(mask, 3.5) end, {H.leaf{2, 3}})
      H.gradcheck(function(x) return x:masked_fill(kbl.tensor({1, 0, 1}, {dtype = 'uint8'}), 0) end, {H.leaf{2, 3}})
   end)

   it('of cat and stack', function()
      H.gradcheck(function(a, b, c) return kbl.cat({a, b, c}, 1) end, {H.leaf{2, 3}, H.leaf{1, 3}, H.leaf{3, 3}})
      H.gradcheck(function(a, b) return kbl.cat({a, b}, -1) end, {H.leaf{2, 3}, H.leaf{2, 1}})
      H.gradcheck(function(a, b) return kbl.stack({a, b}, 2) end, {H.leaf{2, 3}, H.leaf{2, 3}})
      H.gradcheck(function(a, b) return kbl.stack({a, b}, -1) end, {H.leaf{2, 3}, H.leaf{2, 3}})
      -- one input without grad
      H.gradcheck(function(a) return kbl.cat({kbl.ones(1, 3, f64), a}) end, {H.leaf{2, 3}})
   end)

   it('of pad, positive and negative', function()
      H.gradcheck(function(x) return x:pad({1, 2}, 7) end, {H.leaf{2, 3}})
      H.gradcheck(function(x) return x:pad({1, -1, -1, 2}) end, {H.leaf{3, 3}})
      H.gradcheck(function(x) return x:pad({0, 0, 2, 0, 1, 1}) end, {H.leaf{2, 2, 2}})
   end)

   it('of flip', function()
      H.gradcheck(function(x) return x:flip(1) end, {H.leaf{3, 4}})
      H.gradcheck(function(x) return x:flip({1, -1}) end, {H.leaf{2, 3, 4}})
   end)

   it('of split and chunk pieces', function()
      H.gradcheck(function(x) return x:split(2, 2)[2] * 3 end, {H.leaf{3, 5}})
   end)
end)
