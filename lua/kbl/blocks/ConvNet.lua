--- blocks.ConvNet{filters = {32, 64}}: a convolutional backbone of stages
-- stage1, stage2, ..., each `convs` times conv (3x3, 'same' padding), bn
-- (BatchNorm, when batch_norm) and act, then pool (2x2 max or avg pooling,
-- unless pool = false). Paths read `stage1.conv.weight`, or conv1, conv2, ...
-- when a stage has several convolutions. Output: feature maps [N, C, H', W'].
local Block = require 'kbl.blocks.Block'

--- A convolutional backbone of stages: conv, batch norm, activation, pooling.
-- @table ConvNet
-- @option activation the activation after each convolution
-- @option batch_norm whether a BatchNorm follows each convolution
-- @option convs convolutions per stage
-- @option dropout the rate of a Dropout ending each stage (0: none)
-- @option filters the output channels of each stage, a list (one stage each)
-- @option kernel_size the convolutions' window
-- @option pool 'max', 'avg' or false (no pooling): 2x2 pooling ending each stage
-- @usage local b = blocks.ConvNet{filters = {32, 64}}
local ConvNet = Block.extend('ConvNet', {
   options = {filters = Block.REQUIRED, kernel_size = 3, convs = 1, batch_norm = true, activation = 'relu',
      pool = 'max', dropout = 0},
   positional = {'filters'},
})

function ConvNet:init(o)
   if type(o.filters) ~= 'table' or #o.filters == 0 then
      error('blocks.ConvNet: filters must be a list of stage widths, e.g. {32, 64}', 4)
   end
   if o.pool ~= 'max' and o.pool ~= 'avg' and o.pool ~= false then
      error("blocks.ConvNet: pool must be 'max', 'avg' or false", 4)
   end
   local R = Block.registry
   for s, f in ipairs(o.filters) do
      local stage = R.Sequential{}
      for c = 1, o.convs do
         local suffix = o.convs > 1 and tostring(c) or ''
         stage:add('conv' .. suffix, R.Conv2D{f, o.kernel_size, padding = 'same', use_bias = not o.batch_norm})
         if o.batch_norm then stage:add('bn' .. suffix, R.BatchNorm{}) end
         stage:add('act' .. suffix, R.Activation{o.activation})
      end
      if o.pool then stage:add('pool', o.pool == 'max' and R.MaxPool2D{2} or R.AvgPool2D{2}) end
      if o.dropout > 0 then stage:add('dropout', R.Dropout{o.dropout, spatial = true}) end
      self:add('stage' .. s, stage)
   end
end

ConvNet.forward = Block.forward_children

return ConvNet
