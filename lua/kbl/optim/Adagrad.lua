--- kbl.optim.Adagrad: Adagrad with learning-rate decay and L2 weight decay, as
-- torch.optim.Adagrad. State per parameter: step and sum (of squared gradients,
-- starting at initial_accumulator_value).
local Optimizer = require 'kbl.optim.Optimizer'
local kbl = require 'kbl'
local C = kbl.lib.C
local live = require('kbl.tensor').live
local check = Optimizer.check

--- Adagrad with learning-rate decay and L2 weight decay, as torch.optim.Adagrad.
-- @table Adagrad
-- @option lr the learning rate, or a schedule (optim.schedules.*)
-- @option lr_decay the rate decays as lr / (1 + (step - 1) * lr_decay)
-- @option weight_decay L2 penalty added to the gradient
-- @option initial_accumulator_value the starting sum of squared gradients
-- @option eps added to the denominator for stability
-- @usage local opt = optim.Adagrad{lr = 1e-2}
return Optimizer.define('Adagrad', {
   defaults = {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10},
   validate = function(h)
      assert(h.lr_decay >= 0, 'lr_decay must be >= 0')
      assert(h.weight_decay >= 0, 'weight_decay must be >= 0')
      assert(h.initial_accumulator_value >= 0, 'initial_accumulator_value must be >= 0')
   end,
   init = function(p, h)
      local sum = kbl.full(p:size(), h.initial_accumulator_value, {dtype = p.dtype, device = p.device})
      return {step = 0, sum = kbl.keep(sum)}
   end,
   update = function(pp, gp, st, h)
      st.step = st.step + 1
      local clr = h.lr / (1 + (st.step - 1) * h.lr_decay)
      check(C.kbl_adagrad_step(pp, gp, live(st.sum), clr, h.weight_decay, h.eps))
   end,
})
