-- spec/rockspec_spec.lua: the LuaRocks rockspec installs the library, the Lua
-- modules, the `kbl` command, bench/ and examples/ into a tree of its own; the
-- command works from another directory, and `require 'kbl'` works from plain
-- LuaJIT after `luarocks path`. One install (a CMake build of libkbl without
-- the CUDA backend, which the main build compiles: about a minute). LuaRocks
-- runs for LuaJIT (the rock depends on luajit) through a config file of the
-- spec's own, as a user's `luarocks config lua_interpreter luajit` would set.
-- scripts/sanitize.sh skips this spec (nvcc and luarocks under ASan).
local H = require 'helper'

local tree = os.tmpname()
os.remove(tree)
-- the installed command must not lean on the checkout
local CLEAN = 'env -u KBL_LIB -u KBL_BUILD_DIR -u LUA_PATH -u LUA_CPATH '
local config = H.write(os.tmpname(), 'lua_interpreter = "luajit"\n'
   .. 'variables = {LUA_INCDIR = "/usr/include/luajit-2.1"}\n')
local LUAROCKS = 'LUAROCKS_CONFIG=' .. config .. ' luarocks '

describe('rocks/kbl-scm-1.rockspec', function()
   teardown(function()
      os.remove(config)
      os.execute('rm -rf ' .. tree)
   end)

   it('passes luarocks lint, declares luajit and cites only files that exist', function()
      local rc, out = H.run('luarocks lint rocks/kbl-scm-1.rockspec')
      assert.equal(0, rc, out)
      local text = H.read('rocks/kbl-scm-1.rockspec')
      assert.matches('"luajit >= 2%.0"', text)
      assert.is_nil(text:find('"lua >=', 1, true))
      for name in text:gmatch('([%w_/%-]+%.md)') do
         assert.is_true(H.exists(name), 'the rockspec cites ' .. name .. ', which is not in the repository')
      end
   end)

   describe('installed with luarocks make into a tree', function()
      local rc, out = H.run('CUDACXX=/bin/false CMAKE_BUILD_PARALLEL_LEVEL=2 ' .. LUAROCKS .. '--tree ' .. tree
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

      it('gives `require \'kbl\'` to plain LuaJIT after `luarocks path`', function()
         local script = H.write(tree .. '/req.lua', "local kbl = require 'kbl'\n"
            .. "print(kbl.version(), kbl.tensor{1, 2, 3}:sum():item())\n")
         local rc2, text = H.run('cd / && ' .. CLEAN .. 'sh -c \'eval "$(' .. LUAROCKS .. '--tree ' .. tree
            .. ' path)" && luajit ' .. script .. '\'')
         assert.equal(0, rc2, text)
         assert.matches('^%d+%.%d+%.%d+\t6\n', text)
      end)

      it('says to reinstall, not to run cmake, when the installed library is missing', function()
         -- the installed modules alone, without lib/: what a broken install looks like
         local lonely = tree .. '/lonely'
         os.execute('mkdir -p ' .. lonely .. ' && cp -r ' .. tree .. '/share/lua/5.1/kbl ' .. lonely .. '/')
         local rc2, text = H.run('cd / && ' .. CLEAN .. 'LUA_PATH="' .. lonely .. '/?.lua;' .. lonely
            .. '/?/init.lua;;" luajit -e "require \'kbl\'"')
         assert.is_not.equal(0, rc2)
         assert.matches('cannot find libkbl.so', text)
         assert.matches('reinstall kbl', text)
         assert.is_nil(text:find('cmake', 1, true), text)
      end)

      it('installs its Lua modules under the kbl namespace only (no top-level blocks or configs)', function()
         assert.are.same({'kbl'}, H.ls(tree .. '/share/lua/5.1'))
         assert.is_true(H.exists(tree .. '/share/lua/5.1/kbl/blocks/Dense.lua'))
         assert.is_true(H.exists(tree .. '/share/lua/5.1/kbl/configs/fit.lua'))
      end)

      it('installs bench/ and examples/ under share/, so kbl bench list works there', function()
         local rc2, text = H.run('cd / && ' .. CLEAN .. tree .. '/bin/kbl bench list')
         assert.equal(0, rc2, text)
         assert.matches('\nmlp\n', '\n' .. text)
         local rc3, found = H.run('ls ' .. tree .. '/lib/luarocks/rocks-5.1/kbl/*/share/kbl/examples/*.lua')
         assert.equal(0, rc3, found)
      end)

      it('prints documentation from the installed sources', function()
         local rc2, text = H.run('cd / && ' .. CLEAN .. tree .. '/bin/kbl doc kbl.conv2d')
         assert.equal(0, rc2, text)
         assert.matches('^kbl%.conv2d%(x, weight', text)
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
