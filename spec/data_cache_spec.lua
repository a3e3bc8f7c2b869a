-- data cache(path): a miss runs the steps before it and writes a zstd file; a
-- hit reads it instead; a change in the source or in a step before the cache
-- invalidates it; a damaged file is rebuilt.
local kbl = require 'kbl'
local data = require 'kbl.data'

local tmp
setup(function()
   local p = io.popen('mktemp -d /tmp/kbl_data_cache.XXXXXX')
   tmp = p:read('*l')
   p:close()
end)
teardown(function() os.execute('rm -rf ' .. tmp) end)

local function source(scale)
   kbl.manual_seed(1)
   return data.tensors{train = {x = kbl.rand(40, 1, 4, 4) * (scale or 1), y = kbl.randint(1, 4, {40})}}
end

local function batches(p)
   local out = {}
   for b in p:iter() do out[#out + 1] = {x = b.x:tolist(), y = b.y:tolist()} end
   return out
end

describe('data cache', function()
   it('misses, writes a zstd file, then hits without running the steps before it', function()
      local file = tmp .. '/hit.cache'
      local counter = {n = 0}
      local function pipeline(src, k)
         return src:split('train'):map(function(e)
            counter.n = counter.n + 1
            return {x = e.x * k, y = e.y}
         end):cache(file):shuffle{seed = 2}:batch(8):random_flip{}
      end
      local src = source()
      -- built before either runs: the map captures the same values in both
      local p1, p2 = pipeline(src, 3), pipeline(src, 3)
      local first = batches(p1)
      assert.equals('miss', p1.parent.parent.parent.cache_status)
      assert.equals(40, counter.n)
      local f = io.open(file, 'rb')
      local head = f:read(8)
      f:close()
      assert.equals('KBLCACHE', head)
      local second = batches(p2)
      assert.equals('hit', p2.parent.parent.parent.cache_status)
      assert.equals(40, counter.n)
      assert.same(first, second)
      -- a second epoch of the same pipeline reads memory, not the file
      batches(p1)
      assert.equals(40, counter.n)
      assert.equals(5, p1:num_batches())
   end)

   it('is invalidated by a change in the source, a step before it, or the function', function()
      local file = tmp .. '/inval.cache'
      local function run(src, k, steps)
         local p = src:split('train')
         if steps then p = steps(p) end
         local c = p:map(function(e) return {x = e.x * k, y = e.y} end):cache(file)
         local out = batches(c:batch(40))
         return c.cache_status, out
      end
      local src = source()
      assert.equals('miss', (run(src, 2)))
      assert.equals('hit', (run(src, 2)))
      local st, changed = run(source(5), 2)            -- other data
      assert.equals('miss', st)
      local st2, doubled = run(src, 4)                 -- the value the map captures
      assert.equals('miss', st2)
      assert.not_same(changed, doubled)
      assert.equals('miss', (run(src, 4, function(p) return p:take(30) end))) -- a step before it
      assert.equals('miss', (run(src, 4, function(p) return p:skip(1):take(30) end)))
      assert.equals('hit', (run(src, 4, function(p) return p:skip(1):take(30) end)))
      -- another function with the same captures
      local c = src:split('train'):skip(1):take(30):map(function(e) return {x = e.x * 4 + 0, y = e.y} end):cache(file)
      batches(c:batch(10))
      assert.equals('miss', c.cache_status)
   end)

   it('rebuilds a damaged or foreign file', function()
      local file = tmp .. '/damaged.cache'
      local src = source()
      local function mk() return src:split('train'):cache(file):batch(40) end
      local want = batches(mk())
      local f = io.open(file, 'rb')
      local bytes = f:read('*a')
      f:close()
      f = io.open(file, 'wb')
      f:write(bytes:sub(1, #bytes - 20))
      f:close()
      local p = mk()
      assert.same(want, batches(p))
      assert.equals('miss', p.parent.cache_status)
      assert.matches('truncated', p.parent.cache_miss_reason)
      f = io.open(file, 'wb')
      f:write('not a cache at all')
      f:close()
      p = mk()
      assert.same(want, batches(p))
      assert.matches('not a kbl cache file', p.parent.cache_miss_reason)
      assert.equals('hit', (function() local q = mk() batches(q) return q.parent.cache_status end)())
   end)

   it('caches batches too, keeping what later random steps draw', function()
      local file = tmp .. '/batches.cache'
      local src = source()
      local function mk()
         return src:split('train'):batch(16):map(function(b) return {x = b.x + 1, y = b.y} end, {batched = true})
            :cache(file):random_flip{}
      end
      local a, b = mk(), mk()
      local first, second = batches(a), batches(b)
      assert.equals('hit', b.parent.cache_status)
      assert.same(first, second)
      assert.equals(3, #second)
      assert.equals(8, #second[3].x)
      -- the same flips as without the cache
      local plain = src:split('train'):batch(16):map(function(bt) return {x = bt.x + 1, y = bt.y} end, {batched = true})
         :random_flip{}
      assert.same(batches(plain), first)
   end)

   it('refuses a cache without a path and names an unwritable one', function()
      local src = source()
      assert.has_error(function() src:split('train'):cache() end)
      local p = src:split('train'):cache('/nonexistent-dir/x.cache'):batch(4)
      local ok, e = pcall(function() return p:iter()() end)
      assert.is_false(ok)
      assert.matches('cache: /nonexistent%-dir/x.cache: cannot write', e)
   end)
end)
