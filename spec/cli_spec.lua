-- spec/cli_spec.lua: the `kbl` command end to end on a tiny config (generated
-- data, 2 epochs, well under a second): `kbl run` makes the run directory and
-- its files, `kbl run RUN_DIR/config.lua` repeats the run, --print-config,
-- `kbl check`, `kbl eval RUN_DIR --json`, a NaN loss, and each bad config with
-- its one-line message and exit status.
local json = require 'dkjson'
local config = require 'kbl.config'

local H = require 'helper'

local dir = H.tmpdir()
local read = H.read
local function write(name, text) return H.write(dir .. '/' .. name, text) end
-- Runs `kbl ARGS`; returns the exit status, stdout and stderr.
local function kbl(args) return H.kbl(args, dir) end

local TINY = H.tiny_config{n = 128}
local tiny = write('tiny.lua', TINY)

local function lines(text)
   local l = {}
   for s in (text or ''):gmatch('[^\n]+') do l[#l + 1] = s end
   return l
end

describe('kbl command', function()
   it('--help, --version and help for each command', function()
      local rc, out = kbl('--help')
      assert.equal(0, rc)
      for _, c in ipairs{'run', 'check', 'eval', 'repl', 'info'} do assert.matches('\n   ' .. c .. ' ', out) end
      rc, out = kbl('run --help')
      assert.equal(0, rc)
      assert.matches('--set', out, 1, true)
      assert.matches('--print-config', out, 1, true)
      assert.matches('--run-dir', out, 1, true)
      rc, out = kbl('eval --help')
      assert.equal(0, rc)
      assert.matches('--json', out, 1, true)
      rc, out = kbl('--version')
      assert.equal(0, rc)
      assert.matches('^kbl %d+%.%d+%.%d+\n$', out)
   end)
end)

describe('kbl run', function()
   local run_dir = dir .. '/run1'
   local rc, out, err = kbl('run ' .. tiny .. ' --run-dir ' .. run_dir)

   it('trains and fills the run directory', function()
      assert.equal(0, rc, err)
      local l = lines(out)
      assert.matches('^run tiny: 131 parameters, 2 epochs %-> ', l[1])
      assert.matches('^epoch 1/2  8 steps ', l[2])
      assert.matches('^epoch 2/2  8 steps ', l[3])
      assert.matches('^test: loss [%d.]+  accuracy [%d.]+$', l[4])
      for _, f in ipairs{'config.lua', 'summary.txt', 'metrics.jsonl', 'metrics.csv', 'model.safetensors'} do
         assert.is_truthy(read(run_dir .. '/' .. f), f)
      end
      assert.matches('Total params: 131', read(run_dir .. '/summary.txt'))
      local csv = lines(read(run_dir .. '/metrics.csv'))
      assert.equal(3, #csv)
      assert.matches('^epoch,step,stage,loss,accuracy,val_loss,val_accuracy,lr,', csv[1])
      local jl = lines(read(run_dir .. '/metrics.jsonl'))
      assert.equal(3, #jl)   -- two epochs, then the test split's line
      assert.equal('test', json.decode(jl[3]).split)
      local e2 = json.decode(jl[2])
      assert.equal(2, e2.epoch)
      assert.equal(16, e2.step)
      assert.is_true(e2.val_accuracy > 0.8)
      local cfg = config.load({run_dir .. '/config.lua'})
      assert.equal('tiny', cfg.name)
      assert.equal(2, cfg.epochs)
      assert.equal('optim.Adam', cfg.optimizer.type)
   end)

   it('repeats a run from its saved config', function()
      local rc2, _, err2 = kbl('run ' .. run_dir .. '/config.lua --run-dir ' .. dir .. '/run2 --quiet')
      assert.equal(0, rc2, err2)
      local a = lines(read(run_dir .. '/metrics.jsonl'))
      local b = lines(read(dir .. '/run2/metrics.jsonl'))
      assert.equal(#a, #b)
      for i = 1, #a do
         local x, y = json.decode(a[i]), json.decode(b[i])
         for _, k in ipairs{'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr', 'step'} do
            assert.equal(x[k], y[k], k)
         end
      end
   end)

   it('--resume continues from the newest checkpoint and ends as the run never stopped', function()
      local ck = write('ck.lua',
         TINY:gsub('seed = 3},', 'seed = 3},\n   callbacks = {callbacks.ModelCheckpoint{every_steps = 3}},'))
      local d = dir .. '/resumed'
      local rc2, _, err2 = kbl('run ' .. ck .. ' --quiet --set epochs=1 --run-dir ' .. d)   -- stops at step 8
      assert.equal(0, rc2, err2)
      rc2, _, err2 = kbl('run --resume ' .. d .. ' --quiet --set epochs=2')                -- from step 6
      assert.equal(0, rc2, err2)
      local a = lines(read(run_dir .. '/metrics.jsonl'))
      local b = lines(read(d .. '/metrics.jsonl'))
      assert.equal(3, #b)   -- two epochs and the test line (the first run's test line is dropped)
      for i = 1, 2 do
         local x, y = json.decode(a[i]), json.decode(b[i])
         for _, k in ipairs{'epoch', 'step', 'loss', 'accuracy', 'val_loss', 'val_accuracy'} do
            assert.equal(x[k], y[k], k)
         end
      end
      assert.equal(3, #lines(read(d .. '/metrics.csv')))
   end)

   it('makes runs/<name>/<time>/ by default', function()
      local rc2, _, err2 = kbl('run ' .. tiny .. " --quiet --set \"runs='" .. dir .. "/runs'\" --set epochs=1")
      assert.equal(0, rc2, err2)
      local p = io.popen('ls ' .. dir .. '/runs/tiny')
      local name = p:read('*l')
      p:close()
      assert.matches('^%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d$', name)
      assert.is_truthy(read(dir .. '/runs/tiny/' .. name .. '/metrics.csv'))
   end)

   it('--print-config prints the resolved config and exits', function()
      local rc2, text = kbl('run ' .. tiny .. ' --set optimizer.lr=0.5 --print-config')
      assert.equal(0, rc2)
      assert.matches('^%-%- Resolved config of: kbl run ', text)
      assert.matches('optimizer = optim.Adam{lr = 0.5},', text, 1, true)
      assert.matches('loss = losses.CrossEntropy{},', text, 1, true)   -- from fit.lua
      local body = function(t) return t:gsub('^.-\nreturn', 'return') end
      local saved = read(run_dir .. '/config.lua')
      assert.equal(body(saved):gsub('lr = 0.01', 'lr = 0.5'), body(text))
   end)

   it('evaluates the run with kbl eval --json', function()
      local test_loss = tonumber(lines(out)[4]:match('loss ([%d.]+)'))
      local rc2, text, err2 = kbl('eval ' .. run_dir .. ' --json')
      assert.equal(0, rc2, err2)
      assert.equal(1, #lines(text))
      local r = json.decode(text)
      assert.is_number(r.accuracy)
      assert.near(test_loss, r.loss, 1e-4)
      rc2, text = kbl('eval ' .. run_dir .. ' --split validation')
      assert.equal(0, rc2)
      assert.matches('^validation: loss [%d.]+  accuracy [%d.]+\n$', text)
   end)

   it('kbl check validates without training', function()
      local rc2, text = kbl('check ' .. tiny)
      assert.equal(0, rc2)
      assert.equal('ok: ' .. tiny .. ': tiny, 131 trainable parameters, 2 epochs\n', text)
   end)

   it('stops on a NaN loss naming the step, keeping the last good checkpoint', function()
      local nan = write('nan.lua', TINY:gsub('optim.Adam{lr = 0.01}', 'optim.SGD{lr = 1e30}')
         :gsub('seed = 3},', 'seed = 3},\n   callbacks = {callbacks.ModelCheckpoint{every_steps = 1, keep = 1}},'))
      local rc2, _, err2 = kbl('run ' .. nan .. ' --quiet --run-dir ' .. dir .. '/nanrun')
      assert.equal(1, rc2)
      local step = err2:match('^kbl: loss is %-?[%a]+ at step (%d+) %(epoch 1, batch %d+%); stopped; '
         .. 'the last good checkpoint is [^\n]*/checkpoints/step%-%d+%.ckpt\n$')
      assert.is_truthy(step, err2)
      local ck = err2:match('is (%S+%.ckpt)')
      assert.matches(string.format('step%%-%012d', tonumber(step) - 1), ck)
      assert.is_true(require('kbl.records.checkpoint').verify(ck))
   end)
end)

describe('kbl with a bad config', function()
   local cases = {
      {'wrong key', 'return {\n   extends = "fit",\n   epoch = 2,\n}\n',
         "%s:3: unknown config key 'epoch' (did you mean 'epochs'?)"},
      {'wrong type', 'return {\n   batch_size = "big",\n}\n',
         [[%s:2: config key 'batch_size' must be an integer >= 1, got string "big"]]},
      {'syntax error', 'return {\n   epochs = 2\n   seed = 1,\n}\n',
         "%s:3: syntax error in config: '}' expected (to close '{' at line 1) near 'seed'"},
      {'wrong argument',
         'return {\n   extends = "fit",\n   model = blocks.Dense{\n      unit = 3},\n'
            .. '   data = data.generated{n = 8},\n}\n',
         "%s:4: building blocks.Dense for 'model': blocks.Dense: unknown option 'unit' (did you mean 'units'?)"},
   }
   for i, c in ipairs(cases) do
      it(c[1] .. ' exits 1 with one line naming the file, line and key', function()
         local path = write('bad' .. i .. '.lua', c[2])
         for _, cmd in ipairs{'run', 'check'} do
            local rc, out, err = kbl(cmd .. ' ' .. path)
            assert.equal(1, rc)
            assert.equal('', out)
            local expected = 'kbl: ' .. string.format(c[3], path)
            assert.equal(expected, err:sub(1, #expected))
            assert.equal(1, #lines(err))
         end
      end)
   end

   it('a missing file exits 1 naming where it looked', function()
      local rc, _, err = kbl('run no_such_experiment')
      assert.equal(1, rc)
      assert.equal("kbl: cannot find config 'no_such_experiment' (looked for lua/kbl/configs/no_such_experiment.lua, "
         .. "no_such_experiment.lua)\n", err)
   end)

   it('a bad --set exits 1 naming it', function()
      local rc, _, err = kbl('run ' .. tiny .. ' --set optimiser.lr=3e-4')
      assert.equal(1, rc)
      assert.equal("kbl: --set optimiser.lr=3e-4: unknown config key 'optimiser' (did you mean 'optimizer'?)\n", err)
   end)

   it('a --set value cannot run code: os.exit and io.open are refused, naming the --set', function()
      local rc, out, err = kbl('check ' .. tiny .. " --set 'epochs=os.exit(3)'")
      assert.equal(1, rc)
      assert.equal('', out)
      assert.equal("kbl: --set epochs=os.exit(3): 'os' is not available to a --set value (it sees kbl, blocks, "
         .. 'optim, losses, metrics, data, callbacks, ref, math, string and table; config files are trusted Lua)\n',
         err)
      local pwned = dir .. '/pwned'
      rc = kbl('check ' .. tiny .. " --set 'epochs=io.open(\"" .. pwned .. "\", \"w\")'")
      assert.equal(1, rc)
      assert.is_nil(read(pwned))
   end)

   it('a bad --set value is blamed on the --set', function()
      local rc, _, err = kbl('check ' .. tiny .. ' --set optimizer.lr=abc')
      assert.equal(1, rc)
      assert.matches("^kbl: %-%-set optimizer.lr=abc: building optim.Adam for 'optimizer': ", err)
      rc, _, err = kbl('check ' .. tiny .. " --set 'model.2.units=\"x\"'")
      assert.equal(1, rc)
      assert.equal("kbl: --set model.2.units=\"x\": building blocks.Dense for 'model.2': blocks.Dense: units must be "
         .. 'a positive whole number, got x\n', err)
   end)

   it('kbl check runs a batch through the model and the loss, naming a wrong class count', function()
      local path = write('fewclasses.lua', TINY:gsub('blocks.Dense{3}', 'blocks.Dense{2}'))
      local rc, out, err = kbl('check ' .. path)
      assert.equal(1, rc)
      assert.equal('', out)
      assert.equal('kbl: ' .. path .. ":7: labels go up to 3 but the model's output has 2 classes (model.2.units)\n",
         err)
      path = write('badshape.lua', TINY:gsub('blocks.Dense{3}}', 'blocks.Dense{3}, blocks.Reshape{{3, 1}}}'))
      rc, out, err = kbl('check ' .. path)
      assert.equal(1, rc)
      assert.equal('', out)
      assert.matches('^kbl: one training batch through the model and the loss: cross_entropy: labels %[16%] int64 '
         .. 'do not match logits %[16, 3, 1%] float32', err)
   end)

   it('a failure inside kbl shows the problem, not kbl\'s own source lines', function()
      local path = write('fewclasses2.lua', TINY:gsub('blocks.Dense{3}', 'blocks.Dense{2}'))
      local rc, _, err = kbl('run ' .. path .. ' --quiet --run-dir ' .. dir .. '/fewrun')
      assert.equal(1, rc)
      assert.matches('^kbl: cross_entropy: label %d at position %d+ is out of range for 2 classes', err)
      assert.is_nil(err:find('.lua:', 1, true), err)
      assert.equal(1, #lines(err))
      local script = write('broadcast.lua', "local kbl = require 'kbl'\nlocal z = kbl.zeros(2, 3) + kbl.zeros(2, 4)\n")
      rc, _, err = kbl(script)
      assert.equal(1, rc)
      assert.equal('kbl: ' .. script .. ':2: add: shapes [2, 3] float32 and [2, 4] float32 do not broadcast '
         .. '(dim 2: 3 vs 4)\n', err)
   end)

   it('KBL_DEBUG=1, documented in --help, shows the traceback', function()
      local _, help = kbl('--help')
      assert.matches('KBL_DEBUG=1', help, 1, true)
      local out, err = dir .. '/dbg.out', dir .. '/dbg.err'
      local rc = os.execute('env KBL_DEBUG=1 KBL_BUILD_DIR=' .. (os.getenv('KBL_BUILD_DIR') or 'build')
         .. ' bin/kbl run ' .. tiny .. ' --set optimiser.lr=3e-4 >' .. out .. ' 2>' .. err)
      assert.is_not.equal(0, rc)
      assert.matches('stack traceback', read(err), 1, true)
   end)

   it('--debug adds the traceback', function()
      local rc, _, err = kbl('--debug run ' .. tiny .. ' --set optimiser.lr=3e-4')
      assert.equal(1, rc)
      assert.matches('stack traceback', err, 1, true)
   end)
end)
