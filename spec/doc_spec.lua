-- spec/doc_spec.lua: help where the user is. kbl.doc reads the LDoc comments
-- of the sources at run time: `kbl doc NAME` prints an entry (functions with
-- their signature, arguments, returns and example; blocks with every option
-- and its default; config keys from the schema, as `kbl check` knows them); in
-- the REPL `?name` and help(value) print the same, and a function prints as its
-- signature instead of `function: 0x...`.
local doc = require 'kbl.doc'
local repl = require 'kbl.repl'
local H = require 'helper'

local BUILD = os.getenv('KBL_BUILD_DIR') or 'build'
local function kbl_cmd(args)
   return H.run('KBL_BUILD_DIR=' .. BUILD .. ' bin/kbl ' .. args)
end

describe('kbl.doc', function()
   it('parses an LDoc comment: summary, params with defaults, returns, usage, options', function()
      local b = doc.parse_block({'Does a thing. More words.', '@tparam tensor x the input',
         '@tparam[opt=1] number n how many', '  continued', '@treturn tensor the output', '@usage local y = f(x)',
         'print(y)', '@option units the width'})
      assert.equal('Does a thing.', b.summary)
      assert.same({'x', 'n'}, {b.params[1].name, b.params[2].name})
      assert.equal('tensor', b.params[1].type)
      assert.is_true(b.params[2].opt)
      assert.equal('1', b.params[2].default)
      assert.equal('how many continued', b.params[2].text)
      assert.equal('tensor', b.returns[1].type)
      assert.same({'local y = f(x)', 'print(y)'}, b.usage)
      assert.equal('the width', b.options.units.text)
   end)

   it('finds a function\'s entry by name and by value, with its signature', function()
      local e = assert(doc.lookup('kbl.conv2d'))
      assert.equal('function', e.kind)
      assert.matches('^kbl%.conv2d%(x, weight, %[bias%], %[opts%]%)', e.signature)
      assert.matches('2%-D convolution', e.block.summary)
      assert.matches('kbl/ops/conv%.lua:%d+', e.source)
      local text = doc.help(require('kbl').conv2d)
      assert.matches('^kbl%.conv2d%(', text)
      assert.matches('Example:', text)
   end)

   it('shows a method without its receiver', function()
      assert.equal('data.Pipeline:batch(n, [o])', assert(doc.lookup('data.Pipeline:batch')).signature)
      assert.equal('Tensor:relu()', assert(doc.lookup('Tensor:relu')).signature)
      assert.equal('blocks.Block:freeze([pattern])', assert(doc.lookup('blocks.Block:freeze')).signature)
      assert.equal('fit.Trainer:fit()', assert(doc.lookup('fit.Trainer:fit')).signature)
   end)

   it('documents the elementwise ops from core/ops_unary.def', function()
      local e = assert(doc.lookup('kbl.softplus'))
      assert.matches('softplus', e.block.text)
      assert.equal('kbl.softplus(t, [p0=1], [p1=20])', e.signature)
   end)

   it('lists a block\'s options with their defaults', function()
      local e = assert(doc.lookup('blocks.Conv2D'))
      assert.equal('block', e.kind)
      local by = {}
      for _, o in ipairs(e.options) do by[o.name] = o end
      assert.equal('required', by.filters.default)
      assert.equal('1', by.stride.default)
      assert.equal('"glorot_uniform"', by.kernel_init.default)
      assert.is_truthy(by.filters.text)
   end)

   it('documents the config keys from the schema, as kbl check knows them', function()
      local schema = require 'kbl.config.schema'
      local keys = doc.config_keys()
      local n = 0
      for _, k in ipairs(keys) do
         if k.section == 'config' then
            n = n + 1
            assert.is_truthy(schema.TOP[k.key], k.name)
         end
      end
      local top = 0
      for _ in pairs(schema.TOP) do top = top + 1 end
      assert.equal(top, n)
      local e = assert(doc.lookup('config.stages'))
      assert.matches('freeze', doc.format(e))
      assert.equal('an integer >= 1', assert(doc.lookup('config.epochs')).key.type_text)
      local none, err = doc.lookup('config.epoch')
      assert.is_nil(none)
      assert.matches("did you mean 'config.epochs'", err)
   end)

   it('says what is wrong with an unknown name, and the nearest one', function()
      local e, err = doc.lookup('kbl.conv2dd')
      assert.is_nil(e)
      assert.equal("no such name: 'kbl.conv2dd' (did you mean 'kbl.conv2d'?)", err)
   end)
end)

describe('kbl doc', function()
   it('prints kbl.conv2d, blocks.Conv2D and config.stages', function()
      local rc, out = kbl_cmd('doc kbl.conv2d')
      assert.equal(0, rc, out)
      assert.matches('^kbl%.conv2d%(x, weight', out)
      assert.matches('Arguments:\n   x %(tensor%)', out)
      rc, out = kbl_cmd('doc blocks.Conv2D')
      assert.equal(0, rc, out)
      assert.matches('Options:\n', out)
      assert.matches('kernel_size%s+= required', out)
      rc, out = kbl_cmd('doc config.stages')
      assert.equal(0, rc, out)
      assert.matches('^config%.stages: a list', out)
      assert.matches('\n   unfreeze ', out)
   end)

   it('fails with one line for an unknown name', function()
      local rc, out = kbl_cmd('doc blocks.Conv2d')
      assert.equal(1, rc)
      assert.equal("kbl: kbl doc: no such name: 'blocks.Conv2d' (did you mean 'blocks.Conv2D'?)\n", out)
   end)

   it('--missing lists what has no documentation', function()
      local rc, out = kbl_cmd('doc --missing')
      assert.equal(0, rc, out)
      local n, count = 0, nil
      for line in out:gmatch('[^\n]+') do
         count = count or tonumber(line:match('^(%d+) undocumented$'))
         if not line:match('^%d+ undocumented$') then
            n = n + 1
            assert.matches('^[%w_%.:]+[%w_]', line)
         end
      end
      assert.equal(n, count)
   end)
end)

describe('help in the REPL', function()
   local function session(lines)
      local i = 0
      local out = {}
      local sink = {write = function(_, ...) for _, s in ipairs{...} do out[#out + 1] = s end end,
         flush = function() end}
      -- help() prints with print: capture it too
      local old_print = print
      _G.print = function(...) local t = {} for k = 1, select('#', ...) do t[k] = tostring((select(k, ...))) end
         out[#out + 1] = table.concat(t, '\t') .. '\n' end
      local ok, err = pcall(repl.run, {out = sink, quiet = true, reader = {kind = 'test', read = function()
         i = i + 1
         return lines[i]
      end, add = function() end, close = function() end}})
      _G.print = old_print
      assert(ok, err)
      return table.concat(out)
   end

   it('?name prints the entry', function()
      local out = session{'?kbl.conv2d', '?config.batch_size', '?nope.x'}
      assert.matches('kbl%.conv2d%(x, weight', out)
      assert.matches('config%.batch_size: an integer >= 1', out)
      assert.matches("no such name: 'nope.x'", out)
   end)

   it('help(value) prints the entry of a function, a block type or a name', function()
      local out = session{'help(kbl.conv2d)', 'help(blocks.Dense)', "help('config.epochs')"}
      assert.matches('kbl%.conv2d%(x, weight', out)
      assert.matches('blocks%.Dense', out)
      assert.matches('units%s+= required', out)
      assert.matches('config%.epochs: an integer >= 1', out)
   end)

   it('help(object) prints its type\'s entry', function()
      local out = session{'help(blocks.Dense{3})', 'help(optim.Adam{})', 'help(metrics.Accuracy{})', 'help(3)'}
      assert.matches('^blocks%.Dense\n', out)
      assert.matches('\noptim%.Adam\n', out)
      assert.matches('\nmetrics%.Accuracy%(opts%)\n', out)
      assert.matches("3: a number, not one of kbl's documented names", out, 1, true)
   end)

   it('a function prints as its signature and where it is defined', function()
      local out = session{'kbl.conv2d', 'function(a, b) end'}
      assert.matches('function kbl%.conv2d%(x, weight, %[bias%], %[opts%]%)  %-%- ops/conv%.lua:%d+', out)
      assert.matches('function %(a, b%)  %-%- stdin:1', out)
      assert.is_nil(out:find('function: 0x', 1, true))
   end)
end)
