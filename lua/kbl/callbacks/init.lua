--- kbl.callbacks: hooks into the trainer (kbl.fit). A callback is a table with
-- any of on_train_begin(ctx), on_stage_begin(ctx, stage), on_epoch_begin(ctx,
-- epoch), on_batch_begin(ctx, step), on_batch_end(ctx, step, logs),
-- on_epoch_end(ctx, epoch, logs), on_train_end(ctx, logs), where ctx is the
-- trainer (ctx.model, ctx.optimizer, ctx.step, ctx.epoch, ctx.history,
-- ctx.run_dir). A hook returns its decision: nil to go on, 'stop' to end the
-- run after this epoch, 'stop_now' after this step. state()/set_state(s) keep
-- what a checkpoint holds, keyed by the callback's `key` or name.
--
--   callbacks.EarlyStopping{monitor = 'val_loss', patience = 3}
--   callbacks.LambdaCallback{on_epoch_end = function(ctx, epoch, logs) print(logs.loss) end}
local base = require 'kbl.callbacks.base'

local M = {}
M.define, M.auto_mode, M.improves, M.monitored = base.define, base.auto_mode, base.improves, base.monitored

-- LambdaCallback{on_epoch_end = fn, ...}: any hooks as functions.
local HOOKS = {'on_train_begin', 'on_stage_begin', 'on_epoch_begin', 'on_batch_begin', 'on_batch_end',
   'on_epoch_end', 'on_train_end', 'state', 'set_state'}
--- A callback of hooks given as functions: on_train_begin(ctx), on_stage_begin(ctx, stage),
-- on_epoch_begin(ctx, epoch), on_batch_begin(ctx, step), on_batch_end(ctx, step, logs),
-- on_epoch_end(ctx, epoch, logs), on_train_end(ctx, logs), state(), set_state(s).
-- A hook returns nil to go on, 'stop' to end after this epoch, 'stop_now' after this step.
-- @usage callbacks.LambdaCallback{on_epoch_end = function(ctx, epoch, logs) print(epoch, logs.loss) end}
M.LambdaCallback = base.define('LambdaCallback', {}, {
   init = function(self)
      for _, h in ipairs(HOOKS) do
         local fn = rawget(self, h)
         if fn ~= nil then
            if type(fn) ~= 'function' then
               error(string.format('callbacks.LambdaCallback: %s must be a function, got %s', h, type(fn)), 0)
            end
            self[h] = function(_, ...) return fn(...) end
         end
      end
   end,
}, {optional = HOOKS})

--- Stops the run on a NaN or infinite loss, before that step's update, naming the step.
-- The trainer adds one unless terminate_on_nan = false.
-- @usage callbacks.TerminateOnNaN{}
M.TerminateOnNaN = base.define('TerminateOnNaN', {}, {
   check_loss = function(_, ctx, value)
      if value == value and value ~= math.huge and value ~= -math.huge then return nil end
      return string.format('loss is %s at step %d (epoch %d, batch %d)', tostring(value), ctx.step + 1,
         ctx.epoch, ctx.batches_done + 1)
   end,
})

local monitor = require 'kbl.callbacks.monitor'
M.EarlyStopping = monitor.EarlyStopping
M.ReduceLROnPlateau = monitor.ReduceLROnPlateau
M.LearningRateScheduler = require('kbl.callbacks.scheduler').LearningRateScheduler
local loggers = require 'kbl.callbacks.loggers'
M.CSVLogger = loggers.CSVLogger
M.JSONLinesLogger = loggers.JSONLinesLogger
M.ModelCheckpoint = require('kbl.callbacks.checkpoint').ModelCheckpoint
M.Progress = require('kbl.callbacks.progress').Progress

return M
