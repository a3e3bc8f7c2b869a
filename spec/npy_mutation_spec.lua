-- npy_mutation: seeded mutations of .npy files (bit flips, byte and token writes,
-- inserts, deletes, truncations, splices; half of them inside the header with its
-- length kept right), run in a child process: each case loads or fails with a
-- clean error naming the file, never a crash, a hang or a Lua internal error.
-- Header cases found to matter are kept by name in spec/npy_spec.lua.
local mutate = require 'mutate'

describe('npy reader under mutation', function()
   it('2000 seeded cases each load or fail cleanly, naming the file', function()
      local res = mutate.run('npy', 20261206, 2000)
      mutate.assert_clean(res)
      assert.is_true(res.loaded > 0 and res.refused > 0, res.out)
      assert.is_true(res.slowest < 1, 'slowest case took ' .. tostring(res.slowest) .. ' s')
   end)

   it('reports a crash or a hang with the case and its bytes', function()
      local res = mutate.run('crash', 1, 5)
      assert.matches('crash seed 1 case 2: the runner exited with 3; the input was "', res.crash, 1, true)
      res = mutate.run('hang', 1, 5, 2)
      assert.matches('hang seed 1 case 2: the runner exited with 124 (a hang: killed by timeout)', res.crash, 1, true)
      local a = mutate.case(5, 9, {'abcdef'})
      assert.are.equal(a, mutate.case(5, 9, {'abcdef'}))   -- a case is a pure function of (seed, i)
      assert.are_not.equal(a, mutate.case(5, 10, {'abcdef'}))
      assert.are.equal('"a\\000\\034\\255"', mutate.quote('a\0"\255'))
      assert.is_nil(mutate.unclean('npy load x.npy: bad', 'x.npy'))
      assert.matches('does not name', mutate.unclean('npy load: bad', 'x.npy'))
      assert.matches('internal', mutate.unclean("x.npy: attempt to index a nil value", 'x.npy'))
      assert.matches('internal', mutate.unclean('lua/kbl/io/npy.lua:12: x.npy', 'x.npy'))
   end)
end)
