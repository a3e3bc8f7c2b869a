--- kbl.optim.SGD: stochastic gradient descent with momentum, dampening,
-- Nesterov momentum and (coupled, L2) weight decay, as torch.optim.SGD.
-- State per parameter: momentum_buffer (when momentum > 0) and step.
local Optimizer = require 'kbl.optim.Optimizer'
local C = require('kbl').lib.C
local live = require('kbl.tensor').live
local check, zeros_like = Optimizer.check, Optimizer.zeros_like

--- Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, as torch.optim.SGD.
-- @table SGD
-- @option lr the learning rate, or a schedule (optim.schedules.*)
-- @option momentum the momentum factor (0: none)
-- @option dampening dampening of the momentum
-- @option nesterov whether to use Nesterov momentum
-- @option weight_decay L2 penalty added to the gradient
-- @usage local opt = optim.SGD{lr = 0.1, momentum = 0.9}; opt:step(model:parameters())
return Optimizer.define('SGD', {
   defaults = {lr = 1e-2, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0},
   validate = function(h)
      assert(h.momentum >= 0, 'momentum must be >= 0, got ' .. tostring(h.momentum))
      assert(h.weight_decay >= 0, 'weight_decay must be >= 0, got ' .. tostring(h.weight_decay))
      assert(not h.nesterov or (h.momentum > 0 and h.dampening == 0),
         'nesterov needs a positive momentum and zero dampening')
   end,
   init = function()
      return {step = 0}
   end,
   update = function(pp, gp, st, h, p)
      local buf, first = nil, 0
      if h.momentum ~= 0 then
         -- made on the first step with momentum, where it starts as the gradient
         if st.momentum_buffer == nil then st.momentum_buffer, first = zeros_like(p), 1 end
         buf = live(st.momentum_buffer)
      end
      check(C.kbl_sgd_step(pp, gp, buf, h.lr, h.momentum, h.dampening, h.weight_decay,
         h.nesterov and 1 or 0, first))
      st.step = st.step + 1
   end,
})
