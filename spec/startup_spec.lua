-- spec/startup_spec.lua: start-up stays cheap. Loading kbl, running ops and a
-- one-step training run never load the CUDA backend (libkbl_cuda.so and the
-- CUDA runtime behind it: ~200 MiB and tens of milliseconds); only asking for
-- the device does (kbl.cuda.is_available, `kbl info`, t:cuda()).
-- bench/startup.sh measures the times and RSS.
local H = require 'helper'

local BUILD = os.getenv('KBL_BUILD_DIR') or 'build'

-- Runs a Lua script with bin/kbl; the script prints whether the CUDA backend is mapped.
local function run(code)
   local dir = H.tmpdir()
   H.write(dir .. '/s.lua', code .. [[

local f = io.open('/proc/self/maps')
local maps = f:read('*a')
f:close()
print('cuda loaded: ' .. tostring(maps:find('libkbl_cuda', 1, true) ~= nil))
]])
   local rc, out = H.run(string.format('cd %s && KBL_BUILD_DIR=%s %s/bin/kbl s.lua', dir,
      BUILD:sub(1, 1) == '/' and BUILD or os.getenv('PWD') .. '/' .. BUILD, os.getenv('PWD')))
   os.execute('rm -rf ' .. dir)
   return rc, out
end

describe('start-up', function()
   local built = H.exists(BUILD .. '/cuda/libkbl_cuda.so') or H.exists(BUILD .. '/libkbl_cuda.so')

   it('require kbl, ops and a one-step run do not load the CUDA backend', function()
      if not built then return pending('no libkbl_cuda.so in ' .. BUILD .. ' (built without nvcc): nothing to load') end
      local rc, out = run([[
local kbl = require 'kbl'
local x = kbl.randn(4, 3):relu():sum()
local data, blocks = require 'kbl.data', require 'kbl.blocks'
require('kbl.fit').fit{model = blocks.MLP{units = {8, 3}, activate_last = false}, loss = require('kbl.losses').CrossEntropy{},
   optimizer = require('kbl.optim').Adam{}, data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3},
   epochs = 1, steps_per_epoch = 1, batch_size = 16, validation_split = false, quiet = true}]])
      assert.equal(0, rc, out)
      assert.matches('cuda loaded: false', out)
   end)

   it('asking whether CUDA is available loads it', function()
      if not built then return pending('no libkbl_cuda.so in ' .. BUILD .. ' (built without nvcc): nothing to load') end
      local rc, out = run("local kbl = require 'kbl'\nkbl.cuda.is_available()")
      assert.equal(0, rc, out)
      assert.matches('cuda loaded: true', out)
   end)
end)
