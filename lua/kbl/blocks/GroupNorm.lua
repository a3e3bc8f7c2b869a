--- blocks.GroupNorm{num_groups, eps = 1e-5, affine = true}: normalizes groups of
-- channels of [N, C, ...] per example, as torch.nn.GroupNorm: weight [C], bias [C].
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Group normalization of [N, C, ...] per example.
-- @table GroupNorm
-- @option affine whether to learn a scale (weight) and a shift (bias)
-- @option eps added to the variance for stability
-- @option num_groups the number of channel groups (divides C)
-- @usage local b = blocks.GroupNorm{8}
local GroupNorm = Block.extend('GroupNorm', {
   options = {num_groups = Block.REQUIRED, eps = 1e-5, affine = true},
   positional = {'num_groups'},
})

function GroupNorm:build(x)
   local c = x:size(2)
   if c % self.opts.num_groups ~= 0 then
      error(string.format('GroupNorm: %d channels do not divide into %d groups', c, self.opts.num_groups), 0)
   end
   if self.opts.affine then
      local dt = {dtype = Block.param_dtype(x)}
      self:add_parameter('weight', kbl.ones({c}, dt))
      self:add_parameter('bias', kbl.zeros({c}, dt))
   end
end

function GroupNorm:forward(x)
   return kbl.group_norm(x, self.opts.num_groups, self._p.weight, self._p.bias, self.opts.eps)
end

return GroupNorm
