--- blocks.Flatten{start_dim = 2}: flattens the dims from start_dim on, keeping
-- the batch dim: [N, C, H, W] -> [N, C*H*W].
local Block = require 'kbl.blocks.Block'

--- Flattens the dims from start_dim on, keeping the batch dim.
-- @table Flatten
-- @option start_dim the first dim flattened
-- @usage local b = blocks.Flatten{}
local Flatten = Block.extend('Flatten', {options = {start_dim = 2}, positional = {'start_dim'}})

function Flatten:forward(x)
   if x:dim() <= self.opts.start_dim then return x end
   return x:flatten(self.opts.start_dim)
end

return Flatten
