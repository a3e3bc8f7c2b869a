-- blocks.Sequential{a, b, c}: runs its children in order. Children are named by
-- position ('1', '2', ...) unless given a name (blocks.Dense{10, name = 'fc'}).
local Block = require 'blocks.Block'

local Sequential = Block.extend('Sequential', {children = true})

function Sequential:init()
   for i, item in ipairs(self.items) do self:add(tostring(i), Block.as_block(item, 'Sequential item ' .. i)) end
   self.items = nil
end

-- Appends a block (named by its position unless it has a name).
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
