--- blocks.BatchNorm{momentum = 0.1, eps = 1e-5}: batch normalization over dim 2
-- of [N, C] or [N, C, H, W]. Training normalizes with the batch's statistics and
-- updates the running ones in place; eval uses the running ones. Parameters and
-- buffers as torch.nn.BatchNorm2d: weight, bias, running_mean, running_var,
-- num_batches_tracked.
local kbl = require 'kbl'
local Block = require 'kbl.blocks.Block'

--- Batch normalization over dim 2 of [N, C] or [N, C, H, W].
-- @table BatchNorm
-- @option affine whether to learn a scale (weight) and a shift (bias)
-- @option eps added to the variance for stability
-- @option momentum the weight of each batch in the running statistics
-- @option sync under data-parallel training, normalize with the statistics of the
--   global batch (every process's rows: SyncBatchNorm, kbl.dist.sync_batch_norm)
--   instead of each process's own rows
-- @usage local b = blocks.BatchNorm{}
local BatchNorm = Block.extend('BatchNorm', {
   options = {momentum = 0.1, eps = 1e-5, affine = true, sync = false},
})

function BatchNorm:build(x)
   if x:dim() < 2 then error('BatchNorm needs an input [N, C] or [N, C, ...], got 1 dim', 0) end
   local c = x:size(2)
   local dt = {dtype = Block.param_dtype(x)}
   if self.opts.affine then
      self:add_parameter('weight', kbl.ones({c}, dt))
      self:add_parameter('bias', kbl.zeros({c}, dt))
   end
   self:add_buffer('running_mean', kbl.zeros({c}, dt))
   self:add_buffer('running_var', kbl.ones({c}, dt))
   self:add_buffer('num_batches_tracked', kbl.zeros({}, {dtype = 'int64'}))
end

function BatchNorm:forward(x)
   local p, o = self._p, self.opts
   if self.training then
      local n = p.num_batches_tracked
      n:fill_(n:item() + 1)
      if o.sync then
         return require('kbl.dist.sync_batch_norm')(x, p.running_mean, p.running_var, p.weight, p.bias,
            o.momentum, o.eps)
      end
   end
   return kbl.batch_norm(x, p.running_mean, p.running_var, p.weight, p.bias,
      {training = self.training, momentum = o.momentum, eps = o.eps})
end

return BatchNorm
