-- spec/util_spec.lua: kbl.util, the helpers the Lua side shares: sorted keys
-- of mixed tables, the edit distance behind "did you mean", counted words;
-- and that no module keeps a copy of its own.
local util = require 'kbl.util'

describe('kbl.util', function()
   it('sorts keys: numbers, then strings, then the rest; strings only; a given order', function()
      local f = function() end
      local keys = util.sorted_keys({b = 1, a = 2, [2] = 3, [1] = 4, [true] = 5})
      assert.same({1, 2, 'a', 'b', true}, keys)
      assert.same({'a', 'b'}, util.sorted_keys({b = 1, a = 2, [1] = 3, [f] = 4}, {strings = true}))
      assert.same({'b', 'a'}, util.sorted_keys({a = 1, b = 2}, {less = function(x, y) return x > y end}))
   end)

   it('measures edit distance, a swap of neighbours counting one', function()
      assert.equal(0, util.distance('epochs', 'epochs'))
      assert.equal(1, util.distance('epoch', 'epochs'))
      assert.equal(1, util.distance('epcohs', 'epochs'))
      assert.equal(3, util.distance('', 'abc'))
      assert.equal(3, util.distance('kitten', 'sitting'))
   end)

   it('counts words', function()
      assert.equal('1 epoch', util.plural(1, 'epoch'))
      assert.equal('2 epochs', util.plural(2, 'epoch'))
      assert.equal('0 batches', util.plural(0, 'batch', 'batches'))
   end)

   it('is the one copy: no module defines its own sorted_keys or edit distance', function()
      local p = io.popen("grep -rlE 'local function (sorted_keys|distance)[(]' lua 2>/dev/null")
      local found = p:read('*a')
      p:close()
      assert.equal('', found)
   end)
end)
