-- bench/cpu_ops.lua — kbl's CPU kernels that oneDNN also offers, timed at one
-- thread (BENCH_CLOCK=cpu for CPU time): batch norm, layer norm, softmax, cross entropy,
-- eltwise, max and average pooling, each forward and backward where kbl has
-- one. bench/dnnl_ops.c times oneDNN's primitives on the same shapes; the
-- figures and the choice made sit beside each kernel (core/cpu/*.c).
--   BENCH_CLOCK=cpu bin/kbl bench/cpu_ops.lua
--   cc -O2 -fopenmp bench/dnnl_ops.c -o /tmp/dnnl_ops -ldnnl && OMP_NUM_THREADS=1 /tmp/dnnl_ops
local kbl = require 'kbl'
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local timing = dofile(here .. '/timing.lua')
kbl.set_num_threads(1)
local function t(fn) return timing.time(function() kbl.scope(fn) end, {iters = 10, trials = 7}) * 1e3 end

-- forward alone (no grad) and forward+backward, in ms; the difference is the backward
local function fwd_bwd(fwd, g, leaves)
   local f = t(function() kbl.no_grad(fwd) end)
   local fb = t(function()
      for _, p in ipairs(leaves) do p.grad = nil end
      fwd():backward(g)
   end)
   return f, fb - f
end

for _, s in ipairs{{128, 32, 28, 28}, {128, 64, 14, 14}} do
   local x = kbl.randn(s):requires_grad_()
   local w, b = kbl.ones({s[2]}, {requires_grad = true}), kbl.zeros({s[2]}, {requires_grad = true})
   local rm, rv = kbl.zeros({s[2]}), kbl.ones({s[2]})
   local f, bw = fwd_bwd(function() return kbl.batch_norm(x, rm, rv, w, b, {training = true}) end, kbl.randn(s),
      {x, w, b})
   print(string.format('kbl batch_norm %s: fwd %.3f bwd %.3f ms', table.concat(s, 'x'), f, bw))
end
do
   local x = kbl.randn(4096, 256):requires_grad_()
   local w, b = kbl.ones({256}, {requires_grad = true}), kbl.zeros({256}, {requires_grad = true})
   local f, bw = fwd_bwd(function() return kbl.layer_norm(x, {256}, w, b, 1e-5) end, kbl.randn(4096, 256), {x, w, b})
   print(string.format('kbl layer_norm 4096x256: fwd %.3f bwd %.3f ms', f, bw))
end
for _, s in ipairs{{128, 10}, {4096, 1000}} do
   local x = kbl.randn(s)
   print(string.format('kbl softmax %s: %.4f ms log_softmax %.4f ms', table.concat(s, 'x'),
      t(function() kbl.softmax(x, 2) end), t(function() kbl.log_softmax(x, 2) end)))
end
for _, s in ipairs{{128, 10}, {4096, 1000}} do
   local x = kbl.randn(s):requires_grad_()
   local labels = kbl.randint(1, s[2] + 1, {s[1]})
   local f, bw = fwd_bwd(function() return kbl.cross_entropy(x, labels) end, nil, {x})
   print(string.format('kbl cross_entropy %s: fwd %.4f bwd %.4f ms', table.concat(s, 'x'), f, bw))
end
do
   local x = kbl.randn(1048576)
   print(string.format('kbl 1M: relu %.4f sigmoid %.4f tanh %.4f ms', t(function() x:relu() end),
      t(function() x:sigmoid() end), t(function() x:tanh() end)))
end
for _, s in ipairs{{128, 32, 28, 28}, {128, 64, 14, 14}} do
   local x = kbl.randn(s):requires_grad_()
   for _, p in ipairs{{'max', kbl.max_pool2d}, {'avg', kbl.avg_pool2d}} do
      local g = kbl.ones(p[2](x, 2):size())
      local f, bw = fwd_bwd(function() return p[2](x, 2) end, g, {x})
      print(string.format('kbl %s_pool2d 2x2 %s: fwd %.3f bwd %.3f ms', p[1], table.concat(s, 'x'), f, bw))
   end
end
