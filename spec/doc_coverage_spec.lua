-- spec/doc_coverage_spec.lua: every public function, block and callback option
-- and config key has documentation (kbl.doc reads the LDoc comments of the
-- sources and the comments of the config schema). The public API is enumerated
-- from the module tables, the block types' option lists and the schema
-- (kbl.doc.public), so a new function, option or key without a doc comment
-- fails here, naming it. spec/doc_coverage_gaps.txt lists what was undocumented
-- when the check came in: those are reported as pending until documented, and
-- a line there that is documented (or gone) fails too, so the list only shrinks.
-- `kbl doc --missing` prints the same list.
local doc = require 'kbl.doc'
local H = require 'helper'

local GAPS_FILE = 'spec/doc_coverage_gaps.txt'

local function read_gaps()
   local gaps, order = {}, {}
   local text = H.read(GAPS_FILE) or ''
   for line in text:gmatch('[^\n]+') do
      if not line:match('^%s*#') and line:match('%S') then
         gaps[line] = true
         order[#order + 1] = line
      end
   end
   return gaps, order
end

describe('documentation coverage', function()
   local missing = doc.undocumented()
   local gaps, order = read_gaps()

   it('finds the public API (functions, blocks, options, config keys)', function()
      local names = {}
      for _, p in ipairs(doc.public()) do names[p.name] = true end
      for _, n in ipairs{'kbl.conv2d', 'kbl.tensor', 'kbl.size', 'Tensor:cuda', 'data.csv', 'data.Pipeline:batch',
         'optim.Adam',
         'optim.schedules.cosine', 'blocks.Conv2D', 'blocks.Block:summary', 'callbacks.EarlyStopping',
         'losses.CrossEntropy', 'metrics.Accuracy', 'config.epochs', 'config.stages.lr'} do
         assert.is_true(names[n] == true, n .. ' is not enumerated as public')
      end
   end)

   it('every public name can be looked up as `kbl doc NAME` prints it', function()
      local lost = {}
      for _, p in ipairs(doc.public()) do
         if not doc.lookup(p.name) then lost[#lost + 1] = p.name end
      end
      assert.is_true(#lost == 0, 'kbl doc cannot find: ' .. table.concat(lost, ', '))
   end)

   it('a function without a doc comment, an option without @option and a key without words are caught', function()
      assert.is_nil(doc.entry(function() end, 'anon').block)
      local e = doc.lookup('blocks.Conv2D')
      assert.equal('block', e.kind)
      local b = doc.parse_block({'Summary.', '@option units number of units', '@param x the input'})
      assert.equal('number of units', b.options.units.text)
      assert.equal('x', b.params[1].name)
   end)

   it('every public name, option and config key is documented (or listed in ' .. GAPS_FILE .. ')', function()
      local new = {}
      for _, m in ipairs(missing) do
         if not gaps[m] then new[#new + 1] = m end
      end
      assert.is_true(#new == 0, #new .. ' public names have no documentation; write an LDoc comment (--- summary, '
         .. '@param, @return, @usage; @option for options; a comment beside a config key in '
         .. 'kbl/config/schema.lua):\n   '
         .. table.concat(new, '\n   '))
   end)

   it(GAPS_FILE .. ' lists only what is still undocumented', function()
      local still = {}
      for _, m in ipairs(missing) do still[m] = true end
      local stale = {}
      for _, g in ipairs(order) do
         if not still[g] then stale[#stale + 1] = g end
      end
      assert.is_true(#stale == 0, 'documented now (or gone): remove these lines from ' .. GAPS_FILE .. ':\n   '
         .. table.concat(stale, '\n   '))
   end)

   it('has no known gaps left', function()
      if #order > 0 then
         pending(#order .. ' names still lack documentation (' .. GAPS_FILE .. ', or `kbl doc --missing`)')
      end
   end)
end)
