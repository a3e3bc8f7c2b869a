-- tensorboard: the event file writer. CRC-32C against its standard check value,
-- and a file of scalars decoded by an independent python3 reader (TFRecord
-- framing with both checksums verified, protobuf fields by the wire format; also
-- the tensorboard package's own loader when it is installed); histograms,
-- reading back and rewriting (a resume), hparams from a config. With the
-- tensorboard package (the test venv of scripts/setup.sh, H.venv_python), kbl
-- runs read by its EventAccumulator and its hparams plugin, a resumed run too.
local ffi = require 'ffi'
local json = require 'dkjson'
local H = require 'helper'
local tensorboard = require 'kbl.records.tensorboard'
local hparams = require 'kbl.records.tensorboard_hparams'

local PY = '/usr/bin/python3'
local tmp = H.tmpdir()

local function f32(v) return tonumber(ffi.new('float', v)) end

local slurp = H.read

describe('tensorboard', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('computes CRC-32C (Castagnoli), not zlib CRC-32', function()
      assert.are.equal(0xE3069283, tensorboard.crc32c('123456789'))
      assert.are.equal(0, tensorboard.crc32c(''))
      assert.are.equal(0x8A9136AA, tensorboard.crc32c(string.rep('\0', 32)))
      assert.are.equal(0x62A8AB43, tensorboard.crc32c(string.rep('\255', 32)))
      -- the TFRecord mask: rotate right 15, add 0xa282ead8
      local c = tensorboard.crc32c('123456789')
      local expect = ((math.floor(c / 2 ^ 15) + (c % 2 ^ 15) * 2 ^ 17) + 0xa282ead8) % 2 ^ 32
      assert.are.equal(expect, tensorboard.masked_crc('123456789'))
   end)

   it('names the file events.out.tfevents.<time>.<host>', function()
      local dir = tmp .. '/name'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000.5, host = 'box'})
      w:close()
      assert.are.equal(dir .. '/events.out.tfevents.1700000000.box', w.path)
      local w2 = tensorboard.open(dir, {time = 1700000000.5, host = 'box'})
      w2:close()
      assert.are_not.equal(w.path, w2.path)
      assert.matches('tfevents', w2.path)
   end)

   it('writes scalars that an independent reader decodes with their steps', function()
      if H.run(PY .. ' -c "import struct, json"') ~= 0 then return pending('python3 is not installed') end
      local dir = tmp .. '/run'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      local logged = {}
      for epoch = 1, 5 do
         local vals = {['loss/train'] = 1 / epoch, ['loss/validation'] = 1.2 / epoch,
            ['accuracy/train'] = 0.5 + epoch / 20, lr = 1e-3 * 0.5 ^ epoch}
         w:add_scalars(vals, epoch * 100, 1700000000 + epoch)
         logged[#logged + 1] = {step = epoch * 100, vals = vals}
      end
      w:add_scalar('big_step', -2.5, 2 ^ 40)
      w:close()
      local rc, out = H.run(PY .. ' spec/fixtures/tfevents_read.py ' .. w.path)
      assert.are.equal(0, rc, out)
      local got = json.decode(out)
      local ev = got.events
      assert.are.equal(7, #ev)
      assert.are.equal('brain.Event:2', ev[1].file_version)
      assert.are.equal(1700000000, ev[1].wall_time)
      for i, l in ipairs(logged) do
         local e = ev[i + 1]
         assert.are.equal(l.step, e.step)
         assert.are.equal(1700000000 + i, e.wall_time)
         local seen = 0
         for _, v in ipairs(e.values) do
            assert.are.equal(f32(l.vals[v.tag]), v.value, v.tag)
            seen = seen + 1
         end
         assert.are.equal(4, seen)
      end
      assert.are.equal(2 ^ 40, ev[7].step)
      assert.are.same({{tag = 'big_step', value = -2.5}}, ev[7].values)
   end)

   -- The tensorboard package (PyPI only, not in Debian) lives in the test venv
   -- of scripts/setup.sh; the cross-checks skip, naming it, where it is absent.
   it('writes events that the tensorboard package itself reads', function()
      local py, why = H.venv_python('tensorboard')
      if not py then return pending(why) end
      local dir = tmp .. '/tb'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      w:add_scalar('loss', 0.25, 3)
      w:add_histogram('weights/w', tensorboard.histogram(function(i) return i end, 10, 3), 4)
      w:add_values({hparams.session_end('success', 1700000001)}, 4)
      w:close()
      local rc, out = H.run(py .. ' spec/fixtures/tfevents_read.py ' .. w.path)
      assert.are.equal(0, rc, out)
      local got = json.decode(out)
      assert.is_true(got.tensorboard_checked)
      assert.are.same({tag = 'weights/w', histo = {min = 0, max = 9, num = 10, sum = 45, sum_squares = 285,
         bucket_limit = {3, 6, 9}, bucket = {4, 3, 3}}}, got.events[3].values[1])
      assert.are.same({tag = '_hparams_/session_end_info', plugin = 'hparams'}, got.events[4].values[1])
   end)

   it('is caught by the reader when a byte is flipped (the checksums are checked)', function()
      if H.run(PY .. ' -c "import struct, json"') ~= 0 then return pending('python3 is not installed') end
      local dir = tmp .. '/flip'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      w:add_scalar('loss', 0.25, 1)
      w:close()
      local s = slurp(w.path)
      local f = assert(io.open(w.path, 'wb'))
      f:write(s:sub(1, #s - 8) .. string.char((s:byte(#s - 7) + 1) % 256) .. s:sub(#s - 6))
      f:close()
      local rc, out = H.run(PY .. ' spec/fixtures/tfevents_read.py ' .. w.path)
      assert.are.equal(1, rc)
      assert.matches('data CRC mismatch', out)
   end)

   it('refuses bad scalars and a closed writer', function()
      local w = tensorboard.open(tmp, {time = 1})
      assert.has_error(function() w:add_scalar('x', 'nope', 1) end,
         "tensorboard: scalar 'x' must be a number, got string")
      assert.has_error(function() w:add_scalar('x', 1, -1) end)
      w:close()
      assert.has_error(function() w:add_scalar('x', 1, 1) end, 'tensorboard: the writer is closed')
   end)
   it('makes histograms as TensorBoard buckets them, leaving out non-finite values', function()
      local vals = {[0] = -1, 0.5, 0 / 0, 2, math.huge, 2, -1}
      local h = tensorboard.histogram(function(i) return vals[i] end, 7, 3)
      -- buckets (prev, limit]: [-1, 0], (0, 1], (1, 2]
      assert.are.same({min = -1, max = 2, num = 5, sum = 2.5, sum_squares = 10.25, bucket_limit = {0, 1, 2},
         bucket = {2, 1, 2}, nonfinite = 2}, h)
      local c = tensorboard.histogram(ffi.new('float[4]', {3, 3, 3, 3}), 4, 30)
      assert.are.same({3}, c.bucket_limit)   -- equal values: one bucket
      assert.are.same({4}, c.bucket)
      assert.is_nil(tensorboard.histogram(function() return 0 / 0 end, 3))
      local counts = 0
      local t = require('kbl').randn{40, 25}
      local th = require('kbl.records.tensorboard_logger').tensor_histogram(t:t(), 30)   -- a strided view
      for _, n in ipairs(th.bucket) do counts = counts + n end
      assert.are.equal(1000, counts)
      assert.near(t:min():item(), th.min, 1e-6)
      assert.near(t:max():item(), th.max, 1e-6)
   end)

   it('reads its events back and rewrites a file keeping chosen events, a cut tail dropped', function()
      local dir = tmp .. '/keep'
      os.execute('mkdir -p ' .. dir)
      local w = tensorboard.open(dir, {time = 1700000000})
      for step = 1, 6 do w:add_scalars({['step/loss'] = 1 / step}, step) end
      w:add_scalars({['loss/train'] = 0.5, lr = 0.1}, 6)
      w:close()
      local events, cut = tensorboard.read(w.path)
      assert.is_nil(cut)
      assert.are.equal(8, #events)
      assert.are.same({'loss/train', 'lr'}, events[8].tags)
      assert.are.equal(6, events[8].step)
      -- a writer killed mid-record leaves half a record: reading stops before it
      local whole = slurp(w.path)
      H.write(w.path, whole .. events[3].data:sub(1, 10))
      events, cut = tensorboard.read(w.path)
      assert.are.equal(8, #events)
      assert.are.equal(#whole, cut)
      local dropped = tensorboard.keep(w.path, function(e) return e.step <= 4 end)
      assert.are.equal(3, dropped)
      events, cut = tensorboard.read(w.path)
      assert.is_nil(cut)
      assert.are.equal(5, #events)
      assert.are.equal(4, events[5].step)
      local before = slurp(w.path)
      assert.are.equal(0, tensorboard.keep(w.path, function() return true end))
      assert.are.equal(before, slurp(w.path))   -- nothing to drop: the file is left alone
      local a = tensorboard.open(nil, {append = w.path})
      a:add_scalar('step/loss', 0.2, 5)
      a:close()
      events = tensorboard.read(w.path)
      assert.are.equal(6, #events)
      assert.are.equal(5, events[6].step)
   end)

   it('flattens a resolved config into hparams under the paths --set takes', function()
      local S = require 'kbl.config.spec'
      local cfg = {name = 'tiny', epochs = 3, seed = 7, shuffle = true, threads = 2,
         optimizer = S.new('optim.Adam', {{lr = 1e-3, betas = {0.9, 0.999}}}, 1),
         model = S.new('blocks.Sequential',
            {{S.new('blocks.Dense', {{units = 16}}, 1), S.new('blocks.Dense', {3}, 1),
              S.new('blocks.Dense', {{4}}, 1)}}, 1),
         batch_size = S.ref('vars.bs'), vars = {bs = 16}, sweep = {grid = {['optimizer.lr'] = {1, 2}}},
         transforms = {{'normalize', {mean = 0.5, std = 0.25}}}, fn = function() end}
      local p = hparams.flatten(cfg)
      assert.are.same({name = 'tiny', epochs = 3, seed = 7, shuffle = true, threads = 2,
         optimizer = 'optim.Adam', ['optimizer.lr'] = 1e-3, ['optimizer.betas'] = '{0.9, 0.999}',
         model = 'blocks.Sequential', ['model.1'] = 'blocks.Dense', ['model.1.units'] = 16,
         ['model.2'] = 'blocks.Dense', ['model.2.1'] = 3, ['model.3'] = 'blocks.Dense', ['model.3.1'] = 4,
         ['vars.bs'] = 16,
         ['transforms.1.1'] = 'normalize', ['transforms.1.2.mean'] = 0.5, ['transforms.1.2.std'] = 0.25}, p)
   end)

   it('checks the tensorboard options (config schema and script)', function()
      local schema = require 'kbl.config.schema'
      assert.is_true(schema.validate({tensorboard = {scalars_every_steps = 10, histograms_every_steps = 0,
         hparams = false}}))
      assert.has_error(function() schema.validate({tensorboard = {scalars_every_step = 10}}) end,
         "config: unknown config key 'tensorboard.scalars_every_step' "
            .. "(did you mean 'tensorboard.scalars_every_steps'?)")
      assert.has_error(function() schema.validate({tensorboard = {histograms_every_steps = -1}}) end,
         "config: config key 'tensorboard.histograms_every_steps' must be an integer >= 0, got number -1")
      assert.has_error(function() schema.validate({tensorboard = 10}) end,
         "config: config key 'tensorboard' must be a table such as {scalars_every_steps = 50}, got number 10")
      local logger = require 'kbl.records.tensorboard_logger'
      assert.has_error(function() logger.options({scalars_every_steps = 1.5}) end,
         "tensorboard: option 'scalars_every_steps' must be an integer >= 0, got 1.5")
      assert.has_error(function() logger.options({histograms = 1}) end, "tensorboard: unknown option 'histograms'")
   end)

   it('leaves duplicate steps from two files in TensorBoard, and continues one file as one series', function()
      local py, why = H.venv_python('tensorboard')
      if not py then return pending(why) end
      local function series(dir)
         local rc, out = H.run(py .. ' spec/fixtures/tb_accumulate.py run ' .. dir)
         assert.are.equal(0, rc, out)
         return json.decode(out).scalars.x
      end
      -- what a resume did before: a new file, the stopped run's later steps left in the old one
      local two = tmp .. '/two'
      os.execute('mkdir -p ' .. two)
      local a = tensorboard.open(two, {time = 1000, host = 'h'})
      for step = 1, 6 do a:add_scalar('x', step, step) end
      a:close()
      local b = tensorboard.open(two, {time = 2000, host = 'h'})
      for step = 4, 8 do b:add_scalar('x', 100 + step, step) end
      b:close()
      assert.are.equal(11, #series(two))   -- steps 4, 5, 6 twice: TensorBoard purges only on SessionLog START
      -- what it does now: steps past the checkpoint dropped, the same file continued
      local one = tmp .. '/one'
      os.execute('mkdir -p ' .. one)
      a = tensorboard.open(one, {time = 1000, host = 'h'})
      for step = 1, 6 do a:add_scalar('x', step, step) end
      a:close()
      tensorboard.keep(a.path, function(e) return e.step <= 3 end)
      b = tensorboard.open(nil, {append = a.path})
      for step = 4, 8 do b:add_scalar('x', 100 + step, step) end
      b:close()
      assert.are.same({{1, 1}, {2, 2}, {3, 3}, {4, 104}, {5, 105}, {6, 106}, {7, 107}, {8, 108}}, series(one))
   end)
   it("resumes inside an epoch: drops the later steps, the session end and that epoch's end, keeps the rest", function()
      local logger = require 'kbl.records.tensorboard_logger'
      local dir = tmp .. '/resume'
      os.execute('mkdir -p ' .. dir)
      local function ctx(step, resumed)
         return {step = step, resumed = resumed, metrics = {}, tensorboard = {scalars_every_steps = 1},
            optimizer = {get_lr = function() return 0.5 end}, batches_done = 0}
      end
      -- the stopped run: steps 1..4, epoch 1 ending at step 4, the session's end
      local c = ctx(0)
      local l = logger.new(dir):begin(c)
      assert.is_nil(c.grad_hook)   -- histograms off: no hook in the step
      l:on_epoch_begin(c)
      for step = 1, 4 do l:on_batch_end(c, step, {loss = step, size = 2}) end
      c.step = 4
      l:on_epoch_end(c, {['loss/train'] = 2.5, lr = 0.5})
      l:finish(c, 'success')
      l:close()
      -- the events' steps and tags; the hparams' start (written again by each resume) counted apart
      local function tags_at(path)
         local out, starts = {}, 0
         for _, e in ipairs(tensorboard.read(path)) do
            if e.tags[1] == '_hparams_/experiment' then
               assert.are.same({'_hparams_/experiment', '_hparams_/session_start_info'}, e.tags)
               assert.are.equal(0, e.step)
               starts = starts + 1
            else
               out[#out + 1] = e.step .. ':' .. table.concat(e.tags, ',')
            end
         end
         assert.are.equal(1, starts)
         return out
      end
      local path = l.path
      local STEP = 'step/loss,step/lr,step/samples_per_sec'
      local all = {'0:', '1:' .. STEP, '2:' .. STEP, '3:' .. STEP, '4:' .. STEP, '4:loss/train,lr',
         '4:_hparams_/session_end_info'}
      assert.are.same(all, tags_at(path))
      -- resumed from a checkpoint of step 3, inside epoch 1: step 4 goes, and the session's end
      local c3 = ctx(3, true)
      local l3 = logger.new(dir):begin(c3)
      c3.batches_done = 3
      l3:on_epoch_begin(c3)
      assert.are.equal(path, l3.path)
      assert.are.equal(4, l3.dropped)
      assert.are.same({unpack(all, 1, 4)}, tags_at(path))
      l3:on_batch_end(c3, 4, {loss = 40, size = 2})
      c3.step = 4
      l3:on_epoch_end(c3, {['loss/train'] = 20, lr = 0.5})
      l3:finish(c3, 'success')
      l3:close()
      assert.are.same(all, tags_at(path))
      -- resumed from step 4 taken after the epoch's last batch but before its end (which runs
      -- again): the step's scalars stay, its epoch end and the session end go
      c = ctx(4, true)
      l = logger.new(dir):begin(c)
      c.batches_done = 4
      l:on_epoch_begin(c)
      assert.are.equal(3, l.dropped)
      assert.are.same({unpack(all, 1, 5)}, tags_at(path))
      l:on_epoch_end(c, {['loss/train'] = 20, lr = 0.5})
      l:close()
      -- resumed from step 4 after the epoch's end: its end stays
      c = ctx(4, true)
      l = logger.new(dir):begin(c)
      l:on_epoch_begin(c)
      assert.are.equal(1, l.dropped)
      l:close()
      assert.are.same({unpack(all, 1, 6)}, tags_at(path))
      assert.are.equal(1, #tensorboard.files(dir))
   end)

   -- kbl run end to end: a tiny config on generated data (6 steps an epoch,
   -- 3 epochs), step scalars every step, histograms every 3 steps, a
   -- checkpoint every 4 steps. Run B, the same as A, loses its checkpoint of
   -- step 16 (as a run killed before that checkpoint landed, its events up to
   -- step 18 written) and is resumed from step 12, taken before epoch 2's end:
   -- TensorBoard must read B as one series equal to A's. C has another lr and
   -- is extended to 4 epochs by a resume; the HParams tab lists all three.
   describe('a kbl run read by TensorBoard', function()
      local logdir = tmp .. '/logs'
      local CONFIG = H.tiny_config{name = 'tb', epochs = 3, units = 8, extra =
         '   callbacks = {callbacks.ModelCheckpoint{every_steps = 4, keep = 10, save_best = false}},\n'
         .. '   tensorboard = {scalars_every_steps = 1, histograms_every_steps = 3},\n'}
      local py, why = H.venv_python('tensorboard')
      local ran = {}
      local function run(args)
         local rc, out, err = H.kbl('run ' .. args, tmp)
         assert(rc == 0, tostring(out) .. tostring(err))
      end
      local function tb_read(mode, dir)
         local rc, out = H.run(py .. ' spec/fixtures/tb_accumulate.py ' .. mode .. ' ' .. dir)
         assert.are.equal(0, rc, out)
         return json.decode(out)
      end
      -- run A as TensorBoard reads it: read once (a python start each) for the specs below, which only read it
      local run_a
      local function tb_run_a()
         run_a = run_a or tb_read('run', logdir .. '/a')
         return run_a
      end
      local function steps_of(list)
         local out = {}
         for i, p in ipairs(list or {}) do out[i] = p[1] or p.step end
         return out
      end
      local STEPS = {}
      for i = 1, 18 do STEPS[i] = i end

      setup(function()
         if not py then return end
         os.execute('mkdir -p ' .. logdir)
         H.write(tmp .. '/tb_cfg.lua', CONFIG)
         run(tmp .. '/tb_cfg.lua --quiet --run-dir ' .. logdir .. '/a')
         run(tmp .. '/tb_cfg.lua --quiet --run-dir ' .. logdir .. '/b')
         run(tmp .. '/tb_cfg.lua --quiet --run-dir ' .. logdir .. '/c --set optimizer.lr=0.02')
         local ckpt = require 'kbl.records.checkpoint'
         os.remove(logdir .. '/b/checkpoints/' .. ckpt.file_name(16))
         run('--resume ' .. logdir .. '/b --quiet')
         run('--resume ' .. logdir .. '/c --quiet --set epochs=4')   -- extended: its hparams say so
         ran.ok = true
      end)

      it('logs every tag at its steps: epoch metrics, step scalars, histograms, test metrics', function()
         if not py then return pending(why) end
         assert.is_true(ran.ok)
         local a = tb_run_a()
         for _, tag in ipairs{'step/loss', 'step/lr', 'step/samples_per_sec'} do
            assert.are.same(STEPS, steps_of(a.scalars[tag]), tag)
         end
         for _, p in ipairs(a.scalars['step/lr']) do assert.near(0.01, p[2], 1e-9) end
         for _, p in ipairs(a.scalars['step/samples_per_sec']) do assert.is_true(p[2] > 0) end
         local m = {}
         for l in slurp(logdir .. '/a/metrics.jsonl'):gmatch('[^\n]+') do m[#m + 1] = json.decode(l) end
         for _, tag in ipairs{'loss/train', 'loss/validation', 'accuracy/train', 'accuracy/validation', 'lr'} do
            assert.are.same({6, 12, 18}, steps_of(a.scalars[tag]), tag)
         end
         -- float32 in the event file; metrics.jsonl holds 14 digits
         local function near(want, got) assert.near(want, got, 1e-6 * math.max(1, math.abs(want))) end
         for e = 1, 3 do
            near(m[e].val_loss, a.scalars['loss/validation'][e][2])
            near(m[e].accuracy, a.scalars['accuracy/train'][e][2])
         end
         near(m[4].test_loss, a.scalars['loss/test'][1][2])
         assert.are.same({18}, steps_of(a.scalars['accuracy/test']))
         local tags = {}
         for tag in pairs(a.histograms) do tags[#tags + 1] = tag end
         table.sort(tags)
         local names = {'1.bias', '1.weight', '2.bias', '2.weight'}
         local want = {}
         for _, kind in ipairs{'gradients', 'weights'} do
            for _, n in ipairs(names) do want[#want + 1] = kind .. '/' .. n end
         end
         assert.are.same(want, tags)
         local sizes = {['1.weight'] = 32, ['1.bias'] = 8, ['2.weight'] = 24, ['2.bias'] = 3}
         for _, tag in ipairs(tags) do
            assert.are.same({3, 6, 9, 12, 15, 18}, steps_of(a.histograms[tag]), tag)
            for _, h in ipairs(a.histograms[tag]) do
               local total = 0
               for _, c in ipairs(h.bucket) do total = total + c end
               assert.are.equal(sizes[tag:match('/(.*)$')], h.num, tag)
               assert.are.equal(h.num, total, tag)
               assert.is_true(h.min <= h.max, tag)
            end
         end
         -- the last weights' histogram is the final weights'
         local w = require('kbl').load(logdir .. '/a/model.safetensors')
         local last = a.histograms['weights/2.weight'][6]
         local final = w['2.weight']
         assert.is_truthy(final, 'model.safetensors names the parameters as the tags do')
         assert.near(final:min():item(), last.min, 1e-7)
         assert.near(final:max():item(), last.max, 1e-7)
         assert.near(final:sum():item(), last.sum, 1e-5)
         assert.are.same({'_hparams_/experiment', '_hparams_/session_end_info', '_hparams_/session_start_info'},
            a.plugins.hparams)
      end)

      it('continues a resumed run in the same file as one series, equal to the run never stopped', function()
         if not py then return pending(why) end
         assert.is_true(ran.ok)
         assert.are.equal(1, #tensorboard.files(logdir .. '/b'))
         local a, b = tb_run_a(), tb_read('run', logdir .. '/b')
         for tag, list in pairs(a.scalars) do
            assert.are.same(steps_of(list), steps_of(b.scalars[tag]), tag)
            if tag ~= 'step/samples_per_sec' then assert.are.same(list, b.scalars[tag], tag) end
         end
         assert.are.same(a.histograms, b.histograms)
      end)

      it("lists the runs in the hparams plugin with the config's scalar keys and the final metrics", function()
         if not py then return pending(why) end
         assert.is_true(ran.ok)
         local hp = tb_read('hparams', logdir)
         for _, name in ipairs{'epochs', 'batch_size', 'optimizer', 'optimizer.lr', 'model.1.units',
            'tensorboard.scalars_every_steps', 'data', 'data.kind'} do
            assert.is_truthy(hp.hparam_types[name], name)
         end
         assert.are.equal('DATA_TYPE_FLOAT64', hp.hparam_types['optimizer.lr'])
         assert.are.equal('DATA_TYPE_STRING', hp.hparam_types.optimizer)
         assert.are.same({'loss/train', 'accuracy/train', 'loss/validation', 'accuracy/validation', 'loss/test',
            'accuracy/test'}, hp.metrics)
         assert.are.same({'a', 'b', 'c'}, {hp.sessions[1].name, hp.sessions[2].name, hp.sessions[3].name})
         local a = tb_run_a()
         for i, s in ipairs(hp.sessions) do
            assert.are.equal('STATUS_SUCCESS', s.status, s.name)
            assert.are.equal(i == 3 and 0.02 or 0.01, s.hparams['optimizer.lr'], s.name)
            assert.are.equal('optim.Adam', s.hparams.optimizer)
            assert.are.equal(i == 3 and 4 or 3, s.hparams.epochs, s.name)
            for _, tag in ipairs(hp.metrics) do assert.is_number(s.metrics[tag], s.name .. ' ' .. tag) end
         end
         assert.are.equal(a.scalars['loss/validation'][3][2], hp.sessions[1].metrics['loss/validation'])
         assert.are.equal(a.scalars['accuracy/test'][1][2], hp.sessions[1].metrics['accuracy/test'])
         assert.are.same(hp.sessions[1].metrics, hp.sessions[2].metrics)   -- the resumed run ends as A did
      end)
   end)
end)
