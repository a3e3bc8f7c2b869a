--- kbl.lib: loads libkbl through the FFI with the declarations generated from
-- core/kbl.h, and turns the library's error returns into Lua errors.
local ffi = require 'ffi'

local M = {}

local function this_dir()
   local src = debug.getinfo(1, 'S').source:sub(2)
   return src:match('^(.*)/[^/]*$') or '.'
end

local exists = require('kbl.io.fs').exists

-- The ffi.cdef text: the generated module when on package.path, else the
-- build tree's copy beside a source checkout.
local function load_cdef(dir)
   local ok, text = pcall(require, 'kbl.cdef')
   if ok then return text end
   for _, p in ipairs{dir .. '/../../build/lua/kbl/cdef.lua', dir .. '/cdef.lua'} do
      if exists(p) then return dofile(p) end
   end
   error('kbl: cannot find kbl/cdef.lua, the FFI declarations made by the build; '
      .. (exists(dir .. '/../../CMakeLists.txt') and 'run `cmake -S . -B build && cmake --build build` first'
      or 'the installed tree is incomplete: reinstall kbl (`luarocks make rocks/kbl-scm-1.rockspec`)'), 0)
end

-- Marks the loaded library as never to be unloaded. LuaJIT dlcloses an
-- ffi.load'ed library when the Lua state closes, which would unmap libkbl and
-- the libgomp/oneDNN it pulled in while their worker threads still run: the
-- process then crashes on exit. A second dlopen with RTLD_NODELETE pins it.
pcall(ffi.cdef, 'void *dlopen(const char *file, int mode);')
local RTLD_NOW, RTLD_NODELETE = 2, 0x1000
local function pin(path)
   pcall(function() ffi.C.dlopen(path, RTLD_NOW + RTLD_NODELETE) end)
end

--- Where kbl's shared library `name` ('libkbl', 'libkbl_mpi') may be when not named by the caller, in the
-- order to try: a checkout's build tree, package.cpath, an installed tree's lib/lua/5.1/ and lib/.
-- Also returns whether this is a source checkout.
-- @local
function M.library_paths(name, dir)
   dir = dir or this_dir()
   local out = {}
   local checkout = exists(dir .. '/../../CMakeLists.txt')
   if checkout then out[#out + 1] = dir .. '/../../build/' .. name .. '.so' end
   -- an installed tree, share/lua/5.1/kbl/lib.lua: luarocks puts the library in
   -- lib/lua/5.1/ (found on package.cpath after `luarocks path`), cmake in lib/
   local on_cpath = package.searchpath(name, package.cpath)
   if on_cpath then out[#out + 1] = on_cpath end
   out[#out + 1] = dir .. '/../../../../lib/lua/5.1/' .. name .. '.so'
   out[#out + 1] = dir .. '/../../../../lib/' .. name .. '.so'
   return out, checkout
end

local function load_library(dir)
   local candidates = {}
   if os.getenv('KBL_LIB') then candidates[#candidates + 1] = os.getenv('KBL_LIB') end
   if package.loaded['kbl.lib.path'] then candidates[#candidates + 1] = package.loaded['kbl.lib.path'] end
   local found, checkout = M.library_paths('libkbl', dir)
   for _, p in ipairs(found) do candidates[#candidates + 1] = p end
   for _, p in ipairs(candidates) do
      if exists(p) then
         local lib = ffi.load(p)
         pin(p)
         return lib
      end
   end
   local ok, lib = pcall(ffi.load, 'kbl')
   if ok then
      pin('libkbl.so')
      return lib
   end
   error('kbl: cannot find libkbl.so (looked in ' .. table.concat(candidates, ', ')
      .. ' and the system paths); ' .. (checkout and 'build it with `cmake -S . -B build && cmake --build build`'
      or 'reinstall kbl (`luarocks make rocks/kbl-scm-1.rockspec`) or set KBL_LIB to the library\'s path'), 0)
end

local dir = this_dir()
ffi.cdef(load_cdef(dir))
M.C = load_library(dir)

local C = M.C

-- What Lua holds: a handle owning one reference to a kbl_tensor. Its struct has
-- only private fields, so the tensor's C fields never shadow methods.
ffi.cdef[[typedef struct kbl_handle { kbl_tensor *_p; int32_t _kept; } kbl_handle;]]
M.handle_ct = ffi.typeof('kbl_handle')

-- Raises the library's last error; level 3 points at the caller of the op.
function M.raise()
   error(ffi.string(C.kbl_last_error()), 3)
end

M.dtypes = {float32 = 0, float64 = 1, int32 = 2, int64 = 3, uint8 = 4}
M.dtype_names = {[0] = 'float32', 'float64', 'int32', 'int64', 'uint8'}
-- Torch-style aliases
M.dtypes.float = 0; M.dtypes.double = 1; M.dtypes.int = 2; M.dtypes.long = 3; M.dtypes.byte = 4

function M.dtype_id(name)
   if name == nil then return 0 end
   if type(name) == 'number' then return name end
   local id = M.dtypes[name]
   if not id then
      error(string.format("kbl: unknown dtype '%s' (use float32, float64, int32, int64 or uint8)",
         tostring(name)), 3)
   end
   return id
end

return M
