--- blocks.LayerNorm{dims = 1, eps = 1e-5, affine = true}: normalizes each
-- example over its last `dims` dims (their sizes are taken from the first
-- input), as torch.nn.LayerNorm: weight and bias of those sizes.
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Layer normalization of each example over its last dims.
-- @table LayerNorm
-- @option affine whether to learn a scale (weight) and a shift (bias)
-- @option dims how many trailing dims are normalized
-- @option eps added to the variance for stability
-- @usage local b = blocks.LayerNorm{}
local LayerNorm = Block.extend('LayerNorm', {options = {dims = 1, eps = 1e-5, affine = true}})

function LayerNorm:build(x)
   local s, n = x:size(), self.opts.dims
   if n < 1 or n > #s then
      error(string.format('LayerNorm: dims = %d does not fit an input of %d dims', n, #s), 0)
   end
   local shape = {}
   for i = #s - n + 1, #s do shape[#shape + 1] = s[i] end
   self.normalized_shape = shape
   if self.opts.affine then
      local dt = {dtype = Block.param_dtype(x)}
      self:add_parameter('weight', kbl.ones(shape, dt))
      self:add_parameter('bias', kbl.zeros(shape, dt))
   end
end

function LayerNorm:forward(x)
   return kbl.layer_norm(x, self.normalized_shape, self._p.weight, self._p.bias, self.opts.eps)
end

return LayerNorm
