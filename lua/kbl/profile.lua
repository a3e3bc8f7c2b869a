--- kbl.profile: what a stretch of training spends its time on. While a profile
-- records, every op (forward, and each backward node of the graph), every
-- data-pipeline stage and every optimizer update is an event with its thread
-- and duration; at the end the events become a table (the ops by time, with
-- calls, share of the time and GFLOP/s where the op has a flop count, and
-- whether data, ops or Lua overhead bound the steps) and a Chrome trace
-- (trace.json, for Perfetto or chrome://tracing).
--
--   local p = kbl.profile(function() ... end, {path = 'trace.json'})   -- prints the table
--   p.rows[1].name, p.bound, p.data, p.compute, p.other, p:text(), p:write_trace(path)
--
-- In a run: `kbl run EXP --profile 10:20` or the config key profile = {from =
-- 10, to = 20} records steps 10 to 20 (counted from 1 over the run) and
-- writes trace.json and profile.txt in the run directory.
--
-- Nothing of the profiler runs while none records: its Lua wrappers are put
-- in place when a profile starts and taken out when it ends (kbl.profile.hooks),
-- and the C side (backward nodes, prefetch threads) tests one flag.
local ffi = require 'ffi'
local C = require('kbl.lib').C
local now = require('kbl.clock').now
local R = require 'kbl.profile.recorder'
local hooks = require 'kbl.profile.hooks'
local flops = require 'kbl.profile.flops'
local report = require 'kbl.profile.report'

local M = {}

-- ---- a recording session --------------------------------------------------------

local Session = {}
Session.__index = Session

-- Starts recording (paused): wrappers in place, buffers empty.
function M.start()
   if hooks.is_installed() then error('kbl.profile: a profile is recording already', 3) end
   R.reset()
   C.kbl_profile_clear()
   hooks.install()
   return setmetatable({spans = {}, main_tid = C.kbl_profile_thread_id(), event_cost = hooks.event_cost()}, Session)
end

function Session.resume()
   R.on = true
   C.kbl_profile_enable(1)
end

function Session.pause()
   R.on = false
   C.kbl_profile_enable(0)
end

-- A profiled span of the main thread (a step): events count when inside one.
function Session:span(name, t0, t1, args)
   self.spans[#self.spans + 1] = {name = name, t0 = t0, t1 = t1, args = args}
end

local function shape_list(e, slot)
   local n = e.ndim[slot]
   if n < 0 then return nil end
   local s = {}
   for d = 0, n - 1 do s[d + 1] = tonumber(e.shape[slot][d]) end
   return s
end

local function shape_text(s) return s and ('[' .. table.concat(s, ',') .. ']') or nil end

-- The events C recorded (backward nodes, prefetch threads), as Lua events.
local function c_events()
   local out = {}
   local n = tonumber(C.kbl_profile_count())
   if n == 0 then return out end
   local buf = ffi.new('kbl_profile_event[?]', n)
   local got = tonumber(C.kbl_profile_take(buf, n))
   for k = 0, got - 1 do
      local e = buf[k]
      local name = ffi.string(e.name)
      local ev = {t0 = e.start, t1 = e['end'], tid = e.tid}
      if e.kind == C.KBL_PROFILE_BACKWARD then
         local out_s, a, b = shape_list(e, 0), shape_list(e, 1), shape_list(e, 2)
         ev.name, ev.cat = name .. ' (backward)', 'backward'
         ev.flops = flops.backward(name, out_s, a, b, e.needs_grad)
         ev.args = a and (b and shape_text(a) .. ' ' .. shape_text(b) or shape_text(a)) or nil
      else
         ev.name, ev.cat = name, 'data'
      end
      out[#out + 1] = ev
   end
   return out
end

-- Stops recording, takes the wrappers out and returns the profile
-- (kbl.profile.report). opts: title, top.
function Session:stop(opts)
   opts = opts or {}
   self:pause()
   hooks.uninstall()
   local events = R.events()
   for _, ev in ipairs(events) do ev.tid = self.main_tid end
   for _, ev in ipairs(c_events()) do events[#events + 1] = ev end
   local dropped = tonumber(C.kbl_profile_dropped())
   C.kbl_profile_clear()
   R.reset()
   return report.build(events, self.spans, {main_tid = self.main_tid, title = opts.title, top = opts.top,
      event_cost = self.event_cost, dropped = dropped, unit = opts.unit})
end

-- ---- kbl.profile(fn, opts) ---------------------------------------------------------

-- Runs fn() while recording; returns the profile, with fn's results after
-- it. opts: path (write the trace there), print (false: do not print the
-- table), top (rows shown, default 15), title.
function M.profile(fn, opts)
   if type(fn) ~= 'function' then error('kbl.profile: expects a function to profile, got ' .. type(fn), 2) end
   opts = opts or {}
   if type(opts) ~= 'table' then error('kbl.profile: options must be a table {path =, print =, top =}', 2) end
   local s = M.start()
   s:resume()
   local t0 = now()
   local res = {pcall(fn)}
   local t1 = now()
   s:span('profile', t0, t1)
   local p = s:stop{title = opts.title or 'kbl.profile', top = opts.top, unit = 'run'}
   if not res[1] then error(res[2], 0) end
   if opts.path then p:write_trace(opts.path) end
   if opts.print ~= false then print(p:text()) end
   return p, unpack(res, 2, table.maxn(res))
end

-- ---- the steps of a run ---------------------------------------------------------------

-- '10:20' (or '10') -> 10, 20; a clear error for anything else.
function M.parse_steps(text, what)
   what = what or '--profile'
   local a, b = tostring(text):match('^%s*(%d+)%s*:%s*(%d+)%s*$')
   if not a then a = tostring(text):match('^%s*(%d+)%s*$') b = a end
   a, b = tonumber(a), tonumber(b)
   if not a or a < 1 or b < a then
      error(string.format("%s %s: give the steps to profile as FROM:TO, such as 10:20 (steps count from 1 over "
         .. "the run, and FROM <= TO)", what, tostring(text)), 0)
   end
   return a, b
end

-- Whether v is a valid profile config value {from =, to =} (kbl.config.schema).
function M.valid_range(v)
   if type(v) ~= 'table' or getmetatable(v) ~= nil then return false end
   for k in pairs(v) do if k ~= 'from' and k ~= 'to' then return false end end
   local a, b = v.from, v.to
   return type(a) == 'number' and type(b) == 'number' and a % 1 == 0 and b % 1 == 0 and a >= 1 and b >= a
end

local TrainerProfile = {}
TrainerProfile.__index = TrainerProfile

-- The profile of a trainer's steps from..to (kbl.fit calls its methods: a
-- single test of trainer.profiler a step when none is configured).
function M.for_trainer(trainer, range)
   if not M.valid_range(range) then
      error("fit: profile must be {from = N, to = M}, steps counted from 1 with from <= to", 0)
   end
   return setmetatable({trainer = trainer, from = range.from, to = range.to}, TrainerProfile)
end

-- Before step `step` fetches its batch.
function TrainerProfile:step_begin(step)
   if self.done or step < self.from or step > self.to then return end
   if not self.session then self.session = M.start() end
   -- the live iteration of the training pipeline: its stages, already under way
   hooks.wrap_live(self.trainer.train_pipe)
   self.step, self.t0 = step, now()  -- a step begun whose batch never came is begun again
   self.session:resume()
end

-- A phase of the step (data, forward, backward, update), timed by kbl.fit.
function TrainerProfile:phase(name, t0, t1)
   if self.step then R.add(name, 'phase', t0, t1) end
end

-- The forward (with the loss and metrics), backward and update phases of a step.
function TrainerProfile:phases(t1, t2, t3, t4)
   self:phase('forward', t1, t2)
   self:phase('backward', t2, t3)
   self:phase('update', t3, t4)
end

-- After the step and its callbacks.
function TrainerProfile:step_end()
   local step = self.step
   if not step then return end
   self.session:pause()
   self.session:span('step ' .. step, self.t0, now(), step)
   self.step = nil
   if step >= self.to then self:finish() end
end

-- Ends the profile (after step `to`, or when the run ends first): writes
-- trace.json and profile.txt in the run directory, and prints the table.
function TrainerProfile:finish()
   if self.done then return end
   self.done = true
   self.step = nil
   local tr = self.trainer
   local out = tr.out or io.stdout
   if not self.session then
      local step = tr.step or 0
      out:write(step < self.from
         and string.format('profile: the run ended at step %d, before step %d; nothing was profiled\n', step, self.from)
         or string.format('profile: steps %d-%d ran before this run resumed; nothing was profiled\n', self.from,
            self.to))
      return
   end
   local spans = self.session.spans
   local first = spans[1] and spans[1].args or self.from
   local last = spans[#spans] and spans[#spans].args or first
   local p = self.session:stop{title = string.format('profile of steps %d-%d', first, last), unit = 'step'}
   self.result = p
   local text = p:text()
   if #spans > 0 and last < self.to then
      text = text .. string.format('\n(the run ended after step %d, before step %d)', last, self.to)
   end
   -- on several processes (kbl.dist), rank 0 writes trace.json and prints; the others write their own trace
   local rank = tr.dist and require('kbl.dist').rank() or 0
   if rank > 0 then
      if tr.run_dir then p:write_trace(string.format('%s/trace.rank%d.json', tr.run_dir, rank)) end
      return
   end
   if tr.run_dir then
      local path = tr.run_dir .. '/trace.json'
      p:write_trace(path)
      local f = io.open(tr.run_dir .. '/profile.txt', 'w')
      if f then
         f:write(text, '\n')
         f:close()
      end
      text = text .. '\ntrace: ' .. path .. ' (open it in ui.perfetto.dev or chrome://tracing)'
   end
   out:write(text, '\n')
   out:flush()
end

return M
