--- kbl.data.records: sharded record files, for datasets larger than memory.
-- `kbl data pack SOURCE --out DIR` (records.pack) writes each split as shards
-- of zstd-compressed blocks with an index (DIR/index.json: counts, sizes and
-- checksums); data.records{dir = DIR} streams them back (core/data_records.c).
--
--   local src = data.records{dir = 'fmnist.rec', buffer = 10000}
--   local p = src:split('train'):shuffle{seed = 1}:batch(128):random_flip{}
--
-- shuffle on records shuffles the order of the shards and draws rows through a
-- buffer of `buffer` rows (shuffle{buffer = n} overrides it), deterministic
-- from (seed, epoch); `threads` C threads (default 2) read and decompress
-- blocks, in order, from the mapped shards, and one more makes batches ahead
-- (depth = 4 ahead), converted to float32, and reads a block itself rather
-- than wait for one.
-- Mid-epoch, state() holds records = {shard, offset, draws, buffered, buffer}:
-- the shard being read and the offset of its next record, the draws made and
-- the ids of the records the buffer holds (an int64 tensor, in draw order).
-- set_state() resumes there, reading the buffer's records back and going on
-- from the offset; given {epoch, position} alone, it finds the same place from
-- the ids (kbl_data_records_locate), reading nothing before it. Memory holds
-- the buffer and a few blocks, not the dataset.
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local B = require 'kbl.data.base'
local Source = require 'kbl.data.source'
local Pipeline = require 'kbl.data.pipeline'
local fs = require 'kbl.io.fs'
local check_options = require 'kbl.options'
local C = lib.C

local M = {}

-- The zstd level shards are written at: zstd's --fast=1. Decoding speed sets
-- how fast records stream, and on Fashion-MNIST it decodes at 1.9 GB/s
-- against 0.9 GB/s at level 3, for shards 5% larger (`zstd -b3 -B1M` and
-- `zstd -b1 --fast=1 -B1M` on the raw images, Intel Xeon, 2 cores).
M.LEVEL = -1
local FORMAT, VERSION = 'kbl-records', 1

local function raise() error(ffi.string(C.kbl_last_error()), 0) end

local function hex64(h)
   return string.format('%08x%08x', tonumber(h / 0x100000000ULL), tonumber(h % 0x100000000ULL))
end
local function parse_hex64(s)
   local h = 0ULL
   for i = 1, #s do h = h * 16 + tonumber(s:sub(i, i), 16) end
   return h
end

-- ---- packing ---------------------------------------------------------------------------

-- The raw rows of base from row i (1-based), k of them: x in its stored dtype
-- (image files: decoded, as bytes), y.
local function rows(base, i, k)
   if base.images then
      local ids, eps = B.i64arr(k), B.i64arr(k)
      for j = 0, k - 1 do ids[j], eps[j] = i - 1 + j, 0 end
      local b = B.run{batch = true, lazy = true, base = base, n = k, ids = ids, epochs = eps, ops = {}}
      if b.x:size(1) ~= k then error('kbl data pack: an image could not be read (skip_bad is not for packing)', 0) end
      return (b.x * 255 + 0.5):clamp(0, 255):to('uint8'), b.y
   end
   return base.x:narrow(1, i, k):contiguous(), base.y and base.y:narrow(1, i, k):contiguous() or nil
end

-- writer(dir, {x = {dtype =, shape =, scale =}, y = {dtype =, shape =} or false, meta = {},
-- block_rows = rows of 1 MB}):
-- w:add(split, x, y[, level]) writes x's rows (and y's) as the split's next shard;
-- w:close() writes the index. For data made piece by piece (larger than memory).
function M.writer(dir, o)
   dir = dir:gsub('/+$', '')
   fs.mkdir_p(dir)
   local block_rows = o.block_rows
   local w = {dir = dir, index = {format = FORMAT, version = VERSION, x = o.x, y = o.y or false, meta = o.meta or {},
      splits = {}}}
   function w:add(split, x, y, level)
      local list = self.index.splits[split] or {}
      self.index.splits[split] = list
      local file = string.format('%s-%05d.kblr', split, #list)
      local xr = x:numel() / x:size(1) * tonumber(C.kbl_dtype_size(lib.dtypes[x.dtype]))
      local yr = y and y:numel() / y:size(1) * tonumber(C.kbl_dtype_size(lib.dtypes[y.dtype])) or 0
      local sum = ffi.new('uint64_t[1]')
      if C.kbl_data_records_write(self.dir .. '/' .. file, T.live(x), y and T.live(y) or nil,
         block_rows or math.max(1, math.floor(1048576 / (xr + yr))), level or M.LEVEL, sum) ~= 0 then raise() end
      local f = assert(io.open(self.dir .. '/' .. file, 'rb'))
      local size = f:seek('end')
      f:close()
      list[#list + 1] = {file = file, count = x:size(1), bytes = size, checksum = hex64(sum[0])}
   end
   function w:close()
      local json = require('dkjson').encode(self.index, {indent = true, keyorder = {'format', 'version', 'x', 'y',
         'meta', 'splits', 'file', 'count', 'bytes', 'checksum', 'dtype', 'shape', 'scale'}})
      local tmp = self.dir .. '/index.json.tmp'
      local f = assert(io.open(tmp, 'wb'))
      f:write(json, '\n')
      f:close()
      assert(os.rename(tmp, self.dir .. '/index.json'))
      return self.index
   end
   return w
end

-- pack(source, dir, {shard_mb = 64, level = M.LEVEL, block_rows = rows of 1 MB}): writes dir/index.json and the
-- shards of every split. Returns the index table.
function M.pack(src, dir, o)
   o = o or {}
   local shard_bytes = (o.shard_mb or 64) * 1048576
   local w
   for _, name in ipairs(src:splits()) do
      local base = src.bases[name]
      if base.n > 0 then
         local x1, y1 = rows(base, 1, 1)
         local xshape, yshape = x1:size(), y1 and y1:size()
         table.remove(xshape, 1)
         if yshape then table.remove(yshape, 1) end
         local desc = {dtype = x1.dtype, shape = xshape, scale = base.images and 1 / 255 or base.x_scale}
         if not w then
            w = M.writer(dir, {x = desc, y = y1 and {dtype = y1.dtype, shape = yshape} or false,
               block_rows = o.block_rows, meta = {
               num_classes = src.meta.num_classes, class_names = src.meta.class_names, source = src.name}})
         elseif w.index.x.dtype ~= desc.dtype or table.concat(w.index.x.shape, 'x') ~= table.concat(xshape, 'x') then
            error('kbl data pack: split ' .. name .. ' has rows of another shape or dtype than the others', 0)
         end
         local xr = x1:numel() * tonumber(C.kbl_dtype_size(lib.dtypes[x1.dtype]))
         local yr = y1 and y1:numel() * tonumber(C.kbl_dtype_size(lib.dtypes[y1.dtype])) or 0
         local per_shard = math.max(1, math.floor(shard_bytes / (xr + yr)))
         local chunk = base.images and 512 or per_shard
         local i = 1
         while i <= base.n do
            local n = math.min(per_shard, base.n - i + 1)
            kbl.scope(function()
               local xs, ys = {}, {}
               local j = i
               while j < i + n do
                  local m = math.min(chunk, i + n - j)
                  local x, y = rows(base, j, m)
                  xs[#xs + 1], ys[#ys + 1] = x, y
                  j = j + m
               end
               local x = #xs == 1 and xs[1] or kbl.cat(xs, 1)
               local y = ys[1] and (#ys == 1 and ys[1] or kbl.cat(ys, 1)) or nil
               w:add(name, x, y, o.level)
            end)
            i = i + n
         end
      end
   end
   if not w then error('kbl data pack: the source has no rows', 0) end
   return w:close()
end

-- ---- reading -----------------------------------------------------------------------------

local RP = setmetatable({}, {__index = Pipeline})
RP.__index = RP
RP.__tostring = Pipeline.__tostring

-- The read order of an epoch (shards permuted when shuffled) and the
-- streamer's settings for it, kept on the node for the epoch last asked.
local function plan(node, epoch)
   local pl = node._plan
   if pl and pl.epoch == epoch then return pl end
   local rec = node.rec
   local shards = rec.shards
   local nsh = #shards
   local order = {}
   for k = 1, nsh do order[k] = k end
   if node.rshuffle and nsh > 1 then
      local perm = kbl.keep(B.check(C.kbl_data_permutation(nsh, node.seed, node.rsalt + 1, epoch)))
      local pp = ffi.cast('int64_t *', C.kbl_data_ptr(T.live(perm)))
      for k = 1, nsh do order[k] = tonumber(pp[k - 1]) + 1 end
   end
   local spec = ffi.new('kbl_data_records_spec')
   local paths = ffi.new('const char *[?]', nsh + 1)
   local counts, sizes, firsts = B.i64arr(nsh + 1), B.i64arr(nsh + 1), B.i64arr(nsh + 1)
   local sums = ffi.new('uint64_t[?]', nsh + 1)
   local keep, at = {}, {}
   for j, k in ipairs(order) do
      local sh = shards[k]
      keep[j] = rec.dir .. '/' .. sh.file
      at[sh.file] = j - 1
      paths[j - 1] = keep[j]
      counts[j - 1], sizes[j - 1], firsts[j - 1], sums[j - 1] = sh.count, sh.bytes, sh.first, sh.sum
   end
   spec.nshards = nsh
   spec.x_dtype = lib.dtypes[rec.x.dtype]
   spec.y_dtype = rec.y and lib.dtypes[rec.y.dtype] or -1
   spec.xndim = #rec.x.shape
   for d, v in ipairs(rec.x.shape) do spec.xshape[d - 1] = v end
   spec.yndim = rec.y and #rec.y.shape or 0
   if rec.y then for d, v in ipairs(rec.y.shape) do spec.yshape[d - 1] = v end end
   spec.drop_remainder = node.drop and 1 or 0
   spec.depth = node.rdepth
   spec.threads = node.rthreads or 0
   spec.salt = node.rsalt or 0
   spec.paths, spec.counts, spec.sizes, spec.first_ids, spec.checksums = paths, counts, sizes, firsts, sums
   spec.x_scale = rec.x.scale or 1
   -- batches come out as float32, converted by the thread that assembles
   -- them (the rows are in its cache), so the batch job has nothing to copy;
   -- single elements keep their dtype unless scaled
   local scaled = (rec.x.scale or 1) ~= 1
   spec.out_dtype = (node.bsize or scaled) and lib.dtype_id('float32') or lib.dtypes[rec.x.dtype]
   spec.batch = node.bsize or 1
   spec.buffer = node.rshuffle and node.rbuffer or 0
   spec.seed = node.seed or 0
   spec.epoch = epoch
   pl = {epoch = epoch, spec = spec, order = order, at = at,
      refs = {paths, counts, sizes, firsts, sums, keep}} -- what spec points into
   node._plan = pl
   return pl
end

-- Rows handed out with the first `items` items (batches after batch()).
local function rows_of(node, items) return math.min(items * (node.bsize or 1), node.rec.count) end

-- The cursor of an epoch: where the read stands after `items` items, found by
-- following the ids alone (kbl_data_records_locate reads no data) from the
-- nearest earlier cursor: the one state() or set_state() left, or the start.
local function cursor(node, epoch, items)
   local c = node._cursor
   if not c or c.epoch ~= epoch or c.items > items then
      c = {epoch = epoch, items = 0, pos = ffi.new('kbl_data_records_pos'),
         ids = B.i64arr(math.max(1, node.rshuffle and node.rbuffer or 1))}
   end
   if items > c.items then
      if C.kbl_data_records_locate(plan(node, epoch).spec, rows_of(node, items) - rows_of(node, c.items), c.pos,
         c.ids) ~= 0 then raise() end
      c.items = items
   end
   node._cursor = c
   return c
end

-- A stream over the records of one split, as set by the node.
local function open_stream(node, epoch)
   local pl = plan(node, epoch)
   local streamer, skipped = nil, 0
   local function start()
      pl = plan(node, epoch)
      if skipped > 0 then
         local c = cursor(node, epoch, skipped)
         pl.spec.start, pl.spec.start_ids = c.pos, c.ids
      else
         pl.spec.start, pl.spec.start_ids = nil, nil
      end
      local r = C.kbl_data_records_open(pl.spec)
      pl.spec.start, pl.spec.start_ids = nil, nil
      if r == nil then raise() end
      streamer = ffi.gc(r, C.kbl_data_records_close)
   end
   local batch = node.bsize or 1
   local ids = B.i64arr(batch)
   local total_rows, float32 = node.rec.count, lib.dtype_id('float32')
   local out_x, out_y, nout = ffi.new('kbl_tensor *[1]'), ffi.new('kbl_tensor *[1]'), B.i64arr(1)
   local rows_in_order = B.i64arr(batch) -- a batch's ids 0..n-1, shared by every batch (nothing writes them)
   for i = 0, batch - 1 do rows_in_order[i] = i end
   local s = Pipeline.stream(nil, function()
      local _ = pl
      if not streamer then start() end
      if C.kbl_data_records_next(streamer, out_x, out_y, ids, nout) ~= 0 then raise() end
      local n = tonumber(nout[0])
      if n == 0 then return nil end
      local x = T.wrap(out_x[0])
      local y = out_y[0] ~= nil and T.wrap(out_y[0]) or nil
      if node.bsize then
         -- a lazy batch over its own rows (ids 0..n-1), converted already:
         -- the augmentations after it run in C on the prefetch thread, as for
         -- a source in memory, and with none the batch is handed on as it is.
         -- Each element's random identity is (epoch * N + record id, row),
         -- unique to the record and the epoch.
         local bep = B.i64arr(n)
         local e0 = ffi.cast('int64_t', epoch) * total_rows
         for i = 0, n - 1 do bep[i] = e0 + ids[i] end
         local base = {x = x, y = y, n = n, x_dtype = float32, x_scale = 1, name = node.name, is_batch = true}
         return {batch = true, lazy = true, base = base, n = n, ids = rows_in_order, epochs = bep, ops = {}}
      end
      local el = {x = x:select(1, 1), id = tonumber(ids[0]), epoch = epoch}
      if y then el.y = y:dim() == 1 and y:tolist()[1] or y:select(1, 1) end
      return el
   end, function(self_, k)
      -- before the first item, skipping moves where the streamer will start
      if streamer then return Pipeline.default_skip(self_, k) end
      local m = math.min(k, node:_count() - skipped)
      skipped = skipped + m
      return m
   end)
   s.epoch = epoch
   s.close = function()
      if streamer then
         node.rows_read = tonumber(C.kbl_data_records_rows_read(streamer))
         ffi.gc(streamer, nil)
         C.kbl_data_records_close(streamer)
         streamer = nil
      end
   end
   return s
end

-- The records part of state() after `items` items of epoch: the shard being
-- read, the offset of its next record, the draws made and the ids of the
-- records the shuffle buffer holds, in draw order.
local function resume_state(node, epoch, items)
   local c = cursor(node, epoch, items)
   local pl = plan(node, epoch)
   local n = tonumber(c.pos.count)
   local st = {shard = c.pos.shard < #pl.order and node.rec.shards[pl.order[tonumber(c.pos.shard) + 1]].file or false,
      offset = tonumber(c.pos.offset), draws = tonumber(c.pos.draws), buffered = n,
      fingerprint = B.hash_string(node:_fingerprint())}
   if n > 0 then
      local t = kbl.empty({n}, {dtype = 'int64'})
      ffi.copy(C.kbl_data_ptr(T.live(t)), c.ids, n * 8)
      st.buffer = t
   end
   return st
end

-- set_state's records part: checked against this pipeline and the position,
-- it becomes the cursor the next iter() starts from.
local function set_resume_state(node, epoch, items, st)
   local where = string.format('data: set_state: the records state for position %d of epoch %d', items, epoch)
   if type(st) ~= 'table' or st.fingerprint ~= B.hash_string(node:_fingerprint()) then
      error(where .. ' was saved by another pipeline (other records, seed, shuffle buffer or batch size)', 0)
   end
   local pl = plan(node, epoch)
   local shard = st.shard == false and #pl.order or pl.at[st.shard]
   local n = st.buffered or 0
   local list = st.buffer
   if kbl.is_tensor(list) then list = list:tolist() end
   if not shard or type(st.offset) ~= 'number' or type(st.draws) ~= 'number' or type(n) ~= 'number'
      or n ~= (list and #list or 0) then
      error(where .. ' is malformed (shard ' .. tostring(st.shard) .. ', buffered ' .. tostring(n) .. ')', 0)
   end
   local read = st.offset
   for j = 1, shard do read = read + node.rec.shards[pl.order[j]].count end
   local handed = rows_of(node, items)
   local ok = node.rshuffle and (st.draws == handed and read == handed + n) or (read == handed and n == 0)
   if not ok then
      error(string.format('%s does not add up: %d records read, %d drawn and %d buffered, %d handed out', where, read,
         st.draws, n, handed), 0)
   end
   local c = {epoch = epoch, items = items, pos = ffi.new('kbl_data_records_pos'),
      ids = B.i64arr(math.max(1, node.rshuffle and node.rbuffer or 1, n))}
   c.pos.shard, c.pos.offset, c.pos.draws, c.pos.count = shard, st.offset, st.draws, n
   for j = 1, n do c.ids[j - 1] = list[j] end
   node._cursor = c
end

local function native(prev, fields)
   local node = Pipeline.derive(prev, fields)
   node.rec_native = true
   node.rec = prev.rec
   node.rdepth, node.rthreads = prev.rdepth, prev.rthreads
   node._resume_state, node._set_resume_state = resume_state, set_resume_state
   if node.rshuffle == nil then node.rshuffle, node.rbuffer, node.rsalt = prev.rshuffle, prev.rbuffer, prev.rsalt end
   node._open = open_stream
   function node:_count()
      local n = self.rec.count
      if not self.bsize then return n end
      return self.drop and math.floor(n / self.bsize) or math.ceil(n / self.bsize)
   end
   function node:_fingerprint()
      return 'records:' .. self.rec.fp .. ';shuffle(' .. tostring(self.rshuffle and self.seed) .. ','
         .. tostring(self.rbuffer) .. ');batch(' .. tostring(self.bsize) .. ',' .. tostring(self.drop) .. ')'
   end
   return node
end

-- shuffle on the records themselves: shard order plus the buffer.
function RP.shuffle(prev, o)
   if not prev.rec_native or prev.bsize or prev.rshuffle then return Pipeline.shuffle(prev, o) end
   o = o or {}
   if o.seed ~= nil then Pipeline.check_count(o.seed, 'shuffle seed', true) end
   if o.buffer ~= nil then Pipeline.check_count(o.buffer, 'shuffle buffer') end
   local node = native(prev, {seed = o.seed or 0, rshuffle = true, rbuffer = o.buffer or prev.rec.buffer})
   node.rsalt = Pipeline.salt(node, 'shuffle', 1)
   function node:_describe() return 'shuffle{seed = ' .. self.seed .. ', buffer = ' .. self.rbuffer .. '}' end
   return node
end

function RP.batch(prev, n, o)
   if not prev.rec_native or prev.bsize then return Pipeline.batch(prev, n, o) end
   Pipeline.check_count(n, 'batch size')
   o = o or {}
   local node = native(prev, {bsize = n, drop = o.drop_remainder and true or false, batched = true})
   function node:_describe()
      return 'batch(' .. self.bsize .. (self.drop and ', {drop_remainder = true}' or '') .. ')'
   end
   return node
end

local function read_index(dir)
   local path = dir .. '/index.json'
   local f = io.open(path, 'rb')
   if not f then error('data.records: ' .. dir .. ' has no index.json (make one with kbl data pack)', 0) end
   local text = f:read('*a')
   f:close()
   local idx, _, err = require('dkjson').decode(text)
   if type(idx) ~= 'table' or idx.format ~= FORMAT then
      error('data.records: ' .. path .. ': not a kbl records index' .. (err and (' (' .. err .. ')') or ''), 0)
   end
   if idx.version ~= VERSION then
      error(string.format('data.records: %s: version %s, this kbl reads %d', path, tostring(idx.version), VERSION), 0)
   end
   if type(idx.x) ~= 'table' or not lib.dtypes[idx.x.dtype] or type(idx.x.shape) ~= 'table'
      or type(idx.splits) ~= 'table' then
      error('data.records: ' .. path .. ': the index lacks x (dtype, shape) or splits', 0)
   end
   return idx, text
end

return setmetatable(M, {__call = function(_, o)
   if type(o) ~= 'table' then error('data.records: expects {dir = DIR}', 2) end
   check_options('data.records', o, {'dir', 'buffer', 'depth', 'threads'})
   local dir = type(o.dir) == 'string' and o.dir:gsub('/+$', '') or nil
   if not dir or not fs.is_dir(dir) then error('data.records: dir must be a directory, got ' .. tostring(o.dir), 2) end
   if o.buffer ~= nil then Pipeline.check_count(o.buffer, 'data.records buffer') end
   if o.depth ~= nil then Pipeline.check_count(o.depth, 'data.records depth') end
   if o.threads ~= nil then Pipeline.check_count(o.threads, 'data.records threads') end
   local idx, text = read_index(dir)
   local y = idx.y and idx.y ~= false and type(idx.y) == 'table' and idx.y or nil
   local fp = B.hash_string(text)
   local bases = {}
   for name, list in pairs(idx.splits) do
      local shards, first = {}, 0
      for k, sh in ipairs(list) do
         if type(sh.file) ~= 'string' or sh.file:find('/') or type(sh.count) ~= 'number' or type(sh.bytes) ~= 'number'
            or type(sh.checksum) ~= 'string' or not sh.checksum:match('^%x+$') then
            error(string.format('data.records: %s/index.json: splits.%s[%d] is malformed', dir, name, k), 0)
         end
         shards[k] = {file = sh.file, count = sh.count, bytes = sh.bytes, sum = parse_hex64(sh.checksum), first = first}
         first = first + sh.count
      end
      bases[name] = {n = first, name = 'records/' .. name, shards = shards, count = first, dir = dir, fp = fp .. name,
         buffer = o.buffer or 10000}
   end
   local meta = idx.meta or {}
   local xdtype = (idx.x.scale and idx.x.scale ~= 1) and 'float32' or idx.x.dtype
   local src = Source.new{name = 'records', splits = bases, meta = {
      num_classes = meta.num_classes, class_names = meta.class_names, dir = dir,
      shapes = {x = idx.x.shape, y = y and y.shape or nil}, dtypes = {x = xdtype, y = y and y.dtype or nil},
   }}
   -- a split is a records pipeline: shuffle and batch run in C on the records
   function src.split(self, name)
      local base = self.bases[name]
      if not base then
         error(string.format("data: records has no split '%s' (it has: %s)", tostring(name),
            table.concat(self:splits(), ', ')), 2)
      end
      local root = setmetatable({source = self, meta = self.meta, depth = 0, batched = false, seed = 0,
         name = 'records/' .. name, _epoch = 1, _position = 0, _pending = true, rec_native = true,
         rec = {shards = base.shards, count = base.count, dir = dir, fp = base.fp, x = idx.x, y = y,
            buffer = base.buffer}, rdepth = o.depth or 4, rthreads = o.threads}, RP)
      root._open = open_stream
      root._count = function() return base.count end
      root._fingerprint = function() return 'records:' .. base.fp end
      root._describe = function() return root.name end
      root._resume_state, root._set_resume_state = resume_state, set_resume_state
      return root
   end
   return src
end})
