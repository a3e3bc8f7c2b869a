-- spec/run_dir_spec.lua: what a `kbl run` run directory holds (tiny configs on
-- generated data, under a second a run): checkpoints by ModelCheckpoint (keep
-- last K, best by a monitored metric, every N epochs or steps), a TensorBoard
-- event file with every logged metric and the learning rate, report.html
-- rewritten at each epoch end, status.json (running with pid, finished,
-- failed with the message, a live run's directory refused), the final weights
-- as safetensors; the same config and seed give the same bytes twice; a NaN
-- loss stops the run naming the step and leaves the last good checkpoint.
local json = require 'dkjson'
local H = require 'helper'
local kbl = require 'kbl'
local checkpoint = require 'kbl.records.checkpoint'
local status = require 'kbl.records.status'

local dir = H.tmpdir()
local read = H.read
local function write(name, text) return H.write(dir .. '/' .. name, text) end
local function kbl_run(args) return H.kbl('run ' .. args, dir) end

local bytes = H.bytes

local function lines(text)
   local l = {}
   for s in (text or ''):gmatch('[^\n]+') do l[#l + 1] = s end
   return l
end

local function ls(path)
   local names = {}
   local p = io.popen('ls -1 ' .. path .. ' 2>/dev/null')
   for n in p:lines() do names[#names + 1] = n end
   p:close()
   return names
end

local TINY = [[
return {
   extends = 'fit',
   name = 'tiny',
   epochs = 3,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = 96, validation = 32, test = 32, dim = 4, classes = 3, seed = 3},
   model = blocks.Sequential{blocks.Dense{units = 16, activation = 'relu'}, blocks.Dropout{0.2}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.01},
   callbacks = {CALLBACKS},
}
]]
local function config(name, callbacks)
   return write(name, (TINY:gsub('CALLBACKS', callbacks or '')))
end

-- metrics.jsonl without the timings, which differ from run to run
local function metrics(run_dir)
   local out = {}
   for i, l in ipairs(lines(read(run_dir .. '/metrics.jsonl'))) do
      local obj = json.decode(l)
      for k in pairs(obj) do if k == 'time' or k == 'samples_per_sec' or k:match('^time_') then obj[k] = nil end end
      out[i] = obj
   end
   return out
end

describe('kbl run directory', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   local run_dir = dir .. '/run'
   local cfg = config('tiny.lua', "callbacks.ModelCheckpoint{keep = 2, monitor = 'val_accuracy'}")
   local rc, out, err = kbl_run(cfg .. ' --quiet --run-dir ' .. run_dir)

   it('holds the config, logs, checkpoints, event file, report, status and weights', function()
      assert.are.equal(0, rc, err)
      assert.are.equal('', out)   -- --quiet
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
         if e.values and #e.values > 0 then
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
      local tr = fit.Trainer{model = require('blocks').Dense{3}, loss = require('kbl.losses').CrossEntropy{},
         source = require('kbl.data').generated{kind = 'blobs', n = 64, validation = 16, dim = 4, classes = 3},
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

   it('refuses a directory whose recorded process is alive', function()
      local d = dir .. '/busy'
      os.execute('mkdir -p ' .. d)
      status.write(d, {state = 'running', pid = status.pid(), host = status.read(run_dir).host})
      local rc2, _, err2 = kbl_run(cfg .. ' --quiet --run-dir ' .. d)
      assert.are.equal(1, rc2)
      assert.matches('another run %(pid ' .. status.pid() .. '%) is still running in ' .. d, err2)
      assert.is_nil(read(d .. '/config.lua'))
      assert.are.equal(status.pid(), status.read(d).pid)
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
