-- spec/fit_spec.lua: the trainer (kbl.fit) and its callbacks on small
-- generated data: it learns, validates under no-grad, evaluates and predicts;
-- stages freeze and change the learning rate; the callbacks do their jobs; a
-- NaN loss stops the run naming the step; progress output in both modes;
-- state()/set_state() resume bit for bit.
local kbl = require 'kbl'
local blocks = require 'kbl.blocks'
local optim = require 'kbl.optim'
local losses = require 'kbl.losses'
local metrics = require 'kbl.metrics'
local data = require 'kbl.data'
local fit = require 'kbl.fit'
local callbacks = require 'kbl.callbacks'

local function source(seed)
   return data.generated{kind = 'blobs', n = 256, validation = 64, test = 64, dim = 4, classes = 3,
      seed = seed or 3, spread = 0.6}
end

local function model()
   return blocks.Model{backbone = blocks.MLP{units = {16}}, head = blocks.ClassificationHead{num_classes = 3}}
end

local function trainer(opts)
   local o = {model = model(), data = source(), loss = losses.CrossEntropy{},
      optimizer = optim.Adam{lr = 0.01}, metrics = {metrics.Accuracy{}}, epochs = 3, batch_size = 32,
      seed = 1, quiet = true, prefetch = 0}
   for k, v in pairs(opts or {}) do o[k] = v end
   return fit.Trainer(o)
end

local function snapshot(m)
   local out = {}
   for _, kv in ipairs(m:named_parameters()) do out[kv[1]] = kv[2]:clone():reshape(-1):tolist() end
   return out
end

-- A writable stand-in for a file.
local function buffer()
   local b = {text = ''}
   function b:write(...) for _, s in ipairs{...} do self.text = self.text .. tostring(s) end return self end
   function b.flush() end
   return b
end

local tmp = os.tmpname()
os.remove(tmp)
os.execute('mkdir -p ' .. tmp)

describe('fit.Trainer', function()
   it('learns, validating every epoch', function()
      local t = trainer{epochs = 4}
      local history = t:fit()
      assert.equal(4, #history)
      local last = history[4]
      for _, k in ipairs{'epoch', 'step', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr', 'time',
         'samples_per_sec', 'time_data', 'time_forward', 'time_backward', 'time_update'} do
         assert.is_number(last[k], k)
      end
      assert.equal(4, last.epoch)
      assert.equal(32, last.step)               -- 256 / 32 steps an epoch
      assert.is_true(last.loss < history[1].loss)
      assert.is_true(last.val_accuracy >= 0.9, 'val_accuracy ' .. last.val_accuracy)
      assert.is_true(t.model.training)
   end)

   it('evaluates and predicts on any split', function()
      local t = trainer{epochs = 3}
      t:fit()
      local ev = t:evaluate('test')
      assert.is_true(ev.accuracy >= 0.9)
      assert.is_number(ev.loss)
      local pred = t:predict('test')
      assert.same({64, 3}, pred:size())
      local val = t:evaluate('validation')
      assert.near(t.history[3].val_loss, val.loss, 1e-6)
      assert.near(t.history[3].val_accuracy, val.accuracy, 1e-9)
   end)

   it('runs a Model\'s preprocess in training, evaluation and predict; postprocess in predict only', function()
      local seen = {}
      local function zeroed(m)
         return blocks.Model{preprocess = function(x) seen[#seen + 1] = x:size(1); return x * 0 end,
            backbone = m.backbone, head = m.head, postprocess = function(y) return y:argmax(2) end}
      end
      local t = trainer{model = zeroed(model()), epochs = 2}
      t:fit()
      -- every input is zero: nothing to learn from, so no better than chance (a third)
      assert.is_true(t.history[2].val_accuracy < 0.6, tostring(t.history[2].val_accuracy))
      assert.is_true(t:evaluate('test').accuracy < 0.6)
      local pred = t:predict('test')
      assert.same({64}, pred:size())
      assert.equal('int64', pred.dtype)
      -- training and evaluation saw the preprocess too (build's probe, 8 training and 2 validation steps a
      -- epoch, the two evaluations, then predict's 2)
      assert.equal(1 + 2 * (8 + 2) + 2 + 2, #seen)
      -- without it, the same data is learnt
      local u = trainer{epochs = 2}
      u:fit()
      assert.is_true(u.history[2].val_accuracy >= 0.9)
   end)

   it('builds a head without num_classes for the data\'s meta.num_classes', function()
      local m = blocks.Model{backbone = blocks.MLP{units = {16}}, head = blocks.ClassificationHead{}}
      local t = trainer{model = m, epochs = 1}
      t:fit()
      assert.same({3, 16}, m:state_dict()['head.fc.weight']:size())
      assert.is_true(t.history[1].val_accuracy > 0.5)
      -- given, it wins; without data meta it must be given
      local m4 = blocks.Model{backbone = blocks.MLP{units = {16}}, head = blocks.ClassificationHead{4}}
      trainer{model = m4, epochs = 1}:build()
      assert.same({4, 16}, m4:state_dict()['head.fc.weight']:size())
      local bare = blocks.ClassificationHead{}
      local ok, err = pcall(bare, kbl.zeros(2, 5))
      assert.is_false(ok)
      assert.matches('blocks.ClassificationHead: give num_classes (the data being fitted gives no meta.num_classes)',
         err, 1, true)
   end)

   it('keeps to steps_per_epoch', function()
      local t = trainer{epochs = 2, steps_per_epoch = 3}
      local h = t:fit()
      assert.equal(3, h[1].step)
      assert.equal(6, h[2].step)
   end)

   it('frees each step\'s intermediates', function()
      local t = trainer{epochs = 1}
      t:build()
      collectgarbage('collect')
      local before = kbl.memory.stats().live_bytes
      t:fit()
      local after = kbl.memory.stats().live_bytes
      assert.is_true(after - before < 64 * 1024, 'live bytes grew by ' .. (after - before))
   end)

   it('rejects an unknown option by name', function()
      local ok, err = pcall(fit.Trainer, {model = model(), data = source(), loss = losses.CrossEntropy{},
         optimizer = optim.SGD{lr = 0.1}, epoch = 3})
      assert.is_false(ok)
      assert.matches("unknown option 'epoch' %(did you mean 'epochs'%?%)", err)
   end)

   it('takes its options from the config schema, the one list of them', function()
      local schema = require 'kbl.config.schema'
      for k in pairs(schema.TOP) do assert.equal(not schema.CONFIG_ONLY[k], fit.OPTIONS[k] == true, k) end
      for k in pairs(schema.TRAINER) do assert.is_true(fit.OPTIONS[k], k) end
      local ok, err = pcall(fit.Trainer, {model = model(), data = source(), loss = losses.CrossEntropy{},
         optimizer = optim.SGD{lr = 0.1}, threads = 2})
      assert.is_false(ok)
      assert.matches("unknown option 'threads'", err)
   end)

   it('keeps its options read-only and what changes in one state table', function()
      local t = trainer{epochs = 1}
      assert.equal(32, t.options.batch_size)   -- defaults filled in
      assert.equal(1, t.options.epochs)
      local ok, err = pcall(function() t.epochs = 5 end)
      assert.is_false(ok)
      assert.matches("fit: the option 'epochs' is read-only once the trainer is made", err, 1, true)
      ok = pcall(function() t.options.batch_size = 8 end)
      assert.is_false(ok)
      t:fit()
      assert.equal(8, t.step)
      assert.is_nil(rawget(t, 'step'))
      assert.equal(8, rawget(t, '_state').step)
      -- the optimizer in use is state; the option stays what was given
      assert.equal(t.options.optimizer, t.optimizer)
   end)

   it('takes data = (source = is an old name that still works)', function()
      local a = trainer{epochs = 1}
      local b = fit.Trainer{model = model(), source = source(), loss = losses.CrossEntropy{},
         optimizer = optim.Adam{lr = 0.01}, metrics = {metrics.Accuracy{}}, epochs = 1, batch_size = 32, seed = 1,
         quiet = true, prefetch = 0}
      assert.equal(b.options.data, b.source)
      a:fit()
      b:fit()
      assert.same(a.history[1].loss, b.history[1].loss)
      local ok, err = pcall(fit.Trainer, {model = model(), source = source(), data = source(),
         loss = losses.CrossEntropy{}, optimizer = optim.SGD{lr = 0.1}})
      assert.is_false(ok)
      assert.matches('give the data once: data = (source = is its old name)', err, 1, true)
   end)
end)

describe('fit stages', function()
   it('freezes parts and changes the learning rate stage by stage', function()
      local frozen_at, head_at
      local watch = callbacks.LambdaCallback{on_stage_begin = function(ctx, stage)
         if stage.index == 2 then
            frozen_at = snapshot(ctx.model.backbone)
            head_at = snapshot(ctx.model.head)
         end
      end}
      local t = trainer{callbacks = {watch}, stages = {
         {epochs = 2, optimizer = optim.Adam{lr = 0.01}},
         {epochs = 2, optimizer = optim.Adam{lr = 0.01}, lr = 1e-3, freeze = {'backbone'}},
      }}
      local h = t:fit()
      assert.equal(4, #h)
      assert.same({1, 1, 2, 2}, {h[1].stage, h[2].stage, h[3].stage, h[4].stage})
      assert.equal(0.01, h[2].lr)
      assert.equal(1e-3, h[4].lr)
      assert.same(frozen_at, snapshot(t.model.backbone))       -- bit for bit
      assert.are_not.same(head_at, snapshot(t.model.head))
   end)
end)

describe('fit callbacks', function()
   it('call their hooks in order', function()
      local seen = {}
      local cb = callbacks.LambdaCallback{
         on_train_begin = function() seen[#seen + 1] = 'train_begin' end,
         on_epoch_begin = function(_, e) seen[#seen + 1] = 'epoch_begin ' .. e end,
         on_batch_end = function(_, step) if step == 1 then seen[#seen + 1] = 'batch_end 1' end end,
         on_epoch_end = function(_, e, logs) seen[#seen + 1] = 'epoch_end ' .. e .. ' ' .. type(logs.val_loss) end,
         on_train_end = function() seen[#seen + 1] = 'train_end' end,
      }
      trainer{epochs = 2, callbacks = {cb}}:fit()
      assert.same({'train_begin', 'epoch_begin 1', 'batch_end 1', 'epoch_end 1 number', 'epoch_begin 2',
         'epoch_end 2 number', 'train_end'}, seen)
   end)

   it('EarlyStopping ends the run when the monitor stops improving', function()
      local es = callbacks.EarlyStopping{monitor = 'val_accuracy', patience = 2, min_delta = 1}
      local h = trainer{epochs = 10, callbacks = {es}}:fit()
      assert.equal(3, #h)       -- best at 1, then 2 epochs without an improvement of 1
      assert.equal(3, es.stopped_epoch)
      assert.equal('max', es.mode)
   end)

   it('hooks return their decision: stop after the epoch, stop now, or an error naming a wrong one', function()
      local function stopping(hook, value, at)
         return callbacks.LambdaCallback{[hook] = function(_, n) if n == at then return value end end}
      end
      local t = trainer{epochs = 3, callbacks = {stopping('on_epoch_end', 'stop', 1)}}
      assert.equal(1, #t:fit())
      t = trainer{epochs = 3, callbacks = {stopping('on_batch_end', 'stop_now', 3)}}
      assert.equal(0, #t:fit())
      assert.equal(3, t.step)
      t = trainer{epochs = 3, callbacks = {stopping('on_batch_end', 'stopped', 2)}}
      local ok, err = pcall(t.fit, t)
      assert.is_false(ok)
      assert.matches("fit: LambdaCallback's on_batch_end returned stopped; a hook returns nil, "
         .. "'stop' or 'stop_now'", err, 1, true)
      -- EarlyStopping decides so too
      local es = callbacks.EarlyStopping{monitor = 'loss', patience = 1, min_delta = 100}
      t = trainer{epochs = 5, callbacks = {es}}
      assert.equal(2, #t:fit())
   end)

   it('ReduceLROnPlateau lowers the rate', function()
      local r = callbacks.ReduceLROnPlateau{monitor = 'val_loss', patience = 1, factor = 0.5, min_delta = 10}
      local h = trainer{epochs = 4, callbacks = {r}}:fit()
      -- the rate each epoch ran at: lowered after epochs 2 and 3
      assert.same({0.01, 0.01, 0.005, 0.0025}, {h[1].lr, h[2].lr, h[3].lr, h[4].lr})
   end)

   it('LearningRateScheduler follows a schedule by epoch or step', function()
      local h = trainer{epochs = 3, callbacks = {callbacks.LearningRateScheduler{function(e) return 0.1 / e end}}}:fit()
      assert.same({0.1, 0.05, 0.1 / 3}, {h[1].lr, h[2].lr, h[3].lr})
      local steps = {}
      local spy = callbacks.LambdaCallback{on_batch_end = function(ctx) steps[#steps + 1] = ctx.optimizer:get_lr() end}
      trainer{epochs = 1, steps_per_epoch = 3, callbacks = {
         callbacks.LearningRateScheduler{optim.schedules.step{step_size = 1, gamma = 0.5}, by = 'step'}, spy}}:fit()
      assert.same({0.01, 0.005, 0.0025}, steps)     -- a factor of the starting rate
   end)

   it('rejects unknown options with the closest', function()
      local ok, err = pcall(callbacks.EarlyStopping, {patient = 3})
      assert.is_false(ok)
      assert.matches("callbacks.EarlyStopping: unknown option 'patient' %(did you mean 'patience'%?%)", err)
   end)

   it('CSVLogger and JSONLinesLogger write a line per epoch', function()
      local csv, jsonl = tmp .. '/m.csv', tmp .. '/m.jsonl'
      trainer{epochs = 2, callbacks = {callbacks.CSVLogger{path = csv}, callbacks.JSONLinesLogger{path = jsonl}}}:fit()
      local rows = {}
      for l in io.lines(csv) do rows[#rows + 1] = l end
      assert.equal(3, #rows)
      assert.matches('^epoch,step,stage,loss,accuracy,val_loss,val_accuracy,lr,time,', rows[1])
      assert.matches('^2,16,1,', rows[3])
      local json = require 'dkjson'
      local objs = {}
      for l in io.lines(jsonl) do objs[#objs + 1] = json.decode(l) end
      assert.equal(2, #objs)
      assert.equal(2, objs[2].epoch)
      assert.is_number(objs[2].val_accuracy)
   end)

   it('a NaN loss stops the run naming the step, before that step\'s update, keeping the last checkpoint', function()
      local current = 0
      local ce = losses.CrossEntropy{}
      local bad_loss = setmetatable({name = 'bad'}, {__call = function(_, p, y)
         local l = ce(p, y)
         if current >= 11 and kbl.is_grad_enabled() then l = l * (0 / 0) end
         return l
      end})
      local counter = callbacks.LambdaCallback{on_batch_begin = function(_, step) current = step end}
      local before
      local spy = callbacks.LambdaCallback{on_batch_end = function(ctx, step)
         if step == 10 then before = snapshot(ctx.model) end
      end}
      local dir = tmp .. '/ckpt'
      local t = trainer{epochs = 3, loss = bad_loss,
         callbacks = {counter, spy, callbacks.ModelCheckpoint{dir = dir, every_steps = 4, keep = 2}}}
      local ok, err = pcall(t.fit, t)
      assert.is_false(ok)
      assert.equal('loss is nan at step 11 (epoch 2, batch 3); stopped; the last good checkpoint is '
         .. dir .. '/step-000000000008.ckpt', err)
      assert.same(before, snapshot(t.model))
      local ck = require 'kbl.records.checkpoint'
      assert.is_true(ck.verify(dir .. '/step-000000000008.ckpt'))
      assert.is_true(ck.verify(dir .. '/step-000000000004.ckpt'))
   end)
end)

describe('fit progress', function()
   it('prints one plain line per epoch when not on a terminal', function()
      local out = buffer()
      trainer{epochs = 2, quiet = false, progress = 'lines', out = out}:fit()
      local l = {}
      for line in out.text:gmatch('[^\n]+') do l[#l + 1] = line end
      assert.equal(2, #l)
      assert.matches('^epoch 1/2  8 steps  [%d.]+s  loss [%d.]+  accuracy [%d.]+  val_loss [%d.]+  val_accuracy [%d.]+'
         .. '  lr 0.01  %d+ samples/s  %[data [%d.]+s  forward [%d.]+s  backward [%d.]+s  update [%d.]+s%]$', l[1])
      assert.is_nil(out.text:find('\r', 1, true))
   end)

   it('draws a bar with step/total, ETA, loss and samples/s on a terminal', function()
      local out = buffer()
      trainer{epochs = 1, quiet = false, progress = 'bar', out = out}:fit()
      assert.matches('\repoch 1/1 %[=+%] 8/8  ETA 0:00  loss [%d.]+  accuracy [%d.]+  %d+ samples/s', out.text)
      assert.matches('\r\27%[Kepoch 1/1  8 steps', out.text)
   end)

   it('keeps an epoch line within a width: drops the timings, then wraps between metrics', function()
      local progress = require 'kbl.callbacks.progress'
      local parts = {{'epoch 1/9'}, {'8 steps', drop = 1}, {'0.1s', drop = 2}, {'loss 0.1234'},
         {'accuracy 0.9000'}, {'val_loss 0.2000'}, {'900 samples/s', drop = 3}, {'[data 0.1s]', drop = 4}}
      assert.equal('epoch 1/9  8 steps  0.1s  loss 0.1234  accuracy 0.9000  val_loss 0.2000  900 samples/s  '
         .. '[data 0.1s]', progress.fit_parts(parts))
      assert.equal('epoch 1/9  8 steps  0.1s  loss 0.1234  accuracy 0.9000  val_loss 0.2000',
         progress.fit_parts(parts, 80))
      assert.equal('epoch 1/9  loss 0.1234  accuracy 0.9000\n  val_loss 0.2000', progress.fit_parts(parts, 40))
   end)

   it('takes the terminal\'s width: bar redraws and epoch lines keep to 60 columns', function()
      if os.execute('command -v script >/dev/null 2>&1') ~= 0 then
         pending('needs script(1) (util-linux) to run kbl on a pseudo-terminal')
         return
      end
      local H = require 'helper'
      local dir = H.tmpdir()
      local cfg = H.write(dir .. '/tty.lua', [[
return {
   extends = 'fit', name = 'tty', epochs = 1, batch_size = 8,
   data = data.generated{kind = 'blobs', n = 256, validation = 16, test = 16, dim = 8, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{3}},
   optimizer = optim.SGD{lr = 0.1},
}
]])
      local build = os.getenv('KBL_BUILD_DIR') or 'build'
      os.execute(string.format("script -qec 'stty cols 60 rows 20; env -u COLUMNS KBL_BUILD_DIR=%s bin/kbl run %s "
         .. "--run-dir %s/run' %s/tty.out >/dev/null 2>&1", build, cfg, dir, dir))
      local text = H.read(dir .. '/tty.out') or ''
      os.execute('rm -rf ' .. dir)
      local body = text:match('\n(run tty: .*)\n\nScript done') or text:match('\n(run tty: .*)$')
      assert.truthy(body, text)
      assert.truthy(body:find('1 epoch ->', 1, true), body)   -- not "1 epochs"
      local redraws, lines = 0, 0
      for seg in (body:gsub('\27%[K', '')):gmatch('[^\r\n]+') do
         if seg:match('^epoch 1/1 %[') then redraws = redraws + 1 end
         lines = lines + 1
         assert.is_true(#seg <= 59, string.format('%d columns: %q', #seg, seg))
      end
      assert.is_true(redraws >= 1, body)
      assert.truthy(body:find('\r\27%[Kepoch 1/1  loss [%d.]+  accuracy [%d.]+  val_loss [%d.]+\r\n  val_accuracy'),
         body)
   end)

   it('warns when the data pipeline is the bottleneck', function()
      local now = require('kbl.clock').now
      local src = source()
      local inner = src:split('train'):batch(32)
      local slow = {num_batches = function() return inner:num_batches() end, set_epoch = function() end}
      function slow.iter()
         local it = inner:iter()
         return function()
            local t0 = now()
            while now() - t0 < 0.1 do end
            return it()
         end
      end
      local stdio = io
      local saved = stdio.stderr
      local err = buffer()
      stdio.stderr = err  -- luacheck: ignore 122
      local ok, e = pcall(function() trainer{epochs = 1, train_data = slow, validation_split = false}:fit() end)
      stdio.stderr = saved  -- luacheck: ignore 122
      assert(ok, e)
      assert.matches('warning: epoch 1 spent %d+%% of its step time waiting for data', err.text)
   end)
end)

describe('fit state', function()
   local function clone_state(v)
      if kbl.is_tensor(v) then return kbl.keep(v:clone()) end
      if type(v) == 'table' then
         local o = {}
         for k, x in pairs(v) do o[k] = clone_state(x) end
         return o
      end
      return v
   end

   local function weights(m)
      local w = {}
      for name, t in pairs(m:state_dict()) do w[name] = kbl.keep(t:clone()) end
      return w
   end

   local function resume_matches(stop_step)
      local straight = trainer{epochs = 3, batch_size = 48}
      straight:fit()
      local saved, saved_w
      local stopper = callbacks.LambdaCallback{on_batch_end = function(ctx, step)
         if step == stop_step then
            saved, saved_w = clone_state(ctx:state()), weights(ctx.model)
            ctx.stop_training = 'now'
         end
      end}
      local first = trainer{epochs = 3, batch_size = 48, callbacks = {stopper}}
      first:fit()
      assert.is_table(saved)
      local second = trainer{epochs = 3, batch_size = 48}
      second:build()
      second.model:load_state_dict(saved_w)
      second:set_state(saved)
      local h = second:fit()
      assert.same(snapshot(straight.model), snapshot(second.model))
      assert.same(straight.history[3].loss, h[3].loss)
      assert.same(straight.history[3].val_accuracy, h[3].val_accuracy)
      assert.equal(#straight.history, #h)
   end

   it('resumes from the middle of an epoch bit for bit', function() resume_matches(8) end)
   it('resumes from an epoch boundary bit for bit', function() resume_matches(6) end)

   it('resumes at a stage boundary with the next stage\'s own optimizer', function()
      local function staged(cbs)
         return trainer{batch_size = 48, callbacks = cbs, stages = {
            {epochs = 2, optimizer = optim.Adam{lr = 0.01}},
            {epochs = 1, optimizer = optim.Adam{lr = 0.003}, freeze = {'backbone'}},
         }}
      end
      local straight = staged()
      straight:fit()
      local saved, saved_w
      local first = staged{callbacks.LambdaCallback{on_epoch_end = function(ctx, epoch)
         if epoch == 2 then
            saved, saved_w = clone_state(ctx:state()), weights(ctx.model)
            ctx.stop_training = true
         end
      end}}
      first:fit()
      local second = staged()
      second:build()
      second.model:load_state_dict(saved_w)
      second:set_state(saved)
      second:fit()
      assert.same(snapshot(straight.model), snapshot(second.model))
      assert.equal(0.003, second.optimizer:get_lr())
   end)

   it('keeps Adam\'s moments by parameter name through a change of freezing', function()
      local t = trainer{batch_size = 32,
         stages = {{epochs = 1, freeze = 'backbone'}, {epochs = 1, unfreeze = 'backbone'}}}
      t:fit()
      local steps = {}
      for name, st in pairs(t.optimizer.state) do steps[name] = st.step end
      -- one optimizer for both stages: the head trained 16 steps, the backbone the last 8
      assert.same({['backbone.dense1.weight'] = 8, ['backbone.dense1.bias'] = 8, ['head.fc.weight'] = 16,
         ['head.fc.bias'] = 16}, steps)
   end)

   it('holds counters, optimizer, generator and pipeline state', function()
      local t = trainer{epochs = 1, callbacks = {callbacks.EarlyStopping{}}}
      t:fit()
      local s = t:state()
      assert.equal(1, s.version)
      assert.equal(8, s.step)
      assert.equal(1, s.epochs_done)
      assert.is_table(s.optimizer)
      assert.is_table(s.rng)
      assert.is_table(s.pipeline)
      local names = {}
      for _, c in pairs(s.callbacks) do names[#names + 1] = c.name end
      assert.is_true(table.concat(names, ' '):find('EarlyStopping') ~= nil)
   end)
end)
