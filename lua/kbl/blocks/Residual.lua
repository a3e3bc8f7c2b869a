--- blocks.Residual{body, projection =, activation =}: y = act(shortcut(x) + body(x)).
-- The shortcut is the identity while body keeps the shape; when it does not, a
-- projection matches it: the block given, or (projection = 'auto', the default)
-- a Dense to the new width for [N, ..., F] inputs or a 1x1 Conv2D with the
-- needed stride for [N, C, H, W] ones, made on the first call. Several
-- positional blocks form a Sequential body.
local Block = require 'kbl.blocks.Block'
local Activation = require 'kbl.blocks.Activation'

--- y = act(shortcut(x) + body(x)), the body given as the positional blocks.
-- @table Residual
-- @option activation applied after the sum, or none
-- @option projection the shortcut when the body changes the shape: a block, or 'auto' (a Dense or a 1x1 Conv2D made on the first call)
-- @usage local b = blocks.Residual{blocks.Dense{16, activation = 'relu'}, blocks.Dense{16}}
local Residual = Block.extend('Residual', {
   options = {projection = 'auto', activation = Block.NONE},
   children = true,
})

function Residual:init(o)
   if #self.items == 0 then error('blocks.Residual needs a body block: blocks.Residual{block}', 4) end
   local body = #self.items == 1 and Block.as_block(self.items[1], 'the Residual body')
      or Block.registry.Sequential(self.items)
   self.items = nil
   self:add('body', body)
   if Block.is_block(o.projection) or (type(o.projection) == 'table' and o.projection.type) then
      self:add('projection', Block.as_block(o.projection, 'the projection'))
   elseif o.projection ~= 'auto' and o.projection ~= false then
      error("blocks.Residual: projection must be a block, 'auto' or false", 4)
   end
   self.act = Activation.get(o.activation)
end

local function same(a, b)
   if #a ~= #b then return false end
   for i = 1, #a do if a[i] ~= b[i] then return false end end
   return true
end

local function auto_projection(x, fx)
   local xs, fs = x:size(), fx:size()
   if #xs == 4 and #fs == 4 then
      local sh, sw = math.ceil(xs[3] / fs[3]), math.ceil(xs[4] / fs[4])
      return Block.registry.Conv2D{fs[2], 1, stride = {sh, sw}}
   end
   if #xs == #fs then return Block.registry.Dense{fs[#fs]} end
   error(string.format('Residual: cannot project an input [%s] to the body output [%s]; give a projection block',
      table.concat(xs, ', '), table.concat(fs, ', ')), 0)
end

function Residual:forward(x)
   local fx = self._child.body(x)
   local proj = self._child.projection
   local shortcut = x
   if proj then
      shortcut = proj(x)
   elseif not same(x:size(), fx:size()) then
      if self.opts.projection == false then
         error(string.format('Residual: the body changes the shape [%s] -> [%s] and projection = false',
            table.concat(x:size(), ', '), table.concat(fx:size(), ', ')), 0)
      end
      proj = self:add('projection', auto_projection(x, fx))
      proj.training = self.training
      shortcut = proj(x)
   end
   local y = shortcut + fx
   if self.act then y = self.act(y) end
   return y
end

return Residual
