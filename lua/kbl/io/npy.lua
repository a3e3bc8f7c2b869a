--- kbl.io.npy: NumPy's .npy format for single tensors, written by hand because
-- it is small and exactly specified: "\x93NUMPY", version (1.0, 2.0 or 3.0),
-- the header length (2 bytes in 1.0, 4 in 2.0/3.0, little-endian), a Python
-- dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
-- padded with spaces to a multiple of 64 bytes and ended by '\n', then the data.
-- Little-endian data only; fortran_order True is read (and made C order). The
-- header is read as the literal it is, strictly: an error names the file, the
-- byte and the key ((1 2) and (,) are not shapes).
--
--   local npy = require 'kbl.io.npy'
--   npy.save('x.npy', x); local y = npy.load('x.npy')
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local binfile = require 'kbl.io.binfile'
local C = lib.C

local M = {}

local MAGIC = '\147NUMPY'
-- descr (without the byte-order mark) -> kbl dtype id; b1 (bool) reads as uint8.
local to_kbl = {f4 = 0, f8 = 1, i4 = 2, i8 = 3, u1 = 4, b1 = 4}
local from_kbl = {[0] = '<f4', '<f8', '<i4', '<i8', '|u1'}

-- save(path, tensor): C order, little-endian; version 2.0 only when the header
-- does not fit version 1.0's 2-byte length.
function M.save(path, t)
   local what = 'npy save ' .. tostring(path)
   if type(path) ~= 'string' then error('npy save: path must be a string', 2) end
   if not T.is_tensor(t) then error(what .. ': expected a tensor, got ' .. type(t), 2) end
   local p = T.live(t)
   -- a CUDA tensor is written from a host copy
   local c = p.device ~= 0 and T.wrap(C.kbl_to_device(p, 0)) or T.wrap(C.kbl_contiguous(p))
   local dims = {}
   for i = 0, p.ndim - 1 do dims[#dims + 1] = string.format('%d', tonumber(p.shape[i])) end
   local shape = #dims == 1 and '(' .. dims[1] .. ',)' or '(' .. table.concat(dims, ', ') .. ')'
   local dict = string.format("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", from_kbl[p.dtype], shape)
   local major, lenbytes = 1, 2
   if #dict + 11 > 65535 then major, lenbytes = 2, 4 end
   local pre = 6 + 2 + lenbytes
   local hlen = #dict + 1
   hlen = hlen + (64 - (pre + hlen) % 64) % 64
   local header = dict .. string.rep(' ', hlen - #dict - 1) .. '\n'
   local w = binfile.create(path, what)
   w:write(MAGIC .. string.char(major, 0))
   w:write(lenbytes == 2 and binfile.u16_le(hlen) or binfile.u32_le(hlen))
   w:write(header)
   w:write(C.kbl_data_ptr(T.live(c)), tonumber(C.kbl_numel(p)) * tonumber(C.kbl_dtype_size(p.dtype)))
   w:commit()
end

-- Reads the header, a Python dict literal of exactly descr (a string),
-- fortran_order (True or False) and shape (a tuple of sizes: (), (3,), (2, 3)).
-- `base` is the file offset of its first byte; an error names the byte and the key.
local function parse_dict(r, text, base)
   local i = 1
   local function fail(at, key, fmt, ...)
      r:fail('bad header at byte %d%s: ' .. fmt, base + at - 1, key and (" ('" .. key .. "')") or '', ...)
   end
   local function ws() i = text:find('[^ \t\r\n]', i) or #text + 1 end
   local function char() ws() return text:sub(i, i) end
   local function str(key)
      local q = char()
      if q ~= "'" and q ~= '"' then fail(i, key, 'expected a quoted string') end
      local j = text:find(q, i + 1, true)
      if not j then fail(i, key, 'the string is not closed') end
      local v = text:sub(i + 1, j - 1)
      i = j + 1
      return v
   end
   local function tuple(key)
      local at, dims, commas = i, {}, 0
      i = i + 1
      while char() ~= ')' do
         local digits = text:match('^%d+', i)
         if not digits then fail(i, key, "expected a size or ')'") end
         dims[#dims + 1] = tonumber(digits)
         i = i + #digits + (text:sub(i + #digits, i + #digits) == 'L' and 1 or 0)   -- Python 2 wrote 3L
         local c = char()
         if c == ',' then
            i, commas = i + 1, commas + 1
         elseif c ~= ')' then
            fail(i, key, "expected ',' or ')' after a size")
         end
      end
      i = i + 1
      dims.text = text:sub(at, i - 1)
      if #dims == 1 and commas == 0 then
         fail(at, key, '%s is a number, not a tuple (write %s)', dims.text, (dims.text:gsub('%)$', ',)')))
      end
      return dims
   end
   local function value(key)
      local c, at = char(), i
      if c == "'" or c == '"' then return str(key), at end
      if c == '(' then return tuple(key), at end
      if c == '[' and key == 'descr' then fail(i, key, 'structured dtypes are not supported') end
      local word = text:match('^%a+', i)
      if word == 'True' or word == 'False' then
         i = i + #word
         return word == 'True', at
      end
      fail(i, key, 'expected a string, True, False or a tuple')
   end
   if char() ~= '{' then fail(i, nil, "expected '{'") end
   i = i + 1
   local d, at = {}, {}
   while char() ~= '}' do
      local k_at = i
      local key = str(nil)
      if key ~= 'descr' and key ~= 'fortran_order' and key ~= 'shape' then
         fail(k_at, key, 'unknown key (a .npy header holds descr, fortran_order and shape)')
      end
      if d[key] ~= nil then fail(k_at, key, 'the key is given twice') end
      if char() ~= ':' then fail(i, key, "expected ':'") end
      i = i + 1
      d[key], at[key] = value(key)
      local c = char()
      if c == ',' then i = i + 1 elseif c ~= '}' then fail(i, key, "expected ',' or '}'") end
   end
   i = i + 1
   if char() ~= '' then fail(i, nil, "text after the closing '}'") end
   for _, key in ipairs{'descr', 'fortran_order', 'shape'} do
      if d[key] == nil then fail(i, nil, "no '%s' key", key) end
   end
   return d, function(key, fmt, ...) fail(at[key], key, fmt, ...) end
end

-- The largest byte count a tensor may have (its sizes and strides fit in int64),
-- counting every dim of 0 as 1.
local MAX_BYTES = 2 ^ 62

local function parse_header(r, text, base)
   local d, fail = parse_dict(r, text, base)
   local descr = d.descr
   if type(descr) ~= 'string' then fail('descr', 'expected a string') end
   local order, code = descr:match('^([<>|=]?)(%a%d+)$')
   if not code then fail('descr', "dtype '%s' is not supported", descr) end
   if order == '>' and code ~= 'u1' and code ~= 'b1' then
      fail('descr', "big-endian data ('%s') is not supported; in numpy, save a.astype('<%s')", descr, code)
   end
   if not to_kbl[code] then
      fail('descr', "dtype '%s' is not supported (kbl reads <f4, <f8, <i4, <i8, |u1 and |b1)", descr)
   end
   if type(d.fortran_order) ~= 'boolean' then fail('fortran_order', 'expected True or False') end
   local shape = d.shape
   if type(shape) ~= 'table' then fail('shape', 'expected a tuple of sizes') end
   if #shape > 8 then fail('shape', '%d dims; kbl tensors have at most 8', #shape) end
   local bytes = tonumber(C.kbl_dtype_size(to_kbl[code]))
   for _, n in ipairs(shape) do bytes = bytes * math.max(n, 1) end
   if bytes > MAX_BYTES then
      fail('shape', '%s is too large: over 2^62 bytes', shape.text)
   end
   return to_kbl[code], shape, d.fortran_order
end

-- load(path) -> tensor (C order, whatever the file's order).
function M.load(path)
   if type(path) ~= 'string' then error('npy load: path must be a string', 2) end
   local r = binfile.open(path, 'npy load')
   local ok, t = pcall(function()
      if r.size < 10 or r:read(0, 6) ~= MAGIC then r:fail('not a .npy file (bad magic string)') end
      local ver = r:read(6, 2)
      local major = ver:byte(1)
      local hlen, pre
      if major == 1 then
         local b = r:read(8, 2)
         hlen, pre = b:byte(1) + 256 * b:byte(2), 10
      elseif major == 2 or major == 3 then
         local b = r:read(8, 4)
         hlen, pre = b:byte(1) + 256 * b:byte(2) + 65536 * b:byte(3) + 16777216 * b:byte(4), 12
      else
         r:fail('format version %d.%d is not supported (1.0, 2.0 and 3.0 are)', major, ver:byte(2))
      end
      local dtype, shape, fortran = parse_header(r, r:read(pre, hlen), pre)
      local numel = 1
      for _, s in ipairs(shape) do numel = numel * s end
      local nbytes = numel * tonumber(C.kbl_dtype_size(dtype))
      if r.size - pre - hlen < nbytes then
         local dims = {}
         for i, v in ipairs(shape) do dims[i] = string.format('%.0f', v) end
         r:fail('truncated: shape (%s) needs %.0f bytes of data from byte %d, the file has %d',
            table.concat(dims, ', '), nbytes, pre + hlen, r.size - pre - hlen)
      end
      -- Fortran order is C order of the reversed shape; permute back and copy.
      local file_shape = {}
      for i = 1, #shape do file_shape[i] = fortran and shape[#shape + 1 - i] or shape[i] end
      local n, s = T.shape_arg(file_shape)
      local p = C.kbl_empty(n, s, dtype)
      if p == nil then r:fail('%s', ffi.string(C.kbl_last_error())) end
      local raw = T.wrap(p)
      r:read(pre + hlen, nbytes, C.kbl_data_ptr(T.live(raw)))
      if not fortran or #shape < 2 then return raw end
      local perm = ffi.new('int[8]')
      for i = 0, #shape - 1 do perm[i] = #shape - 1 - i end
      local v = T.wrap(C.kbl_permute(T.live(raw), #shape, perm))
      return T.wrap(C.kbl_clone(T.live(v)))
   end)
   r:close()
   if not ok then error(t, 2) end
   return t
end

return M
