-- config_set_mutation: seeded mutations of `--set key=value` assignments, each
-- applied to a copy of examples/fashion_mnist_mlp.lua's config and validated, in
-- a child process: each is accepted or refused with a clean error naming the
-- --set, never a crash, a hang or a raw Lua error ("attempt to call global
-- 'rgf' (a nil value)"). The cases the mutation found are kept below by name.
local mutate = require 'mutate'
local config = require 'kbl.config'
local merge = require 'kbl.config.merge'
local schema = require 'kbl.config.schema'

-- Found by this spec (seeds 1-6, 2000 cases each), kept as they were found:
-- a --set value that uses a name the config scope lacks, or does arithmetic on
-- the wrong type, gets Lua's raw message.
local FOUND = {
   'optimizer.lr=e-4',                              -- arithmetic on global 'e' (nil)
   "batch_size=rgf 'epochs'",                       -- call of global 'rgf' (nil)
   'optimizer=ptim.SGD{lr = 0.1, momentum = 0.9}',  -- index of global 'ptim' (nil)
   'model.backbone.units={512<x12}',                -- compare number with nil
   'batch_size=ref /ep',                            -- arithmetic on a function value
   "optimizer.weight_decay=1e-2 * 'x'",             -- arithmetic on a string value
}

describe('--set under mutation', function()
   local base, origins = config.load({'examples/fashion_mnist_mlp.lua'}, {no_validate = true})

   for _, assignment in ipairs(FOUND) do
      it('refuses ' .. assignment .. ' with a clean error naming the --set', function()
         local ok, err = pcall(function()
            local c, o = merge.copy(base), merge.copy(origins)
            config.apply_set(c, o, assignment)
            schema.validate(c, o)
         end)
         assert.is_false(ok)
         local bad = mutate.unclean(err, '--set ' .. assignment)
         assert.is_nil(bad, bad)
      end)
   end

   it('2000 seeded cases are each accepted or refused cleanly, naming the --set', function()
      local res = mutate.run('set', 20261206, 2000)
      mutate.assert_clean(res)
      assert.is_true(res.loaded > 0 and res.refused > 0, res.out)
      assert.is_true(res.slowest < 1, 'slowest case took ' .. tostring(res.slowest) .. ' s')
   end)
end)
