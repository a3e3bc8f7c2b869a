-- backend arrows: the CPU is a backend like cuda/ (DESIGN.md "The C core", issue
-- 13), and the arrows run one way, op entry point -> backend table -> kernel.
-- The op files of core/ hold no device branch (kbl_on_cuda, KBL_CUDA): they
-- dispatch through kbl_backend_of. The kernels of core/cpu/ see buffers, never
-- tensors: they call no function that takes or makes a kbl_tensor or a node
-- (an op, kbl_empty, kbl_record ...) and no backend lookup. Each rule is also
-- run on a planted violation, so the check itself is shown to fail.
local H = require 'helper'

-- core/*.c files allowed to name a device: backend.c loads the backends and
-- crosses devices, error.c checks and names device ids, tensor.c makes storage.
local DEVICE_HOMES = {['backend.c'] = true, ['error.c'] = true, ['tensor.c'] = true}
-- op files still to be folded into the table (GEMM and convolution, issue 13)
local PENDING = {['matmul.c'] = true, ['conv.c'] = true, ['conv_device.c'] = true}
-- the one op file that calls a CPU kernel itself: random values are drawn on
-- the host for every device, so a seed gives the same values everywhere
local HOST_KERNELS = {['random.c'] = {kbl_cpu_random = true}}

local function strip_comments(src)
   return (src:gsub('/%*.-%*/', ' '):gsub('//[^\n]*', ' '))
end

local function list(dir)
   local p = io.popen('ls ' .. dir .. '/*.c 2>/dev/null')
   local files = {}
   for path in p:read('*a'):gmatch('[^\n]+') do files[#files + 1] = path end
   p:close()
   return files
end

-- "name:line: text" for each device branch in an op file's source, and for
-- each call of a CPU kernel that goes around the backend table
local function device_branches(name, src)
   local found, n = {}, 0
   for line in (strip_comments(src) .. '\n'):gmatch('([^\n]*)\n') do
      n = n + 1
      local direct = false
      for fn in line:gmatch('(kbl_cpu_[%w_]+)%s*%(') do
         direct = direct or not (HOST_KERNELS[name] or {})[fn]
      end
      if direct or line:find('kbl_on_cuda', 1, true) or line:find('KBL_CUDA', 1, true) then
         found[#found + 1] = name .. ':' .. n .. ': ' .. line
      end
   end
   return found
end

-- Functions a kernel must not call: those whose declaration in kbl.h or
-- internal.h mentions kbl_tensor or kbl_node, and the backend lookups.
local function forbidden_calls()
   local names = {kbl_cuda_table = true, kbl_backend_of = true}
   for _, header in ipairs{'core/kbl.h', 'core/internal.h'} do
      local src = strip_comments(H.read(header)):gsub('#[^\n]*', ' '):gsub('%s+', ' ')
      for decl in src:gmatch('[^;{}]+') do
         local name = decl:match('(kbl_[%w_]+)%s*%(')
         if name and (decl:find('kbl_tensor', 1, true) or decl:find('kbl_node', 1, true)) then
            names[name] = true
         end
      end
   end
   return names
end

local function bad_calls(name, src, forbidden)
   local found, n = {}, 0
   for line in (strip_comments(src) .. '\n'):gmatch('([^\n]*)\n') do
      n = n + 1
      for fn in line:gmatch('(kbl_[%w_]+)%s*%(') do
         if forbidden[fn] then found[#found + 1] = name .. ':' .. n .. ': calls ' .. fn end
      end
   end
   return found
end

describe('backend arrows', function()
   it('op files in core/ hold no device branch', function()
      local found, checked = {}, 0
      for _, path in ipairs(list('core')) do
         local name = path:match('[^/]+$')
         if not DEVICE_HOMES[name] and not PENDING[name] then
            checked = checked + 1
            for _, f in ipairs(device_branches(name, H.read(path))) do found[#found + 1] = f end
         end
      end
      assert.is_true(checked >= 15, 'only ' .. checked .. ' op files found')
      assert.are.same({}, found)
   end)

   it('kernels in core/cpu/ make no tensors, call no ops and record nothing', function()
      local forbidden = forbidden_calls()
      for _, fn in ipairs{'kbl_empty', 'kbl_empty_on', 'kbl_record', 'kbl_add', 'kbl_contiguous'} do
         assert.is_true(forbidden[fn], fn .. ' is not recognised as an op entry point')
      end
      for _, fn in ipairs{'kbl_fail', 'kbl_threads', 'kbl_iter_run', 'kbl_dtype_size', 'kbl_alloc'} do
         assert.is_nil(forbidden[fn], fn .. ' is a kernel helper, not an op')
      end
      local found, checked = {}, 0
      for _, path in ipairs(list('core/cpu')) do
         checked = checked + 1
         for _, f in ipairs(bad_calls(path:match('[^/]+$'), H.read(path), forbidden)) do found[#found + 1] = f end
      end
      assert.is_true(checked >= 10, 'only ' .. checked .. ' kernel files found')
      assert.are.same({}, found)
   end)

   it('the checks fail on a planted violation', function()
      local op = 'int f(kbl_tensor *t) {\n    /* kbl_on_cuda in a comment is fine */\n' ..
                 '    if (kbl_on_cuda(t)) return 1;\n    return t->device == KBL_CUDA;\n}\n' ..
                 'void g(void) { kbl_cpu_fill(it, 0, 1); }\n'
      assert.are.same({'x.c:3:     if (kbl_on_cuda(t)) return 1;', 'x.c:4:     return t->device == KBL_CUDA;',
                       'x.c:6: void g(void) { kbl_cpu_fill(it, 0, 1); }'},
                      device_branches('x.c', op))
      local kernel = 'int k(void) {\n    kbl_tensor *t = kbl_empty(1, s, 0);\n    kbl_fail("x");\n' ..
                     '    return kbl_backend_of(t) != 0;\n}\n'
      assert.are.same({'k.c:2: calls kbl_empty', 'k.c:4: calls kbl_backend_of'},
                      bad_calls('k.c', kernel, forbidden_calls()))
   end)
end)
