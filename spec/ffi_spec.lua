-- ffi: the Lua binding's declarations are the headers' own (generated from
-- core/kbl.h and the kbl_*.h it includes by the build, never copied by hand),
-- every declared function is in the library, and the struct layout LuaJIT sees
-- is the C compiler's.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local C = lib.C

local build = os.getenv('KBL_BUILD_DIR') or 'build'

local function read(path)
   local f = assert(io.open(path, 'rb'))
   local s = f:read('*a')
   f:close()
   return s
end

-- The header's text between the markers, as cmake/gen_cdef.cmake cuts it: an
-- op table's #include "x.def" becomes its enum lines, the X-macro's #define and
-- #undef lines go.
-- kbl.h's region comes first, then that of each kbl_*.h it includes, in order.
local function one_region(path)
   local h = read(path)
   local open_mark, close_mark = '/* KBL_CDEF_BEGIN */', '/* KBL_CDEF_END */'
   local b = assert(h:find(open_mark, 1, true), path .. ' lacks KBL_CDEF_BEGIN')
   local e = assert(h:find(close_mark, 1, true), path .. ' lacks KBL_CDEF_END')
   return h:sub(b + #open_mark, e - 1), h
end

local function header_region()
   local region, h = one_region('core/kbl.h')
   for part in h:gmatch('\n#include "(kbl_[%l_]+%.h)"') do
      region = region .. one_region('core/' .. part)
   end
   region = region:gsub('#include "([%w_]+%.def)"\n', function(def)
      local lines = {}
      for name in ('\n' .. read('core/' .. def)):gmatch('\nKBL_%u+%(([%u%d_]+),') do
         lines[#lines + 1] = '    KBL_' .. name .. ',\n'
      end
      return table.concat(lines)
   end)
   return (region:gsub('\n#define KBL_%u+[^\n]*', ''):gsub('\n#undef KBL_%u+[^\n]*', ''))
end

describe('the FFI declarations', function()
   it('are the header region between the markers, as built', function()
      local generated = dofile(build .. '/lua/kbl/cdef.lua')
      assert.are.equal(header_region(), generated)
      -- and the binding loads that very module
      assert.are.equal(generated, require('kbl.cdef'))
   end)

   it('keep kbl.h to tensors and ops: data, checkpoint and signal parts have headers of their own',
      function()
      local own = one_region('core/kbl.h')
      for part, pattern in pairs{['kbl_data.h'] = 'kbl_data_idx_', ['kbl_checkpoint.h'] = 'kbl_checkpoint_',
                                 ['kbl_signal.h'] = 'kbl_interrupt_'} do
         assert.is_nil(own:find(pattern, 1, true), 'kbl.h declares ' .. pattern .. '*')
         assert.is_truthy(one_region('core/' .. part):find(pattern, 1, true), part)
         assert.is_truthy(header_region():find(one_region('core/' .. part), 1, true), part .. ' not in the FFI')
      end
   end)

   it('hold plain C that ffi.cdef accepts: no preprocessor lines', function()
      for line in header_region():gmatch('[^\n]+') do
         assert.is_nil(line:match('^%s*#'), 'preprocessor line in the cdef region: ' .. line)
      end
   end)

   it('name only functions the library exports', function()
      local missing, count = {}, 0
      for name in header_region():gmatch('[%s%*](kbl_[%w_]+)%s*%(') do
         count = count + 1
         if not pcall(function() return C[name] end) then missing[#missing + 1] = name end
      end
      assert.is_true(count > 50, 'found only ' .. count .. ' declarations')
      assert.are.same({}, missing)
   end)
end)

describe('the op tables', function()
   -- every op of core/ops_unary.def and ops_binary.def is in the FFI's enum, in
   -- the table's order, with the table's name
   local function rows(def)
      local names = {}
      for name, lower in ('\n' .. read('core/' .. def)):gmatch('\nKBL_%u+%(([%u%d_]+), ([%l%d_]+),') do
         names[#names + 1] = {name, lower}
      end
      return names
   end

   it('give the enums and the names', function()
      for _, t in ipairs{{'ops_unary.def', 'KBL_UNARY_COUNT', function(op) return C.kbl_unary_info(op).name end},
                         {'ops_binary.def', 'KBL_BINARY_COUNT', C.kbl_binary_name}} do
         local r = rows(t[1])
         assert.is_true(#r > 10, t[1])
         assert.are.equal(#r, C[t[2]])
         for i, row in ipairs(r) do
            assert.are.equal(i - 1, C['KBL_' .. row[1]])
            assert.are.equal(row[2], ffi.string(t[3](i - 1)))
         end
      end
      assert.is_true(C.kbl_unary_info(C.KBL_UNARY_COUNT) == nil)
      assert.is_true(C.kbl_binary_name(-1) == nil)
   end)
end)

describe('the kbl_tensor layout', function()
   it('has the size and storage offset the C compiler gives it', function()
      assert.are.equal(tonumber(C.kbl_sizeof_tensor()), ffi.sizeof('kbl_tensor'))
      assert.are.equal(tonumber(C.kbl_offsetof_tensor_storage()), ffi.offsetof('kbl_tensor', 'storage'))
   end)

   it('reads fields written by C through the Lua view of the struct', function()
      local kbl = require 'kbl'
      local x = kbl.zeros(2, 3, {dtype = 'int64'}):t()
      local p = x._p
      assert.are.equal(3, p.dtype)
      assert.are.equal(2, p.ndim)
      assert.are.equal(3, tonumber(p.shape[0]))
      assert.are.equal(1, tonumber(p.strides[0]))
      assert.are.equal(3, tonumber(p.strides[1]))
      assert.is_true(p.storage ~= nil)
      assert.are.equal(1, p.refcount)
      assert.are.equal(x:data_ptr(), C.kbl_data_ptr(p))
   end)
end)
