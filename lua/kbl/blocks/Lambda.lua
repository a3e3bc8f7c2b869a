--- blocks.Lambda{fn}: any Lua function of tensors as a block (no parameters):
-- blocks.Lambda{function(x) return x:mean(2) end, name = 'pool'}.
local Block = require 'kbl.blocks.Block'

--- Any Lua function of tensors as a block (no parameters).
-- @table Lambda
-- @option fn the function, y = fn(x)
-- @usage local b = blocks.Lambda{function(x) return x:mean(2) end, name = 'pool'}
local Lambda = Block.extend('Lambda', {options = {fn = Block.REQUIRED}, positional = {'fn'}})

function Lambda.init(_, o)
   if type(o.fn) ~= 'function' then error('blocks.Lambda: fn must be a function, got ' .. type(o.fn), 4) end
end

function Lambda:forward(...) return self.opts.fn(...) end

return Lambda
