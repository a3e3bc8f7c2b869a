--- blocks.Reshape{{C, H, W}}: reshapes each example (the batch dim stays); one
-- size may be -1, inferred.
local Block = require 'kbl.blocks.Block'

--- Reshapes each example; the batch dim stays.
-- @table Reshape
-- @option shape the new shape of an example, a list (one size may be -1)
-- @usage local b = blocks.Reshape{{1, 28, 28}}
local Reshape = Block.extend('Reshape', {options = {shape = Block.REQUIRED}, positional = {'shape'}})

function Reshape.init(_, o)
   if type(o.shape) ~= 'table' or #o.shape == 0 then
      error('blocks.Reshape: shape must be a list of sizes (without the batch dim)', 4)
   end
end

function Reshape:forward(x)
   local shape = {x:size(1)}
   for i, s in ipairs(self.opts.shape) do shape[i + 1] = s end
   return x:reshape(shape)
end

return Reshape
