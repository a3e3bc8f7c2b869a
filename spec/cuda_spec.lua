-- spec/cuda_spec.lua: the CUDA backend. With a device, every op of the
-- foundation and convolution issues runs on CUDA, forward and backward, and
-- agrees with the CPU (one helper runs an op on both and compares values and
-- gradients); dropout masks match across devices for one seed; optimizer steps
-- match; training steps of a small MLP and CNN match; the allocator's counts
-- add up. Without one, each of those reports itself pending as "no CUDA
-- device: <reason>" under its own name, and the specs that need no device check
-- that libkbl loads and says clearly that CUDA is unavailable and why.
local kbl = require 'kbl'
local H = require 'helper'

local build = os.getenv('KBL_BUILD_DIR') or 'build'
local available = kbl.cuda.is_available()
local reason = kbl.cuda.unavailable_reason()
-- KBL_CUDA_SPEC_SELFTEST=1 runs the device tests with 'cpu' standing in for
-- 'cuda' (both sides on the CPU), to check the tests themselves on a machine
-- without a GPU; it proves nothing about CUDA.
local selftest = not available and os.getenv('KBL_CUDA_SPEC_SELFTEST') == '1'
local DEV = selftest and 'cpu' or 'cuda'

-- A test that needs a device: pending, by its name, when there is none.
local function gpu(name, fn, opts)
   it(name, function()
      if not available and not (selftest and not (opts and opts.device_only)) then
         pending('no CUDA device: ' .. reason)
         return
      end
      fn()
   end)
end

local function as_list(v) return kbl.is_tensor(v) and {v} or v end

-- Runs fn on inputs on the CPU and on CUDA copies of them. Compares the outputs
-- (a tensor or a list of tensors) and, when some input requires grad, the
-- gradients of sum(out * probe) with one probe for both devices. Non-tensor
-- inputs pass as they are.
local function same_on_both(fn, inputs, opts)
   opts = opts or {}
   local tol = opts.tol or 1e-9
   local function run(device)
      local ins, leaves = {}, {}
      for i, x in ipairs(inputs) do
         if kbl.is_tensor(x) then
            local t = x:detach():clone():to(device)
            if x.requires_grad then
               t.requires_grad = true
               leaves[#leaves + 1] = {i, t}
            end
            ins[i] = t
         else
            ins[i] = x
         end
      end
      local outs = as_list(fn(unpack(ins, 1, #inputs)))
      local first = outs[1]
      if #leaves > 0 and (first.dtype == 'float32' or first.dtype == 'float64') then
         kbl.manual_seed(99)
         local probe = kbl.randn(first:size(), {dtype = first.dtype}):to(device)
         ;(first * probe):sum():backward()
      end
      local cpu_outs, grads = {}, {}
      for k, o in ipairs(outs) do
         assert.are.equal(device, o.device, 'output ' .. k .. ' is on the wrong device')
         cpu_outs[k] = o:cpu()
      end
      for _, l in ipairs(leaves) do grads[#grads + 1] = l[2].grad and l[2].grad:cpu() or false end
      return cpu_outs, grads
   end
   local co, cg = run('cpu')
   local go, gg = run(DEV)
   assert.are.equal(#co, #go)
   for k = 1, #co do H.assert_close(go[k], co[k], tol, 'output ' .. k) end
   for k = 1, #cg do
      assert.is_truthy(gg[k], 'input ' .. k .. ' got no gradient on cuda')
      H.assert_close(gg[k], cg[k], tol, 'gradient ' .. k)
   end
end

local function leaf(shape, opts) return H.leaf(shape, opts) end
local function ints(t) return kbl.tensor(t, {dtype = 'int64'}) end

describe('without a CUDA device (KBL_NO_CUDA=1 makes one of any machine)', function()
   local env = 'env KBL_NO_CUDA=1 KBL_BUILD_DIR=' .. build .. ' '

   it('kbl.cuda says whether a device exists, and why not', function()
      assert.are.equal(available, reason == '')
      if not available then assert.is_true(#reason > 0) end
      assert.are.equal(available and kbl.cuda.device_count() or 0, kbl.cuda.device_count())
   end)

   it('libkbl loads, runs on the CPU and refuses cuda with the reason', function()
      local script = [[
         local kbl = require 'kbl'
         assert(kbl.cuda.is_available() == false)
         assert(kbl.cuda.device_count() == 0)
         assert(kbl.cuda.unavailable_reason() == 'disabled by KBL_NO_CUDA=1')
         assert(kbl.cuda.memory_stats().live_bytes == 0)
         assert((kbl.ones(2, 2) * 3):sum():item() == 12)
         local ok, err = pcall(function() return kbl.ones(2, 2):to('cuda') end)
         assert(not ok and err:find("to%('cuda'%): no CUDA device: disabled by KBL_NO_CUDA=1"), err)
         ok, err = pcall(function() return kbl.zeros(3, {device = 'cuda'}) end)
         assert(not ok and err:find('no CUDA device'), err)
         ok, err = pcall(function() return kbl.ones(2):cuda() end)
         assert(not ok and err:find('no CUDA device'), err)
         print('ok')
      ]]
      local path = os.tmpname()
      local f = assert(io.open(path, 'w'))
      f:write(script)
      f:close()
      local rc, out = H.run(env .. 'luajit -e "package.path=\'lua/?.lua;lua/?/init.lua;' .. build
         .. '/lua/?.lua;\'..package.path; package.loaded[\'kbl.lib.path\']=\'' .. build
         .. '/libkbl.so\'" ' .. path)
      os.remove(path)
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('ok'))
   end)

   it('`kbl info` says there is no CUDA device and why', function()
      local rc, out = H.run(env .. 'bin/kbl info')
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('devices: cpu %(no CUDA device: disabled by KBL_NO_CUDA=1%)'), out)
      rc, out = H.run(env .. 'bin/kbl info --json')
      assert.are.equal(0, rc, out)
      local info = require('dkjson').decode(out)
      assert.are.equal(false, info.cuda)
      assert.are.equal('disabled by KBL_NO_CUDA=1', info.cuda_unavailable)
   end)

   it('names the missing kernel or device, never crashes, for device arguments', function()
      if available then return end
      local ok, err = pcall(function() return kbl.randn(3):to('cuda:1') end)
      assert.is_false(ok)
      assert.truthy(err:find("kbl drives one CUDA device"), err)
   end)
end)

describe('on CUDA', function()
   gpu('tensors move there and back, with item, tolist, indexing and printing', function()
      local x = kbl.tensor{{1, 2, 3}, {4, 5, 6}}
      local g = x:to(DEV)
      assert.are.equal(DEV, g.device)
      assert.are.equal('cpu', x.device)
      assert.are.same({{1, 2, 3}, {4, 5, 6}}, g:tolist())
      assert.are.equal(21, g:sum():item())
      assert.are.equal(5, g[2][2])
      g[1][1] = 10
      assert.are.equal(10, g:cpu()[1][1])
      assert.truthy(tostring(g):find('10'))
      if DEV == 'cuda' then assert.truthy(tostring(g):find('on cuda'), tostring(g)) end
      assert.are.equal(g, g:to(DEV))
      local d = g:to('cpu', 'float64')
      assert.are.equal('cpu', d.device)
      assert.are.equal('float64', d.dtype)
      local z = kbl.zeros({2, 2}, {device = DEV, dtype = 'int64'})
      assert.are.equal(DEV, z.device)
      assert.are.same({{0, 0}, {0, 0}}, z:tolist())
      assert.are.equal(DEV, kbl.ones_like(g).device)
   end)

   gpu('mixing devices is an error naming both', function()
      local ok, err = pcall(function() return kbl.ones(2, 2):to(DEV) + kbl.ones(2, 2) end)
      assert.is_false(ok)
      assert.truthy(err:find('different devices'), err)
      assert.truthy(err:find('cpu') and err:find('cuda'), err)
      -- a 0-dim CPU tensor is a scalar, as in PyTorch
      local r = kbl.ones(2):to(DEV) * kbl.tensor(3)
      assert.are.same({3, 3}, r:tolist())
   end, {device_only = true})

   gpu('to() is differentiable: the gradient comes back to the input device', function()
      local x = leaf({3, 2})
      local y = (x:to(DEV) * 2):sum()
      y:backward()
      assert.are.equal('cpu', x.grad.device)
      H.assert_close(x.grad, kbl.full({3, 2}, 2, {dtype = 'float64'}))
   end, {device_only = true})

   gpu('elementwise binary ops with broadcasting, forward and backward', function()
      local a, b = leaf({3, 4}), leaf({4}, {positive = true})
      -- every op of core/ops_binary.def (pow with a positive base)
      local ffi, C = require 'ffi', require('kbl.lib').C
      for op = 0, C.KBL_BINARY_COUNT - 1 do
         local name = ffi.string(C.kbl_binary_name(op))
         if name == 'pow' then
            same_on_both(function(x, y) return kbl.pow(y, x) end, {a, b})
         elseif kbl[name](a, b).dtype == 'uint8' then
            same_on_both(function(x, y) return kbl[name](x, y) end, {a:detach(), b:detach()})
         else
            same_on_both(function(x, y) return kbl[name](x, y) end, {a, b})
         end
      end
      same_on_both(function(x, y) return kbl.where(kbl.gt(x, 0), x, y) end, {a, b})
      same_on_both(function(x) return kbl.masked_fill(x, kbl.lt(x, 0), -1) end, {a})
      same_on_both(function(x) return (x + 1) * 3 - 2 / (x:abs() + 1) end, {a})
   end)

   gpu('integer arithmetic and conversions', function()
      local i = ints{{1, -2, 3}, {7, 0, -5}}
      same_on_both(function(x) return x * 3 + x end, {i})
      same_on_both(function(x) return x:abs():neg() end, {i})
      same_on_both(function(x) return x:to('float32') / 2 end, {i})
      same_on_both(function(x) return x:to('uint8') end, {i})
      same_on_both(function(x) return kbl.tensor({-1.5, 300.7, 2.2}):to(x.device):to('uint8') end, {i})
   end)

   gpu('every unary op and its gradient', function()
      local x = leaf({4, 5})
      local p = leaf({4, 5}, {positive = true})
      -- every op of core/ops_unary.def, at its defaults, positive inputs where it needs them
      local positive = {log = true, log1p = true, sqrt = true, rsqrt = true, reciprocal = true}
      local E = require 'kbl.ops.elementwise'
      for _, u in ipairs(E.unary_ops) do
         local input = positive[u.name] and p or x
         same_on_both(function(t) return E.unary(u.op, t, u.p0, u.p1) end, {u.grad and input or input:detach()})
      end
      same_on_both(function(t) return kbl.leaky_relu(t, 0.1) end, {x})
      same_on_both(function(t) return kbl.elu(t, 0.7) end, {x})
      same_on_both(function(t) return kbl.softplus(t, 2, 3) end, {x})
      same_on_both(function(t) return kbl.gelu(t) end, {x})
      same_on_both(function(t) return kbl.gelu(t, 'tanh') end, {x})
      same_on_both(function(t) return kbl.clamp(t, -0.5, 0.5) end, {x})
      same_on_both(function(t) return t ^ 3 end, {x})
      same_on_both(function(t) return 2 ^ t end, {x})
   end)

   gpu('reductions: sum, mean, var, std, logsumexp, norm, max/min with indices', function()
      local x = leaf({3, 4, 5})
      same_on_both(function(t) return t:sum() end, {x})
      same_on_both(function(t) return t:sum(2) end, {x})
      same_on_both(function(t) return t:sum({1, 3}, true) end, {x})
      same_on_both(function(t) return t:sum(1) end, {leaf({300, 7})})   -- columns split over blocks
      same_on_both(function(t) return t:mean(3) end, {x})
      same_on_both(function(t) return t:var(2) end, {x})
      same_on_both(function(t) return t:std(1) end, {x})
      same_on_both(function(t) return t:logsumexp(3) end, {x})
      same_on_both(function(t) return t:norm(2, 2) end, {x})
      same_on_both(function(t) return t:norm(1) end, {x})
      same_on_both(function(t) return {t:max(2)} end, {x})
      same_on_both(function(t) return {t:min(3, true)} end, {x})
      same_on_both(function(t) return t:max() end, {x})
      same_on_both(function(t) return t:argmax(2) end, {x:detach()})
      same_on_both(function(t) return t:sum() end, {ints{{1, 2}, {3, 4}}})
      same_on_both(function(t) return t:sum(1) end, {kbl.ones(1000, 3, {dtype = 'int32'})})
   end)

   gpu('views and copies: transpose, permute, narrow, select, expand, reshape', function()
      local x = leaf({4, 3, 2})
      same_on_both(function(t) return t:transpose(1, 3):contiguous() * 1 end, {x})
      same_on_both(function(t) return t:permute(3, 1, 2):reshape({2, 12}) end, {x})
      same_on_both(function(t) return t:narrow(1, 2, 2):select(2, 3) * 2 end, {x})
      same_on_both(function(t) return t:select(3, 1):expand({5, 4, 3}):sum(1) end, {x})
   end)

   gpu('matmul in every shape, and linear', function()
      same_on_both(function(a, b) return kbl.matmul(a, b) end, {leaf({5, 3}), leaf({3, 4})})
      same_on_both(function(a, b) return kbl.matmul(a, b) end, {leaf({2, 5, 3}), leaf({3, 4})})
      same_on_both(function(a, b) return kbl.matmul(a, b) end, {leaf({2, 1, 5, 3}), leaf({3, 3, 4})})
      same_on_both(function(a, b) return kbl.matmul(a, b) end, {leaf({3}), leaf({3, 4})})
      same_on_both(function(a, b) return kbl.matmul(a, b) end, {leaf({5, 3}), leaf({3})})
      same_on_both(function(a, b) return kbl.matmul(a:t(), b) end, {leaf({3, 5}), leaf({3, 4})})
      same_on_both(function(x, w, b) return kbl.linear(x, w, b) end, {leaf({6, 3}), leaf({4, 3}), leaf({4})})
      same_on_both(function(x, w) return kbl.linear(x, w) end, {leaf({2, 6, 3}), leaf({4, 3})})
      local a32, b32 = kbl.randn(64, 48), kbl.randn(48, 32)
      a32.requires_grad, b32.requires_grad = true, true
      same_on_both(function(a, b) return kbl.matmul(a, b) end, {a32, b32}, {tol = 1e-4})
   end)

   gpu('softmax, log_softmax and the losses', function()
      local x = leaf({4, 6})
      same_on_both(function(t) return t:softmax(2) end, {x})
      same_on_both(function(t) return t:log_softmax(1) end, {x})
      local labels = ints{2, 6, 1, 3}
      same_on_both(function(t, y) return kbl.cross_entropy(t, y) end, {x, labels})
      same_on_both(function(t, y, w) return kbl.cross_entropy(t, y, {weight = w, label_smoothing = 0.1}) end,
         {x, labels, kbl.tensor({1, 2, 0.5, 1, 1, 3}, {dtype = 'float64'})})
      same_on_both(function(t, y) return kbl.cross_entropy(t, y, {ignore_index = 6, reduction = 'none'}) end,
         {x, labels})
      same_on_both(function(t, y) return kbl.cross_entropy(t, y, {reduction = 'sum'}) end,
         {leaf({2, 3, 4, 2}), ints{{{1, 2}, {3, 1}, {2, 2}, {3, 3}}, {{1, 1}, {2, 3}, {3, 2}, {1, 3}}}})
      same_on_both(function(t, y) return kbl.binary_cross_entropy_with_logits(t, y) end,
         {x, kbl.rand({4, 6}, {dtype = 'float64'})})
      same_on_both(function(a, b) return kbl.mse_loss(a, b) end, {x, leaf({4, 6})})
      local ok, err = pcall(kbl.cross_entropy, x:detach():to(DEV), ints{2, 7, 1, 3}:to(DEV))
      assert.is_false(ok)
      assert.truthy(err:find('out of range'), err)
   end)

   gpu('indexing: index_select, gather, scatter_add, cat, stack, pad, one_hot, flip', function()
      local x = leaf({4, 3})
      same_on_both(function(t) return t:index_select(1, {4, 1, 1}) end, {x})
      same_on_both(function(t, i) return t:gather(2, i) end, {x, ints{{1, 3}, {2, 2}, {3, 1}, {1, 1}}})
      same_on_both(function(t, i, s) return t:scatter_add(1, i, s) end,
         {x, ints{{1, 2, 4}, {4, 4, 1}}, leaf({2, 3})})
      same_on_both(function(a, b) return kbl.cat({a, b}, 1) end, {x, leaf({2, 3})})
      same_on_both(function(a, b) return kbl.stack({a, b}, 2) end, {x, leaf({4, 3})})
      same_on_both(function(t) return kbl.pad(t, {1, 2, -1, 1}, 0.5) end, {x})
      same_on_both(function(t) return t:flip({1, 2}) end, {x})
      same_on_both(function(y) return kbl.one_hot(y, 5) end, {ints{1, 5, 3}})
      local ok, err = pcall(function() return x:detach():to(DEV):index_select(1, {5}) end)
      assert.is_false(ok)
      assert.truthy(err:find('out of range'), err)
   end)

   gpu('conv2d with stride, padding (also uneven), dilation and groups; float32 too', function()
      local x, w, b = leaf({2, 4, 7, 6}), leaf({6, 2, 3, 3}), leaf({6})
      same_on_both(function(a, k, c) return kbl.conv2d(a, k, c, {stride = 2, padding = 1, groups = 2}) end, {x, w, b})
      same_on_both(function(a, k) return kbl.conv2d(a, k, nil, {dilation = 2, padding = 1, groups = 2}) end, {x, w})
      -- 'same' with an even kernel pads unevenly (top 0, bottom 1; left 1, right 2)
      same_on_both(function(a, k) return kbl.conv2d(a, k, nil, {padding = 'same', groups = 2}) end,
         {x, leaf({6, 2, 2, 4})})
      local x32, w32 = kbl.randn(4, 3, 16, 16), kbl.randn(8, 3, 3, 3)
      x32.requires_grad, w32.requires_grad = true, true
      same_on_both(function(a, k) return kbl.conv2d(a, k, nil, {padding = 1}) end, {x32, w32}, {tol = 1e-4})
   end)

   gpu('conv_transpose2d with output_padding, and the public backward ops', function()
      local x, w, b = leaf({2, 4, 4, 5}), leaf({4, 3, 3, 3}), leaf({3})
      same_on_both(function(a, k, c)
         return kbl.conv_transpose2d(a, k, c, {stride = 2, padding = 1, output_padding = 1})
      end, {x, w, b})
      same_on_both(function(a, k) return kbl.conv_transpose2d(a, k, nil, {stride = {2, 1}, dilation = 2}) end, {x, w})
   end)

   gpu('pooling and upsampling, forward and backward', function()
      local x = leaf({2, 3, 7, 6})
      same_on_both(function(t) return kbl.max_pool2d(t, 2) end, {x})
      same_on_both(function(t) return {kbl.max_pool2d(t, 3, {stride = 2, padding = 1, return_indices = true})} end, {x})
      same_on_both(function(t) return kbl.avg_pool2d(t, 3, {stride = 2, padding = 1}) end, {x})
      same_on_both(function(t) return kbl.avg_pool2d(t, 3, {stride = 2, padding = 1, count_include_pad = false}) end,
         {x})
      same_on_both(function(t) return kbl.adaptive_avg_pool2d(t, {3, 4}) end, {x})
      same_on_both(function(t) return kbl.global_avg_pool2d(t) end, {x})
      same_on_both(function(t) return kbl.upsample_nearest2d(t, {scale_factor = 2}) end, {x})
      same_on_both(function(t) return kbl.upsample_nearest2d(t, {size = {5, 4}}) end, {x})
   end)

   gpu('batch_norm (training with running statistics, and evaluation), layer_norm, group_norm', function()
      local x, w, b = leaf({4, 3, 5, 2}), leaf({3}), leaf({3})
      local function bn(training)
         return function(t, g, c, rm, rv)
            local y = kbl.batch_norm(t, rm, rv, g, c, {training = training, momentum = 0.2})
            return {y, rm, rv}
         end
      end
      local rm, rv = kbl.zeros({3}, {dtype = 'float64'}), kbl.ones({3}, {dtype = 'float64'})
      same_on_both(bn(true), {x, w, b, rm, rv})
      same_on_both(bn(false), {x, w, b, kbl.randn({3}, {dtype = 'float64'}), kbl.rand({3}, {dtype = 'float64'}) + 0.5})
      same_on_both(function(t) return kbl.batch_norm(t, nil, nil, nil, nil, {training = true}) end, {leaf({6, 4})})
      same_on_both(function(t, g, c) return kbl.layer_norm(t, {5, 2}, g, c) end, {x, leaf({5, 2}), leaf({5, 2})})
      same_on_both(function(t) return kbl.layer_norm(t, {2}) end, {x})
      same_on_both(function(t, g, c) return kbl.group_norm(t, 3, g, c) end, {leaf({2, 6, 3}), leaf({6}), leaf({6})})
   end)

   gpu('embedding, forward and backward, with a padding row', function()
      same_on_both(function(i, w) return kbl.embedding(i, w, {padding_idx = 2}) end,
         {ints{{1, 2, 5}, {5, 5, 3}}, leaf({5, 4})})
   end)

   gpu('dropout draws the same mask on both devices for one seed', function()
      for _, dt in ipairs{'float32', 'float64'} do
         local x = kbl.ones({3, 1001}, {dtype = dt})
         kbl.manual_seed(5)
         local a = kbl.dropout(x, 0.3, {training = true})
         local after_cpu = kbl.get_rng_state()
         kbl.manual_seed(5)
         local g = kbl.dropout(x:to(DEV), 0.3, {training = true})
         assert.are.same(after_cpu, kbl.get_rng_state())
         H.assert_close(g:cpu(), a, 0)
         kbl.manual_seed(6)
         local a2 = kbl.dropout2d(kbl.ones({4, 5, 3, 3}, {dtype = dt}), 0.5, {training = true})
         kbl.manual_seed(6)
         local g2 = kbl.dropout2d(kbl.ones({4, 5, 3, 3}, {dtype = dt}):to(DEV), 0.5, {training = true})
         H.assert_close(g2:cpu(), a2, 0)
      end
      same_on_both(function(t)
         kbl.manual_seed(3)
         return kbl.dropout(t, 0.5, {training = true})
      end, {leaf({10, 10})})
   end)

   gpu('optimizer steps match the CPU', function()
      local optim = require 'kbl.optim'
      local makers = {
         function() return optim.SGD{lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01} end,
         function() return optim.Adam{lr = 0.01, weight_decay = 0.1} end,
         function() return optim.AdamW{lr = 0.01, amsgrad = true} end,
         function() return optim.RMSprop{lr = 0.01, centered = true, momentum = 0.5} end,
         function() return optim.Adagrad{lr = 0.1} end,
      }
      for k, make in ipairs(makers) do
         kbl.manual_seed(k)
         local p0, g1, g2 = kbl.randn(5, 7), kbl.randn(5, 7), kbl.randn(5, 7)
         local function run(device)
            local p = p0:clone():to(device)
            p.requires_grad = true
            local opt = make()
            for _, g in ipairs{g1, g2, g1} do
               p.grad = g:to(device)
               opt:step({p})
            end
            return p:cpu()
         end
         H.assert_close(run(DEV), run('cpu'), 1e-5, 'optimizer ' .. k)
      end
   end)

   gpu('a training step of a small MLP and CNN on cuda matches the CPU', function()
      local blocks = require 'kbl.blocks'
      local optim = require 'kbl.optim'
      local function train(device, make, x, y)
         kbl.manual_seed(11)
         local m = make()
         m:to(device)
         local opt = optim.SGD{lr = 0.1, momentum = 0.9}
         local losses = {}
         for _ = 1, 3 do
            m:zero_grad()
            local loss = kbl.cross_entropy(m(x:to(device)), y:to(device))
            loss:backward()
            opt:step(m:parameters())
            losses[#losses + 1] = loss:item()
         end
         for _, p in ipairs(m:parameters()) do assert.are.equal(device, p.device) end
         return losses
      end
      kbl.manual_seed(1)
      local x, y = kbl.randn(8, 1, 12, 12), kbl.randint(1, 5, {8})
      local mlp = function() return blocks.Sequential{blocks.Flatten{}, blocks.Dense{16, activation = 'relu'},
         blocks.Dense{4}} end
      local cnn = function() return blocks.Sequential{blocks.Conv2D{4, 3, padding = 1}, blocks.BatchNorm{},
         blocks.Activation{'relu'}, blocks.MaxPool2D{2}, blocks.Flatten{}, blocks.Dropout{0.2}, blocks.Dense{4}} end
      for _, make in ipairs{mlp, cnn} do
         local c, g = train('cpu', make, x, y), train(DEV, make, x, y)
         for i = 1, #c do assert.is_true(math.abs(c[i] - g[i]) < 1e-4, c[i] .. ' vs ' .. g[i]) end
      end
   end)

   gpu('the caching allocator reuses freed blocks and counts bytes', function()
      kbl.cuda.empty_cache()
      local s0 = kbl.cuda.memory_stats()
      assert.is_true(s0.total_bytes > 0)
      local t = kbl.zeros({1024, 1024}, {device = 'cuda'})
      local s1 = kbl.cuda.memory_stats()
      assert.is_true(s1.live_bytes >= s0.live_bytes + 4 * 1024 * 1024)
      assert.is_true(s1.peak_bytes >= s1.live_bytes)
      t:free()
      local s2 = kbl.cuda.memory_stats()
      assert.are.equal(s0.live_bytes, s2.live_bytes)
      assert.is_true(s2.cached_bytes >= 4 * 1024 * 1024)
      local u = kbl.zeros({1024, 1024}, {device = 'cuda'})
      assert.are.equal(s1.allocations, kbl.cuda.memory_stats().allocations, 'a cached block was not reused')
      u:free()
      kbl.cuda.empty_cache()
      assert.are.equal(0, kbl.cuda.memory_stats().cached_bytes)
      kbl.cuda.synchronize()
   end, {device_only = true})

   gpu('tensors on cuda save to safetensors and load back to the CPU', function()
      local path = os.tmpname()
      local t = kbl.randn(3, 4):to(DEV)
      kbl.save(path, {w = t})
      local back = kbl.load(path)
      os.remove(path)
      H.assert_close(back.w, t:cpu(), 0)
   end)
end)
