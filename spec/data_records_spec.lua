-- data.records and records.pack: round trips, shuffling, resume and damaged shards,
-- on small generated data.
local H = require 'helper'
local kbl = require 'kbl'
local data = require 'kbl.data'
local records = require 'kbl.data.records'

-- 300 rows of uint8 [2, 3, 4] (x / 255 when gathered) with labels 1..5.
local function source()
   kbl.manual_seed(7)
   local x = (kbl.rand({300, 2, 3, 4}) * 255):to('uint8')
   local y = kbl.tensor((function()
      local t = {}
      for i = 1, 300 do t[i] = (i * 7) % 5 + 1 end
      return t
   end)(), {dtype = 'int64'})
   local B = require 'kbl.data.base'
   local Source = require 'kbl.data.source'
   return Source.new{name = 'gen', splits = {
      train = B.new{x = x:narrow(1, 1, 250), y = y:narrow(1, 1, 250), x_dtype = 'float32', x_scale = 1 / 255},
      test = B.new{x = x:narrow(1, 251, 50), y = y:narrow(1, 251, 50), x_dtype = 'float32', x_scale = 1 / 255},
   }, meta = {num_classes = 5, class_names = {'a', 'b', 'c', 'd', 'e'}}}
end

local function collect(pipe)
   local xs, ys, sizes = {}, {}, {}
   for b in pipe:iter() do
      xs[#xs + 1], ys[#ys + 1], sizes[#sizes + 1] = b.x, b.y, b.x:size(1)
   end
   return kbl.cat(xs, 1), kbl.cat(ys, 1), sizes
end

describe('data.records', function()
   local tmp, src, dir
   setup(function()
      tmp = H.tmpdir()
      src = source()
      dir = tmp .. '/rec'
      -- shards of ~3 KB: 250 rows of 32 bytes (24 + an int64 label) make 3 train shards
      records.pack(src, dir, {shard_mb = 100 / 1048576 * 32})
   end)
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('packs every split into shards with an index and reads them back bit-exact', function()
      local idx = require('dkjson').decode(H.read(dir .. '/index.json'))
      assert.are.equal('kbl-records', idx.format)
      assert.are.equal(3, #idx.splits.train)
      assert.are.equal(1, #idx.splits.test)
      assert.are.same({2, 3, 4}, idx.x.shape)
      local rec = data.records{dir = dir}
      assert.are.equal(250, rec:size('train'))
      assert.are.same({'a', 'b', 'c', 'd', 'e'}, rec.meta.class_names)
      assert.are.same({2, 3, 4}, rec.meta.shapes.x)
      for _, split in ipairs{'train', 'test'} do
         local x, y, sizes = collect(rec:split(split):batch(64))
         local rx, ry = collect(src:split(split):batch(64))
         assert.are.equal(H.bytes(rx), H.bytes(x))
         assert.are.same(ry:tolist(), y:tolist())
         assert.are.equal(math.min(64, rec:size(split)), sizes[1])
      end
      assert.are.equal(4, rec:split('train'):batch(64):num_batches())
      assert.are.equal(3, rec:split('train'):batch(64, {drop_remainder = true}):num_batches())
   end)

   it('shuffles shard order and through a buffer, the same for the same seed and epoch', function()
      local rec = data.records{dir = dir, buffer = 40}
      local function epoch(seed, e)
         local p = rec:split('train'):shuffle{seed = seed}:batch(32)
         p:set_epoch(e)
         local _, y = collect(p)
         local p2 = rec:split('train'):shuffle{seed = seed}:batch(32)
         p2:set_epoch(e)
         return y, collect(p2)
      end
      local a, ax = epoch(3, 1)
      local b, bx = epoch(3, 1)
      assert.are.same(a:tolist(), b:tolist())
      assert.are.equal(H.bytes(ax), H.bytes(bx))
      local c = epoch(3, 2)
      local d = epoch(4, 1)
      assert.are_not.same(a:tolist(), c:tolist())
      assert.are_not.same(a:tolist(), d:tolist())
      -- every row exactly once: the multiset of rows is the source's
      local x = collect(rec:split('train'):shuffle{seed = 3}:batch(50))
      local rx = collect(src:split('train'):batch(50))
      local function rows(t)
         local l = {}
         for i = 1, t:size(1) do l[i] = H.bytes(t:narrow(1, i, 1)) end
         table.sort(l)
         return table.concat(l)
      end
      assert.are.equal(rows(rx), rows(x))
      assert.are_not.equal(H.bytes(rx), H.bytes(x))
      -- augmentations after it draw from the record ids: the same batches twice
      local p1 = rec:split('train'):shuffle{seed = 5}:batch(16):random_flip{}:prefetch(2)
      local p2 = rec:split('train'):shuffle{seed = 5}:batch(16):random_flip{}
      assert.are.equal(H.bytes(collect(p1)), H.bytes(collect(p2)))
   end)

   it('gives the same batches whatever the number of decompression threads', function()
      local d = tmp .. '/threads'
      records.pack(src, d, {shard_mb = 100 / 1048576 * 32, block_rows = 7})
      local function bytes(threads)
         local p = data.records{dir = d, buffer = 30, threads = threads}:split('train'):shuffle{seed = 4}:batch(16)
         local x, y = collect(p)
         return H.bytes(x) .. H.bytes(y)
      end
      local one = bytes(1)
      for _, t in ipairs{2, 3, 8} do assert.are.equal(one, bytes(t), t .. ' threads') end
      -- and whatever the depth of its batch ring (a waiting taker is woken at half of it)
      for _, depth in ipairs{1, 2, 5} do
         local p = data.records{dir = d, buffer = 30, depth = depth}:split('train'):shuffle{seed = 4}:batch(16)
         local x, y = collect(p)
         assert.are.equal(one, H.bytes(x) .. H.bytes(y), 'depth ' .. depth)
      end
      local _, err = pcall(data.records, {dir = d, threads = 0})
      assert.matches('data.records threads must be a positive integer, got 0', err, 1, true)
   end)

   -- every batch's x and y as bytes: epoch e, or from the state st
   local function batches_of(pipe, e, st)
      if st then pipe:set_state(st) else pipe:set_epoch(e) end
      local out = {}
      for b in pipe:iter() do out[#out + 1] = H.bytes(b.x) .. H.bytes(b.y) end
      return out
   end

   -- records in blocks of 10 rows, packed once for the two specs that read them
   local small_blocks
   local function small_blocks_dir()
      if not small_blocks then
         small_blocks = tmp .. '/small_blocks'
         records.pack(src, small_blocks, {shard_mb = 100 / 1048576 * 32, block_rows = 10})
      end
      return small_blocks
   end

   it('resumes mid-epoch at the saved shard, offset and shuffle buffer, the same batches as never stopped',
      function()
      -- blocks of 10 rows: a resume reads the blocks its buffer needs, then goes on
      local d = small_blocks_dir()
      local kinds = {
         {'buffer, batch, augmentation, prefetch', function(rec)
            return rec:split('train'):shuffle{seed = 11}:batch(24):random_crop{size = 2}:prefetch(2)
         end, 16},
         {'drop_remainder', function(rec)
            return rec:split('train'):shuffle{seed = 12}:batch(32, {drop_remainder = true})
         end, 40},
         {'in order (no shuffle)', function(rec) return rec:split('train'):batch(16) end, 16},
         {'elements, then a Lua map and batch', function(rec)
            return rec:split('train'):shuffle{seed = 13}:map(function(e) return e end):batch(20)
         end, 16},
      }
      for _, kind in ipairs(kinds) do
         local name, make, buffer = kind[1], kind[2], kind[3]
         local rec = data.records{dir = d, buffer = buffer}
         local whole = batches_of(make(rec), 2)
         assert.is_true(#whole >= 7, name)
         local mid_shard = 0
         for stop = 1, #whole - 1 do
            local p = make(rec)
            p:set_epoch(2)
            local it = p:iter()
            for _ = 1, stop do it() end
            local st = p:state()
            p:close()
            assert.are.equal(2, st.epoch, name)
            assert.are.equal(stop, st.position, name)
            local r = st.records
            assert.is_table(r, name)
            if r.shard and r.offset > 0 then mid_shard = mid_shard + 1 end
            assert.are.equal(r.buffered, r.buffer and r.buffer:numel() or 0, name)
            -- a fresh pipeline from the state: the remaining batches, byte for byte
            local q = make(data.records{dir = d, buffer = buffer})
            local rest = batches_of(q, nil, st)
            assert.are.equal(#whole - stop, #rest, name .. ' at ' .. stop)
            for i, b in ipairs(rest) do assert.are.equal(whole[stop + i], b, name .. ' at ' .. stop) end
            -- and the state as plain numbers (a table for the buffer) does the same
            if r.buffer then
               local plain = {epoch = 2, position = stop, records = {shard = r.shard, offset = r.offset,
                  draws = r.draws, buffered = r.buffered, buffer = r.buffer:tolist(), fingerprint = r.fingerprint}}
               assert.are.same(rest, batches_of(make(rec), nil, plain), name .. ' at ' .. stop)
            end
         end
         assert.is_true(mid_shard > 0, name .. ': no state fell inside a shard')
      end
   end)

   it('a resumed epoch reads the buffer\'s blocks and the rest, not the epoch from its start', function()
      local rec = data.records{dir = small_blocks_dir(), buffer = 8}
      local function pipe() return rec:split('train'):shuffle{seed = 3}:batch(10) end
      local p = pipe()
      p:set_epoch(1)
      for _ in p:iter() do end
      assert.are.equal(250, p.rows_read)
      local it
      p = pipe()
      p:set_epoch(1)
      it = p:iter()
      for _ = 1, 20 do it() end   -- 200 of 250 rows handed out
      local st = p:state()
      p:close()
      for _, state in ipairs{st, {epoch = 1, position = 20}} do   -- with and without the records part
         local q = pipe()
         q:set_state(state)
         local n = 0
         for _ in q:iter() do n = n + 1 end
         assert.are.equal(5, n)
         -- the 42 rows not yet drawn (in blocks of 10) and the blocks of the 8 buffered ones
         assert.is_true(q.rows_read <= 50 + 8 * 10, 'read ' .. q.rows_read .. ' rows')
      end
   end)

   it('refuses a records state from another pipeline or one that does not add up', function()
      local rec = data.records{dir = dir, buffer = 64}
      local p = rec:split('train'):shuffle{seed = 11}:batch(24)
      local it = p:iter()
      for _ = 1, 4 do it() end
      local st = p:state()
      p:close()
      local other = rec:split('train'):shuffle{seed = 12}:batch(24)
      local ok, err = pcall(other.set_state, other, st)
      assert.is_false(ok)
      assert.matches('records state for position 4 of epoch 1 was saved by another pipeline', err, 1, true)
      local bad = {epoch = 1, position = 4, records = {}}
      for k, v in pairs(st.records) do bad.records[k] = v end
      bad.records.offset = bad.records.offset + 1
      local q = rec:split('train'):shuffle{seed = 11}:batch(24)
      ok, err = pcall(q.set_state, q, bad)
      assert.is_false(ok)
      assert.matches('does not add up: 160 records read, 96 drawn and 63 buffered, 96 handed out', err, 1, true)
      bad.records.offset, bad.records.shard = st.records.offset, 'nope.kblr'
      ok, err = pcall(q.set_state, q, bad)
      assert.is_false(ok)
      assert.matches('is malformed (shard nope.kblr', err, 1, true)
      -- a buffered id outside the split: named by the streamer
      bad.records.shard, bad.records.buffer = st.records.shard, st.records.buffer:clone()
      bad.records.buffer[1] = 999
      q:set_state(bad)
      ok, err = pcall(function() q:iter()() end)
      assert.is_false(ok)
      assert.matches('records: resume state: buffered record 999 is not in this split', err, 1, true)
      -- a state past the end is refused as for any pipeline
      q:set_state{epoch = 2, position = 99}
      assert.has_error(function() q:iter() end)
      -- a records part on a pipeline that reads none
      local mem = src:split('train'):batch(24)
      ok, err = pcall(mem.set_state, mem, st)
      assert.is_false(ok)
      assert.matches('this pipeline reads no records', err, 1, true)
   end)

   it('names a damaged shard and the records, never skipping them', function()
      local bad = tmp .. '/bad'
      records.pack(src, bad, {shard_mb = 100 / 1048576 * 32})
      local shard = bad .. '/train-00001.kblr'
      local bytes = H.read(shard)
      -- a flipped byte inside the last block's data
      local pos = #bytes - 5
      H.write(shard, bytes:sub(1, pos - 1) .. string.char((bytes:byte(pos) + 1) % 256) .. bytes:sub(pos + 1))
      local ok, err = pcall(collect, data.records{dir = bad}:split('train'):batch(10))
      assert.is_false(ok)
      assert.matches('records: ' .. shard:gsub('%p', '%%%0') .. ': damaged shard: block 0 %(records 0%.%.99%)', err)
      -- a truncated shard: its size against the index, before reading anything
      H.write(shard, bytes:sub(1, 200))
      ok, err = pcall(collect, data.records{dir = bad}:split('train'):batch(10))
      assert.is_false(ok)
      assert.matches('damaged shard: 200 bytes, the index says ' .. #bytes, err, 1, true)
      -- a header claiming more blocks than the file can hold
      local hdr = bytes:sub(1, 12) .. '\255\255\255\127' .. bytes:sub(17)
      H.write(shard, hdr)
      ok, err = pcall(collect, data.records{dir = bad}:split('train'):batch(10))
      assert.is_false(ok)
      assert.matches('damaged shard', err, 1, true)
      -- a shard cut short while it is read (it is mapped): named, not a crash. The cut is
      -- past the blocks read ahead of the first batch, so none is being read as it lands.
      local cutdir = tmp .. '/cut'
      records.pack(src, cutdir, {block_rows = 7})
      local cut = cutdir .. '/train-00000.kblr'
      local ffi = require 'ffi'
      pcall(ffi.cdef, 'int truncate(const char *path, long length);')
      local it = data.records{dir = cutdir, buffer = 8, threads = 1}:split('train'):batch(8):iter()
      it()
      assert.are.equal(0, ffi.C.truncate(cut, math.floor(#H.read(cut) * 0.6)))
      ok, err = pcall(function() for _ in it do end end)
      assert.is_false(ok)
      assert.matches('records: ' .. cut:gsub('%p', '%%%0') .. ': damaged shard: cannot read block %d+ %(records '
         .. '%d+%.%.%d+%): the file was cut short', err)
      -- a missing shard
      os.remove(shard)
      local _
      _, err = pcall(collect, data.records{dir = bad}:split('train'):batch(10))
      assert.matches('train%-00001%.kblr: cannot open: No such file or directory', err)
      -- a bad index
      H.write(bad .. '/index.json', '{"format": "something else"}')
      _, err = pcall(data.records, {dir = bad})
      assert.matches('not a kbl records index', err, 1, true)
      _, err = pcall(data.records, {dir = dir, bufer = 3})
      assert.matches("unknown option 'bufer' (did you mean 'buffer'?)", err, 1, true)
   end)

   it('packs at a chosen zstd level, its fastest-reading by default, and names a level zstd lacks', function()
      -- compressible rows, so that levels give different shards
      local B = require 'kbl.data.base'
      local Source = require 'kbl.data.source'
      local vals, v = {}, 1
      for i = 1, 64000 do
         v = (v * 1103515245 + 12345) % 2147483648
         vals[i] = math.floor(v / 65536) % 16 + (i % 64 < 32 and 0 or 100)
      end
      local x = kbl.tensor(vals, {dtype = 'uint8'}):view({1000, 64})
      local s = Source.new{name = 'pattern', splits = {train = B.new{x = x, x_dtype = 'float32', x_scale = 1}}}
      local shards = {}
      for _, level in ipairs{'default', -1, -5, 19} do
         local d = tmp .. '/level_' .. level
         records.pack(s, d, {level = level ~= 'default' and level or nil})
         shards[level] = H.read(d .. '/train-00000.kblr')
         local got = {}
         for b in data.records{dir = d}:split('train'):batch(64):iter() do got[#got + 1] = b.x end
         assert.are.same(x:to('float32'):tolist(), kbl.cat(got, 1):tolist(), level)
      end
      assert.are.equal(-1, records.LEVEL)
      assert.are.equal(shards[-1], shards.default)
      assert.are_not.equal(shards[-1], shards[19])
      assert.is_true(#shards[19] < #shards[-5], #shards[19] .. ' bytes at 19, ' .. #shards[-5] .. ' at -5')
      local ok, err = pcall(records.pack, s, tmp .. '/level_bad', {level = 99})
      assert.is_false(ok)
      assert.matches("records: zstd level 99 is outside zstd's %-%d+%.%.%d+", err)
   end)

   it('scales stored floats by the index\'s scale, in batches and in single elements', function()
      local d = tmp .. '/scaled'
      local x = kbl.tensor({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}})
      local w = records.writer(d, {x = {dtype = 'float32', shape = {3}, scale = 0.5}, y = false})
      w:add('train', x)
      w:close()
      local rec = data.records{dir = d}
      local got = {}
      for b in rec:split('train'):batch(2):iter() do got[#got + 1] = b.x end
      assert.are.same((x * 0.5):tolist(), kbl.cat(got, 1):tolist())
      local i = 0
      for el in rec:split('train'):iter() do
         i = i + 1
         assert.are.same((x[i] * 0.5):tolist(), el.x:tolist())
      end
      assert.are.equal(3, i)
   end)

   it('hands its batches on as they are, and copies a batch of a source in memory', function()
      local ffi = require 'ffi'
      local T = require 'kbl.tensor'
      local B = require 'kbl.data.base'
      local C = kbl.lib.C
      local function ptr(t) return tonumber(ffi.cast('intptr_t', C.kbl_data_ptr(T.live(t)))) end
      local function lazy(x, ids, is_batch, ops)
         local n = #ids
         local id, ep = B.i64arr(n), B.i64arr(n)
         for i = 1, n do id[i - 1], ep[i - 1] = ids[i], 0 end
         return {batch = true, lazy = true, n = n, ids = id, epochs = ep, ops = ops or {},
            base = {x = x, n = x:size(1), x_dtype = kbl.lib.dtype_id('float32'), x_scale = 1, is_batch = is_batch}}
      end
      local x = kbl.rand({4, 3})
      assert.are.equal(ptr(x), ptr(B.run(lazy(x, {0, 1, 2, 3}, true)).x))
      -- a copy: not marked as the batch's own, rows out of order or a subset, or ops to run
      assert.are_not.equal(ptr(x), ptr(B.run(lazy(x, {0, 1, 2, 3}, false)).x))
      assert.are_not.equal(ptr(x), ptr(B.run(lazy(x, {1, 0, 2, 3}, true)).x))
      assert.are_not.equal(ptr(x), ptr(B.run(lazy(x, {0, 1, 2}, true)).x))
      local flipped = B.run(lazy(kbl.rand({4, 1, 2, 2}), {0, 1, 2, 3}, true, {}))
      assert.are.same({4, 1, 2, 2}, flipped.x:size())
      -- a whole source in memory in one batch is still copied: writing the batch leaves the source
      local t = kbl.rand({4, 3})
      local before = H.bytes(t)
      local mem = data.tensors{name = 'm', train = {x = t}}
      for b in mem:split('train'):batch(4):prefetch(1):iter() do b.x:fill_(0) end
      assert.are.equal(before, H.bytes(t))
      -- records batches: the same bytes through prefetch as without it
      local rec = data.records{dir = dir}
      assert.are.equal(H.bytes(collect(rec:split('train'):batch(64))),
         H.bytes(collect(rec:split('train'):batch(64):prefetch(2))))
   end)

   it('names its threads, so that top -H and perf tell them apart', function()
      local function names()
         local out = {}
         for _, t in ipairs(require('kbl.io.fs').list_dir('/proc/self/task')) do -- this process's, not ls's
            local comm = H.read('/proc/self/task/' .. t .. '/comm')
            if comm then out[comm:gsub('%s+$', '')] = true end
         end
         return out
      end
      -- blocks of 7 rows and a small buffer: the reader is still at work after the first batch
      local d = tmp .. '/names'
      records.pack(src, d, {block_rows = 7})
      local it = data.records{dir = d, threads = 1, buffer = 8}:split('train'):shuffle{seed = 1}:batch(8):prefetch(2)
         :iter()
      it()
      local seen = names()
      for _, name in ipairs{'kbl-records', 'kbl-records-rd', 'kbl-prefetch'} do
         assert.is_true(seen[name], name .. ' is not among the threads')
      end
      for _ in it do end
   end)

   it('packs an image folder, and streams elements before batch()', function()
      local ffi = require 'ffi'
      local T = require 'kbl.tensor'
      local C = kbl.lib.C
      for c, name in ipairs{'x', 'y'} do
         os.execute('mkdir -p ' .. tmp .. '/img/' .. name)
         for i = 1, 3 do
            local t = kbl.full({1, 2, 2}, c * 50 + i):to('uint8')
            assert(C.kbl_data_image_write(tmp .. '/img/' .. name .. '/' .. i .. '.png', T.live(t)) == 0,
               ffi.string(C.kbl_last_error()))
         end
      end
      local img = data.image_folder{root = tmp .. '/img', channels = 1}
      records.pack(img, tmp .. '/imgrec')
      local rec = data.records{dir = tmp .. '/imgrec'}
      local x, y = collect(rec:split('train'):batch(6))
      local rx, ry = collect(img:split('train'):batch(6))
      assert.are.equal(H.bytes(rx), H.bytes(x))
      assert.are.same(ry:tolist(), y:tolist())
      local n = 0
      for el in rec:split('train'):iter() do
         n = n + 1
         assert.are.same({1, 2, 2}, el.x:size())
         assert.are.equal(ry:tolist()[n], el.y)
      end
      assert.are.equal(6, n)
   end)
end)
