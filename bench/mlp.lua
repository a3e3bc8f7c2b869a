-- bench/mlp.lua — kbl against PyTorch, in one run, on the workloads of the
-- foundation issue: sgemm 1024^3, and the forward, cross entropy and backward of
-- an MLP 784-256-256-10 at batch 128, and the whole training step with Adam.
-- Each side runs at the faster of 1 and 2 threads; kbl in its default
-- environment, PyTorch at its best (bench/torch_best.lua). Prints milliseconds
-- per call and the ratio kbl/PyTorch; then the FMA peak of one core
-- (bench/fma_peak.c, built here with cc) and sgemm 1024^3 on one thread in
-- GFLOP/s and as a fraction of that peak, both timed in CPU time so that a busy
-- machine taking the core away does not count.
--   bin/kbl bench/mlp.lua            (or: kbl bench mlp)
local kbl = require 'kbl'
local json = require 'dkjson'

local optim = require 'kbl.optim'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local mlp_step = dofile(here .. '/mlp_step.lua')
local timing = dofile(here .. '/timing.lua')

local function workloads()
   kbl.manual_seed(0)
   local a, b = kbl.randn(1024, 1024), kbl.randn(1024, 1024)
   return {
      sgemm_1024 = function() kbl.scope(function() return kbl.matmul(a, b) and nil end) end,
      mlp_fwd_bwd = mlp_step(nil),
      mlp_train_step = mlp_step(optim.Adam{lr = 1e-3}),
   }
end

local best = {}
for _, threads in ipairs(timing.threads) do
   kbl.set_num_threads(threads)
   for name, fn in pairs(workloads()) do
      local t = timing.time(fn, {iters = name == 'sgemm_1024' and 5 or 20})
      if not best[name] or t < best[name].seconds then best[name] = {seconds = t, threads = threads} end
   end
end
kbl.set_num_threads(2)

-- sgemm 1024^3 on one thread, in CPU time (os.clock: this process, one thread)
kbl.set_num_threads(1)
local sgemm = workloads().sgemm_1024
for _ = 1, 3 do sgemm() end
local cpu_best = math.huge
for _ = 1, 5 do
   local c0 = os.clock()
   for _ = 1, 5 do sgemm() end
   cpu_best = math.min(cpu_best, (os.clock() - c0) / 5)
end
kbl.set_num_threads(2)

local function run(cmd)
   local p = io.popen(cmd)
   local out = p:read('*a')
   p:close()
   return out
end

local torch = dofile(here .. '/torch_best.lua')(function(env)
   local out = run(env .. '/usr/bin/python3 ' .. here .. '/mlp.py')
   return json.decode(out) or error('bench: PyTorch side failed: ' .. out)
end)

print(string.format('%-16s %12s %25s %8s', 'workload', 'kbl ms', 'torch ms (at its best)', 'ratio'))
for _, name in ipairs{'sgemm_1024', 'mlp_fwd_bwd', 'mlp_train_step'} do
   local k, t = best[name], torch[name]
   if k and t then
      print(string.format('%-16s %9.3f (%d) %10.3f %-14s %8.3f', name, k.seconds * 1e3, k.threads,
         t.seconds * 1e3, '(' .. t.threads .. ', ' .. t.env .. ')', k.seconds / t.seconds))
   end
end
print((timing.cpu and 'CPU time, one thread. ' or '') .. '(threads, and PyTorch\'s environment, in parentheses;'
   .. ' ratio = kbl time / PyTorch time, lower is better)')

-- the FMA peak of one core, measured now, and sgemm against it
local exe = os.tmpname()
local built = os.execute('cc -O2 -o ' .. exe .. ' ' .. here .. '/fma_peak.c 2>/dev/null') == 0
local peak = built and json.decode(run(exe)) or nil
os.remove(exe)
local gflops = 2 * 1024 ^ 3 / cpu_best / 1e9
if peak and peak.gflops then
   print(string.format('FMA peak, one core (%s): %.1f GFLOP/s; kbl sgemm 1024^3, 1 thread: %.1f GFLOP/s = %.0f%% of it',
      peak.isa, peak.gflops, gflops, 100 * gflops / peak.gflops))
else
   print(string.format('kbl sgemm 1024^3, 1 thread: %.1f GFLOP/s (no FMA peak: cc or AVX2/AVX-512 missing)', gflops))
end

-- issue 13's targets, one line each
local target = timing.target
if peak and peak.gflops then
   target('sgemm 1024^3, 1 thread >= 70% of the FMA peak', gflops >= 0.7 * peak.gflops,
      string.format('(%.0f%%)', 100 * gflops / peak.gflops))
end
local k, t = best.mlp_train_step, torch.mlp_train_step
if k and t then
   target('MLP train step >= 1.5x faster than PyTorch at its best', t.seconds / k.seconds >= 1.5,
      string.format('(%.2fx: %.3f against %.3f ms)', t.seconds / k.seconds, k.seconds * 1e3, t.seconds * 1e3))
end
