-- bench/conv.lua — kbl against PyTorch on the workloads of the convolution issue:
--   conv2d 3x3 32->64, padding 1, on 128x32x14x14: forward, forward+backward;
--   one training step (forward, cross entropy, backward, Adam) of the CNN
--   conv3x3(1->32)-relu-maxpool2-conv3x3(32->64)-relu-maxpool2-dense(3136->128)-
--   relu-dense(128->10) at batch 128 on 28x28 inputs, and each side's peak RSS.
-- Each side runs at the faster of 1 and 2 threads, each part in a process of its
-- own (so peak RSS is that part's); kbl in its default environment, PyTorch at
-- its best (bench/torch_best.lua: the fastest of its default environment and
-- each OPENBLAS_CORETYPE the CPU supports). Prints milliseconds per call and
-- the ratio kbl/PyTorch.
--   sh bench/run_conv.sh         (or: bin/kbl bench/conv.lua)
-- With --part conv|step it runs one part and prints its JSON (what the driver calls).
local kbl = require 'kbl'
local json = require 'dkjson'
local optim = require 'kbl.optim'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local timing = dofile(here .. '/timing.lua')

local function peak_rss_mb()
   local f = io.open('/proc/self/status')
   if not f then return 0 / 0 end
   local s = f:read('*a')
   f:close()
   return tonumber(s:match('VmHWM:%s*(%d+)')) / 1024
end

local function conv_workloads()
   kbl.manual_seed(0)
   local x = kbl.keep(kbl.randn({128, 32, 14, 14}, {requires_grad = true}))
   local w = kbl.keep((kbl.randn(64, 32, 3, 3) * 0.05):detach():requires_grad_())
   local b = kbl.keep(kbl.zeros({64}, {requires_grad = true}))
   return {
      conv2d_fwd = function()
         kbl.scope(function() kbl.no_grad(function() kbl.conv2d(x, w, b, {padding = 1}) end) end)
      end,
      conv2d_fwd_bwd = function()
         kbl.scope(function()
            x.grad, w.grad, b.grad = nil, nil, nil
            kbl.conv2d(x, w, b, {padding = 1}):sum():backward()
         end)
      end,
   }
end

local function step_workloads()
   kbl.manual_seed(0)
   local x = kbl.keep(kbl.randn(128, 1, 28, 28))
   local y = kbl.keep(kbl.randint(1, 11, {128}))
   local function param(shape, fan_in)
      return kbl.keep((kbl.randn(shape) * math.sqrt(2 / fan_in)):detach():requires_grad_())
   end
   local function zeros(n) return kbl.keep(kbl.zeros({n}, {requires_grad = true})) end
   local params = {
      param({32, 1, 3, 3}, 9), zeros(32), param({64, 32, 3, 3}, 288), zeros(64),
      param({128, 3136}, 3136), zeros(128), param({10, 128}, 128), zeros(10),
   }
   local opt = optim.Adam{lr = 1e-3}
   local function step()
      kbl.scope(function()
         local c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = unpack(params)
         local h = kbl.max_pool2d(kbl.conv2d(x, c1w, c1b, {padding = 1}):relu(), 2)
         h = kbl.max_pool2d(kbl.conv2d(h, c2w, c2b, {padding = 1}):relu(), 2)
         h = kbl.linear(h:reshape{128, 3136}, d1w, d1b):relu()
         local loss = kbl.cross_entropy(kbl.linear(h, d2w, d2b), y)
         for _, p in ipairs(params) do p.grad = nil end
         loss:backward()
         opt:step(params)
      end)
   end
   return {cnn_train_step = step}
end

local function run_part(part)
   local make = part == 'conv' and conv_workloads or step_workloads
   local rss_before = peak_rss_mb()
   local best = {}
   for _, threads in ipairs(timing.threads) do
      kbl.set_num_threads(threads)
      collectgarbage() -- the last thread count's workload is garbage (PyTorch's side frees its own at once)
      for name, fn in pairs(make()) do
         local t = timing.time(fn, {iters = 10})
         if not best[name] or t < best[name].seconds then best[name] = {seconds = t, threads = threads} end
      end
   end
   best.peak_rss_mb = peak_rss_mb()
   best.rss_before_mb = rss_before
   print(json.encode(best))
end

local function capture(cmd)
   local p = io.popen(cmd)
   local out = p:read('*a')
   local ok = p:close()
   local res = json.decode(out:match('(%b{})%s*$') or '')
   if not ok or not res then error('bench: `' .. cmd .. '` failed:\n' .. out, 0) end
   return res
end

local part = arg and arg[1] == '--part' and arg[2]
if part then
   run_part(part)
   return
end

local kbl_cmd = here .. '/../bin/kbl ' .. here .. '/conv.lua --part '
local torch_cmd = '/usr/bin/python3 ' .. here .. '/conv.py --part '
local torch_best = dofile(here .. '/torch_best.lua')
local rows = {}
for _, p in ipairs{'conv', 'step'} do
   local best, default = torch_best(function(env) return capture(env .. torch_cmd .. p) end)
   rows[p] = {kbl = capture(kbl_cmd .. p), torch = best, torch_default = default}
end

print(string.format('%-16s %14s %25s %8s', 'workload', 'kbl ms', 'torch ms (at its best)', 'ratio'))
for _, r in ipairs{{'conv', 'conv2d_fwd'}, {'conv', 'conv2d_fwd_bwd'}, {'step', 'cnn_train_step'}} do
   local k, t = rows[r[1]].kbl[r[2]], rows[r[1]].torch[r[2]]
   print(string.format('%-16s %10.2f (%d) %10.2f %-14s %8.3f', r[2], k.seconds * 1e3, k.threads,
      t.seconds * 1e3, '(' .. t.threads .. ', ' .. t.env .. ')', k.seconds / t.seconds))
end
local ks, ts = rows.step.kbl, rows.step.torch_default
print(string.format('%-16s %14.1f %14.1f %8.3f', 'step peak RSS MB', ks.peak_rss_mb, ts.peak_rss_mb,
   ks.peak_rss_mb / ts.peak_rss_mb))
print(string.format('%-16s %14.1f %14.1f', '  before the step', ks.rss_before_mb, ts.rss_before_mb))
-- issue 13's targets, one line each
local target = timing.target
local function ratio(which, name) return rows[which].kbl[name].seconds / rows[which].torch[name].seconds end
target('CNN train step >= 1.5x faster than PyTorch at its best', 1 / ratio('step', 'cnn_train_step') >= 1.5,
   string.format('(%.2fx)', 1 / ratio('step', 'cnn_train_step')))
target('conv2d fwd+bwd no slower than PyTorch at its best', ratio('conv', 'conv2d_fwd_bwd') <= 1,
   string.format('(ratio %.3f)', ratio('conv', 'conv2d_fwd_bwd')))
target('CNN step peak RSS <= 126 MB', ks.peak_rss_mb <= 126, string.format('(%.1f MB)', ks.peak_rss_mb))
print((timing.cpu and 'CPU time, one thread. ' or '') .. '(threads, and PyTorch\'s environment, in parentheses;'
   .. ' ratio = kbl / PyTorch, lower is better; RSS is the'
   .. ' process peak, VmHWM, PyTorch\'s in its default environment, and "before" what the runtime held before the'
   .. ' workload was built)')
