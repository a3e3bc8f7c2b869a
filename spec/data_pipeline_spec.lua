-- data pipelines: batch assembly, shuffle, map, filter, repeat, take, skip;
-- determinism (same seed, same batches; another seed, another order); resuming
-- mid-epoch from a saved state; prefetch gives the batches it would without.
local data = require 'kbl.data'

-- N images [1, 4, 4] whose pixels hold their row number r (1..N) plus the pixel
-- position / 100, so a batch tells which rows it holds; labels (r % 3) + 1.
local function numbered(n)
   local xs, ys = {}, {}
   for r = 1, n do
      local img = {}
      for i = 1, 4 do
         img[i] = {}
         for j = 1, 4 do img[i][j] = r + ((i - 1) * 4 + j) / 100 end
      end
      xs[r], ys[r] = {img}, r % 3 + 1
   end
   return data.tensors{train = {x = xs, y = ys}}
end

-- Row numbers held by a batch of numbered images.
local function rows(b)
   local out = {}
   for i, v in ipairs(b.x:select(2, 1):select(2, 1):select(2, 1):tolist()) do out[i] = math.floor(v + 0.5) end
   return out
end

local function collect(p, limit)
   local out = {}
   for b in p:iter() do
      out[#out + 1] = {x = b.x:tolist(), y = b.y:tolist()}
      if limit and #out >= limit then break end
   end
   return out
end

local function flat_rows(p)
   local all = {}
   for b in p:iter() do for _, r in ipairs(rows(b)) do all[#all + 1] = r end end
   return all
end

local function is_permutation(list, n)
   if #list ~= n then return false end
   local seen = {}
   for _, v in ipairs(list) do
      if seen[v] or v < 1 or v > n then return false end
      seen[v] = true
   end
   return true
end

describe('data pipelines', function()
   local src = numbered(50)

   it('assembles contiguous batches of the rows in order, with the remainder or without', function()
      local p = src:split('train'):batch(16)
      assert.equals(4, p:num_batches())
      local sizes, all = {}, {}
      for b in p:iter() do
         assert.is_true(b.x:is_contiguous())
         assert.same({b.x:size(1), 1, 4, 4}, b.x:size())
         assert.equals('int64', b.y.dtype)
         sizes[#sizes + 1] = b.x:size(1)
         for i, r in ipairs(rows(b)) do
            all[#all + 1] = r
            assert.equals(r % 3 + 1, b.y:tolist()[i])
         end
      end
      assert.same({16, 16, 16, 2}, sizes)
      for i = 1, 50 do assert.equals(i, all[i]) end
      local d = src:split('train'):batch(16, {drop_remainder = true})
      assert.equals(3, d:num_batches())
      assert.equals(3, #collect(d))
   end)

   it('yields elements {x, y} before batch()', function()
      local it = src:split('train'):iter()
      local e = it()
      assert.same({1, 4, 4}, e.x:size())
      assert.equals(2, e.y)
   end)

   it('shuffles the same way for the same seed and another way for another seed', function()
      local a = flat_rows(src:split('train'):shuffle{seed = 7}:batch(8))
      local b = flat_rows(src:split('train'):shuffle{seed = 7}:batch(8))
      local c = flat_rows(src:split('train'):shuffle{seed = 8}:batch(8))
      assert.is_true(is_permutation(a, 50))
      assert.same(a, b)
      assert.not_same(a, c)
      local in_order = true
      for i = 1, 50 do in_order = in_order and a[i] == i end
      assert.is_false(in_order)
   end)

   it('shuffles each epoch differently, and set_epoch replays an epoch', function()
      local p = src:split('train'):shuffle{seed = 1}:batch(50)
      local e1, e2 = flat_rows(p), flat_rows(p)
      assert.equals(3, p:state().epoch)
      assert.not_same(e1, e2)
      p:set_epoch(1)
      assert.same(e1, flat_rows(p))
      p:set_epoch(2)
      assert.same(e2, flat_rows(p))
   end)

   it('shuffles through a buffer, deterministically, keeping every element', function()
      local a = flat_rows(src:split('train'):shuffle{seed = 3, buffer = 10}:batch(7))
      local b = flat_rows(src:split('train'):shuffle{seed = 3, buffer = 10}:batch(7))
      assert.is_true(is_permutation(a, 50))
      assert.same(a, b)
      assert.not_same(a, flat_rows(src:split('train'):shuffle{seed = 4, buffer = 10}:batch(7)))
   end)

   it('maps elements and batches with Lua functions, and filters', function()
      local p = src:split('train'):map(function(e) return {x = e.x * 2, y = e.y} end):batch(10)
      local b = p:iter()()
      assert.same({2, 4, 6}, {math.floor(b.x:tolist()[1][1][1][1]), math.floor(b.x:tolist()[2][1][1][1]),
         math.floor(b.x:tolist()[3][1][1][1])})
      local q = src:split('train'):batch(10):map(function(bt) return {x = bt.x:sum(2), y = bt.y} end, {batched = true})
      assert.same({10, 4, 4}, q:iter()().x:size())
      local f = src:split('train'):filter(function(e) return e.y == 1 end):batch(100)
      local fb = f:iter()()
      assert.is_nil(f:num_batches())
      for _, r in ipairs(rows(fb)) do assert.equals(0, r % 3) end
      assert.equals(16, fb.x:size(1))
      assert.has_error(function() src:split('train'):map(5) end)
      assert.has_error(function() src:split('train'):map(function(e) return e end, {batched = true}) end)
      local bad = src:split('train'):map(function() return 3 end)
      assert.has_error(function() bad:iter()() end, 'data: a map function must return a table {x =, y =}, got number')
   end)

   it('repeats, takes and skips', function()
      local r = src:split('train'):repeat_(2):batch(20)
      assert.equals(5, r:num_batches())
      local all = flat_rows(r)
      assert.equals(100, #all)
      assert.equals(1, all[51])
      local t = src:split('train'):skip(5):take(12):batch(5)
      assert.equals(3, t:num_batches())
      local tr = flat_rows(t)
      assert.same({6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, tr)
      local bt = src:split('train'):batch(10):skip(1):take(2)
      assert.same({11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}, flat_rows(bt))
      -- each pass of a repeat is shuffled on its own
      local rs = flat_rows(src:split('train'):shuffle{seed = 2}:repeat_(2):batch(25))
      local p1, p2 = {}, {}
      for i = 1, 50 do p1[i], p2[i] = rs[i], rs[50 + i] end
      assert.is_true(is_permutation(p1, 50) and is_permutation(p2, 50))
      assert.not_same(p1, p2)
      local forever = src:split('train'):repeat_():batch(30)
      assert.is_nil(forever:num_batches())
      local it, n = forever:iter(), 0
      for _ = 1, 10 do n = n + it().x:size(1) end
      assert.equals(300, n)
   end)

   local function augmented(seed)
      return src:split('train'):shuffle{seed = seed}:batch(8):random_crop{size = 4, padding = 1}
         :random_flip{vertical = true}:gaussian_noise{std = 0.1}
   end

   it('gives the same augmented batches for the same seed and others for another', function()
      local a, b, c = collect(augmented(11)), collect(augmented(11)), collect(augmented(12))
      assert.equals(7, #a)
      assert.same(a, b)
      assert.not_same(a[1].x, c[1].x)
   end)

   it('resumes mid-epoch from a saved state with exactly the remaining batches', function()
      local full = augmented(5)
      local epoch1, epoch2 = collect(full), collect(full)
      local p = augmented(5)
      local first = collect(p, 3)
      assert.same({epoch = 1, position = 3}, p:state())
      for i = 1, 3 do assert.same(epoch1[i], first[i]) end
      local saved = p:state()
      -- a new pipeline, as after a restart from a checkpoint
      local q = augmented(5)
      q:set_state(saved)
      local rest = collect(q)
      assert.equals(4, #rest)
      for i = 1, 4 do assert.same(epoch1[3 + i], rest[i]) end
      assert.same({epoch = 2, position = 0}, q:state())
      assert.same(epoch2, collect(q))
      -- in the second epoch too; after a break, state() tells where it stopped
      local r = augmented(5)
      r:set_state{epoch = 2, position = 5}
      local tail = collect(r, 1)
      assert.same(epoch2[6], tail[1])
      assert.same({epoch = 2, position = 6}, r:state())
      r:set_state(r:state())
      assert.same({epoch2[7]}, collect(r))
      -- a new iter() after a break starts the next epoch, as a Python loader would
      r:set_state{epoch = 1, position = 2}
      collect(r, 1)
      assert.same(epoch2, collect(r))
      assert.same({epoch = 3, position = 0}, r:state())
   end)

   it('resumes through repeat, buffer shuffles, maps and filters', function()
      local function mk()
         return src:split('train'):shuffle{seed = 9, buffer = 7}:filter(function(e) return e.y ~= 2 end)
            :map(function(e) return {x = e.x + 1, y = e.y} end):repeat_(2):batch(6):random_flip{}
      end
      local whole = collect(mk())
      local p = mk()
      collect(p, 4)
      local q = mk()
      q:set_state(p:state())
      local rest = collect(q)
      assert.equals(#whole - 4, #rest)
      for i = 1, #rest do assert.same(whole[4 + i], rest[i]) end
      local bad = mk()
      bad:set_state{epoch = 1, position = 1000}
      assert.has_error(function() bad:iter() end)
      assert.has_error(function() p:set_state{epoch = 1.5, position = 0} end)
   end)

   it('gives the same batches with prefetch as without, whatever the depth and threads', function()
      local want = collect(augmented(3):random_erasing{p = 0.5}:mixup{alpha = 0.3})
      for _, c in ipairs{{1, 1}, {3, 1}, {4, 2}, {16, 3}} do
         local got = collect(augmented(3):random_erasing{p = 0.5}:mixup{alpha = 0.3}:prefetch(c[1], {threads = c[2]}))
         assert.same(want, got)
      end
      -- element-level prefetch and prefetch after Lua maps only queue, with the same result
      local m = function(p) return p:map(function(b) return {x = b.x * 3, y = b.y} end, {batched = true}) end
      assert.same(collect(m(augmented(3))), collect(m(augmented(3)):prefetch(2)))
      local el = src:split('train'):shuffle{seed = 1}:prefetch(3):batch(9)
      assert.same(collect(src:split('train'):shuffle{seed = 1}:batch(9)), collect(el))
      -- a prefetch (or any step that draws nothing) placed earlier changes no random choice
      local early = src:split('train'):shuffle{seed = 3}:batch(8):prefetch(2):random_crop{size = 4, padding = 1}
         :random_flip{vertical = true}:gaussian_noise{std = 0.1}
      assert.same(collect(augmented(3)), collect(early))
      -- resuming a prefetched pipeline
      local p = augmented(3):prefetch(3)
      local all = collect(p)
      local q = augmented(3):prefetch(3)
      q:set_state{epoch = 1, position = 5}
      assert.same({all[6], all[7]}, collect(q))
   end)

   it('stops a prefetching iteration cleanly when a new one starts or on close()', function()
      local p = augmented(3):prefetch(4, {threads = 2})
      local it = p:iter()
      it()
      it()
      assert.same({epoch = 1, position = 2}, p:state())
      local again = collect(p) -- the next epoch, whole
      assert.equals(7, #again)
      local q = augmented(3)
      q:set_epoch(2)
      assert.same(collect(q), again)
      assert.is_nil(it())
      it = p:iter()
      it()
      p:close()
      assert.is_nil(it())
      assert.same({epoch = 3, position = 1}, p:state())
   end)

   it('keeps its rows and permutations when made or started inside kbl.scope', function()
      local kbl = require 'kbl'
      local want = collect(augmented(2))
      local p, it = kbl.scope(function()
         local s = numbered(50)
         local q = s:split('train'):shuffle{seed = 2}:batch(8):random_crop{size = 4, padding = 1}
            :random_flip{vertical = true}:gaussian_noise{std = 0.1}
         return q, q:iter()
      end)
      collectgarbage('collect')
      local got = {}
      for b in it do got[#got + 1] = {x = b.x:tolist(), y = b.y:tolist()} end
      assert.same(want, got)
      assert.equals(7, #collect(p))
   end)

   it('refuses augmentations before batch() and bad arguments', function()
      local s = src:split('train')
      assert.has_error(function() s:random_flip{} end, 'data: random_flip is a batched kernel: put it after batch()')
      assert.has_error(function() s:batch(0) end)
      assert.has_error(function() s:batch(2):batch(2) end)
      assert.has_error(function() s:shuffle{seed = -1} end)
      assert.has_error(function() s:prefetch(0) end)
      assert.has_error(function() s:take(-1) end)
      assert.matches('shuffle{seed = 1} %-> batch%(4%)', tostring(s:shuffle{seed = 1}:batch(4)))
   end)
end)
