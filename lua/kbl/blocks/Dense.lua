--- blocks.Dense{units}: a fully connected layer, y = act(x·Wᵀ + b) over the
-- input's last dim. Parameters as torch.nn.Linear: weight [units, in], bias [units].
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'
local Activation = require 'kbl.blocks.Activation'
local initializers = require 'kbl.blocks.initializers'
local regularizers = require 'kbl.blocks.regularizers'

--- A fully connected layer, y = act(x·Wᵀ + b), over the input's last dim.
-- @table Dense
-- @option activation applied after the linear part: a name ('relu', 'gelu', 'softmax', ...) or a function
-- of a tensor; none for linear
-- @option bias_init the bias's initializer (blocks.initializers)
-- @option bias_regularizer a penalty on the bias (blocks.regularizers)
-- @option kernel_init the weight's initializer: a name from blocks.initializers ('glorot_uniform', 'he_normal', 'zeros', ...) or a function
-- @option kernel_regularizer a penalty on the weight added to the loss: 'l2', {l2 = 1e-4}, {l1 = ...} (blocks.regularizers)
-- @option units the number of outputs
-- @option use_bias whether to add a bias
-- @usage local b = blocks.Dense{256, activation = 'relu'}
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
   self:make_weight_bias(x, {o.units, n_in}, {fan_in = n_in, fan_out = o.units}, o.units)
end

function Dense:forward(x)
   local y = kbl.linear(x, self._p.weight, self._p.bias)
   if self.act then y = self.act(y) end
   return y
end

return Dense
