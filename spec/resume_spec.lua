-- spec/resume_spec.lua: exact resume of real `kbl run` processes. A run killed
-- with SIGKILL at several points (mid-epoch, during a checkpoint write, after
-- an epoch) and resumed each time ends with the same weights, byte for byte,
-- and the same logged metrics as the run never stopped; corrupt and truncated
-- checkpoints are skipped with a message naming the file and why; SIGTERM
-- writes a checkpoint, marks the run interrupted and prints the exact command
-- that resumes it; `kbl verify-resume` passes a config whose callbacks all keep
-- their state and reports the first difference for one that does not.
local ffi = require 'ffi'
local H = require 'helper'
local checkpoint = require 'kbl.records.checkpoint'
local status = require 'kbl.records.status'

pcall(ffi.cdef, 'int usleep(unsigned int usec);')

local build = os.getenv('KBL_BUILD_DIR') or 'build'
local KBL = 'env KBL_BUILD_DIR=' .. build .. ' bin/kbl'

local dir = H.tmpdir()
local read, write = H.read, H.write
local function kbl(args) return H.kbl(args, dir) end

local ls = H.ls

local function sleep_ms(ms) ffi.C.usleep(ms * 1000) end

-- Builds spec/fixtures/slow_fsync.c into the scratch directory; returns the
-- LD_PRELOAD value that adds it after whatever is preloaded already (the
-- sanitizer runtime must stay first).
local function slow_fsync_shim()
   local so = dir .. '/slow_fsync.so'
   local rc = os.execute('cc -shared -fPIC -O2 -o ' .. so .. ' spec/fixtures/slow_fsync.c -ldl')
   assert(rc == 0 or rc == true, 'cannot build spec/fixtures/slow_fsync.c with cc')
   local pre = os.getenv('LD_PRELOAD')
   return (pre and pre ~= '' and pre .. ':' or '') .. so
end

-- Starts `kbl ARGS` in the background: {pid =, out =, err =, rc = file};
-- preload, when given, is the child's LD_PRELOAD.
local function start(args, tag, preload)
   local p = {out = dir .. '/' .. tag .. '.out', err = dir .. '/' .. tag .. '.err', rc = dir .. '/' .. tag .. '.rc',
      pidfile = dir .. '/' .. tag .. '.pid'}
   os.remove(p.rc)
   os.remove(p.pidfile)
   local env = preload and ('LD_PRELOAD=' .. preload .. ' ') or ''
   os.execute(string.format("sh -c '%s%s %s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s' 2>/dev/null &", env, KBL,
      args, p.out, p.err, p.pidfile, p.rc))
   for _ = 1, 5000 do
      p.pid = tonumber(read(p.pidfile) or '')
      if p.pid then return p end
      sleep_ms(1)
   end
   error('the background kbl did not start')
end

-- Waits for the process to end; returns its exit status.
local function finish(p)
   for _ = 1, 60000 do
      local rc = tonumber(read(p.rc) or '')
      if rc then return rc end
      sleep_ms(2)
   end
   error('the background kbl did not end')
end

-- Polls until cond() or the process ends; true when cond() held first.
local function wait_for(p, cond)
   while true do
      if cond() then return true end
      if read(p.rc) then return false end
      sleep_ms(1)
   end
end

local function newest_step(run_dir)
   local l = checkpoint.list(run_dir .. '/checkpoints')
   return l[1] and l[1].step or 0
end

local function temporaries(run_dir)
   local t = {}
   for _, n in ipairs(ls(run_dir .. '/checkpoints')) do if n:match('%.tmp%.%d+$') then t[#t + 1] = n end end
   return t
end

local metrics = H.metrics   -- the epoch lines, the test split's line second

-- 24 steps an epoch, 3 epochs, dropout (the generator), prefetch (the
-- pipeline), Adam (moments), a checkpoint every step.
local KILL = write(dir .. '/kill.lua', [[
return {
   extends = 'fit',
   name = 'kill',
   epochs = 3,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = 384, validation = 32, dim = 32, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{units = 128, activation = 'relu'}, blocks.Dropout{0.3}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.003},
   callbacks = {
      callbacks.ReduceLROnPlateau{monitor = 'loss', patience = 1, factor = 0.5, min_delta = 10},
      callbacks.ModelCheckpoint{every_steps = 1, keep = 2},
   },
}
]])

describe('resume', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   local base = dir .. '/base'
   local rc0, _, err0 = kbl('run ' .. KILL .. ' --quiet --run-dir ' .. base)

   it('ends bit-identical to the uninterrupted run after SIGKILLs mid-epoch, mid-write and after an epoch', function()
      assert.are.equal(0, rc0, err0)
      local d = dir .. '/killed'
      local args = 'run ' .. KILL .. ' --quiet --run-dir ' .. d
      -- 1: in the middle of the first epoch
      local p = start(args, 'k1')
      assert.is_true(wait_for(p, function() return newest_step(d) >= 10 end), read(p.err))
      ffi.C.kill(p.pid, 9)
      assert.are.equal(137, finish(p))
      -- what a killed run leaves: a running status, read as stopped (its lock is free)
      assert.are.equal('running', status.read(d, {raw = true}).state)
      assert.are.equal('stopped', status.read(d).state)
      -- 2: while a checkpoint is being written (a temporary file is there).
      -- A write takes well under a millisecond, less than one look at the
      -- directory, so a preloaded shim holds each fsync for 100 ms: the kill
      -- lands inside a write every time, under load and under the sanitizers.
      local shim = slow_fsync_shim()
      local caught = false
      for i = 1, 3 do
         p = start('run --resume ' .. d .. ' --quiet', 'k2-' .. i, shim)
         if not wait_for(p, function() return #temporaries(d) > 0 end) then break end
         ffi.C.kill(p.pid, 9)
         finish(p)
         if #temporaries(d) > 0 then caught = true break end
      end
      assert.is_true(caught, 'no kill landed during a checkpoint write')
      assert.is_true(newest_step(d) < 72)
      -- 3: after the second epoch's lines are logged
      p = start('run --resume ' .. d .. ' --quiet', 'k3')
      assert.is_true(wait_for(p, function() return #metrics(d) >= 2 end))
      ffi.C.kill(p.pid, 9)
      finish(p)
      -- the resume that finishes removes the dead writers' temporaries
      local rc, _, err = kbl('run --resume ' .. d .. ' --quiet')
      assert.are.equal(0, rc, err)
      assert.are.same({}, temporaries(d))
      assert.are.equal('finished', status.read(d).state)
      assert.are.equal(read(base .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(base), (metrics(d)))
      assert.are.equal(3, #metrics(d))
      local lr = metrics(d)[3].lr
      assert.is_true(lr < 0.003)   -- the plateau callback's state came through the resumes
   end)

   it('skips corrupt and truncated checkpoints, naming each and why', function()
      local d = dir .. '/damaged'
      local rc, _, err = kbl('run ' .. KILL .. ' --quiet --set callbacks.2.keep=5 --run-dir ' .. d)
      assert.are.equal(0, rc, err)
      local l = checkpoint.list(d .. '/checkpoints')
      assert.are.equal(5, #l)
      assert.are.equal(72, l[1].step)
      local s = read(l[1].path)   -- a flipped byte in the compressed body
      local k = math.floor(#s / 2)
      write(l[1].path, s:sub(1, k - 1) .. string.char((s:byte(k) + 1) % 256) .. s:sub(k + 1))
      s = read(l[2].path)
      write(l[2].path, s:sub(1, #s - 100))   -- truncated
      status.write(d, {state = 'interrupted'})
      rc, _, err = kbl('run --resume ' .. d .. ' --quiet')
      assert.are.equal(0, rc, err)
      assert.truthy(err:find('skipping checkpoint ' .. l[1].path .. ': ', 1, true), err)
      assert.truthy(err:find('skipping checkpoint ' .. l[2].path .. ': truncated', 1, true), err)
      assert.truthy(err:match('step%-000000000072%.ckpt: [^\n]*checksum'), err)
      assert.are.equal(read(base .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(base), (metrics(d)))
      -- nothing valid: a clear error
      local e = dir .. '/none'
      os.execute('mkdir -p ' .. e .. '/checkpoints && cp ' .. base .. '/config.lua ' .. e)
      write(e .. '/checkpoints/' .. checkpoint.file_name(5), 'not a checkpoint')
      rc, _, err = kbl('run --resume ' .. e .. ' --quiet')
      assert.are.equal(1, rc)
      assert.matches('skipping checkpoint [^\n]*step%-000000000005%.ckpt', err)
      assert.matches('no valid checkpoint in ' .. e .. '/checkpoints', err, 1, true)
   end)

   it('turns SIGTERM into a checkpoint, an interrupted status and the command that resumes', function()
      local d = dir .. '/term'
      local p = start('run ' .. KILL .. ' --quiet --run-dir ' .. d, 'term')
      assert.is_true(wait_for(p, function() return newest_step(d) >= 30 end))
      ffi.C.kill(p.pid, 15)
      assert.are.equal(1, finish(p))
      local err = read(p.err)
      local step = tonumber(err:match('^kbl: interrupted by SIGTERM at step (%d+) %(epoch 2%)'))
      assert.truthy(step, err)
      local cmd = err:match('Resume with: (kbl run [^\n]+)\n$')
      assert.are.equal('kbl run --resume ' .. d, cmd)
      local s = status.read(d)
      assert.are.equal('interrupted', s.state)
      assert.are.equal(step, s.step)
      assert.are.equal(d .. '/checkpoints/' .. checkpoint.file_name(step), s.checkpoint)
      local rc, _, err2 = kbl(cmd:gsub('^kbl ', '') .. ' --quiet')
      assert.are.equal(0, rc, err2)
      assert.are.equal(read(base .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(base), (metrics(d)))
   end)

   it('keeps EarlyStopping\'s best weights in the checkpoint', function()
      local K = require 'kbl'
      local fit = require 'kbl.fit'
      local callbacks = require 'kbl.callbacks'
      local records = require 'kbl.records.run'
      local function trainer()
         K.manual_seed(1)
         local es = callbacks.EarlyStopping{monitor = 'loss', patience = 5, restore_best_weights = true}
         return fit.Trainer{model = require('kbl.blocks').Dense{3}, loss = require('kbl.losses').CrossEntropy{},
            data = require('kbl.data').generated{kind = 'blobs', n = 32, dim = 4, classes = 3},
            optimizer = require('kbl.optim').SGD{lr = 0.1}, epochs = 2, batch_size = 16, quiet = true,
            callbacks = {es}}, es
      end
      local a, es = trainer()
      a:fit()
      local path = dir .. '/es.ckpt'
      records.save_trainer(path, a)
      local b, es2 = trainer()
      local r = records.load_trainer(path)
      b:build()
      b.model:load_state_dict(r.model)
      b:set_state(r.state)
      b:fit()
      assert.are.equal(es.best_epoch, es2.best_epoch)
      local n = 0
      for name, t in pairs(es.best_weights) do
         n = n + 1
         assert.are.same(t:tolist(), es2.best_weights[name]:tolist(), name)
      end
      assert.are.equal(2, n)
   end)

   -- A finished run's directory cut back to its checkpoint at `step` (as if
   -- stopped there), marked interrupted: a copy of `from` at `to`.
   local function cut_back(from, to, step)
      os.execute('rm -rf ' .. to .. ' && cp -r ' .. from .. ' ' .. to)
      for _, c in ipairs(checkpoint.list(to .. '/checkpoints')) do
         if c.step > step then os.remove(c.path) end
      end
      os.remove(to .. '/checkpoints/best.ckpt')
      assert.are.equal(step, newest_step(to))
      status.write(to, {state = 'interrupted'})
   end

   -- 12 steps an epoch, 3 epochs; the plateau cut comes after epoch 2 and early
   -- stopping ends the run after epoch 3, restoring epoch 1's weights, only when
   -- their state from epoch 1 comes through a resume in epoch 2.
   local DISPLAY = write(dir .. '/display.lua', [[
return {
   extends = 'fit',
   name = 'display',
   epochs = 3,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = 192, validation = 32, dim = 16, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{units = 32, activation = 'relu'}, blocks.Dropout{0.3}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.003},
   callbacks = {
      callbacks.ReduceLROnPlateau{monitor = 'loss', patience = 1, factor = 0.5, min_delta = 10},
      callbacks.EarlyStopping{monitor = 'loss', patience = 2, min_delta = 10, restore_best_weights = true},
      callbacks.ModelCheckpoint{every_steps = 4, keep = 100},
   },
}
]])

   it('ends bit-identical whatever display flags the interrupted and the resumed run had', function()
      local quiet, loud = dir .. '/display-quiet', dir .. '/display-loud'
      local rc, _, err = kbl('run ' .. DISPLAY .. ' --quiet --run-dir ' .. quiet)
      assert.are.equal(0, rc, err)
      local out
      rc, out, err = kbl('run ' .. DISPLAY .. ' --run-dir ' .. loud)
      assert.are.equal(0, rc, err)
      assert.truthy(out:find('early stopping at epoch 3', 1, true), out)
      assert.are.equal(read(quiet .. '/model.safetensors'), read(loud .. '/model.safetensors'))
      assert.are.equal(0.0015, metrics(quiet)[3].lr)
      -- stopped under --quiet in epoch 2, resumed with the command kbl prints (no --quiet)
      local d = dir .. '/display-a'
      cut_back(quiet, d, 16)
      rc, out, err = kbl('run --resume ' .. d)
      assert.are.equal(0, rc, err)
      assert.truthy(out:find('early stopping at epoch 3', 1, true), out)
      assert.are.equal(read(quiet .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(quiet), (metrics(d)))
      -- and the reverse
      d = dir .. '/display-b'
      cut_back(loud, d, 16)
      rc, _, err = kbl('run --resume ' .. d .. ' --quiet')
      assert.are.equal(0, rc, err)
      assert.are.equal(read(quiet .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(quiet), (metrics(d)))
   end)

   it('ends bit-identical across a stage change that unfreezes the backbone', function()
      local c = write(dir .. '/stages.lua', [[
return {
   extends = 'fit',
   name = 'stages',
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = 192, validation = 32, dim = 16, classes = 3, seed = 5},
   model = blocks.Model{backbone = blocks.Sequential{blocks.Dense{units = 32, activation = 'relu'}},
      head = blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.003},
   stages = {{name = 'head', epochs = 1, freeze = 'backbone'}, {name = 'all', epochs = 2, unfreeze = 'backbone'}},
   callbacks = {
      callbacks.ReduceLROnPlateau{monitor = 'loss', patience = 1, factor = 0.5, min_delta = 10},
      callbacks.ModelCheckpoint{every_steps = 4, keep = 100},
   },
}
]])
      local base_dir = dir .. '/stages-base'
      local rc, out, err = kbl('run ' .. c .. ' --run-dir ' .. base_dir)
      assert.are.equal(0, rc, err)
      assert.truthy(out:find('stage 2/2 (all): 2 epochs, lr 0.003, training backbone\n', 1, true), out)
      assert.truthy(out:find('stage 1/2 (head): 1 epoch, lr 0.003, frozen backbone\n', 1, true), out)
      for _, step in ipairs{8, 12, 28} do   -- in the first stage, at its end, in the second
         local d = dir .. '/stages-' .. step
         cut_back(base_dir, d, step)
         rc, _, err = kbl('run --resume ' .. d .. ' --quiet')
         assert.are.equal(0, rc, err)
         assert.are.equal(read(base_dir .. '/model.safetensors'), read(d .. '/model.safetensors'), 'step ' .. step)
         assert.are.same(metrics(base_dir), (metrics(d)))
      end
   end)

   it('--resume with --set epochs=N extends a run to N epochs, and refuses fewer than it has done', function()
      local c = write(dir .. '/extend.lua', [[
return {
   extends = 'fit', name = 'extend', epochs = 2, batch_size = 16,
   data = data.generated{kind = 'blobs', n = 96, validation = 16, dim = 8, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{units = 8, activation = 'relu'}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.01},
}
]])
      local straight, d = dir .. '/extend-4', dir .. '/extend'
      local rc, _, err = kbl('run ' .. c .. ' --quiet --set epochs=4 --run-dir ' .. straight)
      assert.are.equal(0, rc, err)
      rc, _, err = kbl('run ' .. c .. ' --quiet --run-dir ' .. d)
      assert.are.equal(0, rc, err)
      assert.are.equal(2, #metrics(d))
      rc, _, err = kbl('run --resume ' .. d .. ' --quiet --set epochs=4')
      assert.are.equal(0, rc, err)
      assert.are.equal(read(straight .. '/model.safetensors'), read(d .. '/model.safetensors'))
      assert.are.same(metrics(straight), (metrics(d)))
      assert.are.same(select(2, metrics(straight)), (select(2, metrics(d))))   -- the test split's line
      -- the run's config says what it now is, so that a later --resume continues it
      assert.truthy(read(d .. '/config.lua'):find('\n   epochs = 4,\n', 1, true))
      local before = read(d .. '/config.lua')
      rc, _, err = kbl('run --resume ' .. d .. ' --quiet --set epochs=3')
      assert.are.equal(1, rc)
      assert.matches('resume: the run has done 4 epochs already, more than the 3 epochs it is now set to; '
         .. 'give epochs of at least 4', err, 1, true)
      assert.are.equal(before, read(d .. '/config.lua'))
   end)

   it('refuses a top-level epochs that no stage runs, given with --set or beside the stages', function()
      local c = write(dir .. '/staged.lua', [[
return {
   extends = 'fit', name = 'staged', batch_size = 16,
   data = data.generated{kind = 'blobs', n = 96, validation = 16, dim = 8, classes = 3, seed = 5},
   model = blocks.Sequential{blocks.Dense{3}},
   optimizer = optim.SGD{lr = 0.1},
   stages = {{epochs = 1}, {epochs = 1, lr = 0.01}},
}
]])
      local rc, _, err = kbl('run ' .. c .. ' --quiet --set epochs=8 --run-dir ' .. dir .. '/staged-set')
      assert.are.equal(1, rc)
      assert.matches("--set epochs=8: 'epochs' = 8 is not used: with stages, the first stage runs the top-level "
         .. "epochs unless it names its own (it names 1) and each later stage inherits the one before; set a "
         .. "stage's epochs (--set stages.1.epochs=8)", err, 1, true)
      -- fit's epochs = 10 is a default the stages override; the saved config runs again as it is
      local d = dir .. '/staged'
      rc, _, err = kbl('run ' .. c .. ' --quiet --run-dir ' .. d)
      assert.are.equal(0, rc, err)
      assert.are.equal(2, #metrics(d))
      rc, _, err = kbl('run ' .. d .. '/config.lua --quiet --run-dir ' .. dir .. '/staged-again')
      assert.are.equal(0, rc, err)
      assert.are.equal(read(d .. '/model.safetensors'), read(dir .. '/staged-again/model.safetensors'))
      -- a first stage without epochs runs the top-level epochs
      local c2 = write(dir .. '/staged2.lua', (read(c):gsub('{{epochs = 1}', "{{name = 'warm'}")))
      rc, _, err = kbl('run ' .. c2 .. ' --quiet --set epochs=2 --run-dir ' .. dir .. '/staged-3')
      assert.are.equal(0, rc, err)
      assert.are.equal(3, #metrics(dir .. '/staged-3'))
   end)

   it('kbl verify-resume passes a config that resumes exactly', function()
      local c = write(dir .. '/verify.lua', [[
return {
   extends = 'fit',
   name = 'verify',
   epochs = 5,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = 80, validation = 16, dim = 8, classes = 3, seed = 2},
   model = blocks.Sequential{blocks.Dense{units = 16, activation = 'relu'}, blocks.Dropout{0.2}, blocks.Dense{3}},
   optimizer = optim.SGD{lr = 0.1, momentum = 0.9},
   callbacks = {
      callbacks.EarlyStopping{monitor = 'val_loss', patience = 3},
      callbacks.ReduceLROnPlateau{monitor = 'loss', patience = 1, factor = 0.5, min_delta = 10},
      callbacks.LearningRateScheduler{optim.schedules.exponential{gamma = 0.97}, by = 'step'},
   },
}
]])
      local rc, out, err = kbl('verify-resume ' .. c .. ' --steps 22')
      assert.are.equal(0, rc, err)
      assert.matches('^verify%-resume: identical: %d+ tensors agree bit for bit after 22 steps '
         .. '%(stopped and resumed at step 11%)\nverify%-resume: the halfway checkpoint: [%d.]+ MB, '
         .. 'written in [%d.]+ ms, read in [%d.]+ ms\n$', out)
   end)

   it('kbl verify-resume reports the first difference when state is lost', function()
      -- a callback whose position (a counter in a closure) is not in its state
      local c = write(dir .. '/lossy.lua', [[
local n = 0
return {
   extends = 'fit',
   name = 'lossy',
   epochs = 2,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = 64, dim = 4, classes = 3, seed = 2},
   model = blocks.Sequential{blocks.Dense{3}},
   optimizer = optim.SGD{lr = 0.1},
   callbacks = {callbacks.LambdaCallback{on_batch_begin = function(ctx)
      n = n + 1
      ctx.optimizer:set_lr(0.1 / n)
   end}},
}
]])
      local rc, out, err = kbl('verify-resume ' .. c .. ' --steps 6')
      assert.are.equal(1, rc, out)
      assert.matches('^kbl: verify%-resume: DIFFERENT after 6 steps %(resumed at 3%): first difference in '
         .. 'model/[%w%.]+: values differ at element %d+: straight [^,]+, resumed ', err)
   end)
end)
