--- kbl run: trains an experiment. `kbl run fit fashion_mnist_mlp wide.lua --set
-- optimizer.lr=3e-4` composes the configs (later ones and --set override),
-- makes the run directory runs/<name>/<time>/ (or --run-dir) with config.lua
-- (the resolved config: `kbl run RUN_DIR/config.lua` repeats the run),
-- summary.txt, metrics.jsonl and metrics.csv, and the run records of
-- kbl.records.run: checkpoints/ (the config's ModelCheckpoint, or one every
-- epoch keeping 3 and the best by val_loss), a TensorBoard event file,
-- report.html, status.json and the final weights (model.safetensors); then
-- evaluates on the test split. `--resume RUN_DIR` continues from the newest
-- valid checkpoint, skipping damaged ones; SIGINT/SIGTERM checkpoint and stop.
-- `--profile 10:20` profiles those steps (kbl.profile): trace.json, profile.txt.
--
-- The run takes the run directory's lock (kbl.records.lock) before it writes
-- anything there and holds it while the run lasts: of two runs started into one
-- directory, the second writes nothing and fails naming the first's pid. A
-- directory that holds a run's records is not started afresh: --resume
-- continues it, --overwrite deletes the records first.
local fs = require 'kbl.io.fs'
local mkdir_p = fs.mkdir_p

local M = {summary = 'Train an experiment from config files.'}

function M.describe(cmd)
   cmd:argument('files', 'Config files or names (found in lua/kbl/configs, then here); later ones override. '
      .. 'With --resume, the run directory\'s config.lua by default.'):args('*')
   cmd:option('--set', 'Override a value: key=value, the value a Lua value in the config scope (repeatable).')
      :count('*'):argname('<key=value>')
   cmd:flag('--print-config', 'Print the resolved config as Lua and exit.')
   cmd:option('--run-dir', 'The run directory (default runs/<name>/<time>). One that holds a run is refused: '
      .. 'use --resume, or --overwrite.')
   cmd:option('--resume', 'Continue the run in this directory from its newest valid checkpoint.')
      :argname('<run_dir>')
   cmd:flag('--overwrite', 'Start afresh in a --run-dir that holds a run: first delete its config, summary, '
      .. 'metrics, event files, checkpoints, report, status and weights.')
   cmd:option('--device', 'cpu or cuda (overrides the config).')
   cmd:flag('--quiet', 'No progress bar or epoch lines.')
   cmd:option('--nproc', 'Train on N local processes (data parallel, under Open MPI\'s mpirun); one global batch '
      .. 'of batch_size is split over them.'):convert(tonumber):argname('<N>')
   cmd:option('--profile', 'Profile steps FROM to TO (counted from 1 over the run; as the config key profile = '
      .. '{from =, to =}): prints the ops by time and whether data, ops or Lua bound the steps, and writes '
      .. 'trace.json (Perfetto, chrome://tracing) and profile.txt in the run directory.'):argname('<from:to>')
end



-- Raises unless cfg.name can name a directory under runs/: one path
-- component, not '.' or '..'. origins (from kbl.config.load) give file:line.
function M.check_name(cfg, origins)
   local name = cfg.name
   if name == nil then return end
   local s = tostring(name)
   if s == '' or s == '.' or s == '..' or s:find('[/%z]') then
      local where = origins and (origins.name or origins[''])
      error(string.format("%sconfig key 'name' must be one path component (it names the directory "
         .. "runs/<name>/), got %q: no '/', not '.' or '..'", where and (where .. ': ') or '', s), 0)
   end
end

-- Makes and returns runs/<name>/<YYYYmmdd-HHMMSS>, with -2, -3... when taken;
-- made with mkdir, so two runs started in the same second get one each.
function M.new_run_dir(cfg, origins)
   M.check_name(cfg, origins)
   local root = (cfg.runs or 'runs') .. '/' .. tostring(cfg.name or 'run'):gsub('[^%w_%-%.]', '_')
   mkdir_p(root)
   local stamp = os.date('%Y%m%d-%H%M%S')
   local dir, k = root .. '/' .. stamp, 1
   while true do
      local ok, e = fs.mkdir(dir)
      if ok then return dir end
      if e ~= 17 then   -- EEXIST: taken, try the next
         error(string.format('cannot create the directory %s: %s (errno %d)', dir, fs.strerror(e), e), 0)
      end
      k = k + 1
      dir = root .. '/' .. stamp .. '-' .. k
   end
end

-- Refuses to start afresh over a run's records unless --overwrite, which
-- deletes them. Runs with the lock held.
local function claim(run_dir, overwrite)
   local records = require 'kbl.records.run'
   local found = records.existing(run_dir)
   if #found == 0 then return end
   if overwrite then
      records.clear(run_dir)
      return
   end
   local ok, s = pcall(require('kbl.records.status').read, run_dir)
   local what = ok and s and s.state and (s.state:gsub('_', ' ') .. ' run') or 'run'
   local article = what:match('^[aeiou]') and 'an' or 'a'
   error(string.format('--run-dir %s already holds %s %s (%s); continue it with `kbl run --resume %s`, '
      .. 'or start afresh with --overwrite, which deletes those records first', run_dir, article, what,
      table.concat(found, ', '), run_dir), 0)
end

local function write_file(path, text)
   local f = assert(io.open(path, 'w'))
   f:write(text)
   f:close()
end

local function command_line(args)
   local parts = {'kbl run'}
   if args.resume then parts[#parts + 1] = '--resume ' .. args.resume end
   for _, f in ipairs(args.files) do parts[#parts + 1] = f end
   for _, s in ipairs(args.set or {}) do parts[#parts + 1] = "--set '" .. s:gsub("'", "'\\''") .. "'" end
   return table.concat(parts, ' ')
end

local function has_split(source, name)
   if not name or not source then return false end
   local ok, n = pcall(source.size, source, name)
   return ok and (n or 0) > 0
end

-- The resolved config as saved: a top-level epochs that no stage runs (the
-- first names its own, the others inherit) is left out, so that the saved
-- file runs again as it is (kbl.config.experiment refuses it beside stages).
local function saved_config(cfg)
   if type(cfg.stages) ~= 'table' or type(cfg.stages[1]) ~= 'table' or cfg.stages[1].epochs == nil
      or cfg.epochs == nil then
      return cfg
   end
   local c = {}
   for k, v in pairs(cfg) do c[k] = v end
   c.epochs = nil
   local serialize = require 'kbl.config.serialize'
   serialize.requires[c] = serialize.requires[cfg]
   return c
end

-- The config and trainer of `kbl run FILES --set ...`, not yet trained: what
-- kbl run and kbl verify-resume share. opts: set (a list of key=value), quiet,
-- run_dir, progress, out. Returns trainer, parts, cfg, text (the resolved
-- config as Lua); trainer.restore_defaults() undoes the config's defaults by
-- type once the trainer is done with.
function M.build_trainer(files, opts)
   opts = opts or {}
   local config = require 'kbl.config'
   local cfg, origins = config.load(files, {set = opts.set or {}})
   local header = 'Resolved config of: ' .. (opts.command or ('kbl run ' .. table.concat(files, ' ')))
      .. '\nRepeat the run with: kbl run <this file>'
   -- opts.strict: a value that cannot be written back stops the run here, before training
   local text = config.to_lua(saved_config(cfg), header, {strict = opts.strict})
   local trainer, parts = require('kbl.config.experiment').trainer(cfg, {quiet = opts.quiet,
      run_dir = opts.run_dir, origins = origins, progress = opts.progress, out = opts.out})
   trainer.config_text = text
   trainer.resolved_config = cfg   -- its scalar keys are the run's hparams in TensorBoard
   return trainer, parts, cfg, text
end

-- The run records: the loggers, then the config's ModelCheckpoint (a default
-- one when it has none) moved after every other callback, so that its
-- checkpoints hold their updated state and follow the logged lines; last the
-- recorder (status, TensorBoard, report, final weights, SIGINT/SIGTERM).
local function add_records(trainer, run_dir, summary, resume_command)
   local callbacks = require 'kbl.callbacks'
   trainer:add_callback(callbacks.CSVLogger{})
   trainer:add_callback(callbacks.JSONLinesLogger{})
   local kept, ckpts = {}, {}
   local mt = getmetatable(callbacks.ModelCheckpoint{})
   for _, cb in ipairs(trainer.callbacks) do
      if getmetatable(cb) == mt then ckpts[#ckpts + 1] = cb else kept[#kept + 1] = cb end
   end
   if #ckpts == 0 then
      local has_val = trainer.val_pipe ~= nil
      ckpts[1] = callbacks.ModelCheckpoint{monitor = has_val and 'val_loss' or 'loss'}
   end
   for _, cb in ipairs(ckpts) do kept[#kept + 1] = cb end
   trainer.callbacks = kept
   local records = require 'kbl.records.run'
   local rec = records.Recorder{run_dir = run_dir, keep_last = ckpts[1].keep, every_n_epochs = 0,
      config = trainer.config_text, summary = summary, title = trainer.name, weights_name = 'model.safetensors',
      resume_command = resume_command}
   trainer:add_callback(rec)
   return rec
end

function M.run(args)
   if args.nproc and args.nproc ~= 1 then
      local raw = {}
      for i = 1, #(arg or {}) do raw[i] = arg[i] end
      require('kbl.dist.launch').exec(args.nproc, raw)
   end
   local sets = args.set or {}
   if args.device then sets[#sets + 1] = 'device=' .. string.format('%q', args.device) end
   if args.profile then
      local from, to = require('kbl.profile').parse_steps(args.profile)
      sets[#sets + 1] = string.format('profile={from=%d,to=%d}', from, to)
   end
   local resume_dir = args.resume
   local files = args.files
   if resume_dir and #files == 0 then files = {resume_dir .. '/config.lua'} end
   if #files == 0 then
      error('kbl run: give config files (names are found in lua/kbl/configs), or --resume RUN_DIR', 0)
   end
   if args.print_config then
      local config = require 'kbl.config'
      local cfg = config.load(files, {set = sets})
      io.write(config.to_lua(saved_config(cfg), 'Resolved config of: ' .. command_line(args)
         .. '\nRepeat the run with: kbl run <this file>'))
      return
   end
   -- under mpirun, ranks other than 0 train without a run directory (kbl.dist.run)
   if require('kbl.dist').rank() > 0 then return require('kbl.dist.run').worker(files, sets, resume_dir) end
   local status = require 'kbl.records.status'
   local records = require 'kbl.records.run'
   if resume_dir and args.overwrite then error('--overwrite and --resume contradict each other', 0) end
   if resume_dir and not fs.is_dir(resume_dir) then error('--resume ' .. resume_dir .. ': no such run directory', 0) end
   local run_dir = resume_dir or args.run_dir
   if run_dir then
      mkdir_p(run_dir)
   else
      run_dir = M.new_run_dir(require('kbl.config').load(files, {set = sets}))
   end
   -- nothing is written before the lock: the run that loses it stops here;
   -- it is held until the run ends (or the process does, however it ends)
   local lock = require 'kbl.records.lock'
   lock.acquire(run_dir)
   local claimed, why = pcall(function()
      if not resume_dir then claim(run_dir, args.overwrite) end
      status.start(run_dir)   -- refuses a directory whose status names a live run (of an older kbl)
   end)
   if not claimed then
      lock.release(run_dir)
      error(why, 0)
   end
   local trainer, rec
   local ok, err = pcall(function()
      local t, _, _, text = M.build_trainer(files, {set = sets, quiet = args.quiet, run_dir = run_dir,
         command = command_line(args), strict = true})
      trainer = t
      if not resume_dir then write_file(run_dir .. '/config.lua', text) end
      trainer:build()
      local summary = require('kbl.config.experiment').summary(trainer.model)
      write_file(run_dir .. '/summary.txt', summary .. '\n')
      rec = add_records(trainer, run_dir, summary, 'kbl run --resume ' .. run_dir)
      if resume_dir then
         local path = records.resume(trainer, run_dir, {quiet = true})
         rec.resumed_from = path
         -- a resume with --set (epochs=8 extends the run) changes the run: its config says so
         if #sets > 0 then write_file(run_dir .. '/config.lua', text) end
         trainer:message('resuming from ' .. path)
      end
      do   -- under --quiet too: where the run is
         local params = summary:match('Total params: ([%d,]+)')
         io.write(string.format('run %s: %s%s -> %s\n', tostring(trainer.name),
            params and (params .. ' parameters, ') or '', require('kbl.util').plural(trainer:total_epochs(), 'epoch'),
            run_dir))
         io.stdout:flush()
      end
      records.fit(trainer, rec)
      -- the final metrics line, under --quiet too: the test split's, recorded in the run's files, else the
      -- last epoch's (which the epoch lines showed already)
      if has_split(trainer.source, trainer.test_split) then
         local logs = trainer:evaluate(trainer.test_split)
         trainer.test_logs = logs
         io.write(rec:record_test(trainer, trainer.test_split, logs), '\n')
      elseif args.quiet and trainer.logs then
         io.write(string.format('epoch %d: %s\n', trainer.logs.epoch or trainer.epochs_done,
            require('kbl.callbacks.progress').metrics_text(trainer.logs)))
      end
      io.stdout:flush()
   end)
   if trainer and trainer.restore_defaults then trainer.restore_defaults() end
   if not ok then
      -- failures before fit (a bad config, a damaged run directory) are recorded too
      local s = status.read(run_dir)
      if s and s.state == 'running' and s.pid == status.pid() then pcall(status.failed, run_dir, err) end
      lock.release(run_dir)
      error(err, 0)
   end
   lock.release(run_dir)
   return trainer
end

return M
