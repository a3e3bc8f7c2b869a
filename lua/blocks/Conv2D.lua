-- blocks.Conv2D{filters, kernel_size}: 2-D convolution over [N, C, H, W] with
-- stride, padding (a number, {ph, pw}, 'same' or 'valid'), dilation and groups,
-- then the activation. Parameters as torch.nn.Conv2d: weight
-- [filters, in/groups, kh, kw], bias [filters].
local kbl = require 'kbl'
local Block = require 'blocks.Block'
local Activation = require 'blocks.Activation'
local initializers = require 'blocks.initializers'
local regularizers = require 'blocks.regularizers'

local Conv2D = Block.extend('Conv2D', {
   options = {filters = Block.REQUIRED, kernel_size = Block.REQUIRED, stride = 1, padding = 0, dilation = 1,
      groups = 1, use_bias = true, activation = Block.NONE, kernel_init = 'glorot_uniform', bias_init = 'zeros',
      kernel_regularizer = Block.NONE, bias_regularizer = Block.NONE},
   positional = {'filters', 'kernel_size'},
})

-- n or {a, b} -> a, b
function Conv2D.pair(v, what, type_name)
   if type(v) == 'number' then return v, v end
   if type(v) == 'table' and type(v[1]) == 'number' and type(v[2]) == 'number' then return v[1], v[2] end
   error(string.format('blocks.%s: %s must be a number or a pair {h, w}, got %s', type_name, what, tostring(v)), 5)
end

-- What the convolution blocks share: checks, activation, regularizers.
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

-- Makes weight (of the given shape, with the given fans) and bias [n_bias].
function Conv2D.make_params(self, x, shape, fans, n_bias)
   local o = self.opts
   local dt = Block.param_dtype(x)
   self:add_parameter('weight', initializers.make(o.kernel_init, shape, dt, fans))
   if o.use_bias then self:add_parameter('bias', initializers.make(o.bias_init, {n_bias}, dt, fans)) end
   self:add_regularizer('weight', self.kernel_reg)
   if o.use_bias then self:add_regularizer('bias', self.bias_reg) end
end

-- The channel count of an [N, C, H, W] (or [C, H, W]) input.
function Conv2D.channels(x, type_name)
   local d = x:dim()
   if d ~= 4 and d ~= 3 then
      error(string.format('%s needs an input [N, C, H, W], got [%s]', type_name, table.concat(x:size(), ', ')), 0)
   end
   return x:size(d - 2)
end

function Conv2D:init(o) Conv2D.setup(self, o) end

function Conv2D:build(x)
   local o = self.opts
   local c_in = Conv2D.channels(x, 'Conv2D')
   if c_in % o.groups ~= 0 or o.filters % o.groups ~= 0 then
      error(string.format('Conv2D: input channels %d and filters %d must both divide by groups %d', c_in,
         o.filters, o.groups), 0)
   end
   local rf = self.kh * self.kw
   Conv2D.make_params(self, x, {o.filters, c_in / o.groups, self.kh, self.kw},
      {fan_in = c_in / o.groups * rf, fan_out = o.filters * rf}, o.filters)
end

function Conv2D:forward(x)
   local y = kbl.conv2d(x, self._p.weight, self._p.bias, self.conv_opts)
   if self.act then y = self.act(y) end
   return y
end

return Conv2D
