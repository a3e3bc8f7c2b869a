-- bench/data.lua — the data pipeline against a torch DataLoader, in one run:
-- batches per second over the Fashion-MNIST training images (60000), shuffled,
-- batch 128, normalize plus random crop (28, padding 4) and random horizontal
-- flip; beside it, the rate at which an MLP training step (784-256-256-10,
-- batch 128) consumes batches. Prints both ratios: kbl / DataLoader, and kbl /
-- the MLP step's rate (the target is at least 10).
--   bench/run_data.sh     (or: bin/kbl bench/data.lua, kbl bench data)
-- Rates are medians over windows of 50 batches (with the best window beside
-- them): robust on a machine other work shares. KBL_FASHION_MNIST picks
-- another directory of the IDX files.
local kbl = require 'kbl'
local data = require 'kbl.data'
local clock = require 'kbl.clock'
local json = require 'dkjson'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local DIR = os.getenv('KBL_FASHION_MNIST') or '/usr/share/datasets/fashion-mnist'
local WINDOW, WINDOWS = 50, 15

local src = data.fashion_mnist{validation = 0, dir = DIR}

local function pipeline()
   return src:split('train'):shuffle{seed = 1}:batch(128):normalize{mean = 0.2860, std = 0.3530}
      :random_crop{size = 28, padding = 4}:random_flip{}
end

local function median(list)
   local s = {unpack(list)}
   table.sort(s)
   return s[math.ceil(#s / 2)], s[#s]
end

-- Batches per second of p: median and best of WINDOWS windows. free: the
-- consumer frees each batch at once (as a training step that ends with
-- x:free() would), instead of leaving it to the garbage collector.
local function rate(p, free)
   local it = p:iter()
   local function next_batch()
      local b = it()
      if b == nil then
         it = p:iter()
         b = it()
      end
      return b
   end
   for _ = 1, 20 do next_batch() end
   local rates = {}
   for w = 1, WINDOWS do
      local t0 = clock.now()
      for _ = 1, WINDOW do
         local b = next_batch()
         if free then b.x:free() b.y:free() end
      end
      rates[w] = WINDOW / (clock.now() - t0)
   end
   p:close()
   return median(rates)
end

-- Seconds per MLP training step (bench/mlp_step.lua) with an SGD update, at the
-- faster of 1 and 2 threads, as bench/mlp.lua does.
local function mlp_step_seconds()
   kbl.manual_seed(0)
   local step = dofile(here .. '/mlp_step.lua')(require('kbl.optim').SGD{lr = 0.01})
   local best
   local before = kbl.get_num_threads()
   for _, threads in ipairs{1, 2} do
      kbl.set_num_threads(threads)
      local t = clock.time(step, {warmup = 5, trials = 7, iters = 20})
      if not best or t < best then best = t end
   end
   kbl.set_num_threads(before)
   return best
end

local rows = {}
local function add(name, med, best) rows[#rows + 1] = {name, med, best} end

local sync_med, sync_best = rate(pipeline(), false)
add('kbl, no prefetch', sync_med, sync_best)
add('kbl, no prefetch, batches freed', rate(pipeline(), true))
local pf_med, pf_best = rate(pipeline():prefetch(4), false)
add('kbl, prefetch(4)', pf_med, pf_best)
add('kbl, prefetch(4, {threads = 2})', rate(pipeline():prefetch(4, {threads = 2}), false))

local cmd = string.format('/usr/bin/python3 %s/data.py %s %d %d', here, DIR, WINDOW, WINDOWS)
local p = io.popen(cmd)
local out = p:read('*a')
p:close()
local torch = json.decode(out)
if type(torch) ~= 'table' then error('bench: the PyTorch side failed: ' .. out, 0) end
local torch_best_med = 0
for _, w in ipairs{0, 2} do
   local r = torch['workers_' .. w]
   add('torch DataLoader, num_workers = ' .. w, r.median, r.best)
   torch_best_med = math.max(torch_best_med, r.median)
end

local step_s = mlp_step_seconds()
local step_rate = 1 / step_s

print('Fashion-MNIST train (60000): shuffle, batch 128, normalize + random_crop{28, padding 4} + random_flip')
print(string.format('%-40s %12s %12s', 'batches per second', 'median', 'best window'))
for _, r in ipairs(rows) do print(string.format('%-40s %12.0f %12.0f', r[1], r[2], r[3])) end
print(string.format('MLP 784-256-256-10 train step (with SGD update): %.3f ms, so %.0f batches/s consumed',
   step_s * 1e3, step_rate))
print(string.format('ratio kbl prefetch(4) / best torch DataLoader: %.1fx (no prefetch: %.1fx)',
   pf_med / torch_best_med, sync_med / torch_best_med))
print(string.format('ratio kbl prefetch(4) / MLP step rate: %.1fx (no prefetch: %.1fx; target >= 10)',
   pf_med / step_rate, sync_med / step_rate))
