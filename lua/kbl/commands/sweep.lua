--- kbl sweep: runs an experiment over a grid or a random search of config
-- values. `kbl sweep exp.lua --grid optimizer.lr=1e-3,3e-4 --grid
-- 'model.backbone.units={256},{512,256}'` runs the cross product; `--random 8 --seed 1
-- --grid 'optimizer.lr=log(1e-4,1e-2)'` samples 8 points (kbl.sweep.space);
-- a `sweep = {grid = {...}, random =, seed =, monitor =, mode =, halving =,
-- jobs =}` table in a config says the same, the command line overriding it.
-- Every point is composed and validated (kbl.sweep.define: keys, types, the constructors'
-- options, with did-you-mean) before anything runs.
--
-- Runs go to runs/<name>/sweep-<time>/<i>-<values>/, each a normal run
-- directory made by a child `kbl run` (kbl.sweep.runner), --jobs at a time,
-- each child given floor(threads / jobs) threads. The sweep directory keeps
-- sweep.json (the definition, the halving decisions, the results), sweep.csv
-- and sweep.html. The same command again finds the sweep with the same
-- definition (files, values, resolved base config) and continues it, as does
-- `kbl sweep --resume SWEEP_DIR`; --new starts another.
local json = require 'dkjson'
local fs = require 'kbl.io.fs'
local space = require 'kbl.sweep.space'
local define = require 'kbl.sweep.define'
local results = require 'kbl.sweep.results'

local M = {summary = 'Run an experiment over a grid or a random search of config values.'}

function M.describe(cmd)
   cmd:argument('files', 'Config files or names, composed as by kbl run.'):args('*')
   cmd:option('--set', 'A fixed value for every run: key=value, as in kbl run (repeatable).')
      :count('*'):argname('<key=value>')
   cmd:option('--grid', "Values to sweep: key=v1,v2,... (Lua values as --set takes them; "
      .. "'model.backbone.units={256},{512,256}'); with --random, also log(a,b), uniform(a,b), int(a,b), "
      .. 'choice(v1,...) (repeatable).'):count('*'):argname('<key=values>')
   cmd:option('--random', 'Sample this many points from the --grid keys instead of the cross product.')
      :argname('<n>')
   cmd:option('--seed', 'The seed of --random (default 1): the same seed samples the same points.')
   cmd:option('--jobs', 'Runs at a time (default 1); each gets floor(threads / jobs) threads.')
   cmd:option('--monitor', "The metric the table is sorted by and halving ranks on (default: the config's "
      .. "ModelCheckpoint or EarlyStopping monitor, else val_loss).")
   cmd:option('--mode', 'min or max for --monitor (default: max for accuracy-like metrics).')
   cmd:option('--halving', 'Successive halving: rungs=1,2 eta=2 (at epochs 1 and 2 keep the best 1/eta).')
      :args('+'):argname('<setting>')
   cmd:option('--resume', 'Continue the sweep in this directory.'):argname('<sweep_dir>')
   cmd:flag('--new', 'Start a new sweep even when one with the same definition exists.')
   cmd:flag('--dry-run', 'Validate and print the runs; run nothing.')
   cmd:epilog('Examples:\n'
      .. "   kbl sweep exp.lua --grid optimizer.lr=1e-3,3e-4 --grid 'model.backbone.units={256},{512,256}' --jobs 2\n"
      .. "   kbl sweep exp.lua --random 8 --seed 1 --grid 'optimizer.lr=log(1e-4,1e-2)' --grid 'batch_size=32,64'\n"
      .. '   kbl sweep exp.lua --grid optimizer.lr=1e-2,3e-3,1e-3,3e-4 --halving rungs=1,2 eta=2\n'
      .. '   kbl sweep --resume runs/exp/sweep-20260101-120000\n'
      .. 'A config may say the same: sweep = {grid = {[\'optimizer.lr\'] = {1e-3, 3e-4}}, random = 8, seed = 1,\n'
      .. 'monitor = \'val_accuracy\', halving = {rungs = {1, 2}, eta = 2}, jobs = 2}. Runs go to\n'
      .. 'runs/<name>/sweep-<time>/<i>-<values>/; the sweep directory holds sweep.json, sweep.csv and sweep.html.\n'
      .. 'The same command again continues the sweep: finished runs are skipped, interrupted ones resumed.')
end

local function read_json(path)
   local text = fs.read(path)
   if not text then return nil end
   local v, _, err = json.decode(text)
   if type(v) ~= 'table' then error(string.format('%s is not valid JSON: %s', path, tostring(err)), 0) end
   return v
end

-- The newest sweep directory under root with this key, or nil.
local function find_sweep(root, key)
   local names = fs.list_dir(root)
   table.sort(names, function(a, b) return a > b end)
   for _, n in ipairs(names) do
      if n:match('^sweep%-') then
         local ok, s = pcall(read_json, root .. '/' .. n .. '/sweep.json')
         if ok and s and s.key == key then return root .. '/' .. n end
      end
   end
end

local function new_sweep_dir(root)
   fs.mkdir_p(root)
   local stamp = 'sweep-' .. os.date('%Y%m%d-%H%M%S')
   local dir, k = root .. '/' .. stamp, 1
   while true do
      local ok, e = fs.mkdir(dir)
      if ok then return dir end
      if e ~= 17 then error(string.format('cannot create the directory %s: %s', dir, fs.strerror(e)), 0) end
      k = k + 1
      dir = root .. '/' .. stamp .. '-' .. k
   end
end

local function write(path, text) require('kbl.io.binfile').write_atomic(path, text, 'sweep ' .. path) end

local ORDER = {'format', 'version', 'key', 'created', 'files', 'sets', 'grid', 'random', 'seed', 'halving',
   'monitor', 'mode', 'jobs', 'threads', 'threads_total', 'keys', 'runs', 'decided', 'results', 'rank', 'index',
   'name', 'values', 'epochs', 'stop', 'state', 'final', 'best', 'best_epoch', 'time', 'note', 'rung', 'value', 'of',
   'keep', 'reason'}

local function save(dir, s)
   write(dir .. '/sweep.json', json.encode(s, {indent = true, keyorder = ORDER}) .. '\n')
end

-- Rows, sweep.csv, sweep.html and the results in sweep.json; returns the rows.
local function report(dir, s, runs)
   local rows = {}
   for i, run in ipairs(runs) do rows[i] = results.row(run, s.monitor, s.mode) end
   results.sort(rows, s.mode)
   write(dir .. '/sweep.csv', results.csv(rows, s.keys, s.monitor))
   s.results = {}
   for i, r in ipairs(rows) do
      local values = {}
      for k, kv in ipairs(r.values) do values[k] = kv[2] end
      s.results[i] = {rank = r.rank, name = r.name, values = values, state = r.state, epochs = r.epochs,
         final = r.final, best = r.best, best_epoch = r.best_epoch, time = r.time, note = r.note}
   end
   save(dir, s)
   require('kbl.sweep.html').write(dir .. '/sweep.html', {title = 'sweep ' .. (dir:match('([^/]+/[^/]+)$') or dir),
      rows = rows, keys = s.keys,
      monitor = s.monitor, mode = s.mode})
   return rows
end

function M.run(args)
   local s, dir
   local quiet = false
   local function say(line) if not quiet then io.write('sweep: ', line, '\n'); io.stdout:flush() end end
   if args.resume then
      if #args.files > 0 or #(args.grid or {}) > 0 or #(args.set or {}) > 0 or args.random or args.halving then
         error('kbl sweep --resume SWEEP_DIR takes its files, values and halving from SWEEP_DIR/sweep.json; '
            .. 'give only --jobs, --monitor or --mode with it', 0)
      end
      dir = args.resume:gsub('/+$', '')
      s = read_json(dir .. '/sweep.json')
      if not s then error(string.format('--resume %s: no sweep.json there (is it a sweep directory?)', dir), 0) end
   else
      local def, points, entries, cfg, tbl = define.definition(args)
      local cfgs = define.validate(def, points, entries)
      local key = define.key(def)
      local names = space.dir_names(points)
      local monitor, mode = define.config_monitor(cfg)
      s = {format = 'kbl.sweep', version = 1, key = key, created = os.date('!%Y-%m-%dT%H:%M:%SZ'),
         files = def.files, sets = def.sets, grid = def.grid, random = def.random, seed = def.random and def.seed,
         halving = def.halving, monitor = tbl.monitor or monitor, mode = tbl.mode or mode,
         jobs = tbl.jobs and define.posint(tbl.jobs, 'sweep.jobs'),
         keys = {}, runs = {}, decided = {}}
      for k, e in ipairs(entries) do s.keys[k] = e.key end
      for i, p in ipairs(points) do
         local c = cfgs[i]
         if def.halving then
            if type(c.stages) == 'table' and #c.stages > 0 then
               error('--halving: the config has stages; successive halving needs one stage (epochs)', 0)
            end
            if (c.epochs or 1) <= def.halving.rungs[#def.halving.rungs] then
               error(string.format('--halving: run %s has %d epochs; rungs must be below it', names[i],
                  c.epochs or 1), 0)
            end
         end
         s.runs[i] = {index = i, name = names[i], values = p.values, epochs = c.epochs or 1}
      end
      local total = cfg.threads or require('kbl').get_num_threads()
      s.threads_total = total
      if args.dry_run then
         for i, run in ipairs(s.runs) do
            print(string.format('%s  %s', run.name, table.concat(points[i].sets, ' ')))
         end
         return
      end
      local root = (cfg.runs or 'runs') .. '/' .. tostring(cfg.name or 'run'):gsub('[^%w_%-%.]', '_')
      require('kbl.commands.run').check_name(cfg)
      local found = not args.new and find_sweep(root, key)
      if found then
         local old = read_json(found .. '/sweep.json')
         for i, run in ipairs(s.runs) do run.stop = old.runs and old.runs[i] and old.runs[i].stop end
         s.decided, s.created, s.jobs = old.decided or {}, old.created, s.jobs or old.jobs
         dir = found
         say('continuing ' .. dir)
      else
         dir = new_sweep_dir(root)
      end
   end
   if args.monitor then s.monitor = args.monitor end
   if args.mode then
      if args.mode ~= 'min' and args.mode ~= 'max' then error('--mode must be min or max, got ' .. args.mode, 0) end
      s.mode = args.mode
   end
   s.mode = results.auto_mode(s.monitor, s.mode)
   s.jobs = args.jobs and define.posint(args.jobs, '--jobs') or s.jobs or 1
   local total = s.threads_total or require('kbl').get_num_threads()
   s.threads = math.max(1, math.floor(total / s.jobs))
   local runs = {}
   for i, r in ipairs(s.runs) do
      local sets = {}
      for k, kv in ipairs(r.values) do sets[k] = kv[1] .. '=' .. kv[2] end
      runs[i] = {index = r.index, name = r.name, dir = dir .. '/' .. r.name, values = r.values, sets = sets,
         epochs = r.epochs, stop = r.stop}
   end
   local function persist()
      for i, run in ipairs(runs) do s.runs[i].stop = run.stop end
      save(dir, s)
   end
   -- one sweep process a directory (its runs lock their own directories too)
   local lock = require 'kbl.records.lock'
   local locked, why = pcall(lock.acquire, dir)
   if not locked then
      error((tostring(why):gsub('the run directory', 'the sweep directory'):gsub('another run', 'another sweep')
         :gsub('another run directory', 'another sweep directory')), 0)
   end
   persist()
   local decided = {}
   for k, v in pairs(s.decided or {}) do decided[tonumber(k)] = v end
   say(string.format('%d runs in %s, %d at a time, %d threads each', #runs, dir, s.jobs, s.threads))
   local sets = {}
   for _, x in ipairs(s.sets or {}) do sets[#sets + 1] = x end
   sets[#sets + 1] = 'threads=' .. s.threads   -- after --set threads (the total), before the swept values
   local complete = require('kbl.sweep.runner').run(runs, {files = s.files, sets = sets, jobs = s.jobs,
      monitor = s.monitor, mode = s.mode, halving = s.halving, decided = decided, say = say, save = function()
         s.decided = {}
         for k, v in pairs(decided) do s.decided[tostring(k)] = v end
         persist()
      end})
   if not complete then
      persist()
      error(string.format('sweep interrupted; the runs under way checkpointed. Continue with: kbl sweep --resume %s',
         dir), 0)
   end
   local rows = report(dir, s, runs)
   lock.release(dir)
   io.write(results.text(rows, s.keys, s.monitor))
   local logged = false
   for _, r in ipairs(rows) do if r.best ~= nil then logged = true end end
   if not logged then
      io.stderr:write('kbl: warning: ', require('kbl.sweep.runner').missing_monitor(runs, s.monitor),
         '; sort by another with: kbl sweep --resume ', dir, ' --monitor NAME\n')
   end
   io.write(string.format('sweep: %s/sweep.csv, %s/sweep.html\n', dir, dir))
   local failed = {}
   for _, r in ipairs(rows) do
      if r.state == 'failed' or r.state == 'unfinished' then failed[#failed + 1] = r.name end
   end
   if #failed > 0 then
      error(string.format('%d of %d runs did not finish: %s (their kbl.log says why)', #failed, #rows,
         table.concat(failed, ', ')), 0)
   end
   return dir, rows
end

return M
