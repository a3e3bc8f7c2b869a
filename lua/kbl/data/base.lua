--- kbl.data.base: what a pipeline reads from and moves around.
--
-- A base is the random-access table behind a split: x and y tensors with rows
-- along dim 1 (y may be absent), plus the dtype and scale x converts to when a
-- batch is gathered (Fashion-MNIST keeps bytes and gathers float32 * 1/255).
-- Streams carry items of four kinds:
--   a lazy element   a number: a row id of the stream's base (ids count from 0,
--                    inside the pipeline only; users never see them)
--   an element       {x = tensor, y = number or tensor, id =, epoch =}
--   a lazy batch     {batch = true, lazy = true, base =, n =, ids =, epochs =, ops = {}}
--                    rows to gather and augmentation ops to run, all in C
--   a batch          {batch = true, x =, y =, n =, ids =, epochs =}
-- ids/epochs are int64_t arrays: each element's random identity, so every random
-- choice is a function of (seed, step, epoch, element).
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C
local wrap, live = T.wrap, T.live

local M = {}

local i64arr = ffi.typeof('int64_t[?]')
M.i64arr = i64arr
local out2 = ffi.typeof('kbl_tensor *[2]')

-- new{x =, y =, x_dtype =, x_scale =, name =}: a base over contiguous rows.
-- Its tensors are kept (kbl.keep): a kbl.scope around the code that made the
-- source or a pipeline never frees the rows they read.
function M.new(o)
   assert(kbl.is_tensor(o.x), 'data: x must be a tensor')
   local x = kbl.keep(o.x:contiguous())
   if x:dim() < 1 then error('data: x must have rows along dim 1, got a 0-dim tensor', 3) end
   local y = o.y
   if y ~= nil then
      if not kbl.is_tensor(y) then error('data: y must be a tensor', 3) end
      y = kbl.keep(y:contiguous())
      if y:dim() < 1 or y:size(1) ~= x:size(1) then
         error(string.format('data: %s: x has %d rows but y has %s', o.name or 'source', x:size(1),
            y:dim() < 1 and 'no rows' or tostring(y:size(1))), 3)
      end
   end
   return {
      x = x, y = y, n = x:size(1), name = o.name or 'tensors',
      x_dtype = lib.dtype_id(o.x_dtype or x.dtype), x_scale = o.x_scale or 1,
   }
end

-- Wraps a new tensor from libkbl, raising its message as it is (no Lua position:
-- reader messages already name the file).
function M.check(p)
   if p == nil then error(ffi.string(C.kbl_last_error()), 0) end
   return wrap(p)
end

-- ---- hashes, for cache keys --------------------------------------------------

local function hex(h)
   return string.format('%08x%08x', tonumber(h / 0x100000000ULL), tonumber(h % 0x100000000ULL))
end

function M.hash_string(s) return hex(C.kbl_data_hash_bytes(s, #s, 0)) end
function M.hash_tensor(t) return hex(C.kbl_data_hash_tensor(live(t), 0)) end

-- The base's content hash: any change in its data or conversion changes it.
function M.fingerprint(base)
   if not base.fp then
      base.fp = table.concat({'base', M.hash_tensor(base.x), base.y and M.hash_tensor(base.y) or '-',
         base.x_dtype, string.format('%.17g', base.x_scale)}, ':')
   end
   return base.fp
end

local function value_text(v, depth)
   local tv = type(v)
   if tv == 'number' then return string.format('%.17g', v) end
   if tv == 'string' or tv == 'boolean' or tv == 'nil' then return tv .. ':' .. tostring(v) end
   if kbl.is_tensor(v) then return 'tensor:' .. M.hash_tensor(v) end
   if depth > 3 then return tv end
   if tv == 'function' then return M.function_fingerprint(v, depth + 1) end
   if tv == 'table' then
      for name, m in pairs(package.loaded) do
         if m == v then return 'module:' .. tostring(name) end -- kbl, math...: named, not walked
      end
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      local parts = {}
      for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. value_text(v[k], depth + 1) end
      return '{' .. table.concat(parts, ',') .. '}'
   end
   return tv
end

-- A function's bytecode and the values it captures: a changed map or filter
-- (its code or a number it closes over) changes the fingerprint. Captured
-- tables count by their contents (modules by name), so a function that mutates
-- what it captures (a counter) gets a new fingerprint as the values change.
function M.function_fingerprint(fn, depth)
   local ok, code = pcall(string.dump, fn)
   local parts = {ok and code or tostring(fn)}
   for i = 1, 200 do
      local name, v = debug.getupvalue(fn, i)
      if not name then break end
      parts[#parts + 1] = name .. '=' .. value_text(v, depth or 1)
   end
   return M.hash_string(table.concat(parts, '\0'))
end
M.value_text = value_text

-- ---- random numbers from (seed, salt, epoch, id, draw) --------------------------

-- An integer in [0, n), n <= 2^53.
function M.randint(seed, salt, epoch, id, draw, n)
   return tonumber(C.kbl_data_randint(seed, salt, epoch, id, draw, n))
end

-- ---- materializing ---------------------------------------------------------------

local idbuf = i64arr(1)

-- Lazy element id of base as an element table.
function M.element(base, id, epoch)
   if base.element then return base.element(base, id, epoch) end -- rows that are not in memory (image files)
   idbuf[0] = id
   local xr = wrap(C.kbl_data_gather(live(base.x), 1, idbuf, base.x_dtype, base.x_scale))
   local el = {x = wrap(C.kbl_select(live(xr), 0, 0)), id = id, epoch = epoch}
   local y = base.y
   if y ~= nil then
      local p = live(y)
      if p.ndim == 1 then
         local v = T.elem_ptr(p)[id]
         el.y = tonumber(v)
      else
         local yr = wrap(C.kbl_data_gather(p, 1, idbuf, p.dtype, 1))
         el.y = wrap(C.kbl_select(live(yr), 0, 0))
      end
   end
   return el
end

-- The C job for a lazy batch (the arrays stay owned by the batch table).
function M.job(b)
   local base = b.base
   local job = ffi.new('kbl_data_job')
   if base.images then job.images = base.images else job.x = live(base.x) end
   job.y = base.y and live(base.y) or nil
   job.x_dtype = base.x_dtype
   job.x_scale = base.x_scale
   job.n = b.n
   job.ids = b.ids
   job.epochs = b.epochs
   job.x_is_batch = base.is_batch and 1 or 0
   local nops = #b.ops
   if nops > 0 then
      local ops = ffi.new('kbl_data_op[?]', nops)
      for i = 1, nops do ops[i - 1] = b.ops[i] end
      b._ops = ops
      job.ops = ops
   end
   job.nops = nops
   return job
end

local function take_results(out)
   local x = wrap(out[0])
   local y = out[1] ~= nil and wrap(out[1]) or nil
   return x, y
end
M.take_results = take_results

-- Runs a lazy batch now, on this thread; returns the materialized batch.
function M.run(b)
   local out = out2()
   if C.kbl_data_job_run(M.job(b), out, out + 1) ~= 0 then error(ffi.string(C.kbl_last_error()), 0) end
   local x, y = take_results(out)
   return {batch = true, x = x, y = y, n = b.n, ids = b.ids, epochs = b.epochs}
end

-- Stacks elements into a batch; numeric y become a tensor of ydtype (int64
-- when they are all whole numbers and no dtype is known, else float32).
function M.stack(elements, ydtype)
   local n = #elements
   local xs, ids, epochs = {}, i64arr(n), i64arr(n)
   local ys, ynum, yall_int = {}, false, true
   for i, el in ipairs(elements) do
      xs[i] = el.x
      ids[i - 1] = el.id or -1
      epochs[i - 1] = el.epoch or 0
      local y = el.y
      ys[i] = y
      if type(y) == 'number' then
         ynum = true
         if y % 1 ~= 0 then yall_int = false end
      end
   end
   for i = 1, n do
      if not kbl.is_tensor(xs[i]) then error(string.format('data: batch: element %d has no tensor x', i), 0) end
   end
   local b = {batch = true, x = kbl.stack(xs, 1), n = n, ids = ids, epochs = epochs}
   if ys[1] ~= nil then
      if ynum then
         b.y = kbl.tensor(ys, {dtype = ydtype or (yall_int and 'int64' or 'float32')})
      else
         b.y = kbl.stack(ys, 1)
      end
   end
   return b
end

-- An item as the user sees it.
function M.materialize(item, base, epoch)
   if type(item) == 'number' then
      local el = M.element(base, item, epoch)
      return {x = el.x, y = el.y}
   end
   if item.lazy then item = M.run(item) end
   return {x = item.x, y = item.y}
end

return M
