--- kbl.optim.Adam: Adam (Kingma and Ba) with L2 weight decay added to the
-- gradient and optional amsgrad, as torch.optim.Adam. State per parameter:
-- step, exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad).
local Optimizer = require 'kbl.optim.Optimizer'

-- The definition, shared with AdamW, which differs only in decoupling the weight decay.
local function spec(decoupled, default_wd)
   local C = require('kbl').lib.C
   local live = require('kbl.tensor').live
   local check, zeros_like = Optimizer.check, Optimizer.zeros_like
   return {
      defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = default_wd, amsgrad = false},
      validate = function(h)
         assert(type(h.betas) == 'table' and #h.betas == 2, 'betas must be a pair {beta1, beta2}')
         for i = 1, 2 do
            assert(h.betas[i] >= 0 and h.betas[i] < 1, 'betas must lie in [0, 1), got ' .. tostring(h.betas[i]))
         end
         assert(h.eps >= 0, 'eps must be >= 0')
         assert(h.weight_decay >= 0, 'weight_decay must be >= 0, got ' .. tostring(h.weight_decay))
      end,
      init = function(p, h)
         return {step = 0, exp_avg = zeros_like(p), exp_avg_sq = zeros_like(p),
            max_exp_avg_sq = h.amsgrad and zeros_like(p) or nil}
      end,
      update = function(pp, gp, st, h)
         st.step = st.step + 1
         check(C.kbl_adam_step(pp, gp, live(st.exp_avg), live(st.exp_avg_sq),
            st.max_exp_avg_sq and live(st.max_exp_avg_sq) or nil, h.lr, h.betas[1], h.betas[2], h.eps,
            h.weight_decay, st.step, decoupled and 1 or 0))
      end,
   }
end

--- Adam (Kingma and Ba), with L2 weight decay added to the gradient and optional amsgrad, as torch.optim.Adam.
-- @table Adam
-- @option lr the learning rate, or a schedule (optim.schedules.*)
-- @option betas {beta1, beta2}: the decay rates of the moment estimates
-- @option eps added to the denominator for stability
-- @option weight_decay L2 penalty added to the gradient
-- @option amsgrad whether to use the maximum of the second moments (AMSGrad)
-- @usage local opt = optim.Adam{lr = 1e-3}; opt:step(model:parameters())
local Adam = Optimizer.define('Adam', spec(false, 0))
Adam.make_spec = spec
return Adam
