--- kbl.io.binfile: binary files for the format readers and writers (safetensors,
-- .npy): C stdio through the FFI so tensor bytes go straight between the file
-- and the tensor's memory, and atomic writes through libkbl's kbl_atomic_*.
-- Every error names the file.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local C = lib.C

-- Other modules may declare these too; a second declaration is an error in LuaJIT.
for _, decl in ipairs{
   'typedef struct _IO_FILE FILE;',
   'FILE *fopen(const char *path, const char *mode);',
   'size_t fread(void *ptr, size_t size, size_t n, FILE *f);',
   'int fseeko(FILE *f, int64_t offset, int whence);',
   'int64_t ftello(FILE *f);',
   'int fclose(FILE *f);',
   'char *strerror(int errnum);',
} do pcall(ffi.cdef, decl) end

local M = {}

local Reader = {}
Reader.__index = Reader

-- Opens path for reading; `what` prefixes messages ("safetensors load").
function M.open(path, what)
   local f = ffi.C.fopen(path, 'rb')
   if f == nil then
      error(string.format('%s %s: cannot open: %s', what, path, ffi.string(ffi.C.strerror(ffi.errno()))), 3)
   end
   ffi.gc(f, ffi.C.fclose)
   local self = setmetatable({f = f, path = path, what = what}, Reader)
   ffi.C.fseeko(f, 0, 2)
   self.size = tonumber(ffi.C.ftello(f))
   ffi.C.fseeko(f, 0, 0)
   return self
end

function Reader:fail(fmt, ...)
   error(string.format('%s %s: ' .. fmt, self.what, self.path, ...), 0)
end

-- Reads n bytes at offset into ptr (or into a new string when ptr is nil).
function Reader:read(offset, n, ptr)
   if offset + n > self.size then
      self:fail('truncated: needs %d bytes at offset %d, the file is %d bytes', n, offset, self.size)
   end
   if n == 0 then return ptr == nil and '' or nil end
   local buf = ptr or ffi.new('uint8_t[?]', n)
   ffi.C.fseeko(self.f, offset, 0)
   local got = ffi.C.fread(buf, 1, n, self.f)
   if got ~= n then self:fail('read failed at offset %d', offset) end
   if ptr == nil then return ffi.string(buf, n) end
end

function Reader:close()
   if self.f ~= nil then
      ffi.C.fclose(ffi.gc(self.f, nil))
      self.f = nil
   end
end

local Writer = {}
Writer.__index = Writer

-- A file written under a temporary name and renamed over path by commit().
function M.create(path, what)
   local h = C.kbl_atomic_open(path)
   if h == nil then error(what .. ': ' .. ffi.string(C.kbl_last_error()), 3) end
   return setmetatable({h = ffi.gc(h, C.kbl_atomic_abort), what = what}, Writer)
end

-- Writes a string, or n bytes from a pointer.
function Writer:write(data, n)
   n = n or #data
   if n > 0 and C.kbl_atomic_write(self.h, data, n) ~= 0 then
      local msg = ffi.string(C.kbl_last_error())
      self:abort()
      error(self.what .. ': ' .. msg, 0)
   end
end

function Writer:commit()
   local h = ffi.gc(self.h, nil)
   self.h = nil
   if C.kbl_atomic_commit(h) ~= 0 then error(self.what .. ': ' .. ffi.string(C.kbl_last_error()), 0) end
end

function Writer:abort()
   if self.h ~= nil then
      C.kbl_atomic_abort(ffi.gc(self.h, nil))
      self.h = nil
   end
end

-- Writes a whole string to path atomically. level: error()'s, 2 (the caller's
-- position) unless given; 0 leaves the position out.
function M.write_atomic(path, text, what, level)
   if C.kbl_write_file_atomic(path, text, #text) ~= 0 then
      error((what or 'write') .. ': ' .. ffi.string(C.kbl_last_error()), level or 2)
   end
end

-- Little-endian integers to and from strings (x86 and ARM are little-endian;
-- the byte order is spelled out so the files are the same everywhere).
function M.u64_le(n)
   local b = {}
   for i = 1, 8 do
      b[i] = string.char(n % 256)
      n = math.floor(n / 256)
   end
   return table.concat(b)
end

function M.read_u64_le(s, pos)
   local n = 0
   for i = 8, 1, -1 do n = n * 256 + s:byte(pos + i - 1) end
   return n
end

function M.read_u32_le(s, pos)
   local n = 0
   for i = 4, 1, -1 do n = n * 256 + s:byte(pos + i - 1) end
   return n
end

function M.u16_le(n) return string.char(n % 256, math.floor(n / 256) % 256) end
function M.u32_le(n)
   return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
      math.floor(n / 16777216) % 256)
end

return M
