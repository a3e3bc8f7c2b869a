-- bench/data_records_large.lua — a record dataset larger than the memory kbl
-- may use streams through an epoch with flat RSS (issue 21).
--   bin/kbl bench/data_records_large.lua gen DIR GB     -- GB of random uint8 [3, 64, 64] rows
--   prlimit --as=$((1536 << 20)) bin/kbl bench/data_records_large.lua run DIR
-- run streams one shuffled epoch (shuffle buffer 2000 rows, batch 128) and
-- prints the RSS (VmRSS) every 10% of the epoch, its peak (VmHWM), the rows and
-- the rate.
local kbl = require 'kbl'
local data = require 'kbl.data'
local records = require 'kbl.data.records'
local clock = require 'kbl.clock'

local mode, dir, gb = arg[1], arg[2], tonumber(arg[3] or '3')
assert(mode == 'gen' or mode == 'run', 'usage: gen DIR GB | run DIR')

local function status(key)
   local f = io.open('/proc/self/status')
   local text = f:read('*a')
   f:close()
   return tonumber(text:match(key .. ':%s+(%d+) kB')) / 1024
end

if mode == 'gen' then
   local row = 3 * 64 * 64
   local per_shard = math.floor(64 * 1048576 / (row + 8))
   local total = math.floor(gb * 1e9 / row)
   local w = records.writer(dir, {x = {dtype = 'uint8', shape = {3, 64, 64}, scale = 1 / 255},
      y = {dtype = 'int64', shape = {}}, meta = {num_classes = 10}})
   kbl.manual_seed(1)
   local done = 0
   while done < total do
      local n = math.min(per_shard, total - done)
      kbl.scope(function()
         local x = (kbl.rand({n, 3, 64, 64}) * 255):to('uint8')
         local y = (kbl.rand({n}) * 10):to('int64') + 1
         w:add('train', x, y)
      end)
      done = done + n
      io.write(string.format('\r%d / %d rows', done, total))
      io.flush()
   end
   w:close()
   print(string.format('\nwrote %d rows (%.2f GB of pixels) to %s', total, total * row / 1e9, dir))
   return
end

local src = data.records{dir = dir, buffer = 2000}
local n = src:size('train')
local pipe = src:split('train'):shuffle{seed = 1}:batch(128)
local batches = pipe:num_batches()
local t0, rows, k = clock.now(), 0, 0
local sum = 0
print(string.format('%d rows (%.2f GB as uint8, %.2f GB as float32 batches); RSS at start %.0f MB', n,
   n * 3 * 64 * 64 / 1e9, n * 3 * 64 * 64 * 4 / 1e9, status('VmRSS')))
for b in pipe:iter() do
   rows = rows + b.x:size(1)
   k = k + 1
   sum = sum + b.x:narrow(1, 1, 1):sum():item() -- touch the data
   if k % math.max(1, math.floor(batches / 10)) == 0 then
      print(string.format('%3d%%  RSS %.0f MB', math.floor(100 * k / batches), status('VmRSS')))
   end
end
local dt = clock.now() - t0
print(string.format('epoch: %d rows in %.1f s (%.0f rows/s, %.0f MB/s of pixels); peak RSS (VmHWM) %.0f MB',
   rows, dt, rows / dt, rows * 3 * 64 * 64 / dt / 1e6, status('VmHWM')))
