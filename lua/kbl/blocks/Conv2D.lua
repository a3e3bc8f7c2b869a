--- blocks.Conv2D{filters, kernel_size}: 2-D convolution over [N, C, H, W] with
-- stride, padding (a number, {ph, pw}, 'same' or 'valid'), dilation and groups,
-- then the activation. Parameters as torch.nn.Conv2d: weight
-- [filters, in/groups, kh, kw], bias [filters].
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'
local Activation = require 'kbl.blocks.Activation'
local regularizers = require 'kbl.blocks.regularizers'

--- 2-D convolution over [N, C, H, W], then the activation.
-- @table Conv2D
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
-- @option padding zeros added around H and W: a number, {ph, pw}, 'same' or 'valid'
-- @option stride the step of the window: a number or {sh, sw}
-- @option use_bias whether to add a bias
-- @usage local b = blocks.Conv2D{32, 3, padding = 'same', activation = 'relu'}
local Conv2D = Block.extend('Conv2D', {
   options = {filters = Block.REQUIRED, kernel_size = Block.REQUIRED, stride = 1, padding = 0, dilation = 1,
      groups = 1, use_bias = true, activation = Block.NONE, kernel_init = 'glorot_uniform', bias_init = 'zeros',
      kernel_regularizer = Block.NONE, bias_regularizer = Block.NONE},
   positional = {'filters', 'kernel_size'},
})

--- n or {a, b} -> a, b, for the convolution blocks.
-- @local
function Conv2D.pair(v, what, type_name)
   if type(v) == 'number' then return v, v end
   if type(v) == 'table' and type(v[1]) == 'number' and type(v[2]) == 'number' then return v[1], v[2] end
   error(string.format('blocks.%s: %s must be a number or a pair {h, w}, got %s', type_name, what, tostring(v)), 5)
end

--- What the convolution blocks share: checks, activation, regularizers.
-- @local
function Conv2D.setup(self, o)
   local tn = self.type_name
   self.kh, self.kw = Conv2D.pair(o.kernel_size, 'kernel_size', tn)
   if o.filters ~= nil and (type(o.filters) ~= 'number' or o.filters < 1 or o.filters % 1 ~= 0) then
      error(string.format('blocks.%s: filters must be a positive whole number, got %s', tn, tostring(o.filters)), 5)
   end
   self.act = Activation.get(o.activation)
   self.kernel_reg = regularizers.get(o.kernel_regularizer)
   self.bias_reg = regularizers.get(o.bias_regularizer)
   self.conv_opts = {stride = o.stride, padding = o.padding, dilation = o.dilation, groups = o.groups,
      output_padding = o.output_padding}
end

--- The channel count of an [N, C, H, W] (or [C, H, W]) input.
-- @local
function Conv2D.channels(x, type_name)
   local d = x:dim()
   if d ~= 4 and d ~= 3 then
      error(string.format('%s needs an input [N, C, H, W], got [%s]', type_name, table.concat(x:size(), ', ')), 0)
   end
   return x:size(d - 2)
end

function Conv2D:init(o) Conv2D.setup(self, o) end

--- Both channel counts must divide by groups (Conv2D, Conv2DTranspose).
-- @local
function Conv2D.check_groups(c_in, o, what)
   if c_in % o.groups ~= 0 or o.filters % o.groups ~= 0 then
      error(string.format('%s: input channels %d and filters %d must both divide by groups %d', what, c_in,
         o.filters, o.groups), 0)
   end
end

function Conv2D:build(x)
   local o = self.opts
   local c_in = Conv2D.channels(x, 'Conv2D')
   Conv2D.check_groups(c_in, o, 'Conv2D')
   local rf = self.kh * self.kw
   self:make_weight_bias(x, {o.filters, c_in / o.groups, self.kh, self.kw},
      {fan_in = c_in / o.groups * rf, fan_out = o.filters * rf}, o.filters)
end

--- A forward running kbl[op] (conv2d, conv_transpose2d) with conv_opts, then the activation.
-- @local
function Conv2D.forward_with(op)
   return function(self, x)
      local y = kbl[op](x, self._p.weight, self._p.bias, self.conv_opts)
      if self.act then y = self.act(y) end
      return y
   end
end

Conv2D.forward = Conv2D.forward_with('conv2d')

return Conv2D
