--- blocks.Identity{}: passes its input through (a placeholder: an empty neck, a
-- skipped stage).
local Block = require 'kbl.blocks.Block'

--- Passes its input through (a placeholder).
-- @table Identity
-- @usage local b = blocks.Identity{}
return Block.extend('Identity', {})
