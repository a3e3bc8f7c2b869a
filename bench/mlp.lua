-- bench/mlp.lua — kbl against PyTorch, in one run, on the workloads of the
-- foundation issue: sgemm 1024^3, and the forward, cross entropy and backward of
-- an MLP 784-256-256-10 at batch 128 (plus the Adam update when kbl.optim
-- exists). Each side runs at the faster of 1 and 2 threads, with the same
-- environment. Prints seconds per call and the ratio kbl/PyTorch.
--   bin/kbl bench/mlp.lua            (or: kbl bench mlp)
local kbl = require 'kbl'
local clock = require 'kbl.clock'
local json = require 'dkjson'

local has_optim, optim = pcall(require, 'kbl.optim')

local function workloads()
   kbl.manual_seed(0)
   local a, b = kbl.randn(1024, 1024), kbl.randn(1024, 1024)
   local x = kbl.randn(128, 784)
   local y = kbl.randint(1, 11, {128})
   local params = {}
   for _, s in ipairs{{784, 256}, {256, 256}, {256, 10}} do
      local i, o = s[1], s[2]
      params[#params + 1] = kbl.keep((kbl.randn(o, i) * math.sqrt(2 / i)):detach():requires_grad_())
      params[#params + 1] = kbl.keep(kbl.zeros({o}, {requires_grad = true}))
   end
   local function forward_backward()
      kbl.scope(function()
         local h = x
         for k = 0, 2 do
            h = kbl.linear(h, params[2 * k + 1], params[2 * k + 2])
            if k < 2 then h = h:relu() end
         end
         local loss = kbl.cross_entropy(h, y)
         for _, p in ipairs(params) do p.grad = nil end
         loss:backward()
      end)
   end
   local w = {
      sgemm_1024 = function() kbl.scope(function() return kbl.matmul(a, b) and nil end) end,
      mlp_fwd_bwd = forward_backward,
   }
   if has_optim then
      local opt = optim.Adam{lr = 1e-3}
      w.mlp_train_step = function()
         forward_backward()
         opt:step(params)
      end
   end
   return w
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

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local cmd = '/usr/bin/python3 ' .. here .. '/mlp.py' .. (has_optim and ' --adam' or '')
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
