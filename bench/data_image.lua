-- bench/data_image.lua — data beyond IDX (issue 21), in one run:
--  1. images per second decoded and batched from a PNG folder of the 60,000
--     Fashion-MNIST training images: data.image_folder (shuffled, batch 256,
--     decoded by stb_image on 1 or 2 prefetch threads) against torchvision's
--     ImageFolder with a DataLoader at its best worker count (bench/data_image.py,
--     /usr/bin/python3);
--  2. batches per second of record streaming (kbl data pack, shuffle buffer
--     10000, written at kbl data pack's default level) against the same data
--     in memory (data.fashion_mnist), both shuffled, batch 128, prefetch(2),
--     their epochs taken in turn.
-- Best of several epochs each (the machine is shared). The PNG folder and the
-- records are made on first use: BENCH_PNG_DIR (default /tmp/kbl_bench/fmnist_png)
-- and BENCH_RECORDS_DIR (default /tmp/kbl_bench/fmnist_records_levelL, written at zstd
-- level L = BENCH_LEVEL, default kbl data pack's); BENCH_RECORD_THREADS
-- sets data.records{threads =} (default: data.records' own).
--   bin/kbl bench/data_image.lua
local data = require 'kbl.data'
local clock = require 'kbl.clock'
local json = require 'dkjson'
local fs = require 'kbl.io.fs'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local PNG = os.getenv('BENCH_PNG_DIR') or '/tmp/kbl_bench/fmnist_png'
local LEVEL = tonumber(os.getenv('BENCH_LEVEL') or '') or require('kbl.data.records').LEVEL
local REC = os.getenv('BENCH_RECORDS_DIR') or ('/tmp/kbl_bench/fmnist_records_level' .. LEVEL)
local TRIALS = tonumber(os.getenv('TRIALS') or '3')
local kbl_cmd = here .. '/../bin/kbl'

if not fs.exists(PNG .. '/Bag') then
   print('exporting Fashion-MNIST train as PNG to ' .. PNG .. ' ...')
   assert(os.execute(kbl_cmd .. ' data export fashion_mnist --out ' .. PNG) == 0)
end
if not fs.exists(REC .. '/index.json') then
   print('packing Fashion-MNIST into records at ' .. REC .. ' ...')
   assert(os.execute(kbl_cmd .. ' data pack fashion_mnist --out ' .. REC .. ' --level=' .. LEVEL) == 0)
end

local function now() return clock.now and clock.now() or os.clock() end

-- rows/s, batches/s and batches per CPU second (os.clock: every thread of the
-- process, the steadier figure on a busy machine) of one epoch of pipe.
local function epoch_rate(pipe)
   local t0, c0, rows, batches = now(), os.clock(), 0, 0
   for b in pipe:iter() do
      rows = rows + b.x:size(1)
      batches = batches + 1
   end
   local dt = now() - t0
   return rows / dt, batches / dt, batches / (os.clock() - c0)
end

-- The best of `trials` epochs of each pipe, the pipes' epochs taken in turn
-- so that each sees the machine as the others do.
local function rates(pipes, trials)
   local best = {}
   for i = 1, #pipes do best[i] = {0, 0, 0} end
   for _ = 1, trials do
      for i, pipe in ipairs(pipes) do
         local r = {epoch_rate(pipe)}
         for k = 1, 3 do best[i][k] = math.max(best[i][k], r[k]) end
      end
   end
   return best
end

local result = {}
-- 1. image folder (BENCH_PART=records skips it)
local part = os.getenv('BENCH_PART')
if part ~= 'records' then
   local src = data.image_folder{root = PNG, channels = 1}
   assert(src:size('train') == 60000, 'expected 60000 images in ' .. PNG)
   local best_kbl, best_threads = 0, 1
   for _, threads in ipairs{1, 2} do
      local p = src:split('train'):shuffle{seed = 1}:batch(256):prefetch(4, {threads = threads})
      local r = rates({p}, TRIALS)[1][1]
      print(string.format('kbl image_folder, %d decode thread%s: %.0f images/s', threads,
         threads == 1 and '' or 's', r))
      if r > best_kbl then best_kbl, best_threads = r, threads end
   end
   local py = io.popen('/usr/bin/python3 ' .. here .. '/data_image.py ' .. PNG)
   local line = py:read('*a')
   py:close()
   local tv = json.decode(line:match('{.*}') or 'null')
   local best_tv, best_workers = 0, 0
   if tv then
      for w, r in pairs(tv.torchvision) do
         if r > best_tv then best_tv, best_workers = r, tonumber(w) end
      end
   end
   result.image_folder = {kbl = best_kbl, kbl_threads = best_threads, torchvision = best_tv,
      torchvision_workers = best_workers}
   print(string.format('image folder: kbl %.0f images/s (%d thread%s), torchvision %.0f images/s (%d workers): %.2fx',
      best_kbl, best_threads, best_threads == 1 and '' or 's', best_tv, best_workers, best_kbl / math.max(best_tv, 1)))
end

-- 2. records against memory
local mem = data.fashion_mnist{validation = 0}
local rec = data.records{dir = REC, threads = tonumber(os.getenv('BENCH_RECORD_THREADS') or '') or nil}
local best = rates({mem:split('train'):shuffle{seed = 1}:batch(128):prefetch(2),
   rec:split('train'):shuffle{seed = 1}:batch(128):prefetch(2)}, TRIALS + 2)
local mem_b, mem_c, rec_b, rec_c = best[1][2], best[1][3], best[2][2], best[2][3]
result.records = {memory = mem_b, records = rec_b, memory_cpu = mem_c, records_cpu = rec_c}
print(string.format('records (zstd level %d): %.0f batches/s, in memory: %.0f batches/s (batch 128): records at %.0f%% '
   .. 'of memory', LEVEL, rec_b, mem_b, 100 * rec_b / mem_b))
print(string.format('per CPU second: records %.0f batches, in memory %.0f: records at %.0f%%', rec_c, mem_c,
   100 * rec_c / mem_c))
print(json.encode(result))
