--- blocks.GlobalAvgPool2D{}: the mean over H and W: [N, C, H, W] -> [N, C].
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- The mean over H and W: [N, C, H, W] to [N, C].
-- @table GlobalAvgPool2D
-- @usage local b = blocks.GlobalAvgPool2D{}
local GlobalAvgPool2D = Block.extend('GlobalAvgPool2D', {})

function GlobalAvgPool2D.forward(_, x) return kbl.global_avg_pool2d(x) end

return GlobalAvgPool2D
