--- kbl.io.safetensors: the safetensors format (huggingface/safetensors), read and
-- written by hand because it is small and exactly specified: an 8-byte
-- little-endian header length N, N bytes of JSON ({name: {dtype, shape,
-- data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the
-- tensors' bytes, C order, little-endian, packed without gaps. Offsets count
-- from the start of the data section. Tensor bytes move between the file and
-- tensor memory by fread/write of whole buffers, never element by element.
--
--   kbl.save('w.safetensors', {['fc.weight'] = w, ['fc.bias'] = b}, {epoch = '3'})
--   local tensors, metadata = kbl.load('w.safetensors')
local ffi = require 'ffi'
local json = require 'dkjson'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local binfile = require 'kbl.io.binfile'
local C = lib.C

local M = {}

-- safetensors dtype <-> kbl dtype id; BOOL reads as uint8 (one byte, 0 or 1).
local to_kbl = {F32 = 0, F64 = 1, I32 = 2, I64 = 3, U8 = 4, BOOL = 4}
local from_kbl = {[0] = 'F32', 'F64', 'I32', 'I64', 'U8'}
local elem_size = {F32 = 4, F64 = 8, I32 = 4, I64 = 8, U8 = 1, BOOL = 1}
-- In the format but not in kbl: refused with a message that says so.
local unsupported = {F16 = true, BF16 = true, I8 = true, I16 = true, U16 = true, U32 = true,
   U64 = true, F8_E4M3 = true, F8_E5M2 = true, F8_E8M0 = true, F4 = true, F6_E2M3 = true,
   F6_E3M2 = true, C64 = true}
-- The reference implementation refuses headers past 100 MB.
local MAX_HEADER = 100000000
-- The largest byte count a tensor may have (its sizes and strides fit in int64),
-- counting every dim of 0 as 1.
local MAX_BYTES = 2 ^ 62

M.dtype_of = from_kbl

local function shape_text(shape)
   local s = {}
   for i, v in ipairs(shape) do s[i] = string.format('%.0f', v) end
   return '[' .. table.concat(s, ', ') .. ']'
end

local function is_count(v) return type(v) == 'number' and v >= 0 and v % 1 == 0 and v < 2 ^ 53 end

-- ---- writing ------------------------------------------------------------

local sorted_keys = require('kbl.util').sorted_keys

--- Writes tensors to a safetensors file, atomically (a temporary name, synced, renamed). Also kbl.save.
-- @tparam string path
-- @tparam table tensors {name = tensor}
-- @tparam[opt] table metadata strings (numbers and booleans are written as their text)
-- @usage kbl.save('w.safetensors', {weight = w})
function M.save(path, tensors, metadata)
   local what = 'safetensors save ' .. tostring(path)
   if type(path) ~= 'string' then error('safetensors save: path must be a string', 2) end
   if type(tensors) ~= 'table' then error(what .. ': expected a table of name = tensor', 2) end
   local entries = {}
   for name, t in pairs(tensors) do
      if type(name) ~= 'string' or name == '' then
         error(what .. ': tensor names must be non-empty strings, got ' .. tostring(name), 2)
      end
      if name == '__metadata__' then error(what .. ": '__metadata__' is reserved, not a tensor name", 2) end
      if not T.is_tensor(t) then error(string.format("%s: '%s' is not a tensor (%s)", what, name, type(t)), 2) end
      local p = T.live(t)
      -- a CUDA tensor is written from a host copy
      local c = p.device ~= 0 and T.wrap(C.kbl_to_device(p, 0)) or T.wrap(C.kbl_contiguous(p))
      entries[#entries + 1] = {name = name, t = c, dtype = from_kbl[p.dtype],
         nbytes = tonumber(C.kbl_numel(p)) * tonumber(C.kbl_dtype_size(p.dtype))}
   end
   -- as the reference writer: larger alignment first, then by name
   table.sort(entries, function(a, b)
      local sa, sb = elem_size[a.dtype], elem_size[b.dtype]
      if sa ~= sb then return sa > sb end
      return a.name < b.name
   end)
   local parts, offset = {}, 0
   if metadata ~= nil then
      if type(metadata) ~= 'table' then error(what .. ': metadata must be a table of strings', 2) end
      local m = {}
      for _, k in ipairs(sorted_keys(metadata)) do
         local v = metadata[k]
         if type(k) ~= 'string' then error(what .. ': metadata keys must be strings, got ' .. tostring(k), 2) end
         if type(v) == 'number' or type(v) == 'boolean' then v = tostring(v) end
         if type(v) ~= 'string' then
            error(string.format("%s: metadata '%s' must be a string, got %s", what, k, type(v)), 2)
         end
         m[#m + 1] = json.quotestring(k) .. ':' .. json.quotestring(v)
      end
      parts[#parts + 1] = '"__metadata__":{' .. table.concat(m, ',') .. '}'
   end
   for _, e in ipairs(entries) do
      local shape = e.t:size()
      local dims = {}
      for i, v in ipairs(shape) do dims[i] = string.format('%d', v) end
      parts[#parts + 1] = string.format('%s:{"dtype":"%s","shape":[%s],"data_offsets":[%.0f,%.0f]}',
         json.quotestring(e.name), e.dtype, table.concat(dims, ','), offset, offset + e.nbytes)
      offset = offset + e.nbytes
   end
   local header = '{' .. table.concat(parts, ',') .. '}'
   -- pad with spaces so the data section starts 8-byte aligned, as the reference does
   header = header .. string.rep(' ', (8 - #header % 8) % 8)
   local w = binfile.create(path, what)
   w:write(binfile.u64_le(#header))
   w:write(header)
   for _, e in ipairs(entries) do w:write(C.kbl_data_ptr(T.live(e.t)), e.nbytes) end
   w:commit()
end

-- ---- reading ------------------------------------------------------------

-- Reads and validates the header: returns the entries sorted by offset, the
-- metadata table, and the start of the data section.
local function read_header(r)
   if r.size < 8 then r:fail('the file is %d bytes, too short for the 8-byte header length', r.size) end
   local n = binfile.read_u64_le(r:read(0, 8), 1)
   if n > r.size - 8 then
      r:fail('header length %.0f runs past the end of the file (%d bytes)', n, r.size)
   end
   if n > MAX_HEADER then r:fail('header length %.0f is over the 100 MB limit', n) end
   local text = r:read(8, n)
   if text:sub(1, 1) ~= '{' then r:fail('bad JSON header at byte 8: it does not start with "{"') end
   local ok, obj, pos, err = pcall(json.decode, text, 1, nil)
   if not ok or type(obj) ~= 'table' then
      r:fail('bad JSON header%s: %s', ok and pos and string.format(' at byte %d', 8 + pos - 1) or '',
         ok and (err or 'not an object') or obj)
   end
   local junk = pos and text:find('[^ \t\r\n]', pos)
   if junk then r:fail('bad JSON header at byte %d: text after the JSON object', 8 + junk - 1) end
   local metadata = {}
   if obj.__metadata__ ~= nil then
      if type(obj.__metadata__) ~= 'table' then r:fail('__metadata__ must be a map of strings') end
      for k, v in pairs(obj.__metadata__) do
         if type(v) ~= 'string' then r:fail("__metadata__ '%s' is not a string", tostring(k)) end
         metadata[k] = v
      end
   end
   local data_size = r.size - 8 - n
   local entries = {}
   for name, e in pairs(obj) do
      if name ~= '__metadata__' then
         local function bad(fmt, ...) r:fail("tensor '%s': " .. fmt, name, ...) end
         if type(e) ~= 'table' then bad('its entry is not an object') end
         local dt = e.dtype
         if type(dt) ~= 'string' then bad('no dtype') end
         if unsupported[dt] then
            bad('dtype %s is not supported by kbl (it reads F32, F64, I32, I64, U8 and BOOL)', dt)
         end
         if not to_kbl[dt] then bad("unknown dtype '%s'", dt) end
         if type(e.shape) ~= 'table' then bad('no shape') end
         local numel, bytes = 1, elem_size[dt]
         for i = 1, #e.shape do
            if not is_count(e.shape[i]) then bad('shape entry %d is not a size: %s', i, tostring(e.shape[i])) end
            numel = numel * e.shape[i]
            bytes = bytes * math.max(e.shape[i], 1)
         end
         if #e.shape > 8 then bad('%d dims; kbl tensors have at most 8', #e.shape) end
         if bytes > MAX_BYTES then bad('shape %s %s is too large: over 2^62 bytes', shape_text(e.shape), dt) end
         local off = e.data_offsets
         if type(off) ~= 'table' or #off ~= 2 or not is_count(off[1]) or not is_count(off[2]) then
            bad('data_offsets must be two non-negative integers')
         end
         if off[2] < off[1] then bad('data_offsets [%.0f, %.0f] end before they begin', off[1], off[2]) end
         if off[2] > data_size then
            bad('data_offsets [%.0f, %.0f] out of range: the data section is %.0f bytes', off[1], off[2], data_size)
         end
         local need = numel * elem_size[dt]
         if off[2] - off[1] ~= need then
            bad('data_offsets [%.0f, %.0f] hold %.0f bytes, but shape %s %s needs %.0f', off[1], off[2],
               off[2] - off[1], shape_text(e.shape), dt, need)
         end
         entries[#entries + 1] = {name = name, dtype = dt, shape = e.shape, b = off[1], e = off[2]}
      end
   end
   table.sort(entries, function(a, b)
      if a.b ~= b.b then return a.b < b.b end
      if a.e ~= b.e then return a.e < b.e end
      return a.name < b.name
   end)
   local at, prev = 0, nil
   for _, e in ipairs(entries) do
      if e.b < at then
         r:fail("tensor '%s' [%.0f, %.0f] overlaps tensor '%s' [%.0f, %.0f]", e.name, e.b, e.e,
            prev.name, prev.b, prev.e)
      elseif e.b > at then
         r:fail("tensor '%s' starts at %.0f, leaving a gap after %s at %.0f (offsets must be contiguous)",
            e.name, e.b, prev and ("tensor '" .. prev.name .. "'") or 'the start', at)
      end
      at, prev = e.e, e
   end
   if at ~= data_size then
      r:fail('%.0f bytes after the last tensor%s: the data section is %.0f bytes', data_size - at,
         prev and (" '" .. prev.name .. "'") or '', data_size)
   end
   return entries, metadata, 8 + n
end

--- Reads a safetensors file. Also kbl.load.
-- @tparam string path
-- @return {name = tensor}, metadata
-- @usage local tensors, meta = kbl.load('w.safetensors')
function M.load(path)
   if type(path) ~= 'string' then error('safetensors load: path must be a string', 2) end
   local r = binfile.open(path, 'safetensors load')
   local ok, entries, metadata, base = pcall(read_header, r)
   if not ok then
      r:close()
      error(entries, 2)
   end
   local out = {}
   local shape_buf = ffi.new('int64_t[8]')
   for _, e in ipairs(entries) do
      for i, v in ipairs(e.shape) do shape_buf[i - 1] = v end
      local p = C.kbl_empty(#e.shape, shape_buf, to_kbl[e.dtype])
      if p == nil then
         r:close()
         r:fail("tensor '%s': %s", e.name, ffi.string(C.kbl_last_error()))
      end
      local t = T.wrap(p)
      r:read(base + e.b, e.e - e.b, C.kbl_data_ptr(T.live(t)))
      out[e.name] = t
   end
   r:close()
   return out, metadata
end

-- header(path) -> {name = {dtype, shape, data_offsets}}, metadata, without the data.
function M.header(path)
   local r = binfile.open(path, 'safetensors header')
   local ok, entries, metadata = pcall(read_header, r)
   r:close()
   if not ok then error(entries, 2) end
   local out = {}
   for _, e in ipairs(entries) do out[e.name] = {dtype = e.dtype, shape = e.shape, data_offsets = {e.b, e.e}} end
   return out, metadata
end

return M
