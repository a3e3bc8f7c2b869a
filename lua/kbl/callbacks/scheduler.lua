--- kbl.callbacks.scheduler: LearningRateScheduler sets the optimizer's rate from
-- a schedule (kbl.optim.schedules or any function of t) before each epoch or
-- step; t counts from 1 over the whole run, as the schedules expect.
local base = require 'kbl.callbacks.base'

local M = {}

--- Sets the optimizer's rate from a schedule before each epoch or step. A kbl
-- schedule made without lr gives a factor of the stage's starting rate; one
-- with lr, or a plain function of t (from 1), gives the rate.
-- @option schedule a schedule (optim.schedules.*) or a function of t (positional)
-- @option by 'epoch' or 'step': what t counts
-- @option relative true makes any schedule a factor of the starting rate (optional)
-- @usage callbacks.LearningRateScheduler{optim.schedules.cosine{total = 20}}
M.LearningRateScheduler = base.define('LearningRateScheduler', {by = 'epoch'}, {
   init = function(self)
      local s = self.schedule
      local callable = type(s) == 'function' or (type(s) == 'table' and getmetatable(s) and getmetatable(s).__call)
      if not callable then
         error('callbacks.LearningRateScheduler needs a schedule: a function of t, or optim.schedules.NAME{...}', 0)
      end
      if self.by ~= 'epoch' and self.by ~= 'step' then
         error("callbacks.LearningRateScheduler: by must be 'epoch' or 'step', got " .. tostring(self.by), 0)
      end
      local factor = require('kbl.optim.schedules').is_factor(s)
      if self.relative == false and factor then
         error(string.format('callbacks.LearningRateScheduler: %s names no lr, so it gives a factor (from 1), and '
            .. 'relative = false would make that the rate; give it lr, or leave relative out', tostring(s)), 0)
      end
      if self.relative == nil then self.relative = factor end
   end,
   on_stage_begin = function(self, ctx) self.base_lr = ctx.optimizer:get_lr() end,
   set = function(self, ctx, t)
      local v = self.schedule(t)
      if type(v) ~= 'number' or v ~= v or v < 0 then
         error(string.format('LearningRateScheduler: the schedule gave %s at t = %d', tostring(v), t), 0)
      end
      ctx.optimizer:set_lr(self.relative and v * (self.base_lr or ctx.optimizer:get_lr()) or v)
   end,
   on_epoch_begin = function(self, ctx, epoch) if self.by == 'epoch' then self:set(ctx, epoch) end end,
   on_batch_begin = function(self, ctx, step) if self.by == 'step' then self:set(ctx, step) end end,
   state = function(self) return {base_lr = self.base_lr} end,
   set_state = function(self, s) self.base_lr = s.base_lr end,
}, {positional = 'schedule', optional = {'schedule', 'relative'}})

return M
