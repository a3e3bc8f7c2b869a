-- blocks.GlobalAvgPool2D{}: the mean over H and W: [N, C, H, W] -> [N, C].
local kbl = require 'kbl'
local Block = require 'blocks.Block'

local GlobalAvgPool2D = Block.extend('GlobalAvgPool2D', {})

function GlobalAvgPool2D.forward(_, x) return kbl.global_avg_pool2d(x) end

return GlobalAvgPool2D
