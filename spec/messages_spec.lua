-- spec/messages_spec.lua: what a user reads when something fails: kbl's own
-- source locations and doubled `kbl: ` prefixes taken out (kbl.message) by
-- the command and the REPL, the user's own file:line kept, and dimensions
-- counted from 1 in the core's messages.
local kbl = require 'kbl'
local message = require 'kbl.message'

local function err_of(fn)
   local ok, e = pcall(fn)
   assert.is_false(ok, 'expected an error')
   return tostring(e)
end

describe('kbl.message', function()
   it("drops kbl's own locations, absolute, relative or shortened, and doubled prefixes", function()
      local cwd = os.getenv('PWD')
      assert.equal('cross_entropy: bad label',
         message.clean(cwd .. '/lua/kbl/fit.lua:252: kbl: cross_entropy: bad label'))
      assert.equal('boom', message.clean('lua/kbl/repl.lua:62: boom'))
      assert.equal('boom', message.clean('...n/lua/kbl/callbacks/checkpoint.lua:14: boom'))
      assert.equal('boom', message.clean('...callbacks/checkpoint.lua:14: boom'))
      assert.equal('blocks.Dense: no', message.clean('kbl: lua/kbl/blocks/Dense.lua:30: blocks.Dense: no'))
      assert.equal("x.lua:3: building m: blocks.Dense: no",
         message.clean('x.lua:3: building m: lua/kbl/blocks/Dense.lua:30: kbl: blocks.Dense: no'))
   end)

   it("keeps the user's own locations, and puts where the user's code was in front of one without", function()
      assert.equal('my/kbl/x.lua:3: add: shapes', message.clean('my/kbl/x.lua:3: kbl: add: shapes'))
      assert.equal('s.lua:2: add: shapes', message.clean('add: shapes', 's.lua:2'))
      assert.equal('t.lua:9: add: shapes', message.clean('t.lua:9: add: shapes', 's.lua:2'))
      assert.equal('--set a=b: no', message.clean('--set a=b: no', 's.lua:2'))
   end)

   it('the REPL prints errors cleaned', function()
      local repl = require 'kbl.repl'
      local env = repl.new_env()
      local lines = {}
      local out = {write = function(_, ...) for _, s in ipairs{...} do lines[#lines + 1] = s end end}
      repl.show(assert(repl.compile('blocks.Dense{unit = 3}', env)), env, out)
      local text = table.concat(lines)
      assert.matches("^error: blocks.Dense: unknown option 'unit'", text)
      assert.is_nil(text:find('.lua:', 1, true), text)
   end)
end)

describe('dims in messages count from 1', function()
   it('the broadcast error', function()
      assert.matches('do not broadcast (dim 1: 2 vs 3)', err_of(function() return kbl.zeros(2) + kbl.zeros(3) end),
         1, true)
      assert.matches('do not broadcast (dim 2: 3 vs 4)',
         err_of(function() return kbl.zeros(2, 3) + kbl.zeros(2, 4) end), 1, true)
   end)

   it('view, expand and permute', function()
      local x = kbl.zeros(2, 3)
      assert.matches('invalid size -2 in dim 1', err_of(function() return x:view(-2, 3) end), 1, true)
      assert.matches('expand: dim 1 of [2, 3] float32 has size 2', err_of(function() return x:expand(4, 3) end), 1,
         true)
      assert.matches('new leading dim 1', err_of(function() return x:expand(-1, 2, 3) end), 1, true)
      assert.matches('permute: dimension 1 repeated', err_of(function() return x:permute(1, 1) end), 1, true)
   end)
end)
