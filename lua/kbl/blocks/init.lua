--- blocks: the block (layer) library. `local blocks = require 'kbl.blocks'`.
--   local m = blocks.Sequential{blocks.Flatten{}, blocks.Dense{256, activation = 'relu'}, blocks.Dense{10}}
--   local logits = m(x)           -- built on the first call
--   blocks.defaults.Dense.kernel_init = 'he_normal'   -- defaults by type
--   blocks.build{type = 'Dense', units = 10}            -- from a spec table
-- One file per block type; Block.lua holds what they share.
local Block = require 'kbl.blocks.Block'
local defaults = require 'kbl.blocks.defaults'

local M = {
   Block = Block,
   initializers = require 'kbl.blocks.initializers',
   regularizers = require 'kbl.blocks.regularizers',
   defaults = defaults.table,
   build = Block.from_spec,
   is_block = Block.is_block,
}

-- Clears the defaults of one type (or every type).
M.reset_defaults = defaults.reset
-- with_defaults({Dense = {kernel_init = 'he_normal'}}, fn, ...): fn with those defaults in force.
M.with_defaults = defaults.with

local TYPES = {
   -- layers
   'Activation', 'Dense', 'Flatten', 'Reshape', 'Identity', 'Lambda', 'Dropout', 'Embedding',
   'Conv2D', 'Conv2DTranspose', 'DepthwiseConv2D', 'MaxPool2D', 'AvgPool2D', 'GlobalAvgPool2D',
   'BatchNorm', 'LayerNorm', 'GroupNorm', 'Normalize',
   -- compositions
   'Sequential', 'Residual', 'Branches', 'Model',
   -- ready-made parts
   'MLP', 'ConvNet', 'ResNet', 'ClassificationHead', 'RegressionHead',
}
for _, name in ipairs(TYPES) do M[name] = require('kbl.blocks.' .. name) end
M.types = TYPES

return M
