-- spec/data_records_resume_spec.lua: a `kbl run` training from records with a
-- shuffle buffer, killed with SIGKILL mid-epoch (twice, each time right after a
-- checkpoint) and resumed, ends with the same weights, byte for byte, and the
-- same logged metrics as the run never stopped; the checkpoints hold the read
-- position (shard, offset) and the shuffle buffer's records.
local H = require 'helper'
local records = require 'kbl.data.records'
local run = require 'kbl.records.run'
local checkpoint = require 'kbl.records.checkpoint'

local build = os.getenv('KBL_BUILD_DIR') or 'build'
local dir = H.tmpdir()

-- metrics.jsonl's lines without the timings, the test split's line included
local function metrics(run_dir) return (select(3, H.metrics(run_dir))) end

-- `kbl ARGS` with KBL_TEST_KILL_AT=kill_at (the config's callback then kills
-- its own process with SIGKILL at the end of that step, whose checkpoint is not
-- written yet: the newest is the step before's); the exit status.
local function kbl(args, kill_at)
   local rc = os.execute(string.format('env KBL_BUILD_DIR=%s %s bin/kbl %s >%s/out 2>%s/err', build,
      kill_at and ('KBL_TEST_KILL_AT=' .. kill_at) or '', args, dir, dir))
   if type(rc) ~= 'number' then rc = rc and 0 or 1 end
   return rc > 255 and math.floor(rc / 256) or rc
end

describe('records resume', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   it('ends bit-identical to the uninterrupted run after SIGKILLs mid-epoch and mid-shard', function()
      -- 384 training rows of 32 float32 in shards of 100 rows, blocks of 25
      local data = require 'kbl.data'
      local rec = dir .. '/rec'
      records.pack(data.generated{kind = 'blobs', n = 384, validation = 32, dim = 32, classes = 3, seed = 5}, rec,
         {shard_mb = 100 * 136 / 1048576, block_rows = 25})
      local config = H.write(dir .. '/rec.lua', ([[
return {
   extends = 'fit',
   name = 'records_kill',
   epochs = 3,
   batch_size = 16,
   data = data.records{dir = '%s', buffer = 40},
   model = blocks.Sequential{blocks.Dense{units = 64, activation = 'relu'}, blocks.Dropout{0.3}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.003},
   augment = {{'gaussian_noise', {std = 0.1}}},
   callbacks = {
      callbacks.ModelCheckpoint{every_steps = 1, keep = 2},
      callbacks.LambdaCallback{on_batch_end = function(ctx)
         if ctx.step == tonumber(os.getenv('KBL_TEST_KILL_AT') or '') then
            local ffi = require 'ffi'
            pcall(ffi.cdef, 'int getpid(void); int kill(int pid, int sig);')
            ffi.C.kill(ffi.C.getpid(), 9)
         end
      end},
   },
}
]]):format(rec))
      local base, d = dir .. '/base', dir .. '/killed'
      assert.are.equal(0, kbl('run ' .. config .. ' --quiet --run-dir ' .. base), H.read(dir .. '/err'))
      -- killed after step 10 of the 24 of epoch 1, then after step 35 (epoch 2),
      -- each checkpoint holding a read position inside a shard and a buffer's records
      assert.are.equal(137, kbl('run ' .. config .. ' --quiet --run-dir ' .. d, 11))
      local function saved()
         local l = checkpoint.list(d .. '/checkpoints')
         return l[1].step, run.load_trainer(l[1].path).state.pipeline
      end
      local step, st = saved()
      assert.are.equal(10, step)
      assert.are.same({1, 10}, {st.epoch, st.position})
      local r = st.records
      assert.are.equal('string', type(r.shard))
      assert.is_true(r.offset > 0, 'the read stopped at the start of a shard')
      assert.are.equal(160, r.draws)
      assert.are.equal(39, r.buffered)
      assert.are.equal(39, r.buffer:numel())
      assert.are.equal(137, kbl('run --resume ' .. d .. ' --quiet', 36))
      step, st = saved()
      assert.are.equal(35, step)
      assert.are.same({2, 11}, {st.epoch, st.position})
      assert.are.equal(176, st.records.draws)
      assert.are.equal(0, kbl('run --resume ' .. d .. ' --quiet'), H.read(dir .. '/err'))
      assert.are.equal(H.read(base .. '/model.safetensors'), H.read(d .. '/model.safetensors'))
      assert.are.same(metrics(base), metrics(d))
      assert.is_true(#metrics(d) >= 3)   -- an epoch line each (and the test split's)
   end)
end)
