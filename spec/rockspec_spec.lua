-- spec/rockspec_spec.lua: the LuaRocks rockspec installs the library, the Lua
-- modules and the `kbl` command into a tree of its own, and the command works
-- from another directory. One install (a CMake build of libkbl: tens of seconds).
local H = require 'helper'

local tree = os.tmpname()
os.remove(tree)
-- the installed command must not lean on the checkout
local CLEAN = 'env -u KBL_LIB -u KBL_BUILD_DIR -u LUA_PATH -u LUA_CPATH '

describe('rocks/kbl-scm-1.rockspec', function()
   it('passes luarocks lint', function()
      local rc, out = H.run('luarocks lint rocks/kbl-scm-1.rockspec')
      assert.equal(0, rc, out)
   end)

   describe('installed with luarocks make into a tree', function()
      local rc, out = H.run('CMAKE_BUILD_PARALLEL_LEVEL=2 luarocks --tree ' .. tree
         .. ' make rocks/kbl-scm-1.rockspec')

      it('installs', function()
         assert.equal(0, rc, out)
         assert.matches('kbl scm%-1 is now installed in ' .. tree:gsub('%p', '%%%0'), out)
      end)

      it('gives a kbl command that runs kbl info from any directory', function()
         local rc2, info = H.run('cd / && ' .. CLEAN .. tree .. '/bin/kbl info')
         assert.equal(0, rc2, info)
         assert.matches('^kbl %d+%.%d+%.%d+\n', info)
         assert.matches('\nCPU kernels: oneDNN ', info)
         assert.matches('\nthreads: %d+\n', info)
      end)

      it('finds the installed configs and trains a tiny config', function()
         local rc2, text = H.run('cd / && ' .. CLEAN .. tree .. '/bin/kbl check fit --no-build')
         assert.equal(0, rc2, text)
         assert.equal('ok: fit (keys and types)\n', text)
         local cfg = tree .. '/tiny.lua'
         local f = assert(io.open(cfg, 'w'))
         f:write([[return {extends = 'fit', epochs = 1, batch_size = 16,
            data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3},
            model = blocks.MLP{units = {8, 3}, activate_last = false}}]])
         f:close()
         rc2, text = H.run('cd ' .. tree .. ' && ' .. CLEAN .. tree .. '/bin/kbl run tiny.lua --quiet --run-dir '
            .. tree .. '/run')
         assert.equal(0, rc2, text)
         assert.is_truthy(io.open(tree .. '/run/metrics.csv'))
      end)
   end)
end)
