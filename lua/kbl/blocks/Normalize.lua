--- blocks.Normalize{mean = 0.2860, std = 0.3530, scale = 1 / 255}: input
-- preparation as a block, for a Model's preprocess: converts the input (uint8
-- images as a dataset stores them, or any dtype) to float32 and computes
-- (x * scale - mean) / std, with mean and std a number or one per channel
-- (dim 2 of [N, C, ...]). As y = x * (scale / std) + (-mean / std) with the
-- float32 constants the data pipeline's folded normalize uses; with one value
-- through kbl's affine kernel, one fused multiply-add as in the pipeline, so
-- the batches are the same to the bit and a config that moved its normalize
-- here trains as before. The ONNX export writes Cast, Mul, Add.
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'
local T = require 'kbl.tensor'
local C = require('kbl.lib').C

--- Input preparation for a Model's preprocess: to float32, then (x * scale - mean) / std.
-- @option mean a number, or one per channel (dim 2)
-- @option std a number, or one per channel; none may be 0
-- @option scale multiplies the input first (1 / 255 for uint8 images)
-- @usage preprocess = blocks.Normalize{mean = 0.2860, std = 0.3530, scale = 1 / 255}
local Normalize = Block.extend('Normalize', {options = {mean = 0, std = 1, scale = 1}})

-- A number or a list as a list (its entries are checked in init).
local function list(v, what)
   if type(v) == 'number' then return {v} end
   if type(v) == 'table' and #v >= 1 then return v end
   error(string.format('blocks.Normalize: %s must be a number or a list of numbers (one per channel), got %s',
      what, tostring(v)), 5)
end

function Normalize:init(o)
   local mean, std = list(o.mean, 'mean'), list(o.std, 'std')
   if #mean ~= #std and #mean ~= 1 and #std ~= 1 then
      error(string.format('blocks.Normalize: mean has %d values and std %d', #mean, #std), 4)
   end
   if type(o.scale) ~= 'number' then error('blocks.Normalize: scale must be a number', 4) end
   local n = math.max(#mean, #std)
   local mul, add = {}, {}
   for c = 1, n do
      local m, s = mean[math.min(c, #mean)], std[math.min(c, #std)]
      if type(m) ~= 'number' or type(s) ~= 'number' or s == 0 then
         error('blocks.Normalize: channel ' .. c .. ' needs a number mean and a non-zero std', 4)
      end
      mul[c], add[c] = o.scale / s, -m / s
   end
   self.mul, self.add = mul, add   -- per channel, float64 until build
end

-- The constants as float32 tensors [C, 1, ..., 1] that broadcast over [N, C, ...]
-- (or [1] for one channel).
function Normalize:build(x)
   local n = #self.mul
   local shape = {n}
   if n > 1 then
      if x:dim() < 2 or x:size(2) ~= n then
         error(string.format('Normalize: %d channel values for an input [%s] (channels are dim 2)', n,
            table.concat(x:size(), ', ')), 0)
      end
      for _ = 3, x:dim() do shape[#shape + 1] = 1 end
   end
   self.mul_t = kbl.keep(kbl.tensor(self.mul, {dtype = 'float32'}):reshape(shape))
   self.add_t = kbl.keep(kbl.tensor(self.add, {dtype = 'float32'}):reshape(shape))
end

function Normalize:forward(x)
   if x.dtype ~= 'float32' then x = x:to('float32') end
   if #self.mul == 1 then return T.wrap(C.kbl_unary(C.KBL_AFFINE, T.live(x), self.mul[1], self.add[1])) end
   local m, a = self.mul_t, self.add_t
   if x.device ~= m.device then m, a = m:to(x.device), a:to(x.device) end
   return x * m + a
end

return Normalize
