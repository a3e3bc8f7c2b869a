-- kbl.callbacks.progress: what a run shows while it trains. On a terminal, a
-- bar per epoch redrawn in place (step/total, ETA, loss, metrics, samples/s);
-- otherwise (a pipe, a log file) one plain line per epoch. The epoch line
-- carries the validation results, the learning rate and the time spent in
-- each phase (data, forward, backward, update). The trainer adds one unless
-- quiet.
local base = require 'kbl.callbacks.base'

local M = {}

local clock = require('kbl.clock').now

local function fmt_time(s)
   s = math.max(0, math.floor(s + 0.5))
   if s >= 3600 then return string.format('%d:%02d:%02d', math.floor(s / 3600), math.floor(s % 3600 / 60), s % 60) end
   return string.format('%d:%02d', math.floor(s / 60), s % 60)
end
M.fmt_time = fmt_time

local function fmt_value(v)
   if type(v) ~= 'number' then return tostring(v) end
   if v ~= v then return 'nan' end
   local a = math.abs(v)
   if a ~= 0 and (a < 1e-3 or a >= 1e5) then return string.format('%.3e', v) end
   return string.format('%.4f', v)
end
M.fmt_value = fmt_value

local SKIP = {epoch = true, step = true, stage = true, lr = true, time = true, samples_per_sec = true,
   time_data = true, time_forward = true, time_backward = true, time_update = true, time_validation = true}

-- "loss 0.3121  accuracy 0.8852  val_loss ..." in the loggers' column order.
function M.metrics_text(logs)
   local keys = {}
   for k, v in pairs(logs) do if not SKIP[k] and type(v) == 'number' then keys[#keys + 1] = k end end
   require('kbl.callbacks.loggers').order(keys)
   local parts = {}
   for _, k in ipairs(keys) do parts[#parts + 1] = k .. ' ' .. fmt_value(logs[k]) end
   return table.concat(parts, '  ')
end

-- The plain line for a finished epoch.
function M.epoch_line(ctx, epoch, logs)
   local parts = {string.format('epoch %d/%d', epoch, ctx:total_epochs()),
      string.format('%d steps', ctx.epoch_steps or 0),
      string.format('%.1fs', logs.time or 0), M.metrics_text(logs)}
   if logs.lr then parts[#parts + 1] = string.format('lr %.3g', logs.lr) end
   parts[#parts + 1] = string.format('%.0f samples/s', logs.samples_per_sec or 0)
   parts[#parts + 1] = string.format('[data %.1fs  forward %.1fs  backward %.1fs  update %.1fs]',
      logs.time_data or 0, logs.time_forward or 0, logs.time_backward or 0, logs.time_update or 0)
   return table.concat(parts, '  ')
end

-- Progress{mode = 'auto' | 'bar' | 'lines', out = io.stdout}
M.Progress = base.define('Progress', {mode = 'auto'}, {
   init = function(self)
      self.out = self.out or io.stdout
      if self.mode == 'auto' then
         self.mode = (self.out == io.stdout and require('kbl.fit').isatty(1)) and 'bar' or 'lines'
      end
      local cols = tonumber(os.getenv('COLUMNS') or '')
      self.width = cols and cols > 40 and cols or 100
   end,
   on_stage_begin = function(self, ctx, stage)
      if #ctx.stages < 2 then return end
      local bits = {string.format('%d epochs', stage.epochs)}
      if ctx.optimizer and ctx.optimizer.get_lr then
         bits[#bits + 1] = string.format('lr %.3g', ctx.optimizer:get_lr())
      end
      local frozen = type(stage.freeze) == 'string' and {stage.freeze} or stage.freeze or {}
      if #frozen > 0 then bits[#bits + 1] = 'frozen ' .. table.concat(frozen, ', ') end
      self.out:write(string.format('stage %d/%d (%s): %s\n', stage.index, #ctx.stages, stage.name or '',
         table.concat(bits, ', ')))
      self.out:flush()
   end,
   on_epoch_begin = function(self)
      self.last_draw = 0
   end,
   on_batch_end = function(self, ctx)
      if self.mode ~= 'bar' then return end
      local t = clock()
      local total = ctx.steps_in_epoch
      local done = ctx.batches_done
      if t - self.last_draw < 0.1 and done ~= total then return end
      self.last_draw = t
      local elapsed = t - ctx.epoch_start
      local head = string.format('epoch %d/%d ', ctx.epoch, ctx:total_epochs())
      local bar
      if total then
         local w = 24
         local filled = math.floor(w * done / total)
         bar = '[' .. string.rep('=', filled) .. (filled < w and '>' or '')
            .. string.rep(' ', math.max(0, w - filled - 1)) .. string.format('] %d/%d', done, total)
         local eta = done > 0 and elapsed / done * (total - done) or 0
         bar = bar .. '  ETA ' .. fmt_time(eta)
      else
         bar = string.format('%d steps', done)
      end
      local rate = elapsed > 0 and ctx.run_samples / elapsed or 0
      local line = string.format('%s%s  %s  %.0f samples/s', head, bar, M.metrics_text(ctx:running_logs()), rate)
      if #line > self.width - 1 then line = line:sub(1, self.width - 1) end
      self.out:write('\r', line, '\27[K')
      self.out:flush()
   end,
   on_epoch_end = function(self, ctx, epoch, logs)
      if self.mode == 'bar' then self.out:write('\r\27[K') end
      self.out:write(M.epoch_line(ctx, epoch, logs), '\n')
      self.out:flush()
   end,
}, {optional = {'out'}})

return M
