-- pool: max_pool2d (values, 1-based indices, backward), avg_pool2d with and
-- without count_include_pad, adaptive and global average pooling and
-- upsample_nearest2d, against hand-worked cases and PyTorch fixtures; float64
-- gradient checks of each op and of the backward kernels as ops; bad shapes.
local kbl = require 'kbl'
local H = require 'helper'
local ffi = require 'ffi'
local F = require 'fixtures.conv'
local T = require 'kbl.tensor'
local C = kbl.lib.C

local function from(f, dtype, grad)
   local t = kbl.tensor(f.data, {dtype = dtype or 'float64'}):reshape(f.shape):contiguous()
   if grad then t:requires_grad_() end
   return t
end

local function err_of(fn)
   local ok, err = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(err)
end

local function int64s(...) return ffi.new('int64_t[?]', select('#', ...), ...) end

-- checks forward and the gradient of sum(y * probe) against a fixture
local function check_fixture(case, fn, what)
   local x = from(case.x, nil, true)
   local y = fn(x)
   H.assert_close(y, from(case.y), 1e-10, what .. ': forward')
   ;(y * from(case.probe)):sum():backward()
   H.assert_close(x.grad, from(case.gx), 1e-10, what .. ': input grad')
   H.assert_close(fn(from(case.x, 'float32')), from(case.y), 1e-5, what .. ': float32 forward')
end

local x44 = {{{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}}}}

describe('max_pool2d', function()
   it('takes the maximum of each window and returns 1-based positions', function()
      local x = kbl.tensor(x44)
      local y, idx = kbl.max_pool2d(x, 2, {return_indices = true})
      H.assert_close(y, {{{{6, 8}, {14, 16}}}})
      assert.equals('int64', idx.dtype)
      assert.same({{{{6, 8}, {14, 16}}}}, idx:tolist())
      H.assert_close(x:max_pool2d(3, {stride = 1, padding = 1}),
         {{{{6, 7, 8, 8}, {10, 11, 12, 12}, {14, 15, 16, 16}, {14, 15, 16, 16}}}})
   end)

   it('sends the gradient to the maxima only', function()
      local x = kbl.tensor(x44, {requires_grad = true})
      kbl.max_pool2d(x, 2):sum():backward()
      H.assert_close(x.grad, {{{{0, 0, 0, 0}, {0, 1, 0, 1}, {0, 0, 0, 0}, {0, 1, 0, 1}}}})
   end)

   it('matches PyTorch values, indices and gradients', function()
      local f = F.max_pool2d
      check_fixture(f, function(x) return kbl.max_pool2d(x, 3, {stride = 2, padding = 1}) end, 'max_pool2d')
      local _, idx = kbl.max_pool2d(from(f.x), 3, {stride = 2, padding = 1, return_indices = true})
      assert.same(from(f.indices, 'int64'):tolist(), idx:tolist())
   end)

   it('passes gradient checks, also of its backward kernel as an op', function()
      kbl.manual_seed(4)
      local x = H.leaf({2, 2, 5, 6})
      H.gradcheck(function(x_) return kbl.max_pool2d(x_, {3, 2}, {stride = {2, 1}, padding = {1, 0}}) end, {x})
      local y, idx = kbl.max_pool2d(x:detach(), 2, {return_indices = true})
      local zero_based = idx - 1
      local g = H.leaf(y:size())
      H.gradcheck(function(g_)
         return T.wrap(C.kbl_max_pool2d_backward(T.live(g_), T.live(zero_based), int64s(5, 6)))
      end, {g})
   end)

   it('rejects bad shapes', function()
      local x = kbl.randn{1, 2, 3, 3}
      local e = err_of(function() kbl.max_pool2d(x, 5) end)
      assert.matches('larger than the padded input [1, 2, 3, 3]', e, 1, true)
      assert.matches('between 0 and half the kernel', err_of(function() kbl.max_pool2d(x, 2, {padding = 2}) end))
      assert.matches('input must be [N, C, H, W] (or [C, H, W]), got [3, 3]', err_of(function()
         kbl.max_pool2d(kbl.randn{3, 3}, 2) end), 1, true)
      assert.matches('not supported', err_of(function() kbl.max_pool2d(x, 2, {ceil_mode = true}) end))
   end)
end)

describe('avg_pool2d', function()
   it('averages windows; count_include_pad decides the divisor at the border', function()
      local x = kbl.tensor(x44)
      H.assert_close(kbl.avg_pool2d(x, 2), {{{{3.5, 5.5}, {11.5, 13.5}}}})
      -- 2x2 windows, stride 2, padding 1: the corner window holds one value
      H.assert_close(kbl.avg_pool2d(x, 2, {padding = 1}), {{{{0.25, 1.25, 1}, {3.5, 8.5, 5}, {3.25, 7.25, 4}}}})
      H.assert_close(kbl.avg_pool2d(x, 2, {padding = 1, count_include_pad = false}),
         {{{{1, 2.5, 4}, {7, 8.5, 10}, {13, 14.5, 16}}}})
   end)

   it('matches PyTorch with and without count_include_pad', function()
      for _, case in ipairs(F.avg_pool2d) do
         check_fixture(case, function(x)
            return kbl.avg_pool2d(x, {3, 2}, {stride = {2, 1}, padding = 1, count_include_pad = case.count_include_pad})
         end, 'avg_pool2d ' .. tostring(case.count_include_pad))
      end
   end)

   it('passes gradient checks, also of its backward kernel as an op', function()
      kbl.manual_seed(5)
      for _, cip in ipairs{true, false} do
         local x = H.leaf({1, 2, 5, 4})
         H.gradcheck(function(x_) return kbl.avg_pool2d(x_, 3, {stride = 2, padding = 1, count_include_pad = cip}) end,
            {x})
         local g = H.leaf({1, 2, 3, 2})
         H.gradcheck(function(g_)
            return T.wrap(C.kbl_avg_pool2d_backward(T.live(g_), int64s(5, 4), int64s(3, 3), int64s(2, 2),
               int64s(1, 1), cip and 1 or 0))
         end, {g})
      end
   end)
end)

describe('adaptive and global average pooling', function()
   it('splits the input into near-equal windows', function()
      local x = kbl.tensor(x44)
      H.assert_close(kbl.adaptive_avg_pool2d(x, 2), {{{{3.5, 5.5}, {11.5, 13.5}}}})
      H.assert_close(kbl.adaptive_avg_pool2d(x, 1), {{{{8.5}}}})
      -- 4 -> 3: windows [0, 2), [1, 3), [2, 4)
      H.assert_close(kbl.adaptive_avg_pool2d(x, {1, 3}), {{{{7.5, 8.5, 9.5}}}})
      H.assert_close(kbl.adaptive_avg_pool2d(x, {4, 4}), x)
   end)

   it('matches PyTorch and passes gradient checks', function()
      check_fixture(F.adaptive_avg_pool2d, function(x) return kbl.adaptive_avg_pool2d(x, {3, 2}) end, 'adaptive')
      local x = H.leaf({2, 2, 5, 7})
      H.gradcheck(function(x_) return kbl.adaptive_avg_pool2d(x_, {2, 3}) end, {x})
      local g = H.leaf({2, 2, 2, 3})
      H.gradcheck(function(g_)
         return T.wrap(C.kbl_adaptive_avg_pool2d_backward(T.live(g_), int64s(5, 7)))
      end, {g})
   end)

   it('global_avg_pool2d averages each plane into [N, C]', function()
      local x = kbl.tensor(x44)
      local y = kbl.global_avg_pool2d(x)
      assert.same({1, 1}, y:size())
      H.assert_close(y, {{8.5}})
      H.gradcheck(function(x_) return x_:global_avg_pool2d() end, {H.leaf({2, 3, 2, 4})})
      assert.matches('must be %[N, C, H, W%]', err_of(function() kbl.global_avg_pool2d(kbl.randn{2, 3}) end))
   end)
end)

describe('upsample_nearest2d', function()
   it('repeats pixels', function()
      local x = kbl.tensor{{{{1, 2}, {3, 4}}}}
      H.assert_close(kbl.upsample_nearest2d(x, {scale_factor = 2}),
         {{{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}}}})
      H.assert_close(x:upsample_nearest2d{size = {2, 3}}, {{{{1, 1, 2}, {3, 3, 4}}}})
   end)

   it('matches PyTorch for sizes and scale factors', function()
      for i, case in ipairs(F.upsample_nearest2d) do
         check_fixture(case, function(x) return kbl.upsample_nearest2d(x, case.opts) end, 'upsample ' .. i)
      end
   end)

   it('passes gradient checks, also of its backward kernel as an op', function()
      H.gradcheck(function(x_) return kbl.upsample_nearest2d(x_, {size = {5, 4}}) end, {H.leaf({1, 2, 2, 3})})
      local g = H.leaf({1, 2, 4, 6})
      H.gradcheck(function(g_)
         return T.wrap(C.kbl_upsample_nearest2d_backward(T.live(g_), int64s(2, 3), 0.5, 0.5))
      end, {g})
      assert.matches('give {scale_factor', err_of(function() kbl.upsample_nearest2d(kbl.randn{1, 1, 2, 2}, {}) end),
         1, true)
   end)
end)
