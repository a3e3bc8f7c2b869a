--- blocks.Branches{a, b, join = 'concat'}: runs every child on the same input
-- and joins the outputs: 'concat' along dim (default 2, features or channels),
-- 'add', 'mul', 'stack' (a new dim), 'list' (a Lua list of the outputs), or a
-- function of the outputs (fn(y1, y2, ...)).
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Runs every child on one input and joins the outputs.
-- @table Branches
-- @option dim the dim 'concat' and 'stack' join along (2: features or channels)
-- @option join 'concat', 'add', 'mul', 'stack', 'list', or a function fn(y1, y2, ...)
-- @usage local b = blocks.Branches{blocks.Dense{8}, blocks.Dense{8}, join = 'add'}
local Branches = Block.extend('Branches', {options = {join = 'concat', dim = 2}, children = true})

local joins = {concat = true, add = true, mul = true, stack = true, list = true}

function Branches:init(o)
   if #self.items == 0 then error('blocks.Branches needs at least one branch', 4) end
   for i, item in ipairs(self.items) do self:add(tostring(i), Block.as_block(item, 'branch ' .. i)) end
   self.items = nil
   if type(o.join) ~= 'function' and not joins[o.join] then
      error("blocks.Branches: join must be 'concat', 'add', 'mul', 'stack', 'list' or a function, got "
         .. tostring(o.join), 4)
   end
end

function Branches:forward(x, ...)
   local outs = {}
   for i, c in ipairs(self._children) do outs[i] = c[2](x, ...) end
   local join, dim = self.opts.join, self.opts.dim
   if type(join) == 'function' then return join(unpack(outs)) end
   if join == 'list' then return outs end
   if join == 'concat' then return kbl.cat(outs, dim) end
   if join == 'stack' then return kbl.stack(outs, dim) end
   local y = outs[1]
   for i = 2, #outs do y = join == 'add' and y + outs[i] or y * outs[i] end
   return y
end

return Branches
