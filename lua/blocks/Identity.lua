-- blocks.Identity{}: passes its input through (a placeholder: an empty neck, a
-- skipped stage).
local Block = require 'blocks.Block'

return Block.extend('Identity', {})
