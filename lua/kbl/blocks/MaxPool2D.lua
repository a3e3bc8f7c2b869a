--- blocks.MaxPool2D{kernel_size = 2, stride = kernel_size, padding = 0}: the
-- maximum over each window of [N, C, H, W].
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Max pooling over windows of [N, C, H, W].
-- @table MaxPool2D
-- @option kernel_size the window: a number or {kh, kw}
-- @option padding padding around H and W: a number or {ph, pw}
-- @option stride the step of the window (default: kernel_size)
-- @usage local b = blocks.MaxPool2D{2}
local MaxPool2D = Block.extend('MaxPool2D', {
   options = {kernel_size = 2, stride = Block.NONE, padding = 0},
   positional = {'kernel_size'},
})

function MaxPool2D:forward(x)
   local o = self.opts
   return kbl.max_pool2d(x, o.kernel_size, {stride = o.stride, padding = o.padding})
end

return MaxPool2D
