--- blocks.Sequential{a, b, c}: runs its children in order. Children are named by
-- position ('1', '2', ...) unless given a name (blocks.Dense{10, name = 'fc'}).
local Block = require 'kbl.blocks.Block'

--- Runs its children in order.
-- @table Sequential
-- @usage local b = blocks.Sequential{blocks.Flatten{}, blocks.Dense{10}}
local Sequential = Block.extend('Sequential', {children = true})

function Sequential:init()
   for i, item in ipairs(self.items) do self:add(tostring(i), Block.as_block(item, 'Sequential item ' .. i)) end
   self.items = nil
end

--- Appends a block (named by its position unless it has a name).
-- @param block a block, a spec table or a function
-- @treturn table the Sequential
-- @usage seq:append(blocks.Dense{10})
function Sequential:append(block)
   return self:add(tostring(#self._children + 1), block)
end

function Sequential:forward(x, ...)
   local children = self._children
   for i = 1, #children do
      if i == 1 then x = children[i][2](x, ...) else x = children[i][2](x) end
   end
   return x
end

return Sequential
