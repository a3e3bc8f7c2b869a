-- memory: kbl.scope frees a step's intermediates deterministically, the
-- collector is stepped by live bytes, the caching allocator reuses blocks, and
-- a training loop's resident memory stays flat with and without kbl.scope.
local kbl = require 'kbl'

local function live() return kbl.memory.stats().live_bytes end

local function err_of(fn, ...)
   local ok, err = pcall(fn, ...)
   assert(not ok, 'expected an error')
   return tostring(err)
end

-- Resident set size of this process in kB, from /proc/self/status.
local function rss_kb()
   local f = assert(io.open('/proc/self/status'))
   local s = f:read('*a')
   f:close()
   return tonumber(s:match('VmRSS:%s*(%d+)'))
end

-- Clean slate: garbage from earlier tests collected, so live bytes are stable.
local function settle()
   collectgarbage('collect')
   collectgarbage('collect')
end

describe('kbl.scope', function()
   before_each(settle)

   it('frees the intermediates made inside it', function()
      local before = live()
      local leaked
      kbl.scope(function()
         local a = kbl.randn(256, 256)
         local b = (a * 2):exp():sum(1)
         assert.are.same({256}, b:size())
         assert.is_true(live() >= before + 2 * 256 * 256 * 4)
         leaked = a                         -- escapes, but not by return
         return nil
      end)
      assert.are.equal(before, live())
      assert.is_true(leaked:is_freed())
      assert.matches('freed', err_of(function() return leaked:sum() end))
      assert.matches('freed', err_of(function() return leaked[1] end))
   end)

   it('lets returned tensors, and tensors in returned tables, survive', function()
      local before = live()
      local x, t, n = kbl.scope(function()
         local a = kbl.ones(10, 10)
         local tmp = a * 3
         local b = tmp + 1
         return b, {loss = b:sum(), parts = {a:narrow(1, 1, 2)}}, 7
      end)
      assert.are.equal(7, n)
      assert.are.equal(4, x[1][1])
      assert.are.equal(400, t.loss:item())
      assert.are.same({2, 10}, t.parts[1]:size())
      assert.is_true(live() > before)
      x, t = nil, nil -- luacheck: ignore 311 (dropped for the collector)
      settle()
      assert.are.equal(before, live())
   end)

   it('lets kbl.keep\'d tensors survive', function()
      local before = live()
      local params = {}
      kbl.scope(function()
         params.w = kbl.keep(kbl.randn(32, 32))
         assert.are.equal(32, (params.w * 2):size(1))
         return nil
      end)
      assert.is_false(params.w:is_freed())
      assert.are.same({32, 32}, params.w:size())
      assert.are.equal(before + 32 * 32 * 4, live())
      params.w = nil
      settle()
      assert.are.equal(before, live())
   end)

   it('leaves tensors referenced from C (a .grad, a graph) to the collector', function()
      local w = kbl.randn({4, 4}, {requires_grad = true})
      local y = kbl.scope(function()
         local h = w * 2                 -- held by the graph of the returned y
         return (h * h):sum()
      end)
      y:backward()
      assert.are.same({4, 4}, w.grad:size())
      kbl.scope(function() (w * 3):sum():backward() end)
      assert.is_false(w.grad:is_freed())
   end)

   it('nests: an inner scope returns into the outer one, which frees it', function()
      local before = live()
      local inner_result
      local outer = kbl.scope(function()
         inner_result = kbl.scope(function()
            local t = kbl.zeros(64, 64)
            return t + 1, kbl.keep(kbl.ones(8))
         end)
         assert.is_false(inner_result:is_freed())
         return inner_result:sum()
      end)
      assert.are.equal(64 * 64, outer:item())
      assert.is_true(inner_result:is_freed())   -- the outer scope did not return it
      outer = nil -- luacheck: ignore 311 (dropped for the collector)
      settle()
      assert.are.equal(before, live())
   end)

   it('propagates an error from inside and still frees', function()
      local before = live()
      local made
      local ok, err = pcall(kbl.scope, function()
         made = kbl.zeros(100, 100)
         local _ = made:matmul(kbl.zeros(3, 3))   -- shapes do not match
      end)
      assert.is_false(ok)
      assert.matches('matmul', err)
      assert.is_true(made:is_freed())
      assert.are.equal(before, live())
      -- a scope after an error works as before
      assert.are.equal(6, kbl.scope(function() return kbl.ones(2, 3):sum() end):item())
   end)
end)

describe('the collector and the allocator', function()
   before_each(settle)

   it('steps the collector by live bytes: 2 GB of dropped 8 MB tensors stay bounded', function()
      local before = live()
      local peak = 0
      for _ = 1, 256 do
         local t = kbl.zeros(2 * 1024 * 1024)   -- 8 MB, dropped at once
         t[1] = 1
         peak = math.max(peak, live() - before)
      end
      -- the collector runs when live bytes pass max(64 MB, twice the last level)
      assert.is_true(peak <= 80 * 1024 * 1024, 'peak live bytes ' .. peak)
      settle()
      assert.are.equal(before, live())
   end)

   it('reuses cached blocks: a steady loop stops reaching malloc', function()
      local function step()
         kbl.scope(function()
            local a = kbl.randn(100, 300)
            local b = a:t():contiguous():exp()
            assert(b:sum():item() > 0)
         end)
      end
      for _ = 1, 5 do step() end
      local allocs = kbl.memory.stats().allocations
      for _ = 1, 200 do step() end
      assert.are.equal(allocs, kbl.memory.stats().allocations)
      assert.is_true(kbl.memory.stats().cached_bytes > 0)
      -- empty_cache hands the cached blocks back
      kbl.memory.empty_cache()
      assert.are.equal(0, kbl.memory.stats().cached_bytes)
   end)

   it('tracks the peak and resets it', function()
      kbl.memory.reset_peak()
      local base = kbl.memory.stats().peak_bytes
      local t = kbl.zeros(1024 * 1024)
      assert.is_true(kbl.memory.stats().peak_bytes >= base + 4 * 1024 * 1024)
      t:free()
      kbl.memory.reset_peak()
      assert.are.equal(live(), kbl.memory.stats().peak_bytes)
   end)
end)

describe('a training loop', function()
   -- one thread: these loops measure memory, and tiny parallel regions make
   -- them slow on a loaded machine
   local threads
   setup(function() threads = kbl.get_num_threads(); kbl.set_num_threads(1) end)
   teardown(function() kbl.set_num_threads(threads) end)

   -- 784-64-10 MLP at batch 32: linear, relu, cross entropy, backward, manual SGD.
   local function mlp(use_scope)
      kbl.manual_seed(0)
      local w1 = kbl.randn({64, 784}) * 0.05
      local b1 = kbl.zeros(64)
      local w2 = kbl.randn({10, 64}) * 0.1
      local b2 = kbl.zeros(10)
      local params = {w1, b1, w2, b2}
      for _, p in ipairs(params) do p.requires_grad = true end
      local x = kbl.randn(32, 784)
      local y = kbl.randint(1, 11, {32})
      local lr = 0.01
      local function step()
         local h = kbl.linear(x, w1, b1):relu()
         local loss = kbl.cross_entropy(kbl.linear(h, w2, b2), y)
         loss:backward()
         kbl.no_grad(function()
            for _, p in ipairs(params) do
               p:copy_(p - p.grad * lr)
               p.grad = nil
            end
         end)
         return loss:item()
      end
      local first, last, rss500
      for i = 1, 5000 do
         local l = use_scope and kbl.scope(step) or step()
         if i == 1 then first = l end
         if i == 500 then rss500 = rss_kb() end
         last = l
      end
      return first, last, rss_kb() - rss500
   end

   it('keeps RSS flat over 5000 steps under kbl.scope', function()
      settle()
      local first, last, growth = mlp(true)
      assert.is_true(last < first * 0.1, string.format('loss %g -> %g', first, last))   -- it learns
      assert.is_true(growth < 10 * 1024, 'RSS grew by ' .. growth .. ' kB')
   end)

   it('keeps RSS flat over 5000 steps without kbl.scope (the collector alone)', function()
      settle()
      local first, last, growth = mlp(false)
      assert.is_true(last < first * 0.1, string.format('loss %g -> %g', first, last))
      assert.is_true(growth < 10 * 1024, 'RSS grew by ' .. growth .. ' kB')
   end)
end)
