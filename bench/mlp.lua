-- bench/mlp.lua — kbl against PyTorch, in one run, on the workloads of the
-- foundation issue: sgemm 1024^3, and the forward, cross entropy and backward of
-- an MLP 784-256-256-10 at batch 128, and the whole training step with Adam. Each side runs at the faster of 1 and 2 threads, with the same
-- environment. Prints seconds per call and the ratio kbl/PyTorch.
--   bin/kbl bench/mlp.lua            (or: kbl bench mlp)
local kbl = require 'kbl'
local clock = require 'kbl.clock'
local json = require 'dkjson'

local optim = require 'kbl.optim'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local mlp_step = dofile(here .. '/mlp_step.lua')

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
for _, threads in ipairs{1, 2} do
   kbl.set_num_threads(threads)
   for name, fn in pairs(workloads()) do
      local t = clock.time(fn, {iters = name == 'sgemm_1024' and 5 or 20})
      if not best[name] or t < best[name].seconds then best[name] = {seconds = t, threads = threads} end
   end
end
kbl.set_num_threads(2)

local cmd = '/usr/bin/python3 ' .. here .. '/mlp.py'
local p = io.popen(cmd)
local torch_out = p:read('*a')
p:close()
local torch = json.decode(torch_out)
if not torch then error('bench: PyTorch side failed: ' .. torch_out) end

print(string.format('%-16s %12s %12s %8s', 'workload', 'kbl ms', 'torch ms', 'ratio'))
for _, name in ipairs{'sgemm_1024', 'mlp_fwd_bwd', 'mlp_train_step'} do
   local k, t = best[name], torch[name]
   if k and t then
      print(string.format('%-16s %9.3f (%d) %9.3f (%d) %8.3f', name, k.seconds * 1e3, k.threads,
         t.seconds * 1e3, t.threads, k.seconds / t.seconds))
   end
end
print('(threads in parentheses; ratio = kbl time / PyTorch time, lower is better)')
