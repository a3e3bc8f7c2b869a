-- conv: conv2d and conv_transpose2d against hand-worked cases and PyTorch
-- fixtures (values and gradients), float64 gradient checks for input, weight and
-- bias, the backward kernels as ops, chunked batches, and bad-shape errors.
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

describe('conv2d', function()
   it('matches a hand-worked 3x3 input, 2x2 kernel case, with bias and stride', function()
      local x = kbl.arange(1, 10):float():reshape{1, 1, 3, 3}
      local w = kbl.ones{1, 1, 2, 2}
      H.assert_close(kbl.conv2d(x, w), {{{{12, 16}, {24, 28}}}})
      H.assert_close(kbl.conv2d(x, w, kbl.tensor{1}), {{{{13, 17}, {25, 29}}}})
      -- padding 1, stride 2: corners of the padded 4x4 sums
      H.assert_close(kbl.conv2d(x, w, nil, {padding = 1, stride = 2}), {{{{1, 5}, {11, 28}}}})
      -- dilation 2 with a 2x2 kernel picks the four corners
      H.assert_close(kbl.conv2d(x, w, nil, {dilation = 2}), {{{{1 + 3 + 7 + 9}}}})
      assert.equals('float32', kbl.conv2d(x, w).dtype)
   end)

   it('matches PyTorch values and gradients (float64 and float32)', function()
      for _, case in ipairs(F.conv2d) do
         local x, w = from(case.x, nil, true), from(case.w, nil, true)
         local b = case.b and from(case.b, nil, true)
         local y = kbl.conv2d(x, w, b, case.opts)
         H.assert_close(y, from(case.y), 1e-10, case.name .. ': forward')
         ;(y * from(case.probe)):sum():backward()
         H.assert_close(x.grad, from(case.gx), 1e-10, case.name .. ': input grad')
         H.assert_close(w.grad, from(case.gw), 1e-10, case.name .. ': weight grad')
         if b then H.assert_close(b.grad, from(case.gb), 1e-10, case.name .. ': bias grad') end
         local y32 = kbl.conv2d(from(case.x, 'float32'), from(case.w, 'float32'), case.b and from(case.b, 'float32'),
            case.opts)
         assert.equals('float32', y32.dtype)
         H.assert_close(y32, from(case.y), 1e-4, case.name .. ': float32 forward')
      end
   end)

   it('passes gradient checks for input, weight and bias', function()
      kbl.manual_seed(1)
      local cases = {
         {{2, 3, 5, 4}, {2, 3, 3, 3}, {padding = 1, stride = 2}},
         {{1, 4, 5, 5}, {2, 2, 3, 2}, {groups = 2, dilation = {2, 1}, padding = {1, 0}}},
         {{1, 3, 4, 4}, {3, 1, 3, 3}, {groups = 3, padding = 'same'}},
         {{2, 2, 4, 5}, {3, 2, 2, 2}, {padding = 'same', dilation = 2}},
      }
      for _, c in ipairs(cases) do
         local x, w, b = H.leaf(c[1]), H.leaf(c[2]), H.leaf({c[2][1]})
         H.gradcheck(function(x_, w_, b_) return kbl.conv2d(x_, w_, b_, c[3]) end, {x, w, b})
      end
   end)

   it("keeps the input size with padding = 'same' and pads nothing with 'valid'", function()
      local x = kbl.randn{1, 2, 7, 6}
      assert.same({1, 3, 7, 6}, kbl.conv2d(x, kbl.randn{3, 2, 4, 3}, nil, {padding = 'same'}):size())
      assert.same({1, 3, 4, 4}, kbl.conv2d(x, kbl.randn{3, 2, 4, 3}, nil, {padding = 'valid'}):size())
   end)

   it('accepts an unbatched [C, H, W] input and is a tensor method', function()
      local x, w = kbl.randn{2, 4, 4}, kbl.randn{3, 2, 3, 3}
      local y = x:conv2d(w, nil, {padding = 1})
      assert.same({3, 4, 4}, y:size())
      H.assert_close(y, kbl.conv2d(x:unsqueeze(1), w, nil, {padding = 1}):squeeze(1), 1e-5)
   end)

   it('gives the same results when a large batch is taken in chunks', function()
      -- 40 images of 16x20x20 need more column workspace than one chunk holds
      kbl.manual_seed(3)
      local x = kbl.randn({40, 16, 20, 20}, {requires_grad = true})
      local w = kbl.randn({8, 16, 3, 3}, {requires_grad = true})
      local y = kbl.conv2d(x, w, nil, {padding = 1})
      local probe = kbl.randn(y:size())
      ;(y * probe):sum():backward()
      for _, i in ipairs{1, 23, 40} do
         local xi = x:narrow(1, i, 1):detach():contiguous():requires_grad_()
         local wi = w:detach():contiguous():requires_grad_()
         local yi = kbl.conv2d(xi, wi, nil, {padding = 1})
         H.assert_close(yi, y:narrow(1, i, 1), 1e-4, 'image ' .. i)
         ;(yi * probe:narrow(1, i, 1)):sum():backward()
         H.assert_close(xi.grad, x.grad:narrow(1, i, 1), 1e-4, 'input grad of image ' .. i)
      end
      -- the weight gradient is the sum over images
      local gw = kbl.zeros{8, 16, 3, 3}
      for i = 1, 40 do
         local wi = w:detach():contiguous():requires_grad_()
         ;(kbl.conv2d(x:narrow(1, i, 1):detach(), wi, nil, {padding = 1}) * probe:narrow(1, i, 1)):sum():backward()
         gw = gw + wi.grad
      end
      H.assert_close(w.grad, gw, 1e-3, 'weight grad')
   end)

   it('exposes its backward kernels as differentiable ops', function()
      local stride, pad, dil = int64s(2, 1), int64s(1, 0, 1, 1), int64s(1, 2)
      -- padding (top 1, bottom 0, left 1, right 1): an asymmetric case the Lua API cannot ask for
      local x, w = H.leaf({2, 4, 5, 6}), H.leaf({6, 2, 3, 2})
      local g = H.leaf({2, 6, 2, 6})
      local function bin(g_, w_)
         return T.wrap(C.kbl_conv2d_backward_input(T.live(g_), T.live(w_), int64s(5, 6), stride, pad, dil, 2))
      end
      local function bw(g_, x_)
         return T.wrap(C.kbl_conv2d_backward_weight(T.live(g_), T.live(x_), int64s(3, 2), stride, pad, dil, 2))
      end
      assert.same({2, 4, 5, 6}, bin(g, w):size())
      assert.same({6, 2, 3, 2}, bw(g, x):size())
      H.gradcheck(bin, {g, w})
      H.gradcheck(bw, {g, x})
      -- and they are the adjoints of conv2d: <conv(x, w), g> = <x, bin(g, w)> = <w, bw(g, x)>
      local yy = T.wrap(C.kbl_conv2d(T.live(x), T.live(w), nil, stride, pad, dil, 2))
      local lhs = (yy * g):sum():item()
      H.assert_close((x * bin(g, w)):sum():item(), lhs, 1e-10)
      H.assert_close((w * bw(g, x)):sum():item(), lhs, 1e-10)
   end)

   describe('rejects bad shapes with a message naming them', function()
      local x = kbl.randn{2, 4, 5, 5}
      it('a kernel larger than the padded input', function()
         local e = err_of(function() kbl.conv2d(x, kbl.randn{2, 4, 7, 7}, nil, {padding = 0}) end)
         assert.matches('larger than the padded input', e)
         assert.matches('[2, 4, 5, 5]', e, 1, true)
         assert.matches('[2, 4, 7, 7]', e, 1, true)
      end)
      it('channels not divisible by groups', function()
         local e = err_of(function() kbl.conv2d(x, kbl.randn{3, 2, 3, 3}, nil, {groups = 3}) end)
         assert.matches('not divisible by groups', e)
         assert.matches('[2, 4, 5, 5]', e, 1, true)
         e = err_of(function() kbl.conv2d(x, kbl.randn{3, 2, 3, 3}, nil, {groups = 2}) end)
         assert.matches('3 output channels, not divisible by groups = 2', e)
      end)
      it('a weight of the wrong rank', function()
         local e = err_of(function() kbl.conv2d(x, kbl.randn{2, 4, 3}) end)
         assert.matches('weight must be a 4%-D tensor', e)
         assert.matches('[2, 4, 3]', e, 1, true)
      end)
      it('input channels not matching the weight', function()
         local e = err_of(function() kbl.conv2d(x, kbl.randn{2, 3, 3, 3}) end)
         assert.matches('has 4 channels but weight [2, 3, 3, 3]', e, 1, true)
      end)
      it('a bias of the wrong size, mixed dtypes, bad options', function()
         assert.matches('bias %[3%] float32 must be %[2%]', err_of(function()
            kbl.conv2d(x, kbl.randn{2, 4, 3, 3}, kbl.randn{3}) end))
         assert.matches('share one float dtype', err_of(function()
            kbl.conv2d(x, kbl.randn({2, 4, 3, 3}, {dtype = 'float64'})) end))
         assert.matches("'same' needs stride 1", err_of(function()
            kbl.conv2d(x, kbl.randn{2, 4, 3, 3}, nil, {padding = 'same', stride = 2}) end))
         assert.matches('stride must be at least 1', err_of(function()
            kbl.conv2d(x, kbl.randn{2, 4, 3, 3}, nil, {stride = 0}) end))
         assert.matches('input must be %[N, C, H, W%]', err_of(function()
            kbl.conv2d(kbl.randn{4, 5}, kbl.randn{2, 4, 3, 3}) end))
      end)
   end)
end)

describe('conv_transpose2d', function()
   it('matches a hand-worked case: stride 2 spreads each input pixel', function()
      local x = kbl.tensor{{{{1, 2}, {3, 4}}}}
      local w = kbl.ones{1, 1, 2, 2}
      H.assert_close(kbl.conv_transpose2d(x, w, nil, {stride = 2}),
         {{{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}}}})
      -- stride 1 overlaps and sums; the bias adds to every output
      H.assert_close(kbl.conv_transpose2d(x, w, kbl.tensor{10}),
         {{{{11, 13, 12}, {14, 20, 16}, {13, 17, 14}}}})
   end)

   it('matches PyTorch values and gradients', function()
      for _, case in ipairs(F.conv_transpose2d) do
         local x, w = from(case.x, nil, true), from(case.w, nil, true)
         local b = case.b and from(case.b, nil, true)
         local y = kbl.conv_transpose2d(x, w, b, case.opts)
         H.assert_close(y, from(case.y), 1e-10, case.name .. ': forward')
         ;(y * from(case.probe)):sum():backward()
         H.assert_close(x.grad, from(case.gx), 1e-10, case.name .. ': input grad')
         H.assert_close(w.grad, from(case.gw), 1e-10, case.name .. ': weight grad')
         if b then H.assert_close(b.grad, from(case.gb), 1e-10, case.name .. ': bias grad') end
      end
   end)

   it('passes gradient checks for input, weight and bias', function()
      kbl.manual_seed(2)
      local x, w, b = H.leaf({2, 4, 3, 3}), H.leaf({4, 3, 3, 2}), H.leaf({6})
      H.gradcheck(function(x_, w_, b_)
         return kbl.conv_transpose2d(x_, w_, b_, {stride = 2, padding = {1, 0}, output_padding = 1, groups = 2})
      end, {x, w, b})
      local x2, w2 = H.leaf({1, 2, 3, 2}), H.leaf({2, 2, 2, 2})
      H.gradcheck(function(x_, w_) return kbl.conv_transpose2d(x_, w_, nil, {dilation = 2, stride = {1, 2}}) end,
         {x2, w2})
   end)

   it('rejects bad shapes and options', function()
      local x = kbl.randn{1, 4, 3, 3}
      assert.matches('has 4 channels but weight [3, 2, 3, 3]', err_of(function()
         kbl.conv_transpose2d(x, kbl.randn{3, 2, 3, 3}) end), 1, true)
      assert.matches('not divisible by groups = 3', err_of(function()
         kbl.conv_transpose2d(x, kbl.randn{4, 2, 3, 3}, nil, {groups = 3}) end))
      assert.matches('output_padding', err_of(function()
         kbl.conv_transpose2d(x, kbl.randn{4, 2, 3, 3}, nil, {output_padding = 1}) end))
      assert.matches('bias', err_of(function()
         kbl.conv_transpose2d(x, kbl.randn{4, 2, 3, 3}, kbl.randn{4}) end))
   end)
end)
