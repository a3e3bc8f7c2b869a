-- kbl.io.fs: the few file-system questions kbl asks (does a file exist, is a
-- path a directory, make a directory and its parents), in one place. mkdir
-- goes through the FFI: no shell, no lua-filesystem.
local ffi = require 'ffi'

pcall(ffi.cdef, [[int kbl_fs_mkdir(const char *path, unsigned int mode) __asm__("mkdir");]])
pcall(ffi.cdef, [[char *kbl_fs_strerror(int errnum) __asm__("strerror");]])

local M = {}

function M.exists(path)
   local f = io.open(path, 'rb')
   if f then f:close() end
   return f ~= nil
end

function M.is_dir(path)
   local f = io.open(path .. '/.', 'rb')
   if f then f:close() end
   return f ~= nil
end

-- The system's words for an errno: 30 -> 'Read-only file system'.
function M.strerror(errno) return ffi.string(ffi.C.kbl_fs_strerror(errno)) end

-- mkdir of one directory: true, or false and the errno (17, EEXIST: it is there).
function M.mkdir(path)
   if ffi.C.kbl_fs_mkdir(path, 493) == 0 then return true end   -- 0755
   return false, ffi.errno()
end

-- mkdir -p; raises naming the directory it could not make and why. Returns path.
function M.mkdir_p(path)
   local sofar = path:sub(1, 1) == '/' and '' or nil
   for part in path:gmatch('[^/]+') do
      sofar = sofar and (sofar .. '/' .. part) or part
      local ok, e = M.mkdir(sofar)
      if not ok and e ~= 17 then   -- EEXIST is fine
         error(string.format('cannot create the directory %s: %s (errno %d)', sofar, M.strerror(e), e), 0)
      end
   end
   return path
end

return M
