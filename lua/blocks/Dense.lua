-- blocks.Dense{units}: a fully connected layer, y = act(x·Wᵀ + b) over the
-- input's last dim. Parameters as torch.nn.Linear: weight [units, in], bias [units].
local kbl = require 'kbl'
local Block = require 'blocks.Block'
local Activation = require 'blocks.Activation'
local initializers = require 'blocks.initializers'
local regularizers = require 'blocks.regularizers'

local Dense = Block.extend('Dense', {
   options = {units = Block.REQUIRED, activation = Block.NONE, use_bias = true,
      kernel_init = 'glorot_uniform', bias_init = 'zeros',
      kernel_regularizer = Block.NONE, bias_regularizer = Block.NONE},
   positional = {'units'},
})

function Dense:init(o)
   if type(o.units) ~= 'number' or o.units < 1 or o.units % 1 ~= 0 then
      error('blocks.Dense: units must be a positive whole number, got ' .. tostring(o.units), 4)
   end
   self.act = Activation.get(o.activation)
   initializers.get(o.kernel_init)
   initializers.get(o.bias_init)
   self.kernel_reg = regularizers.get(o.kernel_regularizer)
   self.bias_reg = regularizers.get(o.bias_regularizer)
end

function Dense:build(x)
   local o = self.opts
   if x:dim() < 1 then error('Dense needs an input of at least 1 dim', 2) end
   local n_in = x:size(-1)
   local dt = Block.param_dtype(x)
   local fans = {fan_in = n_in, fan_out = o.units}
   self:add_parameter('weight', initializers.make(o.kernel_init, {o.units, n_in}, dt, fans))
   if o.use_bias then self:add_parameter('bias', initializers.make(o.bias_init, {o.units}, dt, fans)) end
   self:add_regularizer('weight', self.kernel_reg)
   if o.use_bias then self:add_regularizer('bias', self.bias_reg) end
end

function Dense:forward(x)
   local y = kbl.linear(x, self._p.weight, self._p.bias)
   if self.act then y = self.act(y) end
   return y
end

return Dense
