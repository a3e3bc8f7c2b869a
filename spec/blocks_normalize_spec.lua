-- spec/blocks_normalize_spec.lua: blocks.Normalize, a Model's input
-- preparation: uint8 (or any dtype) to float32, (x * scale - mean) / std with
-- one value or one per channel; bad options and a channel count that does not
-- match are errors naming the block.
local H = require 'helper'
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'

describe('blocks.Normalize', function()
   it('converts uint8 images and normalizes each channel', function()
      local x = kbl.randint(0, 256, {2, 3, 4, 4}):to('uint8')
      local mean, std = {0.1, 0.5, 0.9}, {0.2, 0.3, 0.4}
      local y = blocks.Normalize{mean = mean, std = std, scale = 1 / 255}(x)
      assert.equal('float32', y.dtype)
      local xf = x:to('float64') / 255
      local want = (xf - kbl.tensor(mean, {dtype = 'float64'}):view(1, 3, 1, 1))
         / kbl.tensor(std, {dtype = 'float64'}):view(1, 3, 1, 1)
      H.assert_close(y, want, 1e-5)
   end)

   it("gives raw Fashion-MNIST batches the pipeline's normalize exactly, to the bit", function()
      local data = require 'kbl.data'
      local ok, raw = pcall(data.fashion_mnist, {validation = 5000, raw = true})
      if not ok then return pending('skipped: dataset-fashion-mnist is not installed') end
      local old = data.fashion_mnist{validation = 5000}:split('train'):batch(64):normalize{mean = 0.2860, std = 0.3530}
      local xa = old:iter()().x
      local xb = raw:split('train'):batch(64):iter()().x
      assert.equal('uint8', xb.dtype)
      local y = blocks.Normalize{mean = 0.2860, std = 0.3530, scale = 1 / 255}(xb)
      assert.equal(H.bytes(xa), H.bytes(y))
   end)

   it('takes one value for every channel and float input', function()
      local x = kbl.randn(3, 5)
      H.assert_close(blocks.Normalize{mean = 1, std = 2}(x), (x - 1) / 2, 1e-6)
   end)

   it('in a Model runs in predict and in training (fit calls prepare)', function()
      local m = blocks.Model{preprocess = blocks.Normalize{scale = 1 / 255}, backbone = blocks.Flatten{}}
      local x = kbl.full({1, 1, 2, 2}, 255):to('uint8')
      H.assert_close(m:predict(x), {{1, 1, 1, 1}}, 1e-6)
      H.assert_close(m:prepare(x), kbl.ones(1, 1, 2, 2), 1e-6)
   end)

   it('says what is wrong with its options and its input', function()
      assert.has_error(function() blocks.Normalize{std = {1, 0}, mean = {0, 0}} end,
         'blocks.Normalize: channel 2 needs a number mean and a non-zero std')
      assert.has_error(function() blocks.Normalize{mean = {0, 0}, std = {1, 1, 1}} end,
         'blocks.Normalize: mean has 2 values and std 3')
      assert.has_error(function() blocks.Normalize{mean = 'a'} end,
         'blocks.Normalize: mean must be a number or a list of numbers (one per channel), got a')
      local m = blocks.Model{preprocess = blocks.Normalize{mean = {0, 0, 0}, std = {1, 1, 1}}}
      local ok, err = pcall(m.predict, m, kbl.zeros(2, 1, 4, 4))
      assert.is_false(ok)
      assert.matches("Normalize 'preprocess'.*3 channel values for an input %[2, 1, 4, 4%]", err)
   end)
end)
