-- kbl.dist.sync_batch_norm: batch norm in training over the global batch
-- (SyncBatchNorm): the mean and variance of each channel are those of every
-- rank's rows together, summed with kbl.dist.sum, whose gradient is the sum of
-- the ranks' gradients, so backward is the global batch's too. The running
-- statistics get the global ones (the same on every rank). With one process
-- it is kbl.batch_norm. blocks.BatchNorm{sync = true} calls it.
--   y = sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps)
local kbl = require 'kbl'
local dist = require 'kbl.dist'

return function(x, running_mean, running_var, weight, bias, momentum, eps)
   if not dist.is_distributed() then
      return kbl.batch_norm(x, running_mean, running_var, weight, bias,
         {training = true, momentum = momentum, eps = eps})
   end
   local dims = {1}
   for d = 3, x:dim() do dims[#dims + 1] = d end
   local count = kbl.tensor({x:numel() / x:size(2)}, {dtype = 'float64'})
   local n = dist.all_reduce(count):item()
   -- two passes (mean, then centred squares): steadier than E[x^2] - E[x]^2
   local mean = dist.sum(x:sum(dims, true)) / n
   local xc = x - mean
   local var = dist.sum((xc * xc):sum(dims, true)) / n
   local y = xc / (var + eps):sqrt()
   if weight then
      local shape = mean:size()
      y = y * weight:view(shape) + bias:view(shape)
   end
   kbl.no_grad(function()
      local c = x:size(2)
      local unbiased = n > 1 and n / (n - 1) or 1
      running_mean:copy_(running_mean * (1 - momentum) + mean:view{c} * momentum)
      running_var:copy_(running_var * (1 - momentum) + var:view{c} * (unbiased * momentum))
   end)
   return y
end
