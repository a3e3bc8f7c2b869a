-- quality: the CI checks themselves (README "## Checks"): the size budget fails
-- on a file over 800 lines and passes at 800, and .luacheckrc lets LuaJIT's
-- globals through but flags a global set by a module and an unused local.
local H = require 'helper'

local tmp = os.tmpname()
os.remove(tmp)
os.execute('mkdir -p ' .. tmp)

local function write_lines(path, n, line)
   local f = assert(io.open(path, 'w'))
   for _ = 1, n do f:write(line or 'x', '\n') end
   f:close()
end

describe('quality checks', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('size budget passes a file of 800 lines and fails one of 801, naming it', function()
      write_lines(tmp .. '/ok.lua', 800)
      local rc, out = H.run('sh scripts/size_budget.sh ' .. tmp)
      assert.are.equal(0, rc, out)
      assert.matches('1 files checked, 0 over 800 lines', out, 1, true)
      write_lines(tmp .. '/big.c', 801)
      rc, out = H.run('sh scripts/size_budget.sh ' .. tmp)
      assert.are_not.equal(0, rc, out)
      assert.matches('big.c: 801 lines, over the budget of 800', out, 1, true)
      os.remove(tmp .. '/big.c')
   end)

   it('luacheck with .luacheckrc accepts LuaJIT globals and flags a set global', function()
      if H.run('command -v luacheck >/dev/null') ~= 0 then
         pending('luacheck is not installed')
         return
      end
      local good = tmp .. '/good.lua'
      local f = assert(io.open(good, 'w'))
      f:write("local M = {}\nM.x = bit.band(jit.version_num, 255)\nreturn M\n")
      f:close()
      local rc, out = H.run('luacheck --no-color --config .luacheckrc ' .. good)
      assert.are.equal(0, rc, out)
      local bad = tmp .. '/bad.lua'
      f = assert(io.open(bad, 'w'))
      f:write("local unused = 1\nleaked = 2\nreturn {}\n")
      f:close()
      rc, out = H.run('luacheck --no-color --codes --config .luacheckrc ' .. bad)
      assert.are_not.equal(0, rc, out)
      assert.matches('W111', out, 1, true)   -- setting a non-standard global
      assert.matches('W211', out, 1, true)   -- unused variable
   end)
end)
