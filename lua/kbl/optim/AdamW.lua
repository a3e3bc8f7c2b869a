-- kbl.optim.AdamW: Adam with decoupled weight decay (Loshchilov and Hutter):
-- the parameter shrinks by lr * weight_decay before the Adam step, as
-- torch.optim.AdamW (default weight_decay 1e-2).
local Optimizer = require 'kbl.optim.Optimizer'
local Adam = require 'kbl.optim.Adam'

return Optimizer.define('AdamW', Adam.make_spec(true, 1e-2))
