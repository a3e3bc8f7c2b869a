-- safetensors_mutation: seeded mutations of safetensors files (bit flips, byte and
-- token writes, inserts, deletes, truncations, splices; half of them inside the JSON
-- header with its length kept right), run in a child process: each case loads or
-- fails with a clean error naming the file, and header() agrees with load(); never
-- a crash, a hang or a Lua internal error. Cases found are kept by name in
-- spec/safetensors_spec.lua.
local mutate = require 'mutate'

describe('safetensors reader under mutation', function()
   it('2000 seeded cases each load or fail cleanly, naming the file', function()
      local res = mutate.run('safetensors', 20261206, 2000)
      mutate.assert_clean(res)
      assert.is_true(res.loaded > 0 and res.refused > 0, res.out)
      assert.is_true(res.slowest < 1, 'slowest case took ' .. tostring(res.slowest) .. ' s')
   end)
end)
