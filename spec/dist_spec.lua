-- spec/dist_spec.lua: kbl.dist, data-parallel training. In one process: the
-- one-process fallbacks, the grad-ready hook of core/autograd.c, the batch
-- shards and the dropout masks keyed by global row. Under Open MPI's mpirun
-- (2 processes on loopback, each command under `timeout`): the collectives,
-- gradient buckets that start during backward, training that matches one
-- process, bit-identical repeats, --nproc, a killed or hung rank ending the
-- job, and an exact resume after SIGTERM.
local H = require 'helper'
local ffi = require 'ffi'
local kbl = require 'kbl'
local dist = require 'kbl.dist'
local C = kbl.lib.C

local build = os.getenv('KBL_BUILD_DIR') or 'build'

-- Measured: 2 processes end 50 Adam steps of the MLP below within 6e-8 (max
-- abs) of one process, from float32 sums taken in another order; 1e-6 leaves room.
local TOLERANCE = 1e-6

local function has_mpirun() return os.execute('command -v mpirun >/dev/null 2>&1') == 0 end
local MPI = has_mpirun() and dist.is_available()
local SKIP = 'skipped: needs Open MPI (openmpi-bin, libopenmpi-dev; scripts/setup.sh) and libkbl_mpi.so: '
   .. (dist.is_available() and 'no mpirun on PATH' or dist.unavailable_reason())

-- A preloaded library (the sanitizer build's ASan runtime) goes to the ranks, not
-- to mpirun (Open MPI's own launcher trips ASan); kbl.dist.launch does the same.
local preload = os.getenv('LD_PRELOAD')
local MPIRUN = (preload and 'env -u LD_PRELOAD ' or '') .. 'timeout 120 mpirun --allow-run-as-root --oversubscribe '
   .. '-n 2 --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -x OMP_NUM_THREADS=1 '
   .. (preload and ("-x LD_PRELOAD='" .. preload .. "' ") or '')

-- Runs `mpirun ... bin/kbl ARGS` (or a plain command line); returns rc, output.
local function mpi(args, env)
   return H.run('env KBL_BUILD_DIR=' .. build .. ' ' .. (env or '') .. ' ' .. MPIRUN .. 'bin/kbl ' .. args)
end

local function kbl_cmd(args, env)
   return H.run('env KBL_BUILD_DIR=' .. build .. ' OMP_NUM_THREADS=1 ' .. (env or '') .. ' timeout 120 bin/kbl '
      .. args)
end

-- The largest absolute difference between two safetensors files' tensors.
local function max_diff(a, b)
   local ta, tb = kbl.load(a), kbl.load(b)
   local d, n = 0, 0
   for k, t in pairs(ta) do
      assert(tb[k], 'missing ' .. k)
      d = math.max(d, (t - tb[k]):abs():max():item())
      n = n + 1
   end
   assert(n > 0)
   return d
end

local function same_bytes(a, b)
   local ta, tb = kbl.load(a), kbl.load(b)
   for k, t in pairs(ta) do
      if H.bytes(t) ~= H.bytes(tb[k]) then return false end
   end
   return true
end

describe('kbl.dist in one process', function()
   it('is rank 0 of 1, and its collectives leave tensors as they are', function()
      assert.are.equal(0, dist.rank())
      assert.are.equal(1, dist.world_size())
      assert.is_false(dist.is_distributed())
      local t = kbl.tensor{1, 2, 3}
      assert.are.same({1, 2, 3}, dist.all_reduce(t):tolist())
      assert.are.same({1, 2, 3}, dist.all_reduce(t, 'avg'):tolist())
      assert.are.same({1, 2, 3}, dist.broadcast(t, 0):tolist())
      dist.barrier()
      assert.are.same({'x'}, dist.allgather_string('x'))
   end)

   it('sum across processes is a differentiable copy (float64 gradcheck), and sync batch norm is batch norm', function()
      H.gradcheck(function(x) return dist.sum(x:t()) * x:t() end, {H.leaf({3, 4})})
      local blocks = require 'kbl.blocks'
      kbl.manual_seed(2)
      local x = kbl.randn{5, 3, 2, 2}
      local a, b = blocks.BatchNorm{}, blocks.BatchNorm{sync = true}
      H.assert_close(b(x), a(x), 0)
      H.assert_close(b._p.running_var, a._p.running_var, 0)
   end)

   it('refuses a bad op, a bad root and a non-contiguous tensor, naming them', function()
      local t = kbl.zeros{2, 3}
      assert.has_error(function() dist.all_reduce(t, 'prod') end,
         "kbl.dist.all_reduce: op must be 'sum', 'avg', 'max' or 'min', got prod")
      assert.has_error(function() dist.broadcast(t, 1) end, 'kbl.dist.broadcast: root must be a rank, 0 to 0, got 1')
      assert.has_error(function() dist.all_reduce(t:t()) end,
         'kbl.dist.all_reduce: the tensor must be contiguous (call :contiguous() first)')
      assert.has_error(function() dist.all_reduce({}) end, 'kbl.dist.all_reduce: expects a tensor, got table')
   end)

   it('is reported by kbl info', function()
      local rc, out = kbl_cmd('info')
      assert.are.equal(0, rc, out)
      if dist.is_available() then
         assert.truthy(out:find('data parallel: kbl.dist on Open MPI', 1, true), out)
      else
         assert.truthy(out:find('data parallel: none (', 1, true), out)
      end
   end)
end)

describe('kbl without libkbl_mpi.so', function()
   it('trains in one process without loading MPI, and says why kbl.dist is not there', function()
      local dir = H.tmpdir()
      -- a libkbl with nothing beside it: the layer is absent, as in a build without MPI
      os.execute('cp ' .. build .. '/libkbl.so ' .. dir .. '/')
      H.write(dir .. '/s.lua', [[
local kbl = require 'kbl'
local data, blocks = require 'kbl.data', require 'kbl.blocks'
require('kbl.fit').fit{model = blocks.MLP{units = {8, 3}, activate_last = false},
   loss = require('kbl.losses').CrossEntropy{}, optimizer = require('kbl.optim').Adam{},
   data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3},
   epochs = 1, steps_per_epoch = 2, batch_size = 16, validation_split = false, quiet = true}
local f = io.open('/proc/self/maps')
local maps = f:read('*a')
f:close()
print('mpi loaded: ' .. tostring(maps:find('libmpi', 1, true) ~= nil))
print('available: ' .. tostring(kbl.dist.is_available()) .. ' rank ' .. kbl.dist.rank())
print('reason: ' .. kbl.dist.unavailable_reason())
]])
      local rc, out = H.run('KBL_LIB=' .. dir .. '/libkbl.so KBL_BUILD_DIR=' .. build .. ' bin/kbl ' .. dir .. '/s.lua')
      os.execute('rm -rf ' .. dir)
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('mpi loaded: false', 1, true), out)
      assert.truthy(out:find('available: false rank 0', 1, true), out)
      assert.truthy(out:find('reason: libkbl_mpi.so is not installed', 1, true), out)
   end)
end)

describe('the grad-ready hook', function()
   -- a LuaJIT callback from C: the test runs interpreted (jit.off), as callbacks need
   local function once_per_leaf()
      local w1 = kbl.randn({4, 3}, {requires_grad = true})
      local w2 = kbl.randn({3, 2}, {requires_grad = true})
      local x = kbl.randn{5, 4}
      local seen = {}
      local T = require 'kbl.tensor'
      local cb = ffi.cast('kbl_grad_ready_fn', function(leaf)
         local g = C.kbl_get_grad(leaf)
         seen[#seen + 1] = {ptr = tostring(ffi.cast('void *', leaf)), grad = T.wrap(g):clone()}
         return 0
      end)
      C.kbl_set_grad_ready_hook(cb, nil)
      -- w1 reached twice (two contributions): called once, after both
      local h = x:matmul(w1)
      local loss = (h:relu():matmul(w2):sum() + h:sum()) * 2
      local ok, err = pcall(function() loss:backward() end)
      C.kbl_set_grad_ready_hook(nil, nil)
      cb:free()
      assert.is_true(ok, err)
      assert.are.equal(2, #seen)
      assert.are.equal(tostring(ffi.cast('void *', T.live(w2))), seen[1].ptr)
      assert.are.equal(tostring(ffi.cast('void *', T.live(w1))), seen[2].ptr)
      H.assert_close(seen[1].grad, w2.grad, 0)
      H.assert_close(seen[2].grad, w1.grad, 0)
   end
   jit.off(once_per_leaf)
   it('calls once per leaf, when its gradient is final, in backward order', once_per_leaf)

   local function hook_fails()
      local w = kbl.randn({3}, {requires_grad = true})
      local cb = ffi.cast('kbl_grad_ready_fn', function() return 1 end)
      C.kbl_set_grad_ready_hook(cb, nil)
      local ok, err = pcall(function() (w * 2):sum():backward() end)
      C.kbl_set_grad_ready_hook(nil, nil)
      cb:free()
      assert.is_false(ok)
      assert.truthy(tostring(err):find('grad-ready hook failed on the leaf', 1, true), err)
   end
   jit.off(hook_fails)
   it('fails the backward with a message when the hook fails', hook_fails)
end)

describe('batch shards', function()
   local shard = require 'kbl.dist.shard'
   local data = require 'kbl.data'

   it('split every global batch into disjoint rows whose union is the batch', function()
      local src = data.generated{kind = 'blobs', n = 53, dim = 4, classes = 3, seed = 1}
      local function batches(rank, world)
         local p = src:split('train'):shuffle{seed = 2}:batch(16)
         if world then p = shard.shard(p, rank, world) end
         local out = {}
         for b in p:iter() do out[#out + 1] = b end
         return out
      end
      local whole = batches()
      for _, world in ipairs{2, 3} do
         local parts = {}
         for r = 0, world - 1 do parts[r + 1] = batches(r, world) end
         for i, b in ipairs(whole) do
            local xs, ys = {}, {}
            for r = 1, world do xs[r], ys[r] = parts[r][i].x, parts[r][i].y end
            H.assert_close(kbl.cat(xs, 1), b.x, 0)
            assert.are.same(b.y:tolist(), kbl.cat(ys, 1):tolist())
         end
      end
      assert.are.same({0, 5}, {shard.rows(16, 0, 3)})
      assert.are.same({5, 5}, {shard.rows(16, 1, 3)})
      assert.are.same({10, 6}, {shard.rows(16, 2, 3)})
   end)

   it('leaves out, for evaluation, a batch with no row for this rank', function()
      local src = data.generated{kind = 'blobs', n = 5, dim = 4, classes = 3, seed = 1}
      local sizes = {}
      for r = 0, 1 do
         local p = shard.shard(src:split('train'):batch(4), r, 2, {allow_empty = true})
         local n = {}
         for b in p:iter() do n[#n + 1] = b.x:size(1) end
         sizes[r + 1] = table.concat(n, ',')
      end
      assert.are.same({'2', '2,1'}, sizes)   -- rows 1-2 | 3-4 of 4, then nothing | row 5
   end)

   it('refuses a batch with fewer rows than processes', function()
      local src = data.generated{kind = 'blobs', n = 5, dim = 4, classes = 3, seed = 1}
      local p = shard.shard(src:split('train'):batch(4), 0, 8)
      assert.has_error(function() for _ in p:iter() do end end,
         'kbl.dist: a batch of 4 rows cannot be split over 8 processes (each needs a row); use drop_remainder = '
         .. 'true or a batch_size of at least 8')
   end)
end)

describe('dropout keyed by global row', function()
   for _, case in ipairs{{'dropout', {12, 7}}, {'dropout2d', {12, 5, 3, 3}}} do
      it(case[1] .. ': each shard draws its rows of the whole batch\'s mask, and the generator moves alike', function()
         local name, shape = case[1], case[2]
         local x = kbl.ones(shape)
         kbl.manual_seed(11)
         local whole = kbl[name](x, 0.4)
         local after = kbl.rand{3}
         for _, s in ipairs{{0, 5}, {5, 4}, {9, 3}} do
            kbl.manual_seed(11)
            local sh = {unpack(shape)}
            sh[1] = s[2]
            C.kbl_set_batch_shard(s[1], s[2], shape[1])
            local ok, part = pcall(kbl[name], kbl.ones(sh), 0.4)
            C.kbl_set_batch_shard(0, 0, 0)
            assert.is_true(ok, part)
            H.assert_close(part, whole:narrow(1, s[1] + 1, s[2]), 0)
            H.assert_close(kbl.rand{3}, after, 0)
         end
      end)
   end
end)

describe('under mpirun -n 2', function()
   if not MPI then
      pending(SKIP)
      return
   end
   local dir = H.tmpdir()
   teardown(function() os.execute('rm -rf ' .. dir) end)
   local EXP = H.write(dir .. '/exp.lua', [[
return {
   extends = 'fit',
   name = 'dist',
   epochs = 2,
   batch_size = 16,
   seed = 3,
   data = data.generated{kind = 'blobs', n = 400, validation = 32, dim = 16, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{units = 64, activation = 'relu'}, blocks.Dropout{0.3}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.003},
   metrics = {metrics.Accuracy{}},
   callbacks = {
      callbacks.ModelCheckpoint{every_steps = 10, keep = 3},
      -- KBL_TEST_SIGNAL=TERM|KILL: rank 1 signals itself after step 30
      callbacks.LambdaCallback{on_batch_end = function(ctx, step)
         local sig = os.getenv('KBL_TEST_SIGNAL')
         if sig and step == 30 and require('kbl.dist').rank() == 1 then
            os.execute('kill -' .. sig .. ' ' .. require('kbl.records.status').pid())
         end
      end},
   },
}
]])

   it('sums, averages, broadcasts, gathers and waits across ranks', function()
      local script = H.write(dir .. '/api.lua', [[
local kbl = require 'kbl'
local d = kbl.dist
local r = d.rank()
local s = d.all_reduce(kbl.tensor{r + 1, 10 * (r + 1)})
local a = d.all_reduce(kbl.tensor({r + 1.0}, {dtype = 'float64'}), 'avg')
local m = d.all_reduce(kbl.tensor({r + 1}, {dtype = 'int64'}), 'max')
local b = d.broadcast(kbl.tensor{r, r}, 1)
d.barrier()
local long = d.allgather_string(string.rep(tostring(r), 300 * (r + 1)))   -- past one slot: two rounds
print(string.format('rank %d of %d: %s %s %s %s %s %d %d', r, d.world_size(), table.concat(s:tolist(), ','),
   a:tolist()[1], m:tolist()[1], table.concat(b:tolist(), ','), table.concat(d.allgather_string('r' .. r), ','),
   long[1]:match('^0+$') and #long[1] or -1, long[2]:match('^1+$') and #long[2] or -1))
]])
      local rc, out = mpi(script)
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('rank 0 of 2: 3,30 1.5 2 1,1 r0,r1 300 600', 1, true), out)
      assert.truthy(out:find('rank 1 of 2: 3,30 1.5 2 1,1 r0,r1 300 600', 1, true), out)
   end)

   it('starts gradient buckets while backward runs and averages by each rank\'s share', function()
      local script = H.write(dir .. '/buckets.lua', [[
local ffi = require 'ffi'
local kbl = require 'kbl'
local d = kbl.dist
local lib = d.lib()
local r = d.rank()
kbl.manual_seed(1)
local ws = {kbl.randn({8, 8}, {requires_grad = true}), kbl.randn({8, 8}, {requires_grad = true}),
   kbl.randn({8, 4}, {requires_grad = true})}
local arr = ffi.new('kbl_tensor *[3]')
for i, w in ipairs(ws) do arr[i - 1] = require('kbl.tensor').live(w) end
local b = lib.kbl_dist_buckets_new(3, arr, 1)   -- a bucket per parameter
local x = kbl.full({2, 8}, r + 1)
local scale = r == 0 and 0.25 or 0.75
assert(lib.kbl_dist_buckets_begin(b, scale, 1) == 0)
x:matmul(ws[1]):tanh():matmul(ws[2]):tanh():matmul(ws[3]):sum():backward()
local stats = ffi.new('double[4]')
assert(lib.kbl_dist_buckets_finish(b, stats) == 0, ffi.string(lib.kbl_dist_last_error()))
-- the reference: each rank's gradient, then 0.25 * rank 0's + 0.75 * rank 1's
local g = {}
for i, w in ipairs(ws) do g[i] = w.grad:clone() end
for _, w in ipairs(ws) do w:zero_grad() end
local mine = {}
kbl.full({2, 8}, r + 1):matmul(ws[1]):tanh():matmul(ws[2]):tanh():matmul(ws[3]):sum():backward()
for i, w in ipairs(ws) do mine[i] = (w.grad * scale):contiguous() d.all_reduce(mine[i]) end
local err = 0
for i = 1, 3 do err = math.max(err, (g[i] - mine[i]):abs():max():item()) end
lib.kbl_dist_buckets_free(b)
print(string.format('rank %d buckets %d early %d err %g', r, stats[2], stats[1], err))
]])
      local rc, out = mpi(script)
      assert.are.equal(0, rc, out)
      for r = 0, 1 do
         local nb, early, err = out:match('rank ' .. r .. ' buckets (%d+) early (%d+) err (%S+)')
         assert.are.equal('3', nb, out)
         assert.are.equal('3', early, out)   -- every bucket started inside backward
         assert.is_true(tonumber(err) <= 1e-6, out)
      end
   end)

   it('synchronized batch norm: values, running statistics and gradients of the global batch', function()
      local script = H.write(dir .. '/syncbn.lua', [[
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local d = kbl.dist
local r = d.rank()
kbl.manual_seed(4)
local X = kbl.randn({6, 3, 2, 2}, {dtype = 'float64'})
local G = kbl.randn({6, 3, 2, 2}, {dtype = 'float64'})
local first, count = require('kbl.dist.shard').rows(6, r, d.world_size())
local function rows(t) return t:narrow(1, first + 1, count):contiguous() end
-- one process over the whole batch: the reference (its gradient is checked in spec/norm_spec.lua)
local ref = blocks.BatchNorm{}
local Xr = X:clone():requires_grad_()
ref(Xr)   -- builds it
ref._p.weight:copy_(kbl.tensor({1.5, 0.5, 2}, {dtype = 'float64'}))
ref._p.running_mean:fill_(0)
ref._p.running_var:fill_(1)
local yr = ref(Xr)
local lr = (yr * G):sum()
lr:backward()
local sync = blocks.BatchNorm{sync = true}
local x = rows(X):requires_grad_()
sync(kbl.zeros({2, 3, 2, 2}, {dtype = 'float64'}))
sync._p.weight:copy_(kbl.tensor({1.5, 0.5, 2}, {dtype = 'float64'}))
sync._p.running_mean:fill_(0)
sync._p.running_var:fill_(1)
local y = sync(x)
local l = (y * rows(G)):sum()
l:backward()
local function diff(a, b) return (a - b):abs():max():item() end
local wg, bg = sync._p.weight.grad:clone(), sync._p.bias.grad:clone()
d.all_reduce(wg)
d.all_reduce(bg)
print(string.format('rank %d y %g mean %g var %g dx %g dw %g db %g', r, diff(y, rows(yr)),
   diff(sync._p.running_mean, ref._p.running_mean), diff(sync._p.running_var, ref._p.running_var),
   diff(x.grad, rows(Xr.grad)), diff(wg, ref._p.weight.grad), diff(bg, ref._p.bias.grad)))
]])
      local rc, out = mpi(script)
      assert.are.equal(0, rc, out)
      for r = 0, 1 do
         local line = out:match('rank ' .. r .. ' (y [^\n]*)')
         assert.truthy(line, out)
         for v in line:gmatch('%a+ (%S+)') do assert.is_true(tonumber(v) <= 1e-12, line) end
      end
   end)

   it('sums and broadcasts CUDA tensors through NCCL', function()
      if not H.cuda_available() then
         return pending('skipped: no CUDA device (' .. kbl.cuda.unavailable_reason() .. '); NCCL is compiled only')
      end
      if kbl.cuda.device_count() < 2 then   -- NCCL refuses two ranks on one GPU
         return pending('skipped: NCCL needs a GPU a rank, 2 here; this machine has ' .. kbl.cuda.device_count())
      end
      if not H.exists(build .. '/libkbl_nccl.so') then
         return pending('skipped: no libkbl_nccl.so in ' .. build .. ' (the CUDA toolkit has no NCCL)')
      end
      local script = H.write(dir .. '/nccl.lua', [[
local kbl = require 'kbl'
local d = kbl.dist
local r = d.rank()
local t = d.all_reduce(kbl.tensor{r + 1, 2}:cuda())
local b = d.broadcast(kbl.tensor{r, r}:cuda(), 1)
print(string.format('rank %d: %s %s', r, table.concat(t:cpu():tolist(), ','), table.concat(b:cpu():tolist(), ',')))
]])
      local rc, out = mpi(script)
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('rank 0: 3,4 1,1', 1, true), out)
      assert.truthy(out:find('rank 1: 3,4 1,1', 1, true), out)
   end)

   local one, two, again = dir .. '/one', dir .. '/two', dir .. '/again'
   local rc1, out1 = kbl_cmd('run ' .. EXP .. ' --quiet --run-dir ' .. one)
   local rc2, out2 = mpi('run ' .. EXP .. ' --quiet --run-dir ' .. two)

   it('ends 50 steps within ' .. TOLERANCE .. ' of one process with the same global batch', function()
      assert.are.equal(0, rc1, out1)
      assert.are.equal(0, rc2, out2)
      local d = max_diff(one .. '/model.safetensors', two .. '/model.safetensors')
      assert.is_true(d <= TOLERANCE, 'max abs difference ' .. d)
      -- the logged loss is the global batch's: close to one process's
      -- the logged losses are the global batch's and the whole validation split's (shared out)
      for _, k in ipairs{'loss', 'val_loss'} do
         local l1, l2 = H.last_epoch(one)[k], H.last_epoch(two)[k]
         assert.is_true(math.abs(l1 - l2) <= 1e-5 * math.max(1, math.abs(l1)), k .. ': ' .. l1 .. ' vs ' .. l2)
      end
      assert.are.equal(H.last_epoch(one).val_accuracy, H.last_epoch(two).val_accuracy)
   end)

   it('is bit-identical run after run, started with --nproc 2', function()
      local rc, out = kbl_cmd('run ' .. EXP .. ' --quiet --nproc 2 --run-dir ' .. again)
      assert.are.equal(0, rc, out)
      assert.is_true(same_bytes(two .. '/model.safetensors', again .. '/model.safetensors'))
      for _, k in ipairs{'loss', 'accuracy', 'val_loss', 'val_accuracy'} do
         assert.are.equal(H.last_epoch(two)[k], H.last_epoch(again)[k], k)
      end
   end)

   it('resumes exactly after SIGTERM to one rank, with 2 processes, and within tolerance with 1', function()
      local int = dir .. '/int'
      local t0 = os.time()
      local rc, out = kbl_cmd('run ' .. EXP .. ' --quiet --nproc 2 --run-dir ' .. int, 'KBL_TEST_SIGNAL=TERM')
      assert.are_not.equal(0, rc)
      assert.truthy(out:find('interrupted by SIGTERM at step 31', 1, true), out)
      assert.is_true(os.time() - t0 < 60)
      os.execute('cp -r ' .. int .. ' ' .. int .. '1')
      rc, out = kbl_cmd('run --resume ' .. int .. ' --quiet --nproc 2')
      assert.are.equal(0, rc, out)
      assert.is_true(same_bytes(two .. '/model.safetensors', int .. '/model.safetensors'))
      rc, out = kbl_cmd('run --resume ' .. int .. '1 --quiet')
      assert.are.equal(0, rc, out)
      assert.is_true(max_diff(two .. '/model.safetensors', int .. '1/model.safetensors') <= TOLERANCE)
   end)

   it('ends the job with a message within 30 s when a rank is killed', function()
      local t0 = os.time()
      local rc, out = kbl_cmd('run ' .. EXP .. ' --quiet --nproc 2 --run-dir ' .. dir .. '/killed',
         'KBL_TEST_SIGNAL=KILL')
      assert.are_not.equal(0, rc)
      assert.is_true(os.time() - t0 < 30)
      assert.truthy(out:find('process rank 1', 1, true) and out:find('signal 9', 1, true), out)
   end)

   it('ends the job naming the collective when a rank hangs past the timeout', function()
      local script = H.write(dir .. '/hang.lua', [[
local kbl = require 'kbl'
if kbl.dist.rank() == 1 then os.execute('sleep 20') end
kbl.dist.all_reduce(kbl.ones{4})
print('passed the all-reduce')
]])
      local t0 = os.time()
      local rc, out = mpi(script, 'KBL_DIST_TIMEOUT=2')
      assert.are_not.equal(0, rc)
      assert.is_true(os.time() - t0 < 15)
      assert.truthy(out:find('all_reduce(sum) of 4 elements did not complete within 2 s on rank 0 of 2', 1, true), out)
      assert.falsy(out:find('passed the all-reduce', 1, true), out)
   end)
end)
