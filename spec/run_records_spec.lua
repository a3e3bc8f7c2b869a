-- run records: kbl.records.run, the callback that writes a run directory
-- (status, TensorBoard scalars, report, checkpoints with keep-last/best/every-N,
-- final safetensors weights), SIGINT turning into a checkpoint and a resume
-- message, and resume from the newest valid checkpoint. The trainer here is a
-- stand-in with the kbl.fit.Trainer fields the recorder reads.
local ffi = require 'ffi'
local kbl = require 'kbl'
local H = require 'helper'
local records = require 'kbl.records.run'
local checkpoint = require 'kbl.records.checkpoint'
local status = require 'kbl.records.status'

local tmp = H.tmpdir()

local bytes = H.bytes

local exists = H.exists

-- A stand-in for kbl.fit.Trainer: a model with state_dict/load_state_dict, the
-- counters, history and a state() holding optimizer tensors under number keys.
local function fake_trainer()
   kbl.manual_seed(4)
   local weights = {['fc.weight'] = kbl.randn{3, 2}, ['fc.bias'] = kbl.randn{3}}
   local tr = {name = 'fake', step = 0, epoch = 1, epochs_done = 0, batches_done = 0, history = {}}
   tr.model = {
      state_dict = function() return weights end,
      load_state_dict = function(_, sd) tr.loaded = sd end,
   }
   tr.opt_state = {[1] = {m = kbl.randn{3, 2}, v = kbl.randn{3, 2}, step = 7}, [2] = {m = kbl.randn{3}}}
   function tr.state(self)
      return {version = 1, step = self.step, epochs_done = self.epochs_done, batches_done = self.batches_done,
         optimizer = {type = 'Adam', steps = 7, state = self.opt_state}, rng = kbl.get_rng_state(),
         pipeline = {seed = 1, epoch = self.epoch, position = self.batches_done}, history = self.history}
   end
   function tr.build(self) self.built = true end
   function tr.set_state(self, s) self.resumed = s end
   return tr
end

local function run_steps(rec, tr, n, epoch_logs)
   for _ = 1, n do
      tr.step, tr.batches_done = tr.step + 1, tr.batches_done + 1
      rec:on_batch_end(tr, tr.step, {loss = 1})
   end
   if epoch_logs then
      tr.epochs_done, tr.batches_done = tr.epoch, 0
      epoch_logs.epoch, epoch_logs.step = tr.epoch, tr.step
      tr.history[#tr.history + 1] = epoch_logs
      rec:on_epoch_end(tr, tr.epoch, epoch_logs)
      tr.epoch = tr.epoch + 1
   end
end

describe('run records', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('packs trainer state with tensors into a checkpoint and back, bit for bit', function()
      local tr = fake_trainer()
      tr.step, tr.epochs_done, tr.batches_done = 12, 1, 2
      local path = tmp .. '/t.ckpt'
      records.save_trainer(path, tr, {config = {model = {units = 10}}})
      local r = records.load_trainer(path)
      assert.are.equal(12, r.meta.step)
      assert.are.same({model = {units = 10}}, r.meta.config)
      assert.are.equal(bytes(tr.model.state_dict()['fc.weight']), bytes(r.model['fc.weight']))
      assert.are.equal(bytes(tr.model.state_dict()['fc.bias']), bytes(r.model['fc.bias']))
      local st = r.state.optimizer.state
      assert.are.equal(bytes(tr.opt_state[1].m), bytes(st[1].m))
      assert.are.equal(bytes(tr.opt_state[1].v), bytes(st[1].v))
      assert.are.equal(bytes(tr.opt_state[2].m), bytes(st[2].m))
      assert.are.equal(7, st[1].step)
      assert.are.same(kbl.get_rng_state(), r.state.rng)
      assert.are.same({seed = 1, epoch = 1, position = 2}, r.state.pipeline)
   end)

   it('maps logs to TensorBoard tags and report entries', function()
      local logs = {loss = 0.5, accuracy = 0.8, val_loss = 0.6, val_accuracy = 0.7, lr = 0.01, epoch = 2,
         step = 40, time = 3, samples_per_sec = 100, time_data = 0.1, stage = 1}
      assert.are.same({['loss/train'] = 0.5, ['accuracy/train'] = 0.8, ['loss/validation'] = 0.6,
         ['accuracy/validation'] = 0.7, lr = 0.01}, records.scalar_tags(logs))
      assert.are.same({epoch = 2, lr = 0.01, stage = 1, train = {loss = 0.5, accuracy = 0.8},
         validation = {loss = 0.6, accuracy = 0.7}, times = {data = 0.1}}, records.report_entry(logs))
   end)

   it('writes the run directory through a run: checkpoints, best, tensorboard, report, weights, status', function()
      local dir = tmp .. '/run1'
      local tr = fake_trainer()
      local rec = records.Recorder{run_dir = dir, keep_last = 2, every_n_steps = 4, monitor = 'val_loss',
         config = 'return {epochs = 3}', summary = 'Dense 2 -> 3', handle_signals = false}
      rec:on_train_begin(tr)
      assert.are.equal('running', status.read(dir).state)
      run_steps(rec, tr, 5, {loss = 1.0, val_loss = 0.9, lr = 0.1})
      run_steps(rec, tr, 5, {loss = 0.8, val_loss = 1.1, lr = 0.05})
      run_steps(rec, tr, 5, {loss = 0.6, val_loss = 0.7, lr = 0.025})
      rec:on_train_end(tr, tr.history[#tr.history])
      -- steps 4, 5 (epoch), 8, 10 (epoch), 12, 15 (epoch): the last two are kept
      local steps = {}
      for _, e in ipairs(checkpoint.list(records.checkpoint_dir(dir))) do steps[#steps + 1] = e.step end
      assert.are.same({15, 12}, steps)
      local best = records.load_trainer(records.checkpoint_dir(dir) .. '/best.ckpt')
      assert.are.equal(15, best.meta.step)
      assert.are.same({best = 0.7, best_step = 15}, rec:state())
      local w = kbl.load(dir .. '/weights.safetensors')
      assert.are.equal(bytes(tr.model.state_dict()['fc.weight']), bytes(w['fc.weight']))
      local s = status.read(dir)
      assert.are.equal('finished', s.state)
      assert.are.equal(15, s.step)
      local html = io.open(dir .. '/report.html'):read('*a')
      assert.truthy(html:find('class="series validation"', 1, true))
      assert.truthy(html:find('Dense 2 -&gt; 3', 1, true))
      local rc, out = H.run('ls ' .. dir)
      assert.are.equal(0, rc)
      local events = out:match('(events%.out%.tfevents%.[^\n]+)')
      assert.truthy(events)
      if H.run('/usr/bin/python3 -c "import json"') == 0 then
         local rc2, dump = H.run('/usr/bin/python3 spec/fixtures/tfevents_read.py ' .. dir .. '/' .. events)
         assert.are.equal(0, rc2, dump)
         local ev = {}
         for _, e in ipairs(require('dkjson').decode(dump).events) do   -- the hparams plugin's summaries aside
            if not (e.values[1] and e.values[1].plugin) then ev[#ev + 1] = e end
         end
         assert.are.equal(4, #ev)
         assert.are.equal(10, ev[3].step)
         local tags = {}
         for _, v in ipairs(ev[3].values) do tags[v.tag] = v.value end
         assert.are.same({['loss/train'] = tonumber(ffi.new('float', 0.8)),
            ['loss/validation'] = tonumber(ffi.new('float', 1.1)), lr = tonumber(ffi.new('float', 0.05))}, tags)
      end
   end)

   it('turns SIGINT into a checkpoint, an interrupted status and a resume message', function()
      local dir = tmp .. '/run2'
      local tr = fake_trainer()
      local rec = records.Recorder{run_dir = dir, every_n_epochs = 0,
         resume_command = 'kbl run cfg.lua --resume ' .. dir}
      rec:on_train_begin(tr)
      run_steps(rec, tr, 3)
      ffi.C.kill(status.pid(), 2)   -- os.execute would not do: system() ignores SIGINT meanwhile
      local ok, err = pcall(run_steps, rec, tr, 1)
      assert.is_false(ok)
      assert.matches('interrupted by SIGINT at step 4', err, nil, true)
      assert.matches('Resume with: kbl run cfg.lua --resume ' .. dir, err, nil, true)
      local s = status.read(dir)
      assert.are.equal('interrupted', s.state)
      assert.are.equal(4, s.step)
      local r = records.load_trainer(s.checkpoint)
      assert.are.equal(4, r.meta.step)
      assert.are.equal(4, r.meta.batches_done)   -- mid-epoch
      assert.are.equal(0, kbl.lib.C.kbl_interrupt_pending())
      rec:on_train_end(tr)
      assert.are.equal('interrupted', status.read(dir).state)
   end)

   it('resumes from the newest valid checkpoint and says what it skipped', function()
      local dir = tmp .. '/run3'
      local tr = fake_trainer()
      local rec = records.Recorder{run_dir = dir, every_n_steps = 2, keep_last = 5, handle_signals = false}
      rec:on_train_begin(tr)
      run_steps(rec, tr, 6)
      rec:on_train_end(tr)
      local newest = records.checkpoint_dir(dir) .. '/' .. checkpoint.file_name(6)
      local f = io.open(newest, 'rb')
      local s = f:read('*a')
      f:close()
      f = io.open(newest, 'wb')
      f:write(s:sub(1, #s - 3))
      f:close()
      local lines = {}
      local out = {write = function(_, ...) lines[#lines + 1] = table.concat({...}) end}
      local tr2 = fake_trainer()
      local path, skipped = records.resume(tr2, dir, {out = out})
      assert.are.equal(records.checkpoint_dir(dir) .. '/' .. checkpoint.file_name(4), path)
      assert.are.equal(1, #skipped)
      assert.matches('skipping checkpoint ' .. newest .. ': truncated', lines[1], nil, true)
      assert.matches('resuming from', lines[2], nil, true)
      assert.is_true(tr2.built)
      assert.are.equal(4, tr2.resumed.step)
      assert.are.equal(bytes(tr.model.state_dict()['fc.bias']), bytes(tr2.loaded['fc.bias']))
      assert.has_error(function() records.resume(fake_trainer(), tmp .. '/empty', {out = out}) end)
   end)

   it('marks the run failed with the message when fit raises', function()
      local dir = tmp .. '/run4'
      local rec = records.Recorder{run_dir = dir, handle_signals = false}
      local tr = fake_trainer()
      function tr.fit(self)
         rec:on_train_begin(self)
         error('loss is nan at step 3', 0)
      end
      local ok, err = pcall(records.fit, tr, rec)
      assert.is_false(ok)
      assert.are.equal('loss is nan at step 3', err)
      local s = status.read(dir)
      assert.are.equal('failed', s.state)
      assert.are.equal('loss is nan at step 3', s.message)
      assert.is_false(exists(dir .. '/weights.safetensors'))
   end)

   describe('verify-resume', function()
      local vr = require 'kbl.commands.verify_resume'

      it('finds the first differing tensor and element, or none', function()
         local a = {w = kbl.tensor({1, 2, 3, 4}), i = kbl.tensor({1, 2}, {dtype = 'int64'})}
         assert.is_nil(vr.compare(a, {w = a.w:clone(), i = a.i:clone()}))
         local d = vr.compare(a, {w = kbl.tensor({1, 2, 3.5, 4}), i = a.i:clone()})
         assert.are.same({name = 'w', what = 'values differ', index = 3, a = 3, b = 3.5}, d)
         assert.are.equal('missing after resume', vr.compare(a, {w = a.w}).what)
         assert.matches('shape 4 vs 2x2', vr.compare(a, {w = a.w:reshape{2, 2}, i = a.i}).what, nil, true)
         local nan = kbl.tensor({0 / 0})
         assert.is_nil(vr.compare({x = nan}, {x = nan:clone()}))
      end)

      -- A toy trainer with the Trainer's resume surface: each step's update
      -- depends on the step number and the optimizer's moment tensor.
      local function toy(broken)
         local w = kbl.zeros{4}
         local tr = {step = 0, epoch = 1, epochs_done = 0, batches_done = 0, history = {}, callbacks = {}}
         tr.model = {state_dict = function() return {w = w} end,
            load_state_dict = function(_, sd) w:copy_(sd.w) end}
         tr.optimizer = {m = kbl.zeros{4}}
         function tr.optimizer.state_dict(o) return {state = {[1] = {m = o.m}}} end
         function tr.add_callback(self, cb) self.callbacks[#self.callbacks + 1] = cb end
         function tr.build() end
         function tr.state(self) return {step = self.step, m = self.optimizer.m} end
         function tr.set_state(self, st) self.pending = st end
         function tr.fit(self)
            if self.pending then
               self.step = broken and 0 or self.pending.step
               self.optimizer.m:copy_(self.pending.m)
            end
            for _ = 1, 100 do
               self.step = self.step + 1
               kbl.manual_seed(self.step)
               self.optimizer.m:copy_(self.optimizer.m * 0.9 + kbl.randn{4})
               w:copy_(w - self.optimizer.m * 0.1)
               for _, cb in ipairs(self.callbacks) do cb:on_batch_end(self, self.step) end
            end
         end
         return tr
      end

      it('passes a trainer that resumes exactly and catches one that does not', function()
         local dir = tmp .. '/verify'
         require('kbl.io.fs').mkdir_p(dir)
         local res = vr.verify(function() return toy(false) end, 10, dir)
         assert.is_true(res.identical)
         assert.are.equal(2, res.tensors)
         assert.are.equal(5, res.half)
         res = vr.verify(function() return toy(true) end, 10, dir)
         assert.is_false(res.identical)
         assert.are.equal('model/w', res.difference.name)
         assert.are.equal(1, res.difference.index)
      end)
   end)
end)
