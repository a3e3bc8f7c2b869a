--- kbl.optim.AdamW: Adam with decoupled weight decay (Loshchilov and Hutter):
-- the parameter shrinks by lr * weight_decay before the Adam step, as
-- torch.optim.AdamW (default weight_decay 1e-2).
local Optimizer = require 'kbl.optim.Optimizer'
local Adam = require 'kbl.optim.Adam'

--- Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW.
-- @table AdamW
-- @option lr the learning rate, or a schedule (optim.schedules.*)
-- @option betas {beta1, beta2}: the decay rates of the moment estimates
-- @option eps added to the denominator for stability
-- @option weight_decay the parameter shrinks by lr * weight_decay before each step
-- @option amsgrad whether to use the maximum of the second moments (AMSGrad)
-- @usage local opt = optim.AdamW{lr = 1e-3, weight_decay = 0.05}
return Optimizer.define('AdamW', Adam.make_spec(true, 1e-2))
