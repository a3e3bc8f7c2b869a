-- blocks (convolution family): Conv2D, Conv2DTranspose, DepthwiseConv2D,
-- pooling, BatchNorm, LayerNorm, GroupNorm: output shapes, PyTorch parameter
-- layouts, float64 finite-difference gradients (parameters included) and
-- BatchNorm's train/eval behaviour.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local H = require 'helper'

local f64 = {dtype = 'float64'}

local function with_params(m, ...)
   local inputs = {...}
   for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
   return inputs
end

describe('blocks.Conv2D', function()
   it('has weight [out, in/groups, kh, kw] and gives the output sizes of its options', function()
      kbl.manual_seed(1)
      local x = kbl.randn{2, 4, 9, 9}
      local c = blocks.Conv2D{6, 3}
      assert.are.same({2, 6, 7, 7}, c(x):size())
      assert.are.same({6, 4, 3, 3}, c._p.weight:size())
      assert.are.same({6}, c._p.bias:size())
      assert.are.same({2, 6, 9, 9}, blocks.Conv2D{6, 3, padding = 'same'}(x):size())
      assert.are.same({2, 6, 5, 5}, blocks.Conv2D{6, 3, stride = 2, padding = 1}(x):size())
      assert.are.same({2, 6, 5, 3}, blocks.Conv2D{6, {3, 5}, stride = {2, 3}, padding = {1, 1}}(x):size())
      assert.are.same({2, 6, 5, 5}, blocks.Conv2D{6, 3, dilation = 2}(x):size())
      local g = blocks.Conv2D{6, 1, groups = 2}
      assert.are.same({2, 6, 9, 9}, g(x):size())
      assert.are.same({6, 2, 1, 1}, g._p.weight:size())
      -- the same as the op with its own weights
      H.assert_close(c(x), kbl.conv2d(x, c._p.weight, c._p.bias), 1e-6)
   end)

   it('passes gradients to input, weight and bias (finite differences)', function()
      kbl.manual_seed(2)
      local c = blocks.Conv2D{2, 3, stride = 2, padding = 1, activation = 'tanh'}
      local x = H.leaf({1, 2, 5, 5})
      c(x)
      H.gradcheck(function(x_) return c(x_) end, with_params(c, x))
   end)

   it('checks groups against the channels', function()
      local ok, err = pcall(blocks.Conv2D{4, 3, groups = 3}, kbl.randn{1, 4, 5, 5})
      assert.is_false(ok)
      assert.matches('input channels 4 and filters 4 must both divide by groups 3', err, 1, true)
      ok, err = pcall(blocks.Conv2D{4, 3}, kbl.randn{4, 5})
      assert.is_false(ok)
      assert.matches('Conv2D needs an input [N, C, H, W], got [4, 5]', err, 1, true)
   end)
end)

describe('blocks.Conv2DTranspose and DepthwiseConv2D', function()
   it('Conv2DTranspose has weight [in, out/groups, kh, kw] and upsamples', function()
      local x = kbl.randn{2, 3, 4, 4}
      local t = blocks.Conv2DTranspose{5, 3, stride = 2, padding = 1, output_padding = 1}
      assert.are.same({2, 5, 8, 8}, t(x):size())
      assert.are.same({3, 5, 3, 3}, t._p.weight:size())
      local g = blocks.Conv2DTranspose{4, 2, groups = 3 - 2}
      assert.are.same({2, 4, 5, 5}, g(x):size())
   end)

   it('Conv2DTranspose passes gradients (finite differences)', function()
      kbl.manual_seed(3)
      local t = blocks.Conv2DTranspose{2, 3, stride = 2}
      local x = H.leaf({1, 2, 3, 3})
      t(x)
      H.gradcheck(function(x_) return t(x_) end, with_params(t, x))
   end)

   it('DepthwiseConv2D filters each channel apart', function()
      local d = blocks.DepthwiseConv2D{3, depth_multiplier = 2, padding = 1}
      local x = kbl.randn{2, 3, 6, 6}
      assert.are.same({2, 6, 6, 6}, d(x):size())
      assert.are.same({6, 1, 3, 3}, d._p.weight:size())
      H.assert_close(d(x), kbl.conv2d(x, d._p.weight, d._p.bias, {padding = 1, groups = 3}), 1e-6)
      kbl.manual_seed(4)
      local d2 = blocks.DepthwiseConv2D{2}
      local xl = H.leaf({1, 2, 3, 3})
      d2(xl)
      H.gradcheck(function(x_) return d2(x_) end, with_params(d2, xl))
   end)
end)

describe('blocks pooling', function()
   it('MaxPool2D, AvgPool2D and GlobalAvgPool2D give their shapes and values', function()
      local x = kbl.arange(16, f64):reshape({1, 1, 4, 4})
      H.assert_close(blocks.MaxPool2D{}(x), {{{{5, 7}, {13, 15}}}}, 0)
      H.assert_close(blocks.AvgPool2D{}(x), {{{{2.5, 4.5}, {10.5, 12.5}}}}, 1e-12)
      assert.are.same({1, 1, 3, 3}, blocks.MaxPool2D{2, stride = 1}(x):size())
      assert.are.same({1, 1, 2, 2}, blocks.AvgPool2D{3, stride = 2, padding = 1}(x):size())
      H.assert_close(blocks.GlobalAvgPool2D{}(x), {{7.5}}, 1e-12)
   end)

   it('pass gradients (finite differences)', function()
      local x = H.leaf({1, 2, 4, 4})
      H.gradcheck(function(x_) return blocks.MaxPool2D{2}(x_) end, {x})
      local avg = blocks.AvgPool2D{3, stride = 1, padding = 1, count_include_pad = false}
      H.gradcheck(function(x_) return avg(x_) end, {x})
      H.gradcheck(function(x_) return blocks.GlobalAvgPool2D{}(x_) end, {x})
   end)
end)

describe('blocks.BatchNorm', function()
   it('has weight, bias, running_mean, running_var, num_batches_tracked', function()
      local bn = blocks.BatchNorm{}
      bn(kbl.randn{4, 3, 2, 2})
      local names = {}
      for k in pairs(bn:state_dict()) do names[#names + 1] = k end
      table.sort(names)
      assert.are.same({'bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight'}, names)
      assert.are.equal(2, #bn:parameters())
      assert.are.equal(3, #bn:buffers())
      assert.are.equal(1, bn._p.num_batches_tracked:item())
   end)

   it('normalizes with the batch in training, updates running stats, and uses them in eval', function()
      kbl.manual_seed(5)
      local bn = blocks.BatchNorm{momentum = 0.5}
      local x = kbl.randn({8, 3}, f64) * 2 + 1
      local y = bn(x)
      H.assert_close(y:mean(1), {0, 0, 0}, 1e-9)
      H.assert_close(y:var(1, false, 0), {1, 1, 1}, 1e-4)
      -- running = 0.5 * initial + 0.5 * batch (unbiased variance)
      H.assert_close(bn._p.running_mean, x:mean(1) * 0.5, 1e-12)
      H.assert_close(bn._p.running_var, x:var(1) * 0.5 + 0.5, 1e-12)
      bn:eval()
      local rm, rv = bn._p.running_mean:clone(), bn._p.running_var:clone()
      local z = bn(x)
      H.assert_close(z, (x - rm) / (rv + 1e-5):sqrt(), 1e-9)
      H.assert_close(bn._p.running_mean, rm, 0)
      assert.are.equal(1, bn._p.num_batches_tracked:item())
   end)

   it('passes gradients in training and in eval mode (finite differences)', function()
      kbl.manual_seed(6)
      local bn = blocks.BatchNorm{}
      local x = H.leaf({4, 2, 2, 2})
      bn(x)
      kbl.no_grad(function() bn._p.weight:copy_(kbl.tensor({1.5, -0.5}, f64)) end)
      H.gradcheck(function(x_) return bn(x_) end, with_params(bn, x))
      bn:eval()
      H.gradcheck(function(x_) return bn(x_) end, with_params(bn, x))
   end)
end)

describe('blocks.LayerNorm and GroupNorm', function()
   it('normalize per example and pass gradients (finite differences)', function()
      kbl.manual_seed(7)
      local ln = blocks.LayerNorm{}
      local x = H.leaf({3, 5})
      local y = ln(x)
      H.assert_close(y:mean(2), {0, 0, 0}, 1e-9)
      assert.are.same({5}, ln._p.weight:size())
      H.gradcheck(function(x_) return ln(x_) end, with_params(ln, x))
      local ln2 = blocks.LayerNorm{dims = 2}
      local x2 = H.leaf({2, 3, 4})
      ln2(x2)
      assert.are.same({3, 4}, ln2._p.weight:size())
      H.gradcheck(function(x_) return ln2(x_) end, with_params(ln2, x2))
      local gn = blocks.GroupNorm{2}
      local x3 = H.leaf({2, 4, 2, 2})
      gn(x3)
      assert.are.same({4}, gn._p.bias:size())
      H.gradcheck(function(x_) return gn(x_) end, with_params(gn, x3))
      local ok, err = pcall(blocks.GroupNorm{3}, x3)
      assert.is_false(ok)
      assert.matches('4 channels do not divide into 3 groups', err, 1, true)
   end)
end)
