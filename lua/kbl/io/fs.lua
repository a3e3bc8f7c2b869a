-- kbl.io.fs: the few file-system questions kbl asks (does a file exist, is a
-- path a directory, make a directory and its parents), in one place. mkdir
-- goes through the FFI: no shell, no lua-filesystem.
local ffi = require 'ffi'

pcall(ffi.cdef, [[int kbl_fs_mkdir(const char *path, unsigned int mode) __asm__("mkdir");]])

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

-- mkdir -p; raises naming the directory it could not make. Returns path.
function M.mkdir_p(path)
   local sofar = path:sub(1, 1) == '/' and '' or nil
   for part in path:gmatch('[^/]+') do
      sofar = sofar and (sofar .. '/' .. part) or part
      if ffi.C.kbl_fs_mkdir(sofar, 493) ~= 0 and ffi.errno() ~= 17 then -- 0755; EEXIST is fine
         error(string.format('cannot create the directory %s (errno %d)', sofar, ffi.errno()), 0)
      end
   end
   return path
end

return M
