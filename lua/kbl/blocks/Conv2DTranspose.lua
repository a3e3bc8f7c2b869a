--- blocks.Conv2DTranspose{filters, kernel_size}: transposed 2-D convolution
-- (the adjoint of Conv2D; upsamples with stride > 1). Parameters as
-- torch.nn.ConvTranspose2d: weight [in, filters/groups, kh, kw], bias [filters].
local Block = require 'kbl.blocks.Block'
local Conv2D = require 'kbl.blocks.Conv2D'

--- Transposed 2-D convolution (upsamples with stride > 1), then the activation.
-- @table Conv2DTranspose
-- @option activation applied after the linear part: a name ('relu', 'gelu', 'softmax', ...) or a function
-- of a tensor; none for linear
-- @option bias_init the bias's initializer (blocks.initializers)
-- @option bias_regularizer a penalty on the bias (blocks.regularizers)
-- @option dilation the spacing of the kernel taps: a number or {dh, dw}
-- @option filters the number of output channels
-- @option groups input and output channels split into this many groups (both must divide by it)
-- @option kernel_init the weight's initializer: a name from blocks.initializers ('glorot_uniform', 'he_normal', 'zeros', ...) or a function
-- @option kernel_regularizer a penalty on the weight added to the loss: 'l2', {l2 = 1e-4}, {l1 = ...} (blocks.regularizers)
-- @option kernel_size the window: a number or {kh, kw}
-- @option output_padding extra rows and columns on one side of the output, to pick among the sizes a stride allows
-- @option padding zeros taken off around the output: a number or {ph, pw}
-- @option stride the step of the window: a number or {sh, sw}
-- @option use_bias whether to add a bias
-- @usage local b = blocks.Conv2DTranspose{16, 2, stride = 2}
local Conv2DTranspose = Block.extend('Conv2DTranspose', {
   options = {filters = Block.REQUIRED, kernel_size = Block.REQUIRED, stride = 1, padding = 0, output_padding = 0,
      dilation = 1, groups = 1, use_bias = true, activation = Block.NONE, kernel_init = 'glorot_uniform',
      bias_init = 'zeros', kernel_regularizer = Block.NONE, bias_regularizer = Block.NONE},
   positional = {'filters', 'kernel_size'},
})

function Conv2DTranspose:init(o) Conv2D.setup(self, o) end

function Conv2DTranspose:build(x)
   local o = self.opts
   local c_in = Conv2D.channels(x, 'Conv2DTranspose')
   Conv2D.check_groups(c_in, o, 'Conv2DTranspose')
   local rf = self.kh * self.kw
   self:make_weight_bias(x, {c_in, o.filters / o.groups, self.kh, self.kw},
      {fan_in = o.filters / o.groups * rf, fan_out = c_in * rf}, o.filters)
end

Conv2DTranspose.forward = Conv2D.forward_with('conv_transpose2d')

return Conv2DTranspose
