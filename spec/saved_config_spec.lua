-- spec/saved_config_spec.lua: the config.lua a run saves runs again: a user's
-- block type pulled in with require is required again, and the re-run ends
-- with the same weights; a function that uses a local from outside it, which
-- cannot be written back, stops the run before training, naming the key, the
-- local and the way out.
local H = require 'helper'

local dir = H.tmpdir()
local build = os.getenv('KBL_BUILD_DIR') or 'build'

-- kbl with the test directory on the module path (where the user's module is)
local function kbl(args)
   local out, err = dir .. '/stdout', dir .. '/stderr'
   local rc = os.execute(string.format("env LUA_PATH='%s/?.lua;;' KBL_BUILD_DIR=%s bin/kbl %s >%s 2>%s", dir,
      build, args, out, err))
   if type(rc) ~= 'number' then rc = rc and 0 or 1 end
   if rc > 255 then rc = math.floor(rc / 256) end
   return rc, H.read(out), H.read(err)
end

describe('the saved config.lua', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   H.write(dir .. '/my_scale.lua', [[
-- a user's block type: multiplies its input by a factor
local Block = require 'kbl.blocks.Block'
local Scale = Block.extend('Scale', {options = {factor = 1}})
function Scale:forward(x) return x * self.opts.factor end
require('kbl.blocks').Scale = Scale   -- blocks.Scale in configs
return Scale
]])

   it('requires the user\'s modules again, and runs to the same weights', function()
      local cfg = H.write(dir .. '/user.lua', [[
require 'my_scale'
return {
   extends = 'fit', name = 'user', epochs = 1, batch_size = 16,
   data = data.generated{kind = 'blobs', n = 64, validation = 16, dim = 4, classes = 3, seed = 2},
   model = blocks.Sequential{blocks.Scale{factor = 0.5}, blocks.Dense{3}},
   optimizer = optim.SGD{lr = 0.1},
}
]])
      local rc, _, err = kbl('run ' .. cfg .. ' --quiet --run-dir ' .. dir .. '/a')
      assert.are.equal(0, rc, err)
      local saved = H.read(dir .. '/a/config.lua')
      assert.truthy(saved:find('\nrequire "my_scale"\nreturn {', 1, true), saved)
      rc, _, err = kbl('run ' .. dir .. '/a/config.lua --quiet --run-dir ' .. dir .. '/b')
      assert.are.equal(0, rc, err)
      assert.are.equal(H.read(dir .. '/a/model.safetensors'), H.read(dir .. '/b/model.safetensors'))
   end)

   it('cannot hold a function that uses a local: the run stops before training, saying why and how', function()
      local cfg = H.write(dir .. '/closure.lua', [[
local rate = 0.1
return {
   extends = 'fit', name = 'closure', epochs = 1, batch_size = 16,
   data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3, seed = 2},
   model = blocks.Dense{3},
   optimizer = optim.SGD{lr = 0.1},
   callbacks = {callbacks.LambdaCallback{on_epoch_begin = function(ctx) ctx.optimizer:set_lr(rate) end}},
}
]])
      local rc, out, err = kbl('run ' .. cfg .. ' --quiet --run-dir ' .. dir .. '/c')
      assert.are.equal(1, rc)
      assert.are.equal("kbl: config key 'callbacks.1.on_epoch_begin': the function (" .. cfg .. ":7) cannot be "
         .. "written to the run's config.lua: it uses the local 'rate' from outside it. Make 'rate' a global, or "
         .. "a value inside the function, or pass it as an argument (vars = {...} and ref 'vars.rate')\n", err)
      assert.are.equal('', out)
      assert.is_nil(H.read(dir .. '/c/metrics.jsonl'))   -- nothing trained
      -- kbl run --print-config still shows it, with the reason in a comment
      rc, out = kbl('run ' .. cfg .. ' --print-config')
      assert.are.equal(0, rc)
      assert.truthy(out:find("nil --[[ a function was here; it cannot be written back because it uses the local "
         .. "'rate' from outside it ]]", 1, true), out)
   end)
end)
