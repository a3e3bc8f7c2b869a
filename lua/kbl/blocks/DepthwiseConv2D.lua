--- blocks.DepthwiseConv2D{kernel_size, depth_multiplier = 1}: one filter set per
-- input channel (a Conv2D with groups = channels): weight [in*multiplier, 1, kh, kw].
local Block = require 'kbl.blocks.Block'
local Conv2D = require 'kbl.blocks.Conv2D'

--- Depthwise 2-D convolution: one filter set per input channel.
-- @table DepthwiseConv2D
-- @option activation applied after the linear part: a name ('relu', 'gelu', 'softmax', ...) or a function
-- of a tensor; none for linear
-- @option bias_init the bias's initializer (blocks.initializers)
-- @option bias_regularizer a penalty on the bias (blocks.regularizers)
-- @option depth_multiplier output channels per input channel
-- @option dilation the spacing of the kernel taps: a number or {dh, dw}
-- @option kernel_init the weight's initializer: a name from blocks.initializers ('glorot_uniform', 'he_normal', 'zeros', ...) or a function
-- @option kernel_regularizer a penalty on the weight added to the loss: 'l2', {l2 = 1e-4}, {l1 = ...} (blocks.regularizers)
-- @option kernel_size the window: a number or {kh, kw}
-- @option padding zeros added around H and W: a number, {ph, pw}, 'same' or 'valid'
-- @option stride the step of the window: a number or {sh, sw}
-- @option use_bias whether to add a bias
-- @usage local b = blocks.DepthwiseConv2D{3, padding = 'same'}
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
   self:make_weight_bias(x, {out, 1, self.kh, self.kw}, {fan_in = rf, fan_out = out * rf}, out)
end

DepthwiseConv2D.forward = Conv2D.forward   -- conv_opts.groups makes it depthwise

return DepthwiseConv2D
