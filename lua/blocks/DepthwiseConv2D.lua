-- blocks.DepthwiseConv2D{kernel_size, depth_multiplier = 1}: one filter set per
-- input channel (a Conv2D with groups = channels): weight [in*multiplier, 1, kh, kw].
local kbl = require 'kbl'
local Block = require 'blocks.Block'
local Conv2D = require 'blocks.Conv2D'

local DepthwiseConv2D = Block.extend('DepthwiseConv2D', {
   options = {kernel_size = Block.REQUIRED, depth_multiplier = 1, stride = 1, padding = 0, dilation = 1,
      use_bias = true, activation = Block.NONE, kernel_init = 'glorot_uniform', bias_init = 'zeros',
      kernel_regularizer = Block.NONE, bias_regularizer = Block.NONE},
   positional = {'kernel_size'},
})

function DepthwiseConv2D:init(o) Conv2D.setup(self, o) end

function DepthwiseConv2D:build(x)
   local o = self.opts
   local c_in = Conv2D.channels(x, 'DepthwiseConv2D')
   local out = c_in * o.depth_multiplier
   local rf = self.kh * self.kw
   self.conv_opts.groups = c_in
   Conv2D.make_params(self, x, {out, 1, self.kh, self.kw}, {fan_in = rf, fan_out = out * rf}, out)
end

function DepthwiseConv2D:forward(x)
   local y = kbl.conv2d(x, self._p.weight, self._p.bias, self.conv_opts)
   if self.act then y = self.act(y) end
   return y
end

return DepthwiseConv2D
