--- blocks.AvgPool2D{kernel_size = 2, stride = kernel_size, padding = 0,
-- count_include_pad = true}: the mean over each window of [N, C, H, W].
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Average pooling over windows of [N, C, H, W].
-- @table AvgPool2D
-- @option count_include_pad whether the padding counts in the mean
-- @option kernel_size the window: a number or {kh, kw}
-- @option padding zeros added around H and W: a number or {ph, pw}
-- @option stride the step of the window (default: kernel_size)
-- @usage local b = blocks.AvgPool2D{2}
local AvgPool2D = Block.extend('AvgPool2D', {
   options = {kernel_size = 2, stride = Block.NONE, padding = 0, count_include_pad = true},
   positional = {'kernel_size'},
})

function AvgPool2D:forward(x)
   local o = self.opts
   return kbl.avg_pool2d(x, o.kernel_size, {stride = o.stride, padding = o.padding,
      count_include_pad = o.count_include_pad})
end

return AvgPool2D
