--- kbl.profile.bench: how fast an experiment trains, before a long run: the
-- experiment's model, data and optimizer built as `kbl run` builds them, then
-- timed three ways: the training step alone on synthetic batches (the shapes
-- and dtypes of the real ones, kept in memory), the data pipeline alone, and
-- the two together as fit runs them. Each gives steps/s, samples/s and the
-- peak RSS while it ran. When the pipeline alone gives fewer samples/s than
-- the step alone takes, the experiment is input-bound.
--
--   local r = require('kbl.profile.bench').experiment({'examples/fashion_mnist_cnn.lua'}, {steps = 20})
--   r.train_step.samples_per_sec, r.data.samples_per_sec, r.together.steps_per_sec, r.input_bound
local kbl = require 'kbl'
local now = require('kbl.clock').now

local M = {}

-- ---- peak RSS ----------------------------------------------------------------

local function status_kib(field)
   local text = require('kbl.io.fs').read('/proc/self/status')
   if not text then return nil end
   return tonumber(text:match(field .. ':%s*(%d+)'))
end

-- The process's peak RSS in MiB (VmHWM), or nil where /proc has none.
function M.peak_rss_mib()
   local k = status_kib('VmHWM')
   return k and k / 1024 or nil
end

-- Starts a new peak at the current RSS (Linux: writing 5 to clear_refs), so
-- that each measurement reports its own; false where that is not allowed.
function M.reset_peak()
   local f = io.open('/proc/self/clear_refs', 'w')
   if not f then return false end
   local ok = f:write('5')
   f:close()
   return ok and true or false
end

-- ---- the three measurements ----------------------------------------------------

-- A batch of the shapes and dtypes of `real`, made in memory: float x drawn
-- from a normal distribution, other x (token ids, raw bytes) and y copied, so
-- that labels stay in range.
local function synthetic(real)
   local x = real.x
   if x.dtype == 'float32' or x.dtype == 'float64' then
      x = kbl.randn(x:size(), {dtype = x.dtype})
   else
      x = x:clone()
   end
   local y = kbl.is_tensor(real.y) and real.y:clone() or real.y
   return {x = kbl.keep(x), y = y and kbl.is_tensor(y) and kbl.keep(y) or y}
end

-- Runs fn(k) for warmup then n calls; fn returns the samples it handled (or
-- nil when it has no more). Returns {steps_per_sec, samples_per_sec,
-- ms_per_step, steps, samples, seconds, peak_rss_mib}.
local function measure(n, warmup, fn)
   for k = 1, warmup do fn(k) end
   local reset = M.reset_peak()
   local t0, samples, steps = now(), 0, 0
   for k = 1, n do
      local s = fn(warmup + k)
      if not s then break end
      samples, steps = samples + s, steps + 1
   end
   local dt = now() - t0
   return {steps = steps, samples = samples, seconds = dt, steps_per_sec = dt > 0 and steps / dt or 0,
      samples_per_sec = dt > 0 and samples / dt or 0, ms_per_step = steps > 0 and 1e3 * dt / steps or 0,
      peak_rss_mib = reset and M.peak_rss_mib() or nil}
end

-- Batches of the training pipeline without end: a new epoch when one ends.
local function batches(pipe)
   local it = pipe:iter()
   return function()
      local b = it()
      if b == nil then
         it = pipe:iter()
         b = it()
      end
      return b
   end
end

-- Benchmarks the experiment of files (config files or names, composed as by
-- kbl run). opts: set (a list of key=value), steps (20), warmup (3).
function M.experiment(files, opts)
   opts = opts or {}
   local steps, warmup = opts.steps or 20, opts.warmup or 3
   local trainer = require('kbl.commands.run').build_trainer(files, {set = opts.set or {}, quiet = true,
      command = 'kbl bench ' .. table.concat(files, ' ')})
   local ok, res = pcall(function()
      trainer:build()
      -- the first stage's freezing, optimizer and rate, without the callbacks (nothing is recorded)
      local cbs = trainer.callbacks
      trainer.callbacks = {}
      trainer:enter_stage(1)
      trainer.phase = {data = 0, forward = 0, backward = 0, update = 0}
      trainer.model:train()
      local next_batch = batches(trainer.train_pipe)
      local real = next_batch()
      if not real then error('kbl bench: the training split gave no batch', 0) end
      local fake = synthetic(real)
      local bs = fake.x:size(1)
      local r = {name = tostring(trainer.name), files = files, batch_size = bs, steps = steps, warmup = warmup,
         threads = kbl.get_num_threads(), device = trainer.device}
      r.train_step = measure(steps, warmup, function()
         local _, n = trainer:train_step(fake)
         return n
      end)
      r.data = measure(steps, warmup, function()
         local b = next_batch()
         return b and b.x:size(1)
      end)
      r.together = measure(steps, warmup, function()
         local b = next_batch()
         if not b then return nil end
         local _, n = trainer:train_step(b)
         return n
      end)
      trainer.callbacks = cbs
      if trainer.train_pipe.close then trainer.train_pipe:close() end
      r.peak_rss_mib = M.peak_rss_mib()
      r.input_bound = r.data.samples_per_sec < r.train_step.samples_per_sec
      return r
   end)
   if trainer.restore_defaults then trainer.restore_defaults() end
   if not ok then error(res, 0) end
   return res
end

-- ---- output --------------------------------------------------------------------

local function rss(v) return v and string.format('%.0f', v) or '-' end

-- The report as text.
function M.text(r)
   local lines = {string.format('bench %s (%s): batch %d, %d steps after %d warm-up, %d threads, %s', r.name,
      table.concat(r.files, ' '), r.batch_size, r.steps, r.warmup, r.threads, r.device)}
   lines[#lines + 1] = string.format('%-26s %9s %11s %9s %13s', '', 'steps/s', 'samples/s', 'ms/step', 'peak RSS MiB')
   for _, k in ipairs{{'train_step', 'train step (synthetic)'}, {'data', 'data pipeline alone'},
                      {'together', 'both (as fit runs them)'}} do
      local m = r[k[1]]
      lines[#lines + 1] = string.format('%-26s %9.2f %11.1f %9.2f %13s', k[2], m.steps_per_sec, m.samples_per_sec,
         m.ms_per_step, rss(m.peak_rss_mib))
   end
   local ratio = r.train_step.samples_per_sec > 0 and r.data.samples_per_sec / r.train_step.samples_per_sec or 0
   lines[#lines + 1] = string.format('%s: the pipeline alone gives %.1fx the samples/s the step takes; '
      .. 'peak RSS %s MiB', r.input_bound and 'input-bound' or 'not input-bound', ratio, rss(r.peak_rss_mib))
   return table.concat(lines, '\n')
end

-- The report as one JSON object.
function M.json(r)
   local json = require 'dkjson'
   local out = {}
   for k, v in pairs(r) do out[k] = v end
   return json.encode(out, {keyorder = {'name', 'files', 'batch_size', 'steps', 'warmup', 'threads', 'device',
      'train_step', 'data', 'together', 'peak_rss_mib', 'input_bound'}})
end

return M
