--- kbl.data.cache: cache(path, {level = 3}) stores what the steps before it
-- produce in a file compressed with zstd (core/data_cache.c), and reads it back
-- on the next run instead of running them, while the source data and those
-- steps are unchanged. The key is a hash of the source's contents and of every
-- step before the cache (their arguments, and for map/filter the function's
-- bytecode and the values it captures); anything changed means a new key, so
-- the stale file is rebuilt.
--
-- The steps before the cache run once, at the first epoch: put random steps
-- (shuffle, augmentations) after it. After a cache of elements the pipeline
-- reads rows from memory again (fast gathers, lazy batches); the cache's
-- elements are its rows. p.cache_status is 'hit' or 'miss' once loaded.
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local B = require 'kbl.data.base'
local Pipeline = require 'kbl.data.pipeline'
local C = lib.C

local MAX_TENSORS = 8

-- One pass of the steps before the cache, as tensors {info, x, y?, [ids, epochs, sizes]}.
local function collect(node, epoch)
   local up = node.parent:_open(epoch)
   local first = up:next()
   if first == nil then error('data: cache ' .. node.path .. ': the steps before it produced nothing', 0) end
   local ydtype = node.meta.dtypes and node.meta.dtypes.y
   if type(first) == 'number' then -- lazy rows: one gather for all of them
      local ids, eps = {first}, {up.epoch}
      for id in function() return up:next() end do ids[#ids + 1], eps[#eps + 1] = id, up.epoch end
      local n = #ids
      local ia, ea = B.i64arr(n), B.i64arr(n)
      for i = 1, n do ia[i - 1], ea[i - 1] = ids[i], eps[i] end
      local b = B.run{batch = true, lazy = true, base = up.base, n = n, ids = ia, epochs = ea, ops = {}}
      return {kind = 0, x = b.x, y = b.y}
   end
   if not first.batch then
      local els = {first}
      for el in function() return up:next() end do els[#els + 1] = el end
      local b = B.stack(els, ydtype)
      return {kind = 0, x = b.x, y = b.y}
   end
   local xs, ys, ids, eps, sizes = {}, {}, {}, {}, {}
   local item = first
   while item do
      local b = item.lazy and B.run(item) or item
      xs[#xs + 1], ys[#ys + 1], sizes[#sizes + 1] = b.x, b.y, b.n
      for i = 0, b.n - 1 do
         ids[#ids + 1] = b.ids and tonumber(b.ids[i]) or -1
         eps[#eps + 1] = b.epochs and tonumber(b.epochs[i]) or 0
      end
      item = up:next()
   end
   return {kind = 1, x = kbl.cat(xs, 1), y = ys[1] and kbl.cat(ys, 1) or nil,
      ids = kbl.tensor(ids, {dtype = 'int64'}), epochs = kbl.tensor(eps, {dtype = 'int64'}),
      sizes = kbl.tensor(sizes, {dtype = 'int64'})}
end

local function store(node, key, d)
   local list = {kbl.tensor({d.kind, d.y and 1 or 0}, {dtype = 'int64'}), d.x}
   if d.y then list[#list + 1] = d.y end
   if d.kind == 1 then
      for _, t in ipairs{d.ids, d.epochs, d.sizes} do list[#list + 1] = t end
   end
   local arr = ffi.new('kbl_tensor *[?]', #list)
   for i, t in ipairs(list) do arr[i - 1] = T.live(t) end
   if C.kbl_data_cache_write(node.path, key, #list, arr, node.level or 3) ~= 0 then
      error(ffi.string(C.kbl_last_error()), 0)
   end
end

local function load(node, key)
   local out = ffi.new('kbl_tensor *[?]', MAX_TENSORS)
   local n = C.kbl_data_cache_read(node.path, key, MAX_TENSORS, out)
   if n == 0 then return nil, ffi.string(C.kbl_last_error()) end
   local ts = {}
   for i = 1, n do ts[i] = T.wrap(out[i - 1]) end
   local info = ts[1]:tolist()
   local d = {kind = info[1], x = ts[2]}
   local k = 3
   if info[2] == 1 then d.y, k = ts[3], 4 end
   if d.kind == 1 then d.ids, d.epochs, d.sizes = ts[k], ts[k + 1], ts[k + 2] end
   return d
end

--- Keeps the items made so far on disk (zstd), so expensive preprocessing runs once.
-- @param prev the pipeline
-- @tparam string path the cache file
-- @tparam[opt] table o options (kbl.data.cache)
-- @treturn table the pipeline
-- @usage p = p:map(expensive):cache('prep.cache')
function Pipeline.cache(prev, path, o)
   if type(path) ~= 'string' or path == '' then error('data: cache expects a file path', 2) end
   o = o or {}
   local node = Pipeline.derive(prev, {path = path, level = o.level})
   function node:_load(epoch)
      if self._data then return self._data end
      local key = B.hash_string(self.parent:_fingerprint())
      local d, why = load(self, key)
      if d then
         self.cache_status = 'hit'
      else
         self.cache_status, self.cache_miss_reason = 'miss', why
         d = collect(self, epoch)
         store(self, key, d)
      end
      d.key = key
      for _, k in ipairs{'x', 'y', 'ids', 'epochs', 'sizes'} do
         if d[k] then kbl.keep(d[k]) end -- read through raw pointers and views: no scope may free them
      end
      if d.kind == 0 then d.base = B.new{x = d.x, y = d.y, name = 'cache ' .. self.path} end
      self._data = d
      return d
   end
   function node:_open(epoch)
      local d = self:_load(epoch)
      if d.kind == 0 then return Pipeline.from_base(nil, nil, d.base):_open(epoch) end
      local sizes, nb = d.sizes:tolist(), #d.sizes:tolist()
      local idp = ffi.cast('int64_t *', C.kbl_data_ptr(T.live(d.ids)))
      local epp = ffi.cast('int64_t *', C.kbl_data_ptr(T.live(d.epochs)))
      local k, off = 0, 0
      return Pipeline.stream(nil, function()
         if k >= nb then return nil end
         k = k + 1
         local n = sizes[k]
         local b = {batch = true, n = n, x = d.x:narrow(1, off + 1, n), y = d.y and d.y:narrow(1, off + 1, n),
            ids = idp + off, epochs = epp + off, _keep = d}
         off = off + n
         return b
      end)
   end
   function node:_count()
      if self._data then
         return self._data.kind == 0 and self._data.base.n or self._data.sizes:size(1)
      end
      return self.parent:_count()
   end
   function node:_fingerprint() return 'cache:' .. B.hash_string(self.parent:_fingerprint()) end
   function node:_describe() return 'cache(' .. self.path .. ')' end
   return node
end

return Pipeline
