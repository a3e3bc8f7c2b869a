--- kbl.optim.RMSprop: RMSprop with optional centering, momentum and L2 weight
-- decay, as torch.optim.RMSprop. State per parameter: step, square_avg
-- (grad_avg when centered, momentum_buffer when momentum > 0).
local Optimizer = require 'kbl.optim.Optimizer'
local C = require('kbl').lib.C
local live = require('kbl.tensor').live
local check, zeros_like = Optimizer.check, Optimizer.zeros_like

--- RMSprop with optional centering, momentum and L2 weight decay, as torch.optim.RMSprop.
-- @table RMSprop
-- @option lr the learning rate, or a schedule (optim.schedules.*)
-- @option alpha the smoothing constant of the squared-gradient average
-- @option eps added to the denominator for stability
-- @option weight_decay L2 penalty added to the gradient
-- @option momentum the momentum factor (0: none)
-- @option centered whether to normalize by the gradient's variance estimate
-- @usage local opt = optim.RMSprop{lr = 1e-3}
return Optimizer.define('RMSprop', {
   defaults = {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false},
   validate = function(h)
      assert(h.alpha >= 0, 'alpha must be >= 0')
      assert(h.eps >= 0, 'eps must be >= 0')
      assert(h.momentum >= 0, 'momentum must be >= 0')
      assert(h.weight_decay >= 0, 'weight_decay must be >= 0')
   end,
   init = function(p, h)
      return {step = 0, square_avg = zeros_like(p), grad_avg = h.centered and zeros_like(p) or nil,
         momentum_buffer = h.momentum > 0 and zeros_like(p) or nil}
   end,
   update = function(pp, gp, st, h)
      st.step = st.step + 1
      check(C.kbl_rmsprop_step(pp, gp, live(st.square_avg), st.grad_avg and live(st.grad_avg) or nil,
         st.momentum_buffer and live(st.momentum_buffer) or nil, h.lr, h.alpha, h.eps, h.weight_decay,
         h.momentum))
   end,
})
