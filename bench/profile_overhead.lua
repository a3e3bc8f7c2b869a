-- bench/profile_overhead.lua — what the profiler costs: the MLP 784-256-256-10
-- training step with Adam at batch 128 (bench/mlp_step.lua) and a kbl.fit
-- training step of the same MLP on in-memory data (the loop with the
-- profiler's tests of its flag), timed with no profile recording. Run it with
-- a build from before the profiler and with this one, on the same machine, to
-- see the cost of the profiler compiled in but off (it should be none); with
-- this build it also times the step while kbl.profile records.
--   bin/kbl bench/profile_overhead.lua [--json]
local kbl = require 'kbl'
local optim = require 'kbl.optim'
local clock = require 'kbl.clock'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local mlp_step = dofile(here .. '/mlp_step.lua')
kbl.set_num_threads(1)   -- one thread: the least noise on a shared machine
kbl.manual_seed(0)

local function fit_step()
   local blocks, losses, data = require 'kbl.blocks', require 'kbl.losses', require 'kbl.data'
   local fit = require 'kbl.fit'
   local src = data.tensors{train = {x = kbl.randn(1024, 784), y = kbl.randint(1, 11, {1024})}}
   local t = fit.Trainer{model = blocks.Sequential{blocks.Dense{256, activation = 'relu'},
      blocks.Dense{256, activation = 'relu'}, blocks.Dense{10}}, data = src, loss = losses.CrossEntropy{},
      optimizer = optim.Adam{lr = 1e-3}, batch_size = 128, quiet = true, validation_split = false,
      test_split = false}
   t:build()
   t:enter_stage(1)
   -- one epoch of 8 steps through the loop's own code (run_epoch), counted per step
   return function()
      t.epoch = (t.epoch or 0) + 1
      t:run_epoch()
   end, 8
end

-- CPU seconds per call of fn (this process, every thread): the median of
-- `trials` timings of `iters` calls, after 3 warm-up calls. CPU time, not wall
-- time, so that other work on a shared machine taking the core away does not count.
local function cpu_time(fn, iters, trials)
   return clock.time(fn, {clock = os.clock, iters = iters, trials = trials, warmup = 3})
end

local step = mlp_step(optim.Adam{lr = 1e-3})
local epoch, per_epoch = fit_step()
local r = {
   mlp_step_ms = cpu_time(step, 20, 15) * 1e3,
   fit_step_ms = cpu_time(epoch, 3, 15) * 1e3 / per_epoch,
}
if kbl.profile then   -- 30 steps while a profile records, in CPU time too
   local cpu
   kbl.profile(function()
      local c0 = os.clock()
      for _ = 1, 30 do step() end
      cpu = (os.clock() - c0) / 30
   end, {print = false})
   r.mlp_step_profiled_ms = cpu * 1e3
end
if arg and arg[1] == '--json' then
   print(require('dkjson').encode(r))
else
   for _, k in ipairs{'mlp_step_ms', 'fit_step_ms', 'mlp_step_profiled_ms'} do
      if r[k] then print(string.format('%-22s %8.3f', k, r[k])) end
   end
   print('(CPU time; median of 15 trials, the profiled step the mean of 30; one thread)')
end
