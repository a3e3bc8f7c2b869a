--- kbl.optim: optimizers with fused update kernels (SGD, Adam, AdamW, RMSprop,
-- Adagrad), learning-rate schedules and gradient clipping.
--   local opt = optim.Adam{lr = 1e-3}
--   model:zero_grad(); loss:backward(); opt:step(model:parameters())
local clip = require 'kbl.optim.clip'

return {
   Optimizer = require 'kbl.optim.Optimizer',
   SGD = require 'kbl.optim.SGD',
   Adam = require 'kbl.optim.Adam',
   AdamW = require 'kbl.optim.AdamW',
   RMSprop = require 'kbl.optim.RMSprop',
   Adagrad = require 'kbl.optim.Adagrad',
   schedules = require 'kbl.optim.schedules',
   clip_grad_norm = clip.clip_grad_norm,
   clip_grad_value = clip.clip_grad_value,
}
