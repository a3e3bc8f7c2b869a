-- kbl.io.npy: NumPy's .npy format for single tensors, written by hand because
-- it is small and exactly specified: "\x93NUMPY", version (1.0, 2.0 or 3.0),
-- the header length (2 bytes in 1.0, 4 in 2.0/3.0, little-endian), a Python
-- dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
-- padded with spaces to a multiple of 64 bytes and ended by '\n', then the data.
-- Little-endian data only; fortran_order True is read (and made C order).
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

local function parse_header(r, text)
   local descr = text:match("['\"]descr['\"]%s*:%s*['\"]([^'\"]*)['\"]")
   if not descr then
      if text:match("['\"]descr['\"]%s*:%s*%[") then r:fail('structured dtypes are not supported') end
      r:fail('header has no descr: %s', text)
   end
   local order, code = descr:match('^([<>|=]?)(%a%d+)$')
   if not code then r:fail("dtype '%s' is not supported", descr) end
   if order == '>' and code ~= 'u1' and code ~= 'b1' then
      r:fail("big-endian data ('%s') is not supported; in numpy, save a.astype('<%s')", descr, code)
   end
   if not to_kbl[code] then
      r:fail("dtype '%s' is not supported (kbl reads <f4, <f8, <i4, <i8, |u1 and |b1)", descr)
   end
   local fortran = text:match("['\"]fortran_order['\"]%s*:%s*(%a+)")
   if fortran ~= 'True' and fortran ~= 'False' then r:fail('header has no fortran_order: %s', text) end
   local shape_text = text:match("['\"]shape['\"]%s*:%s*(%b())")
   if not shape_text then r:fail('header has no shape: %s', text) end
   local shape = {}
   for v in shape_text:sub(2, -2):gmatch('[^,%s]+') do
      local n = tonumber((v:gsub('L$', '')))
      if not n or n < 0 or n % 1 ~= 0 then r:fail('bad shape %s', shape_text) end
      shape[#shape + 1] = n
   end
   if #shape > 8 then r:fail('%d dims; kbl tensors have at most 8', #shape) end
   return to_kbl[code], shape, fortran == 'True'
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
      local dtype, shape, fortran = parse_header(r, r:read(pre, hlen))
      local numel = 1
      for _, s in ipairs(shape) do numel = numel * s end
      local nbytes = numel * tonumber(C.kbl_dtype_size(dtype))
      if r.size - pre - hlen < nbytes then
         r:fail('truncated: shape (%s) needs %d bytes of data, the file has %d', table.concat(shape, ', '),
            nbytes, r.size - pre - hlen)
      end
      -- Fortran order is C order of the reversed shape; permute back and copy.
      local file_shape = {}
      for i = 1, #shape do file_shape[i] = fortran and shape[#shape + 1 - i] or shape[i] end
      local n, s = T.shape_arg(file_shape)
      local raw = T.wrap(C.kbl_empty(n, s, dtype))
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
