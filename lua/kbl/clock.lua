--- kbl.clock: a monotonic wall clock in seconds (clock_gettime), for timings
-- in the training loop and the benchmarks; os.clock counts CPU time of all
-- threads and so misleads as soon as work runs in parallel.
local ffi = require 'ffi'

pcall(ffi.cdef, [[
typedef struct kbl_timespec { long tv_sec; long tv_nsec; } kbl_timespec;
int clock_gettime(int clk_id, kbl_timespec *tp);
]])

local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
local ts = ffi.new('kbl_timespec')

local M = {}

function M.now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Seconds since the epoch (CLOCK_REALTIME): the time stamps of records that
-- other programs read (TensorBoard's event files).
function M.wall()
   ffi.C.clock_gettime(CLOCK_REALTIME, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Seconds per call of fn: the median of `trials` timings of `iters` calls each,
-- after `warmup` calls; opts.clock reads another clock (os.clock: CPU time).
function M.time(fn, opts)
   opts = opts or {}
   local tick = opts.clock or M.now
   for _ = 1, opts.warmup or 3 do fn() end
   local times = {}
   for t = 1, opts.trials or 5 do
      local t0 = tick()
      for _ = 1, opts.iters or 10 do fn() end
      times[t] = (tick() - t0) / (opts.iters or 10)
   end
   table.sort(times)
   return times[math.ceil(#times / 2)]
end

return M
