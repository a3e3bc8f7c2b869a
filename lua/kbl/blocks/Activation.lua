--- blocks.Activation{'relu'}: an activation function as a block. Activation.get
-- turns a name (or a function of a tensor) into the function Dense, Conv2D and
-- the others apply after their linear part.
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

-- The unary ops of kind activation in core/ops_unary.def, with their default
-- parameters, and a few more.
local fns = {
   swish = kbl.silu,
   softmax = function(x) return kbl.softmax(x, -1) end,
   log_softmax = function(x) return kbl.log_softmax(x, -1) end,
   linear = false, identity = false,
}
for _, u in ipairs(require('kbl.ops.elementwise').unary_ops) do
   if u.kind == 'activation' then fns[u.name] = function(x) return kbl[u.name](x) end end
end

local names = {}
for k in pairs(fns) do names[#names + 1] = k end
table.sort(names)

--- An activation function as a block.
-- @table Activation
-- @option activation a name ('relu', 'sigmoid', 'tanh', 'softmax', 'gelu', ...) or a function of a tensor
-- @usage local b = blocks.Activation{'relu'}
local Activation = Block.extend('Activation', {
   options = {activation = Block.REQUIRED},
   positional = {'activation'},
})

-- The function for an activation spec; nil for none ('linear', nil, false).
function Activation.get(spec)
   if spec == nil or spec == false then return nil end
   if type(spec) == 'function' then return spec end
   local f = fns[spec]
   if f == nil then
      local near = Block.closest(tostring(spec), names)
      error(string.format("blocks: unknown activation '%s'%s (activations: %s)", tostring(spec),
         near and (" (did you mean '" .. near .. "'?)") or '', table.concat(names, ', ')), 3)
   end
   return f or nil
end

function Activation:init(o) self.fn = Activation.get(o.activation) end

function Activation:forward(x)
   if self.fn then return self.fn(x) end
   return x
end

return Activation
