-- profile: `kbl run --profile FROM:TO` and the config key profile = {from, to}
-- record the ops, backward nodes, optimizer updates and data stages of those
-- steps into a Chrome trace (read back with Python's json: events nest per
-- thread and cover exactly the profiled steps) and print the table;
-- kbl.profile(fn) does the same in-process and leaves nothing behind.
local H = require 'helper'
local json = require 'dkjson'
local ffi = require 'ffi'
local kbl = require 'kbl'

local dir = H.tmpdir()
local function kbl_cmd(args) return H.kbl(args, dir) end

local TINY = H.tiny_config{validation = 16, test = 16}
local tiny = H.write(dir .. '/tiny.lua', TINY)

-- Reads a trace with Python's json and checks it: every "X" event has its
-- fields; per thread, events nest (one inside the other or apart); the step
-- events and which main-thread events lie outside every step.
local CHECK = [[
import json, sys
d = json.load(open(sys.argv[1]))
xs = [e for e in d['traceEvents'] if e['ph'] == 'X']
missing = [e for e in xs if not all(k in e for k in ('name', 'cat', 'ts', 'dur', 'pid', 'tid', 'args'))]
steps = [e for e in xs if e['cat'] == 'step']
main = steps[0]['tid'] if steps else None
ns = lambda e: (round(e['ts'] * 1000), round(e['ts'] * 1000) + round(e['dur'] * 1000))
outside = 0
for e in xs:
    if e['tid'] == main and e['cat'] != 'step':
        s, t = ns(e)
        if not any(ns(p)[0] <= s and t <= ns(p)[1] for p in steps): outside += 1
overlaps = 0
by = {}
for e in xs: by.setdefault(e['tid'], []).append(e)
for l in by.values():
    l.sort(key=lambda e: (ns(e)[0], -ns(e)[1]))
    stack = []
    for e in l:
        s, t = ns(e)
        while stack and s >= stack[-1]:
            if s == t == stack[-1]: break
            stack.pop()
        if stack and t > stack[-1]: overlaps += 1
        stack.append(t)
cats = sorted(set(e['cat'] for e in xs))
names = sorted(set(e['name'] for e in xs))
flops = {e['name']: e['args'].get('flops') for e in xs if 'flops' in e['args']}
print(json.dumps({'count': len(xs), 'missing': len(missing), 'steps': [e['name'] for e in sorted(steps, key=ns)],
    'outside': outside, 'overlaps': overlaps, 'cats': cats, 'names': names, 'threads': len(by),
    'negative': sum(1 for e in xs if e['dur'] < 0), 'flops': flops}))
]]
local check_py = H.write(dir .. '/check_trace.py', CHECK)

local function read_trace(path)
   local rc, out = H.run('/usr/bin/python3 ' .. check_py .. ' ' .. path)
   assert.equal(0, rc, out)
   return json.decode(out)
end

local function has(list, x)
   for _, v in ipairs(list) do if v == x then return true end end
   return false
end

describe('kbl run --profile', function()
   local run_dir = dir .. '/run'
   local rc, out, err = kbl_cmd('run ' .. tiny .. ' --profile 2:4 --run-dir ' .. run_dir .. ' --quiet')

   it('prints the table: ops by time and what bound the steps', function()
      assert.equal(0, rc, err)
      assert.matches('profile of steps 2%-4: 3 steps', out)
      assert.matches('op%s+calls%s+time ms%s+share%s+GFLOP/s', out)
      assert.matches('\nlinear%s+6%s', out)   -- two Dense layers, three steps
      assert.matches('linear %(backward%)%s+6%s', out)
      assert.matches('Adam update%s+12%s', out)   -- four parameters
      assert.matches('time: data [%d.]+%% %(.-%), ops [%d.]+%%.-, Lua and the rest [%d.]+%%', out)
      assert.is_truthy(out:match('input%-bound') or out:match('compute%-bound') or out:match('Lua overhead'))
      assert.matches('trace: ' .. run_dir:gsub('%p', '%%%0') .. '/trace.json', out)
      assert.is_truthy(H.read(run_dir .. '/profile.txt'):match('profile of steps 2%-4'))
   end)

   it('writes a trace whose events nest and cover exactly the profiled steps', function()
      local t = read_trace(run_dir .. '/trace.json')
      assert.is_true(t.count > 50, 'only ' .. t.count .. ' events')
      assert.equal(0, t.missing)
      assert.equal(0, t.negative)
      assert.equal(0, t.overlaps)
      assert.same({'step 2', 'step 3', 'step 4'}, t.steps)
      assert.equal(0, t.outside)
      for _, c in ipairs{'op', 'backward', 'optimizer', 'data', 'phase', 'step'} do
         assert.is_true(has(t.cats, c), 'no ' .. c .. ' events')
      end
      for _, n in ipairs{'linear', 'linear (backward)', 'relu', 'relu (backward)', 'cross_entropy', 'backward',
                         'Adam step', 'Adam update', 'forward', 'update', 'data', 'batch(16)', 'prefetch(2)'} do
         assert.is_true(has(t.names, n), 'no event ' .. n)
      end
      -- 16 x 4 inputs through Dense{16} or 16 x 16 through Dense{3}: 2 flops a multiply-add
      local f = t.flops.linear
      assert.is_true(f == 2 * 16 * 4 * 16 or f == 2 * 16 * 16 * 3, tostring(f))
   end)
end)

describe('the profile config key', function()
   it('is checked by kbl check: from <= to, both given, no other keys', function()
      local rc, out, err = kbl_cmd('check ' .. tiny .. " --no-build --set 'profile={from=1,to=3}'")
      assert.equal(0, rc, err)
      assert.matches('ok', out)
      for set, msg in pairs{['profile={from=3,to=2}'] = 'from = 3 after to = 2',
                            ['profile={from=3}'] = "needs 'to'",
                            ['profile={from=1,to=2,every=3}'] = "unknown config key 'profile.every'",
                            ['profile={from=0,to=2}'] = "'profile.from' must be an integer >= 1",
                            ['profile=5'] = "'profile' must be a table {from = N, to = M}"} do
         local rc2, _, err2 = kbl_cmd('check ' .. tiny .. " --no-build --set '" .. set .. "'")
         assert.equal(1, rc2, set)
         assert.matches(msg, err2, 1, true)
      end
   end)

   it('profiles a run as --profile does', function()
      local text = TINY:gsub('epochs = 2,', 'epochs = 1, profile = {from = 5, to = 5},')
      local cfg = H.write(dir .. '/tiny_profiled.lua', text)
      local rc, out, err = kbl_cmd('run ' .. cfg .. ' --run-dir ' .. dir .. '/run2 --quiet')
      assert.equal(0, rc, err)
      assert.matches('profile of steps 5%-5: 1 step', out)
      assert.same({'step 5'}, read_trace(dir .. '/run2/trace.json').steps)
   end)

   it('says so when the run ends before the profiled steps', function()
      local rc, out, err = kbl_cmd('run ' .. tiny .. ' --profile 40:50 --run-dir ' .. dir .. '/run3 --quiet')
      assert.equal(0, rc, err)
      assert.matches('before step 40; nothing was profiled', out)
      assert.is_false(H.exists(dir .. '/run3/trace.json'))
   end)
end)

describe('bad --profile values', function()
   for _, v in ipairs{'x', '0:3', '4:2', '2-4', '3:'} do
      it("refuses '" .. v .. "' with a clear message", function()
         local rc, _, err = kbl_cmd('run ' .. tiny .. " --profile '" .. v .. "' --run-dir " .. dir .. '/bad --quiet')
         assert.equal(1, rc)
         assert.matches('--profile ' .. v:gsub('%p', '%%%0') .. ': give the steps to profile as FROM:TO', err)
         assert.is_false(H.exists(dir .. '/bad/config.lua'))
      end)
   end
end)

describe('the profile report', function()
   local report = require 'kbl.profile.report'
   local function ev(name, cat, t0, t1, flops)
      return {name = name, cat = cat, t0 = t0, t1 = t1, tid = 1, flops = flops}
   end
   local function build(events)
      return report.build(events, {{name = 'step 1', t0 = 0, t1 = 10}}, {main_tid = 1})
   end

   it('splits the step into data, self time of ops, and the rest, and names what bound it', function()
      -- a matmul of 4 s with a nested add of 1 s (self 3 s), data 2 s with a nested op (counted as data)
      local p = build{ev('data', 'phase', 0, 2), ev('stack', 'op', 0.5, 1), ev('matmul', 'op', 2, 6, 8e9),
         ev('add', 'op', 3, 4), ev('late', 'op', 9, 11)}
      assert.near(2, p.data, 1e-12)
      assert.near(4, p.compute, 1e-12)
      assert.near(4, p.other, 1e-12)
      assert.equal('compute', p.bound)
      assert.equal('matmul', p.rows[1].name)
      assert.near(3, p.rows[1].time, 1e-12)
      assert.near(8e9 / 3 / 1e9, p.rows[1].gflops, 1e-12)
      assert.near(0.3, p.rows[1].share, 1e-12)
      assert.equal(2, #p.rows)   -- 'late' ends after the step: left out
      assert.equal('data', build{ev('data', 'phase', 0, 6), ev('relu', 'op', 6, 7)}.bound)
      assert.equal('lua', build{ev('data', 'phase', 0, 1), ev('relu', 'op', 1, 2)}.bound)
   end)
end)

describe('kbl.profile', function()
   local optim = require 'kbl.optim'
   local data = require 'kbl.data'
   local T = require 'kbl.tensor'
   local C = kbl.lib.C

   local function train(steps)
      kbl.manual_seed(1)
      local w = kbl.keep((kbl.randn(8, 4) * 0.1):detach():requires_grad_())
      local opt = optim.SGD{lr = 0.1}
      local pipe = data.tensors{train = {x = kbl.randn(64, 4), y = kbl.randint(1, 9, {64})}}:split('train')
         :shuffle{seed = 1}:batch(16)
      local k = 0
      for batch in pipe:iter() do
         k = k + 1
         if k > steps then break end
         kbl.scope(function()
            local loss = kbl.cross_entropy(kbl.linear(batch.x, w):relu(), batch.y)
            w.grad = nil
            loss:backward()
            opt:step({w})
         end)
      end
   end

   it('records a script: ops, backward nodes, updates and data stages, with the table', function()
      local p = kbl.profile(function() train(3) end, {print = false, path = dir .. '/script.json'})
      local by = {}
      for _, r in ipairs(p.rows) do by[r.name] = r end
      assert.equal(3, by.linear.calls)
      assert.equal(3, by['linear (backward)'].calls)
      assert.equal(3, by['SGD update'].calls)
      assert.is_true(by.linear.gflops > 0)
      assert.near(by.linear.flops, 3 * 2 * 16 * 4 * 8, 0)
      assert.near(by['linear (backward)'].flops, 3 * 2 * 16 * 4 * 8, 0)  -- only the weight takes a gradient
      assert.is_true(p.total > 0 and p.compute > 0 and p.data > 0)
      assert.near(p.total, p.data + p.compute + p.other, 1e-9)
      assert.is_truthy(({data = 1, compute = 1, lua = 1})[p.bound])
      assert.matches('kbl.profile: 1 run', p:text())
      local t = read_trace(dir .. '/script.json')
      assert.equal(0, t.overlaps)
      assert.same({'profile'}, t.steps)
      for _, n in ipairs{'next batch', 'shuffle{seed = 1}', 'batch(16)', 'gather + augment', 'SGD step'} do
         assert.is_true(has(t.names, n), 'no event ' .. n)
      end
   end)

   it('takes every wrapper out again, also when the function fails', function()
      local Pipeline = require 'kbl.data.pipeline'
      local before = {kbl.linear, T.methods.relu, kbl.backward, optim.Optimizer.step, Pipeline.iter,
         require('kbl.ops.nn').matmul, optim.clip_grad_norm}
      local function same()
         local now = {kbl.linear, T.methods.relu, kbl.backward, optim.Optimizer.step, Pipeline.iter,
            require('kbl.ops.nn').matmul, optim.clip_grad_norm}
         for i = 1, #before do assert.equal(before[i], now[i], 'entry ' .. i) end
         assert.equal(0, C.kbl_profile_enabled())
      end
      kbl.profile(function() train(1) end, {print = false})
      same()
      local ok, err = pcall(kbl.profile, function() error('boom', 0) end, {print = false})
      assert.is_false(ok)
      assert.equal('boom', err)
      same()
      -- and a second profile starts afresh
      local a, b = kbl.ones(4, 5), kbl.ones(5, 6)
      local p = kbl.profile(function() return kbl.matmul(a, b) end, {print = false})
      assert.equal(1, #p.rows)
      assert.equal('matmul', p.rows[1].name)
      assert.near(2 * 4 * 5 * 6, p.rows[1].flops, 0)
   end)

   it('returns what the function returns after the profile, and refuses a non-function', function()
      local _, a, b = kbl.profile(function() return 1, 'two' end, {print = false})
      assert.equal(1, a)
      assert.equal('two', b)
      local ok, err = pcall(kbl.profile, 'not a function')
      assert.is_false(ok)
      assert.matches('kbl.profile: expects a function', err)
   end)

   it('in a trainer, has its wrappers in place only during the profiled steps', function()
      local fit, blocks, losses = require 'kbl.fit', require 'kbl.blocks', require 'kbl.losses'
      local linear = kbl.linear
      local seen = {}
      local probe = {on_batch_begin = function(_, _, step)
         seen[step] = (kbl.linear ~= linear) and (C.kbl_profile_enabled() == 1)
      end}
      local out = {write = function() end, flush = function() end}
      local t = fit.Trainer{model = blocks.Sequential{blocks.Dense{3}}, loss = losses.CrossEntropy{},
         data = data.tensors{train = {x = kbl.randn(40, 4), y = kbl.randint(1, 4, {40})}},
         optimizer = optim.SGD{lr = 0.1}, batch_size = 8, epochs = 2, quiet = true, callbacks = {probe},
         validation_split = false, test_split = false, profile = {from = 3, to = 7}, out = out}
      t:fit()
      assert.same({false, false, true, true, true, true, true, false, false, false}, seen)
      assert.equal(linear, kbl.linear)
      assert.same(5, #t.profiler.result.spans)
   end)

   it('has the event struct layout the C compiler gives it', function()
      assert.equal(tonumber(C.kbl_profile_event_size()), ffi.sizeof('kbl_profile_event'))
   end)
end)
