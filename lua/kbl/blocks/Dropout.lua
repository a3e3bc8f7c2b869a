--- blocks.Dropout{rate}: zeroes each element with probability rate while
-- training (scaling the rest by 1 / (1 - rate)); the identity in eval mode.
-- spatial = true drops whole channels of [N, C, H, W] (dropout2d). Masks come
-- from kbl's counter-based generator.
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Dropout while training; the identity in eval mode.
-- @table Dropout
-- @option rate the probability of zeroing an element, in [0, 1)
-- @option spatial whether to drop whole channels of [N, C, H, W] (dropout2d)
-- @usage local b = blocks.Dropout{0.2}
local Dropout = Block.extend('Dropout', {options = {rate = 0.5, spatial = false}, positional = {'rate'}})

function Dropout.init(_, o)
   if type(o.rate) ~= 'number' or o.rate < 0 or o.rate >= 1 then
      error('blocks.Dropout: rate must be a number in [0, 1), got ' .. tostring(o.rate), 4)
   end
end

function Dropout:forward(x)
   local rate = self.opts.rate
   if not self.training or rate == 0 then return x end
   if self.opts.spatial then return kbl.dropout2d(x, rate, {training = true}) end
   return kbl.dropout(x, rate, {training = true})
end

return Dropout
