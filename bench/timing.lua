-- bench/timing.lua — the kbl sides' timer, the twin of bench/timing.py: the
-- median seconds per call over `trials` timings of `iters` calls, after
-- `warmup` calls (kbl.clock.time), and the thread counts to try (1 and 2).
-- BENCH_CLOCK=cpu times in CPU seconds of the process instead, at one thread
-- only: on a machine other jobs keep busy, wall time mostly measures them.
-- Loaded with dofile; returns {time = fn(fn, opts), threads = {...}, cpu = bool}.
local clock = require 'kbl.clock'

local cpu = os.getenv('BENCH_CLOCK') == 'cpu'

local function cpu_time(fn, opts)
   opts = opts or {}
   for _ = 1, opts.warmup or 3 do fn() end
   local times = {}
   for t = 1, opts.trials or 5 do
      local t0 = os.clock()
      for _ = 1, opts.iters or 10 do fn() end
      times[t] = (os.clock() - t0) / (opts.iters or 10)
   end
   table.sort(times)
   return times[math.ceil(#times / 2)]
end

return {time = cpu and cpu_time or clock.time, threads = cpu and {1} or {1, 2}, cpu = cpu}
