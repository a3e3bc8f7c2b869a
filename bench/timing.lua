-- bench/timing.lua — the kbl sides' timer, the twin of bench/timing.py: the
-- median seconds per call over `trials` timings of `iters` calls, after
-- `warmup` calls (kbl.clock.time), and the thread counts to try (1 and 2).
-- BENCH_CLOCK=cpu times in CPU seconds of the process instead, at one thread
-- only: on a machine other jobs keep busy, wall time mostly measures them.
-- Also the line a bench prints for each of its targets (issue 13's).
-- Loaded with dofile; returns {time = fn(fn, opts), threads = {...}, cpu = bool,
-- target = fn(what, ok, detail)}.
local clock = require 'kbl.clock'

local cpu = os.getenv('BENCH_CLOCK') == 'cpu'

local function cpu_time(fn, opts)
   local o = {clock = os.clock}
   for k, v in pairs(opts or {}) do o[k] = v end
   return clock.time(fn, o)
end

local function target(what, ok, detail)
   print(string.format('target %-52s %-7s %s', what, ok and 'MET' or 'MISSED', detail))
end

return {time = cpu and cpu_time or clock.time, threads = cpu and {1} or {1, 2}, cpu = cpu, target = target}
