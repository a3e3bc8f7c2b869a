-- bench_experiment: `kbl bench EXPERIMENT.lua [--steps N] [--json]` builds an
-- experiment as kbl run does and times its training step on synthetic
-- batches, its data pipeline alone and both together (steps/s, samples/s,
-- peak RSS); `kbl bench NAME` still runs bench/NAME.lua, by the rule its help
-- states.
local H = require 'helper'
local json = require 'dkjson'

local dir = H.tmpdir()
local function kbl_cmd(args) return H.kbl(args, dir) end

local tiny = H.write(dir .. '/tiny.lua', H.tiny_config{epochs = 1, validation = 16, test = 16})

local PARTS = {'train_step', 'data', 'together'}

describe('kbl bench EXPERIMENT', function()
   it('prints steps/s, samples/s and peak RSS of the step, the pipeline and both', function()
      local rc, out, err = kbl_cmd('bench ' .. tiny .. ' --steps 4 --warmup 1')
      assert.equal(0, rc, err)
      assert.matches('bench tiny %(' .. tiny:gsub('%p', '%%%0') .. '%): batch 16, 4 steps after 1 warm%-up', out)
      assert.matches('steps/s%s+samples/s%s+ms/step%s+peak RSS MiB', out)
      for _, row in ipairs{'train step %(synthetic%)', 'data pipeline alone', 'both %(as fit runs them%)'} do
         local sps, samples = out:match(row .. '%s+([%d.]+)%s+([%d.]+)')
         assert.is_truthy(sps, row)
         assert.is_true(tonumber(sps) > 0 and tonumber(samples) > 0, row)
      end
      assert.is_truthy(out:match('\ninput%-bound: ') or out:match('\nnot input%-bound: '))
   end)

   it('--json prints one JSON object with the three measurements', function()
      local rc, out, err = kbl_cmd('bench ' .. tiny .. ' --steps 3 --warmup 0 --json')
      assert.equal(0, rc, err)
      assert.equal(1, select(2, out:gsub('\n', '')), 'one line: ' .. out)
      local r = json.decode(out)
      assert.equal('tiny', r.name)
      assert.equal(16, r.batch_size)
      assert.equal(3, r.steps)
      for _, k in ipairs(PARTS) do
         local m = r[k]
         assert.equal(3, m.steps, k)
         assert.equal(48, m.samples, k)
         assert.is_true(m.steps_per_sec > 0, k)
         assert.near(m.steps_per_sec * 16, m.samples_per_sec, 1e-6 * m.samples_per_sec)
         assert.near(1e3 / m.steps_per_sec, m.ms_per_step, 1e-6 * m.ms_per_step)
      end
      assert.is_true(r.peak_rss_mib > 1)
      assert.equal(r.data.samples_per_sec < r.train_step.samples_per_sec, r.input_bound)
   end)

   it('takes --set as kbl run does, and composes several configs', function()
      local rc, out, err = kbl_cmd('bench ' .. tiny .. ' --steps 2 --warmup 0 --json --set batch_size=8')
      assert.equal(0, rc, err)
      assert.equal(8, json.decode(out).batch_size)
      local wide = H.write(dir .. '/wide.lua', 'return {batch_size = 4}\n')
      rc, out, err = kbl_cmd('bench ' .. tiny .. ' ' .. wide .. ' --steps 2 --warmup 0 --json')
      assert.equal(0, rc, err)
      assert.equal(4, json.decode(out).batch_size)
   end)

   it('refuses a bad --steps and an unknown config, naming them', function()
      local rc, _, err = kbl_cmd('bench ' .. tiny .. ' --steps 0')
      assert.equal(1, rc)
      assert.matches('--steps must be a whole number >= 1, got 0', err, 1, true)
      rc, _, err = kbl_cmd('bench no_such_experiment_here')
      assert.equal(1, rc)
      assert.matches('no_such_experiment_here', err)
   end)
end)

describe('kbl bench NAME', function()
   it('still lists and finds the benchmarks of bench/, by the rule the help states', function()
      local rc, out = kbl_cmd('bench list')
      assert.equal(0, rc)
      assert.matches('\nmlp\n', '\n' .. out)
      local _, help = kbl_cmd('bench --help')
      assert.matches('a bare NAME is bench/NAME.lua when that file exists, else a config name', help:gsub('%s+', ' '))
      local rc2, _, err = kbl_cmd('bench mlp --json')
      assert.equal(1, rc2)
      assert.matches('--json and --set are for experiments; bench/mlp.lua takes none', err, 1, true)
   end)
end)
