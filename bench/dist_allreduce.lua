-- bench/dist_allreduce.lua: kbl.dist.all_reduce of float32 tensors of the
-- sizes given (bytes), the median of timed calls after warm-up, as
-- bench/dist_allreduce.c times MPI_Allreduce; rank 0 prints "size_bytes seconds".
--   mpirun -n 2 bin/kbl bench/dist_allreduce.lua 4096 1048576 ...
local kbl = require 'kbl'
local dist = kbl.dist
local now = require('kbl.clock').now
for _, a in ipairs(arg) do
   local bytes = tonumber(a)
   local t = kbl.zeros{math.floor(bytes / 4)}
   local reps = bytes >= 2 ^ 22 and 20 or 100
   for _ = 1, 5 do dist.all_reduce(t) end
   local times = {}
   for r = 1, reps do
      dist.barrier()
      local t0 = now()
      dist.all_reduce(t)
      times[r] = now() - t0
   end
   table.sort(times)
   if dist.rank() == 0 then print(string.format('%d %.9f', bytes, times[math.floor(reps / 2) + 1])) end
end
