-- threads: kbl.set_num_threads governs our OpenMP loops and oneDNN's (a process
-- limited to one thread starts no worker thread at all); results do not depend
-- on the thread count, except GEMM and convolution, which are bit-identical run
-- to run at one thread count.
local ffi = require 'ffi'
local kbl = require 'kbl'
local H = require 'helper'

local build = os.getenv('KBL_BUILD_DIR') or 'build'

local function same_bits(a, b)
   assert.are.same(a:size(), b:size())
   a, b = a:contiguous(), b:contiguous()
   local n = a:numel() * (a.dtype == 'float64' and 8 or 4)
   return ffi.string(ffi.cast('const char *', a:data_ptr()), n)
      == ffi.string(ffi.cast('const char *', b:data_ptr()), n)
end

-- Runs a Lua script with kbl in a fresh process; returns its output.
local function run_script(src)
   local tmp = os.tmpname()
   local path = tmp .. '.lua'      -- bin/kbl runs files named *.lua
   local f = assert(io.open(path, 'w'))
   f:write(src)
   f:close()
   local rc, out = H.run('KBL_BUILD_DIR=' .. build .. ' bin/kbl ' .. path)
   os.remove(path)
   os.remove(tmp)
   assert.are.equal(0, rc, out)
   return out
end

-- The work every thread-count check runs: big enough for every parallel path.
local WORK = [[
local kbl = require 'kbl'
kbl.set_num_threads(%d)
local a, b = kbl.randn(1000, 1000), kbl.randn(1000, 1000)
local r = {a:sum(), a:sum(1), a:sum(2), a:softmax(2), a:softmax(1), a:exp() + b, a:matmul(b),
   a:double():matmul(b:double()), kbl.rand(1000, 1000),
   kbl.conv2d(a:reshape{10, 10, 100, 100}, kbl.randn(16, 10, 3, 3), nil, {padding = 1})}
local f = io.open('/proc/self/status')
local threads = f:read('*a'):match('Threads:%%s*(%%d+)')
f:close()
print('threads=' .. threads .. ' reported=' .. kbl.get_num_threads())
]]

describe('kbl.set_num_threads', function()
   after_each(function() kbl.set_num_threads(2) end)

   it('reports the count it was given', function()
      kbl.set_num_threads(1)
      assert.are.equal(1, kbl.get_num_threads())
      kbl.set_num_threads(3)
      assert.are.equal(3, kbl.get_num_threads())
      kbl.set_num_threads(0)            -- clamped to one
      assert.are.equal(1, kbl.get_num_threads())
   end)

   it('limits OpenMP and oneDNN: one thread starts no worker thread', function()
      assert.matches('threading: openmp', kbl.blas_info())   -- one pool for both
      local one = run_script(string.format(WORK, 1))
      assert.matches('threads=1 reported=1', one)
      local two = run_script(string.format(WORK, 2))
      local n = tonumber(two:match('threads=(%d+)'))
      assert.is_true(n >= 2, two)
   end)
end)

describe('results at 1 and 2 threads', function()
   after_each(function() kbl.set_num_threads(2) end)

   local function compute(nt, fn)
      kbl.set_num_threads(nt)
      kbl.manual_seed(21)
      local a, b = kbl.randn(1000, 1000), kbl.randn(1000, 1000)
      return fn(a, b)
   end

   it('are bit-identical for sum, softmax and elementwise ops on 1000x1000', function()
      local function ops(a, b)
         return {a:sum(), a:sum(1), a:sum(2), a:t():sum(2), a:mean(), a:double():sum(),
            a:softmax(2), a:softmax(1), a:log_softmax(2), a:exp(), a + b, a * b:t(), a:relu()}
      end
      local one, two = compute(1, ops), compute(2, ops)
      for i = 1, #one do assert.is_true(same_bits(one[i], two[i]), 'result ' .. i) end
   end)

   -- GEMM and convolution are left out on purpose: oneDNN splits the work by
   -- thread count (the K dimension of a GEMM, the images of a weight gradient)
   -- and sums the parts, so their results depend on the thread count. kbl
   -- promises bit-identical runs for the same thread count (DESIGN.md): below.
end)

describe('GEMM and convolution at one thread count', function()
   after_each(function() kbl.set_num_threads(2) end)

   -- matmul (plain, transposed, batched), linear, and conv2d forward and its
   -- three gradients (shapes oneDNN runs with blocked layouts), float32 and float64
   local SCRIPT = [[
local ffi = require 'ffi'
local kbl = require 'kbl'
kbl.set_num_threads(%d)
kbl.manual_seed(3)
local a, b = kbl.randn(300, 700), kbl.randn(700, 200)
local x = kbl.randn({16, 32, 14, 14}, {requires_grad = true})
local w = kbl.randn({64, 32, 3, 3}, {requires_grad = true})
local bias = kbl.randn({64}, {requires_grad = true})
local y = kbl.conv2d(x, w, bias, {padding = 1, stride = 1})
y:backward(kbl.randn(y:size()))
local r = {a:matmul(b), b:t():matmul(a:t()), kbl.randn(4, 50, 60):matmul(kbl.randn(60, 70)),
   kbl.linear(a, b:t(), kbl.randn(200)), a:double():matmul(b:double()), y, x.grad, w.grad, bias.grad}
-- FNV-1a over every result's bytes
local h = 2166136261ULL
for _, t in ipairs(r) do
   t = t:contiguous()
   local p = ffi.cast('const uint8_t *', t:data_ptr())
   for i = 0, t:numel() * (t.dtype == 'float64' and 8 or 4) - 1 do
      h = bit.bxor(h, p[i]) * 16777619ULL %% 4294967296ULL
   end
end
print('hash=' .. tostring(h))
]]

   for _, nt in ipairs{1, 2} do
      it('give bit-identical results in two processes at ' .. nt .. ' thread(s)', function()
         local one = run_script(string.format(SCRIPT, nt)):match('hash=(%S+)')
         local two = run_script(string.format(SCRIPT, nt)):match('hash=(%S+)')
         assert.is_not_nil(one)
         assert.are.equal(one, two)
      end)
   end

   it('give bit-identical results twice in one process (the cached primitives)', function()
      local function compute()
         kbl.manual_seed(4)
         local x = kbl.randn({8, 32, 10, 10}, {requires_grad = true})
         local w = kbl.randn({64, 32, 3, 3}, {requires_grad = true})
         local y = kbl.conv2d(x, w, nil, {padding = 1, stride = 2})
         y:backward(kbl.randn(y:size()))
         local a = kbl.randn(257, 513)
         return {y, x.grad, w.grad, a:matmul(a:t())}
      end
      for _, nt in ipairs{1, 2} do
         kbl.set_num_threads(nt)
         local one, two = compute(), compute()
         for i = 1, #one do assert.is_true(same_bits(one[i], two[i]), nt .. ' threads, result ' .. i) end
      end
   end)
end)
