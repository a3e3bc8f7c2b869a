-- spec/sweep_spec.lua: kbl sweep end to end on a tiny experiment (generated
-- blobs, a few epochs of a small MLP): a 2x2 grid makes four run directories
-- with the values set and sweep.csv with their metrics; the same command again
-- runs nothing; every point is validated first (did-you-mean, nothing made);
-- random search samples the same points from the same seed; a sweep table in
-- a config says the same as the options; a sweep killed mid-way (the sweep and
-- its children, SIGKILL) and restarted ends with the same sweep.csv;
-- successive halving stops the runs it should; sweep.html renders in Chromium.
local ffi = require 'ffi'
local json = require 'dkjson'
local H = require 'helper'
local space = require 'kbl.sweep.space'
local runner = require 'kbl.sweep.runner'

pcall(ffi.cdef, 'int usleep(unsigned int usec);')

local dir = H.tmpdir()
local read = H.read
local function write(name, text) return H.write(dir .. '/' .. name, text) end
local function sweep(args) return H.kbl('sweep ' .. args, dir) end
local KBL = 'env KBL_BUILD_DIR=' .. (os.getenv('KBL_BUILD_DIR') or 'build') .. ' bin/kbl'

local TINY = [[
return {
   extends = 'fit',
   name = 'tiny',
   epochs = @EPOCHS@,
   batch_size = 16,
   data = data.generated{kind = 'blobs', n = @N@, validation = 32, test = 32, dim = @DIM@, classes = 3, seed = 3},
   model = blocks.Sequential{blocks.Dense{units = 16, activation = 'relu'}, blocks.Dense{3}},
   optimizer = optim.Adam{lr = 0.01},
   runs = '@RUNS@',
   @EXTRA@
}
]]
local function config(name, o)
   o = o or {}
   local text = TINY:gsub('@EPOCHS@', o.epochs or 3):gsub('@N@', o.n or 96):gsub('@DIM@', o.dim or 4)
      :gsub('@RUNS@', dir .. '/' .. (o.runs or 'runs')):gsub('@EXTRA@', o.extra or '')
   return write(name, text)
end

local ls = H.ls

-- The one sweep directory under runs/tiny of a root.
local function sweep_dir(root)
   local d = ls(dir .. '/' .. root .. '/tiny')
   assert.are.equal(1, #d, table.concat(d, ' '))
   return dir .. '/' .. root .. '/tiny/' .. d[1]
end

-- sweep.csv as rows of fields (plain fields and "quoted" ones).
local function csv(path)
   local rows = {}
   for line in (read(path) or ''):gmatch('[^\n]+') do
      local f, i = {}, 1
      while i <= #line + 1 do
         if line:sub(i, i) == '"' then
            local j = line:find('"', i + 1, true)
            f[#f + 1] = line:sub(i + 1, j - 1)
            i = j + 2
         else
            local j = line:find(',', i, true) or (#line + 1)
            f[#f + 1] = line:sub(i, j - 1)
            i = j + 1
         end
      end
      rows[#rows + 1] = f
   end
   return rows
end

-- rows as {header -> value} maps
local function records(path)
   local rows = csv(path)
   local out = {}
   for i = 2, #rows do
      local r = {}
      for k, h in ipairs(rows[1]) do r[h] = rows[i][k] end
      out[#out + 1] = r
   end
   return out
end

local last_epoch = H.last_epoch

-- sweep.csv without its time column, which differs from run to run
local function without_time(path)
   local rows = csv(path)
   local t
   for k, h in ipairs(rows[1] or {}) do if h == 'time_s' then t = k end end
   for _, r in ipairs(rows) do table.remove(r, t) end
   for i, r in ipairs(rows) do rows[i] = table.concat(r, ',') end
   return table.concat(rows, '\n')
end

local GRID = "--grid optimizer.lr=0.01,0.003 --grid 'model.1.units=8,16'"

describe('kbl sweep', function()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   local cfg = config('tiny.lua')
   local rc, out, err = sweep(cfg .. ' ' .. GRID .. ' --set threads=2 --jobs 2 --monitor val_accuracy --mode max')

   it('runs a 2x2 grid into four run directories, with sweep.csv of their values and metrics', function()
      assert.are.equal(0, rc, err)
      local sd = sweep_dir('runs')
      assert.truthy(sd:match('/sweep%-%d+%-%d+$'), sd)
      local names = ls(sd)
      assert.are.same({'1-lr=0.01_units=8', '2-lr=0.01_units=16', '3-lr=0.003_units=8', '4-lr=0.003_units=16',
         'run.lock', 'sweep.csv', 'sweep.html', 'sweep.json'}, names)
      local config_lib = require 'kbl.config'
      local want = {{0.01, 8}, {0.01, 16}, {0.003, 8}, {0.003, 16}}
      local by_name = {}
      for _, r in ipairs(records(sd .. '/sweep.csv')) do by_name[r.run] = r end
      for i = 1, 4 do
         local rd = sd .. '/' .. names[i]
         -- each is a normal run directory whose config.lua re-runs it alone
         local c = config_lib.load({rd .. '/config.lua'})
         assert.are.equal(want[i][1], c.optimizer:table_arg().lr)
         assert.are.equal(want[i][2], c.model:table_arg()[1]:table_arg().units)
         assert.are.equal(1, c.threads)   -- 2 threads over 2 jobs
         assert.are.equal('finished', require('kbl.records.status').read(rd).state)
         local r = by_name[names[i]]
         assert.truthy(r, names[i])
         assert.are.equal(tostring(want[i][1]), r['optimizer.lr'])
         assert.are.equal(tostring(want[i][2]), r['model.1.units'])
         assert.are.equal('finished', r.state)
         assert.are.equal('3', r.epochs)
         local last = last_epoch(rd)
         assert.are.equal(string.format('%.14g', last.val_accuracy), r.val_accuracy)
         assert.are.equal(string.format('%.14g', last.val_loss), r.val_loss)
      end
      -- sorted by the monitored metric, best first
      local rows = records(sd .. '/sweep.csv')
      for i = 2, #rows do
         assert.is_true(tonumber(rows[i - 1].best_val_accuracy) >= tonumber(rows[i].best_val_accuracy))
         assert.are.equal(tostring(i), rows[i].rank)
      end
      -- the table is printed too
      assert.truthy(out:find('#  run', 1, true), out)
      assert.truthy(out:find('sweep.csv', 1, true), out)
   end)

   it('continues the same sweep when the same command is given again: nothing reruns', function()
      local rc2, out2, err2 = sweep(cfg .. ' ' .. GRID .. ' --set threads=2 --jobs 2 --monitor val_accuracy --mode max')
      assert.are.equal(0, rc2, err2)
      assert.truthy(out2:find('continuing', 1, true), out2)
      assert.is_nil(out2:find('started', 1, true), out2)
      assert.are.equal(1, #ls(dir .. '/runs/tiny'))
      -- one sweep process a directory: a second is refused while the first holds it
      local lock = require 'kbl.records.lock'
      lock.acquire(sweep_dir('runs'))
      local rc3, _, err3 = sweep(cfg .. ' ' .. GRID .. ' --set threads=2 --jobs 2 --monitor val_accuracy --mode max')
      lock.release(sweep_dir('runs'))
      assert.are.equal(1, rc3)
      assert.truthy(err3:find('is in use by another sweep', 1, true), err3)
   end)

   it('validates every point before anything starts, naming the --grid and the closest key', function()
      local rc2, _, err2 = sweep(cfg .. " --grid optimzer.lr=0.1,0.2 --set runs='" .. dir .. "/bad'")
      assert.are.equal(1, rc2)
      assert.truthy(err2:find("--grid optimzer.lr=0.1,0.2", 1, true), err2)
      assert.truthy(err2:find("did you mean 'optimizer'", 1, true), err2)
      rc2, _, err2 = sweep(cfg .. " --grid 'model.1.unitz=4,8' --set runs='" .. dir .. "/bad'")
      assert.are.equal(1, rc2)
      assert.truthy(err2:find("--grid model.1.unitz=4,8", 1, true), err2)
      assert.truthy(err2:find("did you mean 'units'", 1, true), err2)
      -- a value that only the constructor refuses, in the second point
      rc2, _, err2 = sweep(cfg .. " --grid 'model.1.units=4,{8}' --set runs='" .. dir .. "/bad'")
      assert.are.equal(1, rc2)
      assert.truthy(err2:find('(value {8})', 1, true), err2)
      assert.is_false(H.exists(dir .. '/bad'))
   end)

   it('samples the same points from the same seed, within the ranges', function()
      local args = cfg .. " --dry-run --random 6 --grid 'optimizer.lr=log(1e-4,1e-2)' --grid 'model.1.units=int(4,32)'"
         .. " --grid \"model.1.activation=choice('relu','tanh')\""
      local rc1, a = sweep(args .. ' --seed 7')
      local rc2, b = sweep(args .. ' --seed 7')
      local rc3, c = sweep(args .. ' --seed 8')
      assert.are.equal(0, rc1)
      assert.are.equal(0, rc2)
      assert.are.equal(0, rc3)
      assert.are.equal(a, b)
      assert.are_not.equal(a, c)
      local n = 0
      for lr, units, act in a:gmatch("optimizer%.lr=(%S+) model%.1%.units=(%S+) model%.1%.activation=(%S+)") do
         n = n + 1
         assert.is_true(tonumber(lr) >= 1e-4 and tonumber(lr) <= 1e-2, lr)
         assert.is_true(tonumber(units) >= 4 and tonumber(units) <= 32 and tonumber(units) % 1 == 0, units)
         assert.truthy(act == "'relu'" or act == "'tanh'", act)
      end
      assert.are.equal(6, n, a)
      assert.is_false(H.exists(dir .. '/runs/tiny/' .. 'x'))
   end)

   it('parses grids, ranges and names the runs (kbl.sweep.space)', function()
      assert.are.same({'{256}', '{512, 256}', "'a,b'", 'f(1,2)'}, space.split_top("{256}, {512, 256},'a,b',f(1,2)"))
      local points = space.grid({space.parse('a.lr=1,2', '--grid'), space.parse('m.units={4},{8,4}', '--grid')})
      assert.are.equal(4, #points)
      assert.are.same({'a.lr=1', 'm.units={4}'}, points[1].sets)
      assert.are.same({'a.lr=2', 'm.units={8,4}'}, points[4].sets)
      assert.are.same({'1-lr=1_units=4', '2-lr=1_units=8-4', '3-lr=2_units=4', '4-lr=2_units=8-4'},
         space.dir_names(points))
      assert.are.same({'lr', '1.units', '3.units'},
         space.short_keys({'optimizer.lr', 'model.1.units', 'model.3.units'}))
      assert.has_error(function() space.grid({space.parse('a=log(1,2)', '--grid')}) end,
         '--grid a=log(1,2): a range is sampled, not gridded: give --random N')
      assert.has_error(function() space.parse('a=log(0,2)', '--grid') end)
      local r1 = space.random({space.parse('a=uniform(0,1)', '--grid')}, 3, 5)
      local r2 = space.random({space.parse('a=uniform(0,1)', '--grid')}, 3, 5)
      assert.are.same(r1, r2)
   end)

   it('reads the same sweep from a sweep table in the config', function()
      local c = config('table.lua', {extra = "sweep = {grid = {['optimizer.lr'] = {0.01, 0.003}, "
         .. "['model.1.units'] = '8,16'}, monitor = 'val_accuracy'},"})
      local rc2, a, e = sweep(c .. ' --dry-run')
      assert.are.equal(0, rc2, e)
      -- keys in sorted order: model.1.units varies slowest
      assert.truthy(a:find("1%-units=8_lr=0.01%s+model%.1%.units=8 optimizer%.lr=0%.01\n"), a)
      assert.are.equal(4, select(2, a:gsub('\n', '')))
      local bad = config('bad.lua', {extra = 'sweep = {gird = {}},'})
      local rc3, _, e3 = sweep(bad .. ' --dry-run')
      assert.are.equal(1, rc3)
      assert.truthy(e3:find("unknown option 'gird' (did you mean 'grid'?)", 1, true), e3)
   end)

   it('ends a sweep killed mid-way and restarted with the same sweep.csv as one never stopped', function()
      -- epochs long enough to kill the second run between its checkpoints
      local big = config('big.lua', {epochs = 4, n = 1200, dim = 32, runs = 'whole'})
      local args = big .. ' ' .. GRID .. ' --set threads=1'
      local rc1, _, e1 = sweep(args)
      assert.are.equal(0, rc1, e1)
      local whole = sweep_dir('whole')
      local killed = big:gsub('big%.lua$', 'big2.lua')
      H.write(killed, (read(big):gsub("/whole'", "/killed'")))
      local args2 = killed .. ' ' .. GRID .. ' --set threads=1'
      local pidfile = dir .. '/sweep.pid'
      os.execute(string.format("sh -c 'echo $$ > %s; exec %s sweep %s > %s/killed.out 2>&1' &", pidfile, KBL,
         args2, dir))
      local pid
      for _ = 1, 200 do
         pid = tonumber(read(pidfile) or '')
         if pid then break end
         ffi.C.usleep(10000)
      end
      assert.truthy(pid)
      -- wait for the first run to finish and the second to checkpoint an epoch
      local second
      for _ = 1, 3000 do
         local d = ls(dir .. '/killed/tiny')[1]
         if d then
            local sd = dir .. '/killed/tiny/' .. d
            local s1 = require('kbl.records.status').read(sd .. '/1-lr=0.01_units=8')
            second = sd .. '/2-lr=0.01_units=16'
            if s1 and s1.state == 'finished' and (read(second .. '/metrics.jsonl') or '') ~= '' then break end
         end
         ffi.C.usleep(5000)
      end
      -- stopped first, the sweep starts no child while its children are killed
      os.execute('kill -STOP ' .. pid)
      for _, p in ipairs(ls('/proc')) do
         local stat = tonumber(p) and read('/proc/' .. p .. '/stat')
         if stat and tonumber(stat:match('^%d+ %b() %S+ (%d+)')) == pid then os.execute('kill -KILL ' .. p) end
      end
      os.execute('kill -KILL ' .. pid)
      ffi.C.usleep(100000)
      local sd = sweep_dir('killed')
      assert.is_false(H.exists(sd .. '/sweep.csv'))
      local rc2, out2, e2 = sweep(args2)
      assert.are.equal(0, rc2, e2)
      assert.truthy(out2:find('continuing', 1, true), out2)
      -- the second run was killed between checkpoints: it continues from its newest
      assert.truthy(out2:find('resumed 2-lr=0.01_units=16', 1, true), out2)
      assert.is_nil(out2:find('1-lr=0.01_units=8 finished', 1, true), out2)   -- the finished run is skipped
      assert.are.equal(without_time(whole .. '/sweep.csv'), without_time(sd .. '/sweep.csv'))
      -- --resume SWEEP_DIR names the same sweep
      local rc3, out3, e3 = sweep('--resume ' .. sd)
      assert.are.equal(0, rc3, e3)
      assert.is_nil(out3:find('started', 1, true), out3)
   end)

   it('passes SIGTERM on to its runs, which checkpoint, and says how to continue', function()
      local term = config('big3.lua', {epochs = 4, n = 1200, dim = 32, runs = 'term'})
      local args = term .. ' ' .. GRID .. ' --set threads=1'
      local pidfile = dir .. '/term.pid'
      os.execute(string.format("sh -c 'echo $$ > %s; exec %s sweep %s > %s/term.out 2> %s/term.err' &", pidfile, KBL,
         args, dir, dir))
      local pid, first
      for _ = 1, 3000 do
         pid = pid or tonumber(read(pidfile) or '')
         local d = ls(dir .. '/term/tiny')[1]
         first = d and (dir .. '/term/tiny/' .. d .. '/1-lr=0.01_units=8')
         if pid and first and (read(first .. '/metrics.jsonl') or '') ~= '' then break end
         ffi.C.usleep(5000)
      end
      os.execute('kill -TERM ' .. pid)
      for _ = 1, 1000 do
         if not require('kbl.records.status').is_alive(pid) then break end
         ffi.C.usleep(10000)
      end
      if require('kbl.records.status').is_alive(pid) then
         os.execute('kill -KILL ' .. pid)
         error('the sweep did not stop within 10 s of SIGTERM')
      end
      assert.truthy(read(dir .. '/term.err'):find('sweep interrupted; the runs under way checkpointed. '
         .. 'Continue with: kbl sweep --resume ' .. sweep_dir('term'), 1, true), read(dir .. '/term.err'))
      assert.are.equal('interrupted', require('kbl.records.status').read(first).state)
      local rc2, out2, e2 = sweep('--resume ' .. sweep_dir('term'))
      assert.are.equal(0, rc2, e2)
      assert.truthy(out2:find('resumed 1-lr=0.01_units=8', 1, true), out2)
      assert.are.equal(without_time(sweep_dir('whole') .. '/sweep.csv'),
         without_time(sweep_dir('term') .. '/sweep.csv'))
   end)

   it('stops the runs successive halving should, on a constructed case', function()
      local root = H.tmpdir()
      local function run_with(i, values)
         local d = root .. '/' .. i
         os.execute('mkdir -p ' .. d)
         local lines = {}
         for e, v in ipairs(values) do lines[e] = json.encode({epoch = e, val_loss = v}) end
         H.write(d .. '/metrics.jsonl', table.concat(lines, '\n') .. '\n')
         return {index = i, name = tostring(i), dir = d}
      end
      local runs = {run_with(1, {0.5, 0.4}), run_with(2, {0.2, 0.3}), run_with(3, {0.9, 0.1}), run_with(4, {0.3, 0.6}),
         run_with(5, {0.3, 0.2})}
      local opts = {monitor = 'val_loss', mode = 'min', halving = {rungs = {1, 2}, eta = 2}}
      local stopped = runner.decide(runs, 1, opts)
      -- floor(5 / 2) = 2 kept: 2 (0.2) and 4 (0.3, ahead of 5 by index)
      local names = {}
      for i, r in ipairs(stopped) do names[i] = r.name end
      assert.are.same({'5', '1', '3'}, names)
      assert.are.same({rung = 1, value = 0.3, rank = 3, of = 5, keep = 2}, {rung = runs[5].stop.rung,
         value = runs[5].stop.value, rank = runs[5].stop.rank, of = runs[5].stop.of, keep = runs[5].stop.keep})
      assert.truthy(runs[3].stop.reason:find('epoch 1: val_loss 0.9 ranked 5 of 5', 1, true), runs[3].stop.reason)
      stopped = runner.decide(runs, 2, opts)
      assert.are.equal(1, #stopped)
      assert.are.equal('4', stopped[1].name)   -- 0.6 against 2's 0.3
      assert.is_nil(runs[2].stop)
      -- max mode keeps the largest
      local m = {run_with(6, {0.1}), run_with(7, {0.9})}
      local s = runner.decide(m, 1, {monitor = 'val_loss', mode = 'max', halving = {rungs = {1}, eta = 2}})
      assert.are.equal('6', s[1].name)
      os.execute('rm -rf ' .. root)
   end)

   it('runs halving end to end: the stopped runs stop at the rung, survivors match the uninterrupted runs', function()
      local rc2, out2, e2 = sweep(cfg .. ' ' .. GRID
         .. " --set threads=2 --jobs 2 --monitor val_loss --halving rungs=1 "
         .. "eta=2 --set runs='" .. dir .. "/halving'")
      assert.are.equal(0, rc2, e2)
      local sd = sweep_dir('halving')
      local plain = {}
      for _, r in ipairs(records(sweep_dir('runs') .. '/sweep.csv')) do plain[r.run] = r end
      -- the worst two by val_loss at epoch 1 stop
      local at1 = {}
      for _, r in ipairs(records(sd .. '/sweep.csv')) do
         local first = json.decode((read(sd .. '/' .. r.run .. '/metrics.jsonl'):match('[^\n]+')))
         at1[#at1 + 1] = {name = r.run, v = first.val_loss, row = r}
      end
      table.sort(at1, function(a, b) return a.v < b.v end)
      for i, x in ipairs(at1) do
         if i <= 2 then
            assert.are.equal('finished', x.row.state, x.name)
            assert.are.equal('3', x.row.epochs)
            assert.are.equal(plain[x.name].val_loss, x.row.val_loss, x.name)   -- paused and extended, exactly
            assert.are.equal(plain[x.name].val_accuracy, x.row.val_accuracy, x.name)
         else
            assert.are.equal('stopped', x.row.state, x.name)
            assert.are.equal('1', x.row.epochs)
            assert.truthy(x.row.note:find('successive halving at epoch 1', 1, true), x.row.note)
            assert.truthy(read(sd .. '/' .. x.name .. '/config.lua'):find('epochs = 1,', 1, true))
         end
      end
      local s = json.decode(read(sd .. '/sweep.json'))
      local n = 0
      for _, r in ipairs(s.runs) do if r.stop then n = n + 1 end end
      assert.are.equal(2, n)
      assert.truthy(out2:find('stopped by successive halving', 1, true))
   end)

   it('writes sweep.html, which renders in headless Chromium with a curve per run', function()
      local html = read(sweep_dir('runs') .. '/sweep.html')
      assert.is_nil(html:find('<script', 1, true))
      assert.is_nil(html:find('src=', 1, true))
      local browser
      for _, name in ipairs{'chromium', 'chromium-browser', 'google-chrome'} do
         if H.run('command -v ' .. name .. ' >/dev/null') == 0 then browser = name; break end
      end
      if not browser then return pending('chromium is not installed (apt-get install chromium)') end
      local cmd = 'env -u LD_PRELOAD timeout 120 ' .. browser .. ' --headless --no-sandbox --disable-gpu '
         .. '--user-data-dir=' .. dir .. '/profile --dump-dom file://' .. sweep_dir('runs') .. '/sweep.html 2>/dev/null'
      local rc2, dom = H.run(cmd)
      assert.are.equal(0, rc2, dom)
      local svgs, series = 0, 0
      for _ in dom:gmatch('<svg ') do svgs = svgs + 1 end
      for tag in dom:gmatch('<path[^>]*class="series [^"]*"[^>]*>') do
         series = series + 1
         assert.truthy(tag:find('data-points="3"', 1, true), tag)
      end
      assert.are.equal(2, svgs)     -- val_accuracy (monitored) and val_loss
      assert.are.equal(8, series)   -- four runs in each
      local rows = 0
      for _ in dom:gmatch('<tr class="finished">') do rows = rows + 1 end
      assert.are.equal(4, rows)
   end)
end)
