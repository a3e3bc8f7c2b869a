--- blocks.ResNet{filters = {16, 32, 64}, blocks = 2}: a small residual backbone
-- for 28x28 and 32x32 images (He et al.'s CIFAR ResNets): a stem (3x3 conv,
-- bn, act), then stages stage1, stage2, ... of basic blocks block1, block2, ...
-- (conv1-bn1-act-conv2-bn2 plus the shortcut, then act). Each stage after the
-- first halves H and W with stride 2 and projects the shortcut with a 1x1 conv
-- and bn. `blocks` is a count per stage or a list. Output [N, C, H/4, W/4].
local Block = require 'kbl.blocks.Block'

--- A small residual backbone for 28x28 and 32x32 images (CIFAR ResNets).
-- @table ResNet
-- @option activation the activation after each block
-- @option blocks basic blocks per stage: a count, or a list (one per stage)
-- @option filters the channels of each stage, a list
-- @usage local b = blocks.ResNet{filters = {16, 32}, blocks = 1}
local ResNet = Block.extend('ResNet', {
   options = {filters = {16, 32, 64}, blocks = 2, activation = 'relu'},
})

local function basic_block(R, filters, stride, act, project)
   local body = R.Sequential{
      R.Conv2D{filters, 3, stride = stride, padding = 1, use_bias = false, name = 'conv1'},
      R.BatchNorm{name = 'bn1'},
      R.Activation{act, name = 'act'},
      R.Conv2D{filters, 3, padding = 1, use_bias = false, name = 'conv2'},
      R.BatchNorm{name = 'bn2'},
   }
   local projection = false
   if project then
      projection = R.Sequential{
         R.Conv2D{filters, 1, stride = stride, use_bias = false, name = 'conv'},
         R.BatchNorm{name = 'bn'},
      }
   end
   return R.Residual{body, projection = projection, activation = act}
end

function ResNet:init(o)
   if type(o.filters) ~= 'table' or #o.filters == 0 then
      error('blocks.ResNet: filters must be a list of stage widths, e.g. {16, 32, 64}', 4)
   end
   local R = Block.registry
   self:add('stem', R.Sequential{
      R.Conv2D{o.filters[1], 3, padding = 1, use_bias = false, name = 'conv'},
      R.BatchNorm{name = 'bn'},
      R.Activation{o.activation, name = 'act'},
   })
   for s, f in ipairs(o.filters) do
      local n = type(o.blocks) == 'table' and o.blocks[s] or o.blocks
      local stage = R.Sequential{}
      for b = 1, n do
         local stride = (s > 1 and b == 1) and 2 or 1
         local project = b == 1 and s > 1 and true or false
         stage:add('block' .. b, basic_block(R, f, stride, o.activation, project))
      end
      self:add('stage' .. s, stage)
   end
end

ResNet.forward = Block.forward_children

return ResNet
