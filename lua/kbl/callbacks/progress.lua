--- kbl.callbacks.progress: what a run shows while it trains. On a terminal, a
-- bar per epoch redrawn in place (step/total, ETA, loss, metrics, samples/s);
-- otherwise (a pipe, a log file) one plain line per epoch. The epoch line
-- carries the validation results, the learning rate and the time spent in
-- each phase (data, forward, backward, update). The trainer adds one unless
-- quiet. The terminal's width is ioctl(TIOCGWINSZ) through the FFI, written
-- here because no Debian Lua library reads it (lua-posix 33 binds no ioctl;
-- lua-term and lua-system offer isatty and clocks only).
local ffi = require 'ffi'
local base = require 'kbl.callbacks.base'

local M = {}

-- ---- the terminal's width -----------------------------------------------------
pcall(ffi.cdef, [[
struct kbl_winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; };
int kbl_progress_ioctl(int fd, unsigned long request, ...) __asm__("ioctl");
]])
local TIOCGWINSZ = ffi.os == 'OSX' and 0x40087468 or 0x5413

-- The columns of the terminal on fd (TIOCGWINSZ), or nil when fd is not one.
function M.terminal_width(fd)
   local ws = ffi.new('struct kbl_winsize')
   if ffi.C.kbl_progress_ioctl(fd, TIOCGWINSZ, ws) == 0 and ws.ws_col > 0 then return ws.ws_col end
   return nil
end

-- The width to keep lines within when writing to out: the terminal's
-- (stdout's or stderr's), else $COLUMNS, else nil (a file or a pipe: no limit).
local function width_of(out)
   local fd = (out == io.stdout and 1) or (out == io.stderr and 2) or nil
   local w = fd and M.terminal_width(fd)
   if w then return w end
   if fd and require('kbl.fit').isatty(fd) then return tonumber(os.getenv('COLUMNS') or '') or 80 end
   return nil
end

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

-- The parts of the line for a finished epoch: {text, drop = rank} where parts
-- with a drop rank are left out first (highest first) to fit a width.
local function epoch_parts(ctx, epoch, logs)
   local parts = {{string.format('epoch %d/%d', epoch, ctx:total_epochs())},
      {string.format('%d steps', ctx.epoch_steps or 0), drop = 1},
      {string.format('%.1fs', logs.time or 0), drop = 2}}
   local keys = {}
   for k, v in pairs(logs) do if not SKIP[k] and type(v) == 'number' then keys[#keys + 1] = k end end
   require('kbl.callbacks.loggers').order(keys)
   for _, k in ipairs(keys) do parts[#parts + 1] = {k .. ' ' .. fmt_value(logs[k])} end
   if logs.lr then parts[#parts + 1] = {string.format('lr %.3g', logs.lr)} end
   parts[#parts + 1] = {string.format('%.0f samples/s', logs.samples_per_sec or 0), drop = 3}
   parts[#parts + 1] = {string.format('[data %.1fs  forward %.1fs  backward %.1fs  update %.1fs]',
      logs.time_data or 0, logs.time_forward or 0, logs.time_backward or 0, logs.time_update or 0), drop = 4}
   return parts
end

-- Parts joined by two spaces within width (nil: no limit): the droppable ones
-- left out, highest rank first, until it fits; what still does not fit goes
-- on following lines, indented, broken between parts.
function M.fit_parts(parts, width)
   local function join(ps)
      local t = {}
      for _, p in ipairs(ps) do t[#t + 1] = p[1] end
      return table.concat(t, '  ')
   end
   if not width or #join(parts) <= width - 1 then return join(parts) end
   local kept = parts
   for rank = 4, 1, -1 do
      local next_kept = {}
      for _, p in ipairs(kept) do if p.drop ~= rank then next_kept[#next_kept + 1] = p end end
      kept = next_kept
      if #join(kept) <= width - 1 then return join(kept) end
   end
   local lines, line = {}, nil
   for _, p in ipairs(kept) do
      if line and #line + 2 + #p[1] > width - 1 then
         lines[#lines + 1] = line
         line = '  ' .. p[1]
      else
         line = line and (line .. '  ' .. p[1]) or p[1]
      end
   end
   lines[#lines + 1] = line
   return table.concat(lines, '\n')
end

-- The plain line for a finished epoch; within width when given (a terminal's).
function M.epoch_line(ctx, epoch, logs, width)
   return M.fit_parts(epoch_parts(ctx, epoch, logs), width)
end

--- The progress display: a bar with ETA, loss, metrics and samples/s on a terminal, plain lines otherwise.
-- @option mode 'auto' (a bar on a terminal), 'bar' or 'lines'
-- @option out where it writes (io.stdout)
-- @option width a fixed width (default: the terminal's, asked at each redraw)
-- @usage callbacks.Progress{mode = 'lines'}
M.Progress = base.define('Progress', {mode = 'auto'}, {
   init = function(self)
      self.out = self.out or io.stdout
      if self.mode == 'auto' then
         self.mode = (self.out == io.stdout and require('kbl.fit').isatty(1)) and 'bar' or 'lines'
      end
   end,
   -- the width now: the option, the terminal's; a bar drawn elsewhere takes
   -- $COLUMNS, else 100
   current_width = function(self)
      local w = self.width or width_of(self.out)
      if not w and self.mode == 'bar' then w = tonumber(os.getenv('COLUMNS') or '') or 100 end
      return w
   end,
   on_stage_begin = function(self, ctx, stage)
      if #ctx.stages < 2 then return end
      local bits = {require('kbl.util').plural(stage.epochs, 'epoch')}
      if ctx.optimizer and ctx.optimizer.get_lr then
         bits[#bits + 1] = string.format('lr %.3g', ctx.optimizer:get_lr())
      end
      -- a stage inherits freeze from the one before; what it unfreezes trains
      local function list(v) return type(v) == 'string' and {v} or v or {} end
      local thawed, frozen = {}, {}
      for _, p in ipairs(list(stage.unfreeze)) do thawed[p] = true end
      for _, p in ipairs(list(stage.freeze)) do if not thawed[p] then frozen[#frozen + 1] = p end end
      if #frozen > 0 then bits[#bits + 1] = 'frozen ' .. table.concat(frozen, ', ') end
      if #list(stage.unfreeze) > 0 then bits[#bits + 1] = 'training ' .. table.concat(list(stage.unfreeze), ', ') end
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
      -- one screen line at most, so that \r returns to its start: redrawn in place
      local width = self:current_width()
      if #line > width - 1 then line = line:sub(1, width - 1) end
      self.out:write('\r', line, '\27[K')
      self.out:flush()
   end,
   on_epoch_end = function(self, ctx, epoch, logs)
      if self.mode == 'bar' then self.out:write('\r\27[K') end
      self.out:write(M.epoch_line(ctx, epoch, logs, self:current_width()), '\n')
      self.out:flush()
   end,
}, {optional = {'out', 'width'}})

return M
