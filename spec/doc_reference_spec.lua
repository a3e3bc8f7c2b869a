-- spec/doc_reference_spec.lua: scripts/doc.sh makes the API reference with
-- LDoc (lua-ldoc, lua-discount): an index, a page per module with the doc
-- comments (kbl.conv2d's arguments, a block's options), and the config keys
-- page written from the schema, so it lists exactly what `kbl check` accepts.
-- LDoc must have nothing to warn about. About 3 s.
local H = require 'helper'

local BUILD = os.getenv('KBL_BUILD_DIR') or 'build'

describe('scripts/doc.sh', function()
   local has_ldoc = H.run('command -v ldoc') == 0
   local out = H.tmpdir()
   local rc, text
   if has_ldoc then rc, text = H.run('KBL_BUILD_DIR=' .. BUILD .. ' sh scripts/doc.sh ' .. out) end
   teardown(function() os.execute('rm -rf ' .. out) end)

   local function need_ldoc()
      if not has_ldoc then pending('ldoc is not installed (lua-ldoc; scripts/setup.sh installs it)') end
      return has_ldoc
   end

   it('generates the reference without LDoc warnings', function()
      if not need_ldoc() then return end
      assert.equal(0, rc, text)
      assert.matches('doc%.sh: .*index%.html %(0 LDoc warnings', text)
      assert.is_true(H.exists(out .. '/index.html'))
   end)

   it('documents functions with their arguments and examples, blocks with their options', function()
      if not need_ldoc() then return end
      local conv = assert(H.read(out .. '/modules/kbl.ops.conv.html'))
      assert.matches('conv2d', conv)
      assert.matches('torch%.nn%.functional%.conv2d', conv)
      assert.matches('Usage', conv)
      local dense = assert(H.read(out .. '/modules/kbl.blocks.Dense.html'))
      assert.matches('Options', dense)
      assert.matches('kernel_init', dense)
   end)

   it('lists every config key of the schema on the config page', function()
      if not need_ldoc() then return end
      local page = assert(H.read(out .. '/topics/config.md.html'))
      local schema = require 'kbl.config.schema'
      for key in pairs(schema.TOP) do
         assert.matches('<code>' .. key .. '</code>', page, 1, true)
      end
      for key in pairs(schema.STAGE) do
         assert.matches('<code>' .. key .. '</code>', page, 1, true)
      end
   end)

   it('includes the guides of docs/', function()
      if not need_ldoc() then return end
      assert.is_true(H.exists(out .. '/topics/experiment.md.html'))
   end)
end)
