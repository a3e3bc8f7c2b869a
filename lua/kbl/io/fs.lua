--- kbl.io.fs: the few file-system questions kbl asks (does a path exist, is it
-- a directory, read a file, list a directory, make a directory and its parents, the
-- system's words for an errno), in one place, on lua-posix (Debian lua-posix): no shell, no FFI
-- declarations of libc here. exists and is_dir are stat(2), so a file that
-- exists but cannot be read still exists (the reader then says why it cannot
-- read it).
local found, stat = pcall(require, 'posix.sys.stat')
if not found then
   error('kbl needs lua-posix (Debian package lua-posix; scripts/setup.sh installs it): ' .. tostring(stat), 0)
end
local errno = require 'posix.errno'
local dirent = require 'posix.dirent'

local M = {}

--- Whether something exists at path (a file, a directory, ...).
-- @tparam string path
-- @treturn boolean
-- @usage if fs.exists(dir .. '/config.lua') then ... end
function M.exists(path)
   return stat.stat(path) ~= nil
end

--- Whether path is a directory (following symbolic links).
-- @tparam string path
-- @treturn boolean
-- @usage assert(fs.is_dir('/tmp'))
function M.is_dir(path)
   local st = stat.stat(path)
   return st ~= nil and stat.S_ISDIR(st.st_mode) ~= 0
end

--- The system's words for an errno: 30 -> 'Read-only file system'.
-- @tparam number n
-- @treturn string
-- @usage print(fs.strerror(2))  --> No such file or directory
function M.strerror(n)
   return (errno.errno(n))
end

--- The bytes of a file.
-- @tparam string path
-- @return the bytes, or nil and io.open's message when it cannot be opened
-- @usage local text = fs.read('runs/a/config.lua')
function M.read(path)
   local f, err = io.open(path, 'rb')
   if not f then return nil, err end
   local s = f:read('*a')
   f:close()
   return s
end

--- The names in a directory, sorted (dot-files included, '.' and '..' not);
-- {} when it is missing or cannot be listed.
-- @tparam string dir
-- @treturn {string,...}
-- @usage for _, name in ipairs(fs.list_dir('runs')) do ... end
function M.list_dir(dir)
   local ok, names = pcall(dirent.dir, dir)
   if not ok or type(names) ~= 'table' then return {} end
   local out = {}
   for _, name in ipairs(names) do
      if name ~= '.' and name ~= '..' then out[#out + 1] = name end
   end
   table.sort(out)
   return out
end

--- mkdir of one directory (mode 0755).
-- @tparam string path
-- @return true, or false and the errno (17, EEXIST: it is there)
-- @usage local ok, e = fs.mkdir('out')
function M.mkdir(path)
   local ok, _, e = stat.mkdir(path, 493)   -- 0755
   if ok then return true end
   return false, e
end

--- mkdir -p: the directory and its missing parents; raises naming the directory
-- it could not make and why.
-- @tparam string path
-- @treturn string path
-- @usage fs.mkdir_p('runs/a/checkpoints')
function M.mkdir_p(path)
   local sofar = path:sub(1, 1) == '/' and '' or nil
   for part in path:gmatch('[^/]+') do
      sofar = sofar and (sofar .. '/' .. part) or part
      local ok, e = M.mkdir(sofar)
      if not ok and e ~= errno.EEXIST then
         error(string.format('cannot create the directory %s: %s (errno %d)', sofar, M.strerror(e), e), 0)
      end
   end
   return path
end

return M
