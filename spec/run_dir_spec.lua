-- spec/run_dir_spec.lua: what a `kbl run` run directory holds (tiny configs on
-- generated data, under a second a run): checkpoints by ModelCheckpoint (keep
-- last K, best by a monitored metric, every N epochs or steps), a TensorBoard
-- event file with every logged metric and the learning rate, report.html
-- rewritten at each epoch end, status.json (running with pid, finished,
-- failed with the message, a live run's directory refused), the final weights
-- as safetensors; the same config and seed give the same bytes twice; a NaN
-- loss stops the run naming the step and leaves the last good checkpoint.
-- The directory is locked: of two runs started together into one, one wins
-- and the other writes nothing and names the winner's pid; a finished run is
-- not overwritten without --overwrite (which clears its records first); the
-- experiment name is one path component; a read-only file system is named.
local ffi = require 'ffi'
local json = require 'dkjson'
local H = require 'helper'
local kbl = require 'kbl'
local checkpoint = require 'kbl.records.checkpoint'
local status = require 'kbl.records.status'

local dir = H.tmpdir()
local read = H.read
local function write(name, text) return H.write(dir .. '/' .. name, text) end
local function kbl_run(args) return H.kbl('run ' .. args, dir) end
local KBL = 'env KBL_BUILD_DIR=' .. (os.getenv('KBL_BUILD_DIR') or 'build') .. ' bin/kbl'

pcall(ffi.cdef, 'int getpid(void);')

local bytes = H.bytes

local function lines(text)
   local l = {}
   for s in (text or ''):gmatch('[^\n]+') do l[#l + 1] = s end
   return l
end

local ls = H.ls

local TINY = H.tiny_config{epochs = 3, between = 'blocks.Dropout{0.2}, ', extra = '   callbacks = {CALLBACKS},\n'}
local function config(name, callbacks)
   return write(name, (TINY:gsub('CALLBACKS', callbacks or '')))
end

local metrics = H.metrics   -- the epoch lines, the test split's line second

describe('kbl run directory', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   local run_dir = dir .. '/run'
   local cfg = config('tiny.lua', "callbacks.ModelCheckpoint{keep = 2, monitor = 'val_accuracy'}")
   local rc, out, err = kbl_run(cfg .. ' --quiet --run-dir ' .. run_dir)

   it('holds the config, logs, checkpoints, event file, report, status and weights', function()
      assert.are.equal(0, rc, err)
      -- --quiet: the run directory and the final metrics line only
      local test = out:match('^run tiny: 131 parameters, 3 epochs %-> ' .. run_dir:gsub('%p', '%%%0')
         .. '\n(test: loss [%d.]+  accuracy [%d.]+)\n$')
      assert.truthy(test, out)
      local names = table.concat(ls(run_dir), ' ')
      for _, f in ipairs{'config.lua', 'summary.txt', 'metrics.jsonl', 'metrics.csv', 'report.html', 'status.json',
         'model.safetensors', 'checkpoints'} do
         assert.truthy(names:find(f, 1, true), f)
      end
      assert.truthy(names:match('events%.out%.tfevents%.%d+%.'), names)
      local s = status.read(run_dir)
      assert.are.equal('finished', s.state)
      assert.are.equal(18, s.step)
      -- the final weights are the model's, the same as the last checkpoint's
      local w = kbl.load(run_dir .. '/model.safetensors')
      local last = require('kbl.records.run').load_trainer(s.checkpoint)
      assert.are.equal(18, last.meta.step)
      for name, t in pairs(last.model) do
         assert.are.equal(bytes(t), bytes(w[name]), name)
      end
   end)

   it('records the test metrics in metrics.jsonl, summary.txt, status.json and report.html', function()
      local line = out:match('\n(test: [^\n]+)\n$')
      local loss, acc = line:match('^test: loss ([%d.]+)  accuracy ([%d.]+)$')
      local m, t = metrics(run_dir)
      assert.are.equal(3, #m)
      assert.are.same({split = 'test', epoch = 3, step = 18, test_loss = t.test_loss,
         test_accuracy = t.test_accuracy}, t)
      assert.are.equal(loss, string.format('%.4f', t.test_loss))
      assert.are.equal(acc, string.format('%.4f', t.test_accuracy))
      assert.truthy(read(run_dir .. '/summary.txt'):find('\n' .. line .. '\n', 1, true))
      local s = status.read(run_dir)
      assert.are.same({split = 'test', loss = t.test_loss, accuracy = t.test_accuracy}, s.test)
      local html = read(run_dir .. '/report.html')
      assert.truthy(html:find(string.format('<h2>Test (test split)</h2><table class="epochs test"><tr><th>accuracy'
         .. '</th><th>loss</th></tr><tr><td>%.6g</td><td>%.6g</td></tr></table>', t.test_accuracy, t.test_loss),
         1, true), html)
   end)

   it('kbl.load_run gives back the built model with the run\'s weights, and its config', function()
      local m, loaded, trainer = kbl.load_run(run_dir)
      assert.are.equal('tiny', loaded.name)
      assert.is_false(m.training)
      local w = kbl.load(run_dir .. '/model.safetensors')
      local n = 0
      for name, t in pairs(m:state_dict()) do
         n = n + 1
         assert.are.equal(bytes(w[name]), bytes(t), name)
      end
      assert.are.equal(4, n)
      assert.near(status.read(run_dir).test.loss, trainer:evaluate('test').loss, 1e-6)
      local ok, why = pcall(kbl.load_run, dir .. '/nowhere')
      assert.is_false(ok)
      assert.matches('load_run: ' .. dir .. '/nowhere is not a run directory', why, 1, true)
   end)

   it('keeps the last K epoch checkpoints and the best by the monitored metric', function()
      local ck = ls(run_dir .. '/checkpoints')
      assert.are.same({'best.ckpt', checkpoint.file_name(12), checkpoint.file_name(18)}, ck)
      local m = metrics(run_dir)
      assert.are.equal(3, #m)
      local best_epoch, best = nil, -1
      for _, e in ipairs(m) do if e.val_accuracy > best then best, best_epoch = e.val_accuracy, e.epoch end end
      local r = require('kbl.records.run').load_trainer(run_dir .. '/checkpoints/best.ckpt')
      assert.are.equal(best_epoch, r.meta.epoch)
      assert.are.equal(6 * best_epoch, r.meta.step)
      assert.are.equal('string', type(r.meta.config))   -- kbl eval rebuilds the run from it
   end)

   it('checkpoints every N steps, mid-epoch too', function()
      local d = dir .. '/steps'
      local c = config('steps.lua', 'callbacks.ModelCheckpoint{every_steps = 4, keep = 3, save_best = false}')
      local rc2, _, err2 = kbl_run(c .. ' --quiet --run-dir ' .. d)
      assert.are.equal(0, rc2, err2)
      assert.are.same({checkpoint.file_name(8), checkpoint.file_name(12), checkpoint.file_name(16)},
         ls(d .. '/checkpoints'))
      local r = require('kbl.records.run').load_trainer(d .. '/checkpoints/' .. checkpoint.file_name(16))
      assert.are.equal(4, r.state.batches_done)   -- step 16 is batch 4 of epoch 3
      assert.are.equal(2, r.state.epochs_done)
   end)

   it('writes every logged metric and the learning rate to the TensorBoard event file', function()
      if H.run('/usr/bin/python3 -c "import json"') ~= 0 then
         pending('no python3 to decode the event file')
         return
      end
      local events
      for _, n in ipairs(ls(run_dir)) do
         if n:match('^events%.out%.tfevents%.') then events = run_dir .. '/' .. n end
      end
      local rc2, dump = H.run('/usr/bin/python3 spec/fixtures/tfevents_read.py ' .. events)
      assert.are.equal(0, rc2, dump)
      local ev = json.decode(dump).events
      local m = metrics(run_dir)
      local scalars = {}
      for _, e in ipairs(ev) do
         -- the epochs' events (not the hparams plugin's summaries or the test split's metrics)
         if e.values and #e.values > 0 and e.values[1].value and not e.values[1].tag:match('/test$') then
            local tags = {}
            for _, v in ipairs(e.values) do tags[v.tag] = v.value end
            scalars[#scalars + 1] = {step = e.step, tags = tags}
         end
      end
      assert.are.equal(3, #scalars)
      for i, s in ipairs(scalars) do
         assert.are.equal(m[i].step, s.step)
         -- float32 in the event file; metrics.jsonl holds 14 digits
         local want = {['loss/train'] = m[i].loss, ['accuracy/train'] = m[i].accuracy,
            ['loss/validation'] = m[i].val_loss, ['accuracy/validation'] = m[i].val_accuracy, lr = 0.01}
         local n = 0
         for tag, v in pairs(s.tags) do
            n = n + 1
            assert.is_number(want[tag], tag)
            assert.near(want[tag], v, 1e-6 * math.max(1, math.abs(v)), tag)
         end
         assert.are.equal(5, n)
      end
   end)

   it('rewrites report.html at each epoch end and marks status running with the pid meanwhile', function()
      local fit = require 'kbl.fit'
      local records = require 'kbl.records.run'
      local callbacks = require 'kbl.callbacks'
      local d = dir .. '/inproc'
      local seen = {}
      kbl.manual_seed(1)
      local tr = fit.Trainer{model = require('kbl.blocks').Dense{3}, loss = require('kbl.losses').CrossEntropy{},
         data = require('kbl.data').generated{kind = 'blobs', n = 64, validation = 16, dim = 4, classes = 3},
         optimizer = require('kbl.optim').SGD{lr = 0.1}, epochs = 3, batch_size = 16, quiet = true, run_dir = d}
      tr:add_callback(records.Recorder{run_dir = d, handle_signals = false, every_n_epochs = 0})
      tr:add_callback(callbacks.LambdaCallback{on_epoch_end = function(_, epoch)
         local html = read(d .. '/report.html')
         local _, rows = html:gsub('<tr><td>%d+</td>', '')
         local s = status.read(d)
         seen[epoch] = {rows = rows, state = s.state, pid = s.pid}
      end})
      tr:fit()
      for e = 1, 3 do
         assert.are.equal(e, seen[e].rows, 'epoch rows in the report at epoch ' .. e)
         assert.are.equal('running', seen[e].state)
         assert.are.equal(status.pid(), seen[e].pid)
      end
      assert.are.equal('finished', status.read(d).state)
   end)

   it('refuses a directory another process holds, naming it and the pid, writing nothing', function()
      local d = dir .. '/busy'
      os.execute('mkdir -p ' .. d)
      local lock = require 'kbl.records.lock'
      lock.acquire(d)   -- this process plays the live run
      finally(function() lock.release(d) end)
      local rc2, out2, err2 = kbl_run(cfg .. ' --run-dir ' .. d)
      assert.are.equal(1, rc2)
      assert.are.equal('', out2)
      assert.are.equal('kbl: the run directory ' .. d .. ' is in use by another run (pid ' .. status.pid()
         .. ', holding ' .. d .. '/run.lock); wait for it to end or use another run directory\n', err2)
      assert.are.same({'run.lock'}, ls(d))
   end)

   it('gives a directory to one of two runs started together; the other writes nothing', function()
      -- the two differ in every record: width (parameters), epochs, file name
      local a = write('race_a.lua', (TINY:gsub('n = 96', 'n = 1920'):gsub('CALLBACKS', '')))
      local b = write('race_b.lua', (TINY:gsub('n = 96', 'n = 1920'):gsub('units = 16', 'units = 8')
         :gsub('epochs = 3', 'epochs = 2'):gsub('CALLBACKS', '')))
      local want = {
         a = {file = a, params = '131', epochs = 3},
         b = {file = b, params = '67', epochs = 2},
      }
      for i = 1, 4 do
         local d, io_dir = dir .. '/race' .. i, dir .. '/race' .. i .. '.io'
         os.execute('mkdir -p ' .. io_dir)
         local script = string.format('%s run %s --quiet --run-dir %s >%s/a.out 2>%s/a.err & pa=$!; '
            .. '%s run %s --quiet --run-dir %s >%s/b.out 2>%s/b.err & pb=$!; '
            .. 'echo $pa $pb >%s/pids; wait $pa; echo $? >%s/a.rc; wait $pb; echo $? >%s/b.rc',
            KBL, a, d, io_dir, io_dir, KBL, b, d, io_dir, io_dir, io_dir, io_dir, io_dir)
         os.execute("sh -c '" .. script .. "'")
         local pa, pb = read(io_dir .. '/pids'):match('(%d+) (%d+)')
         local pid = {a = pa, b = pb}
         local rcs = {a = tonumber(read(io_dir .. '/a.rc')), b = tonumber(read(io_dir .. '/b.rc'))}
         local winner = rcs.a == 0 and 'a' or 'b'
         local loser = winner == 'a' and 'b' or 'a'
         assert.are.same({[winner] = 0, [loser] = 1}, rcs, 'round ' .. i .. ': ' .. (read(io_dir .. '/a.err') or '')
            .. (read(io_dir .. '/b.err') or ''))
         assert.are.equal('', read(io_dir .. '/' .. loser .. '.out'))
         -- the loser found the lock held, or (started late on a busy machine) the finished run
         local lost = read(io_dir .. '/' .. loser .. '.err')
         if lost:find('in use', 1, true) then
            assert.are.equal('kbl: the run directory ' .. d .. ' is in use by another run (pid ' .. pid[winner]
               .. ', holding ' .. d .. '/run.lock); wait for it to end or use another run directory\n', lost)
         else
            assert.matches('^kbl: %-%-run%-dir ' .. d:gsub('%p', '%%%0') .. ' already holds a finished run', lost)
         end
         -- every record is the winner's
         local w = want[winner]
         assert.truthy(read(d .. '/config.lua'):find('kbl run ' .. w.file, 1, true), 'config.lua of the winner')
         assert.falsy(read(d .. '/config.lua'):find(want[loser].file, 1, true), 'config.lua of the loser')
         assert.matches('Total params: ' .. w.params .. '\n', read(d .. '/summary.txt'))
         assert.are.equal(w.epochs, #metrics(d))
         assert.are.equal(w.epochs, #lines(read(d .. '/metrics.csv')) - 1)
         assert.are.equal('finished', status.read(d).state)
         local events = 0
         for _, n in ipairs(ls(d)) do if n:match('^events%.out%.tfevents%.') then events = events + 1 end end
         assert.are.equal(1, events)
      end
   end)

   it('gives two runs started together without --run-dir a directory each', function()
      local runs, io_dir = dir .. '/auto_runs', dir .. '/auto.io'
      os.execute('mkdir -p ' .. io_dir)
      local one = string.format("%s run %s --quiet --set runs='\\''%s'\\''", KBL, cfg, runs)
      os.execute(string.format("sh -c '%s >/dev/null 2>%s/a.err & pa=$!; %s >/dev/null 2>%s/b.err & pb=$!; "
         .. "wait $pa; echo $? >%s/a.rc; wait $pb; echo $? >%s/b.rc'", one, io_dir, one, io_dir, io_dir, io_dir))
      assert.are.equal(0, tonumber(read(io_dir .. '/a.rc')), read(io_dir .. '/a.err'))
      assert.are.equal(0, tonumber(read(io_dir .. '/b.rc')), read(io_dir .. '/b.err'))
      local made = ls(runs .. '/tiny')
      assert.are.equal(2, #made)
      for _, n in ipairs(made) do
         assert.are.equal('finished', status.read(runs .. '/tiny/' .. n).state)
         assert.are.equal(3, #metrics(runs .. '/tiny/' .. n))
      end
   end)

   it('refuses --run-dir onto a finished run, naming --resume and --overwrite; --overwrite clears it', function()
      local d = dir .. '/again_over'
      local rc1, _, err1 = kbl_run(cfg .. ' --quiet --run-dir ' .. d)
      assert.are.equal(0, rc1, err1)
      local before = {}
      for _, n in ipairs(ls(d)) do before[n] = read(d .. '/' .. n) or 'dir' end
      local ckpts = ls(d .. '/checkpoints')
      local rc2, out2, err2 = kbl_run(cfg .. ' --quiet --run-dir ' .. d)
      assert.are.equal(1, rc2)
      assert.are.equal('', out2)
      assert.matches('^kbl: %-%-run%-dir ' .. d:gsub('%p', '%%%0') .. ' already holds a finished run %(', err2)
      assert.truthy(err2:find('continue it with `kbl run --resume ' .. d .. '`', 1, true), err2)
      assert.truthy(err2:find('or start afresh with --overwrite', 1, true), err2)
      assert.are.equal(1, #lines(err2))
      for _, n in ipairs(ls(d)) do
         if n ~= 'run.lock' then assert.are.equal(before[n], read(d .. '/' .. n) or 'dir', n) end
      end
      assert.are.same(ckpts, ls(d .. '/checkpoints'))
      -- --overwrite: a shorter run with no trace of the old one
      local rc3, _, err3 = kbl_run(cfg .. ' --quiet --overwrite --set epochs=1 --run-dir ' .. d)
      assert.are.equal(0, rc3, err3)
      assert.are.equal(1, #metrics(d))
      assert.are.equal(2, #lines(read(d .. '/metrics.csv')))
      local events = {}
      for _, n in ipairs(ls(d)) do if n:match('^events%.out%.tfevents%.') then events[#events + 1] = n end end
      assert.are.equal(1, #events)
      assert.are_not.equal(before[events[1]], read(d .. '/' .. events[1]), 'the old event file is gone')
      assert.are.same({'best.ckpt', checkpoint.file_name(6)}, ls(d .. '/checkpoints'))
      local s = status.read(d)
      assert.are.equal('finished', s.state)
      assert.are.equal(6, s.step)
      assert.matches('epochs = 1', read(d .. '/config.lua'))
      -- a user's own file in the directory is left alone
      write('again_over/notes.txt', 'mine')
      assert.are.equal(0, (kbl_run(cfg .. ' --quiet --overwrite --run-dir ' .. d)))
      assert.are.equal('mine', read(d .. '/notes.txt'))
      assert.are.equal(3, #metrics(d))
      -- --resume and --overwrite together make no sense
      local rc4, _, err4 = kbl_run('--quiet --overwrite --resume ' .. d)
      assert.are.equal(1, rc4)
      assert.matches('--overwrite and --resume contradict', err4, nil, true)
   end)

   it('takes the experiment name as one path component only', function()
      local runs = dir .. '/named_runs'
      for _, bad in ipairs{'../../x', '..', '.', 'a/b', ''} do
         local c = write('named.lua', (TINY:gsub("name = 'tiny'", 'name = ' .. string.format('%q', bad))
            :gsub('CALLBACKS', '')))
         local rc2, _, err2 = kbl_run(c .. " --quiet --set runs='" .. runs .. "'")
         assert.are.equal(1, rc2, bad)
         assert.are.equal('kbl: ' .. c .. ":3: config key 'name' must be one path component (it names the "
            .. "directory runs/<name>/), got " .. string.format('%q', bad) .. ": no '/', not '.' or '..'\n", err2)
      end
      assert.are.same({}, ls(runs))
      -- a good name makes runs/<name>/<time>
      local c = write('named.lua', (TINY:gsub("name = 'tiny'", "name = 'ok-name_1.2'"):gsub('CALLBACKS', '')))
      local rc2, _, err2 = kbl_run(c .. " --quiet --set runs='" .. runs .. "'")
      assert.are.equal(0, rc2, err2)
      assert.are.same({'ok-name_1.2'}, ls(runs))
      assert.matches('^%d+%-%d+$', ls(runs .. '/ok-name_1.2')[1])
   end)

   it('names a read-only file system in words', function()
      local ro = dir .. '/ro'
      os.execute('mkdir -p ' .. ro)
      if H.run('mount -t tmpfs tmpfs ' .. ro) ~= 0 then
         pending('mounting a tmpfs needs root and mount(8); the read-only case is not checked here')
         return
      end
      finally(function() os.execute('umount ' .. ro .. ' 2>/dev/null') end)
      os.execute('mkdir ' .. ro .. '/old')
      assert.are.equal(0, (H.run('mount -o remount,ro ' .. ro)))
      local rc2, _, err2 = kbl_run(cfg .. ' --quiet --run-dir ' .. ro .. '/new')
      assert.are.equal(1, rc2)
      assert.are.equal('kbl: cannot create the directory ' .. ro .. '/new: Read-only file system (errno 30)\n', err2)
      rc2, _, err2 = kbl_run(cfg .. ' --quiet --run-dir ' .. ro .. '/old')
      assert.are.equal(1, rc2)
      assert.are.equal('kbl: cannot create the lock file ' .. ro .. '/old/run.lock: Read-only file system (errno 30)\n',
         err2)
      rc2, _, err2 = kbl_run(cfg .. " --quiet --set runs='" .. ro .. "/runs'")
      assert.are.equal(1, rc2)
      assert.are.equal('kbl: cannot create the directory ' .. ro .. '/runs: Read-only file system (errno 30)\n', err2)
   end)

   it('gives the same weights and metrics twice from one config and seed', function()
      local d = dir .. '/again'
      local rc2, _, err2 = kbl_run(cfg .. ' --quiet --run-dir ' .. d)
      assert.are.equal(0, rc2, err2)
      assert.are.equal(read(run_dir .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(run_dir), metrics(d))
   end)

   it('stops on a NaN loss naming the step, marks the run failed and keeps the last good checkpoint', function()
      local d = dir .. '/nan'
      local c = write('nan.lua', TINY:gsub('optim.Adam{lr = 0.01}', 'optim.SGD{lr = 1e30}')
         :gsub('CALLBACKS', 'callbacks.ModelCheckpoint{every_steps = 1, keep = 2}'))
      local rc2, _, err2 = kbl_run(c .. ' --quiet --run-dir ' .. d)
      assert.are.equal(1, rc2)
      local step = tonumber(err2:match('loss is %-?%a+ at step (%d+)'))
      assert.truthy(step, err2)
      local s = status.read(d)
      assert.are.equal('failed', s.state)
      assert.matches('loss is %-?%a+ at step ' .. step, s.message)
      local path = checkpoint.latest_valid(d .. '/checkpoints')
      assert.are.equal(d .. '/checkpoints/' .. checkpoint.file_name(step - 1), path)
      assert.truthy(err2:find('the last good checkpoint is ' .. path, 1, true))
      local r = require('kbl.records.run').load_trainer(path)
      for name, t in pairs(r.model) do
         local v = t:double():sum():item()
         assert.is_true(v == v and math.abs(v) < math.huge, name)
      end
   end)
end)
