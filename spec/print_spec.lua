-- spec/print_spec.lua: tensor printing (kbl.print) keeps to a screenful: a
-- long 1-D tensor (a 256-element bias) is cut with '...' like a matrix, a
-- short one is printed whole.
local kbl = require 'kbl'

local function lines(s)
   local out = {}
   for l in s:gmatch('[^\n]+') do out[#out + 1] = l end
   return out
end

describe('kbl.print', function()
   it('cuts a long 1-D tensor to its first and last three items', function()
      local l = lines(tostring(kbl.arange(256)))
      assert.same({'   0', '   1', '   2', ' ...', ' 253', ' 254', ' 255', '[kbl.int64 of size 256]'}, l)
      local b = lines(tostring(kbl.zeros(256)))
      assert.equal(8, #b)
      assert.equal('[kbl.float32 of size 256]', b[8])
   end)

   it('prints a short one whole', function()
      assert.equal(21, #lines(tostring(kbl.arange(20))))
      assert.equal(8, #lines(tostring(kbl.arange(21))))
   end)
end)
