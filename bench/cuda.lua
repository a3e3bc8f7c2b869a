-- bench/cuda.lua — kbl on CUDA against PyTorch on the same GPU: sgemm 4096^3,
-- and a training step (forward, cross entropy, backward, Adam) of the MLP
-- 784-256-256-10 and of the CNN of bench/conv.lua, at batch 128. Each timing
-- waits for the device (kbl.cuda.synchronize, torch.cuda.synchronize). Says it
-- skipped, and why, when either side has no GPU.
--   KBL_BUILD_DIR=build bin/kbl bench/cuda.lua
local kbl = require 'kbl'
local clock = require 'kbl.clock'
local json = require 'dkjson'
local optim = require 'kbl.optim'

if not kbl.cuda.is_available() then
   print('bench/cuda: skipped: no CUDA device: ' .. kbl.cuda.unavailable_reason())
   return
end

-- seconds per call of fn: runs of `iters` calls, each ended by waiting for the device
local function timed(fn, iters)
   return clock.time(function()
      for _ = 1, iters do fn() end
      kbl.cuda.synchronize()
   end, {warmup = 1, trials = 5, iters = 1}) / iters
end

local function param(shape, fan_in)
   local t = fan_in and kbl.randn(shape) * math.sqrt(2 / fan_in) or kbl.zeros(shape)
   return kbl.keep(t:cuda():detach():requires_grad_())
end

local function step_of(forward, params, x, y)
   local opt = optim.Adam{lr = 1e-3}
   return function()
      kbl.scope(function()
         local loss = kbl.cross_entropy(forward(x), y)
         for _, p in ipairs(params) do p.grad = nil end
         loss:backward()
         opt:step(params)
      end)
   end
end

local function mlp_step()
   local x, y = kbl.randn(128, 784):cuda(), kbl.randint(1, 11, {128}):cuda()
   local ps = {}
   for _, s in ipairs{{784, 256}, {256, 256}, {256, 10}} do
      ps[#ps + 1] = param({s[2], s[1]}, s[1])
      ps[#ps + 1] = param({s[2]})
   end
   return step_of(function(h)
      for k = 0, 2 do
         h = kbl.linear(h, ps[2 * k + 1], ps[2 * k + 2])
         if k < 2 then h = h:relu() end
      end
      return h
   end, ps, x, y)
end

local function cnn_step()
   local x, y = kbl.randn(128, 1, 28, 28):cuda(), kbl.randint(1, 11, {128}):cuda()
   local ps = {param({32, 1, 3, 3}, 9), param({32}), param({64, 32, 3, 3}, 288), param({64}),
      param({128, 3136}, 3136), param({128}), param({10, 128}, 128), param({10})}
   return step_of(function(h)
      h = kbl.max_pool2d(kbl.conv2d(h, ps[1], ps[2], {padding = 1}):relu(), 2)
      h = kbl.max_pool2d(kbl.conv2d(h, ps[3], ps[4], {padding = 1}):relu(), 2)
      h = kbl.linear(h:reshape({h:size(1), -1}), ps[5], ps[6]):relu()
      return kbl.linear(h, ps[7], ps[8])
   end, ps, x, y)
end

kbl.manual_seed(0)
local a, b = kbl.randn(4096, 4096):cuda(), kbl.randn(4096, 4096):cuda()
local mine = {
   sgemm_4096 = timed(function() kbl.scope(function() kbl.matmul(a, b) end) end, 10),
   mlp_train_step = timed(mlp_step(), 20),
   cnn_train_step = timed(cnn_step(), 20),
}
local stats = kbl.cuda.memory_stats()

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local p = io.popen('/usr/bin/python3 ' .. here .. '/cuda.py')
local out = p:read('*a')
p:close()
local torch = json.decode(out)
if not torch then error('bench/cuda: PyTorch side failed: ' .. out) end

print('kbl device: ' .. kbl.cuda.device_name())
if torch.skipped then print('PyTorch side skipped: ' .. torch.skipped) else print('torch device: ' .. torch.device) end
print(string.format('%-16s %12s %12s %8s', 'workload', 'kbl ms', 'torch ms', 'ratio'))
for _, name in ipairs{'sgemm_4096', 'mlp_train_step', 'cnn_train_step'} do
   local k, t = mine[name], torch[name]
   print(string.format('%-16s %12.3f %12s %8s', name, k * 1e3, t and string.format('%.3f', t * 1e3) or '-',
      t and string.format('%.3f', k / t) or '-'))
end
print(string.format('kbl device memory: peak %.1f MB held by tensors, %.1f MB cached, %d cudaMalloc calls',
   stats.peak_bytes / 2^20, stats.cached_bytes / 2^20, stats.allocations))
print('(ratio = kbl time / PyTorch time, lower is better; float32 without TF32 on both sides)')
