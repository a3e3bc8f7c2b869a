--- blocks.MLP{units = {256, 128}, activation = 'relu', dropout = 0}: a stack of
-- Dense layers (dense1, dense2, ...), each followed by the activation and,
-- when dropout > 0, a Dropout (dropout1, ...). activate_last = false leaves the
-- last layer linear (an MLP that ends in logits). Inputs of more than 2 dims are
-- flattened first. The Dense layers are made here, so blocks.defaults.Dense
-- reaches them.
local Block = require 'kbl.blocks.Block'

--- A stack of Dense layers, each with the activation (and dropout).
-- @table MLP
-- @option activate_last whether the last layer gets the activation (false: it ends in logits)
-- @option activation the activation after each layer
-- @option dropout the rate of a Dropout after each layer (0: none)
-- @option units the width of each layer, a list
-- @usage local b = blocks.MLP{units = {256, 10}, activate_last = false}
local MLP = Block.extend('MLP', {
   options = {units = Block.REQUIRED, activation = 'relu', dropout = 0, activate_last = true},
   positional = {'units'},
})

function MLP:init(o)
   if type(o.units) == 'number' then o.units = {o.units} end
   if type(o.units) ~= 'table' or #o.units == 0 then
      error('blocks.MLP: units must be a list of layer widths, e.g. {256, 128}', 4)
   end
   local R = Block.registry
   self:add('flatten', R.Flatten{})
   for i, u in ipairs(o.units) do
      local last = i == #o.units
      local act = (not last or o.activate_last) and o.activation or nil
      self:add('dense' .. i, R.Dense{u, activation = act})
      if o.dropout > 0 and act then self:add('dropout' .. i, R.Dropout{o.dropout}) end
   end
end

MLP.forward = Block.forward_children

return MLP
