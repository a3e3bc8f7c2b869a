-- kbl run: trains an experiment. `kbl run fit fashion_mnist_mlp wide.lua --set
-- optimizer.lr=3e-4` composes the configs (later ones and --set override),
-- makes the run directory runs/<name>/<time>/ (or --run-dir) with config.lua
-- (the resolved config: `kbl run RUN_DIR/config.lua` repeats the run),
-- summary.txt, metrics.jsonl and metrics.csv, trains, saves the final weights
-- (model.safetensors) and evaluates on the test split.
local M = {summary = 'Train an experiment from config files.'}

function M.describe(cmd)
   cmd:argument('files', 'Config files or names (found in lua/configs, then here); later ones override. '
      .. 'With --resume, the run directory\'s config.lua by default.'):args('*')
   cmd:option('--set', 'Override a value: key=value, the value a Lua literal (repeatable).')
      :count('*'):argname('<key=value>')
   cmd:flag('--print-config', 'Print the resolved config as Lua and exit.')
   cmd:option('--run-dir', 'The run directory (default runs/<name>/<time>).')
   cmd:option('--resume', 'Continue the run in this directory from its newest valid checkpoint.')
      :argname('<run_dir>')
   cmd:option('--device', 'cpu or cuda (overrides the config).')
   cmd:flag('--quiet', 'No progress bar or epoch lines.')
end

local function mkdir_p(path) return require('kbl.callbacks.base').mkdir_p(path) end

local function exists(path)
   local f = io.open(path, 'r')
   if f then f:close() end
   return f ~= nil
end

-- runs/<name>/<YYYYmmdd-HHMMSS>, with -2, -3... when taken.
function M.new_run_dir(cfg)
   local root = (cfg.runs or 'runs') .. '/' .. tostring(cfg.name or 'run'):gsub('[^%w_%-%.]', '_')
   local stamp = os.date('%Y%m%d-%H%M%S')
   local dir, k = root .. '/' .. stamp, 1
   while exists(dir) do
      k = k + 1
      dir = root .. '/' .. stamp .. '-' .. k
   end
   return dir
end

local function write_file(path, text)
   local f = assert(io.open(path, 'w'))
   f:write(text)
   f:close()
end

local function command_line(args)
   local parts = {'kbl run'}
   for _, f in ipairs(args.files) do parts[#parts + 1] = f end
   for _, s in ipairs(args.set or {}) do parts[#parts + 1] = "--set '" .. s .. "'" end
   return table.concat(parts, ' ')
end

local function has_split(source, name)
   if not name or not source then return false end
   local ok, n = pcall(source.size, source, name)
   return ok and (n or 0) > 0
end

function M.run(args)
   local config = require 'kbl.config'
   local experiment = require 'kbl.config.experiment'
   local sets = args.set or {}
   if args.device then sets[#sets + 1] = 'device=' .. string.format('%q', args.device) end
   local resume_dir = args.resume
   local files = args.files
   if resume_dir and #files == 0 then files = {resume_dir .. '/config.lua'} end
   if #files == 0 then error('kbl run: give config files (names are found in lua/configs), or --resume RUN_DIR', 0) end
   local cfg, origins = config.load(files, {set = sets})
   local header = 'Resolved config of: ' .. command_line(args)
      .. '\nRepeat the run with: kbl run <this file>'
   local text = config.to_lua(cfg, header)
   if args.print_config then
      io.write(text)
      return
   end
   local run_dir = resume_dir or args.run_dir or M.new_run_dir(cfg)
   mkdir_p(run_dir)
   if not resume_dir then write_file(run_dir .. '/config.lua', text) end
   local trainer, parts = experiment.trainer(cfg, {quiet = args.quiet, run_dir = run_dir, origins = origins})
   trainer.config_text = text
   local callbacks = require 'kbl.callbacks'
   trainer:add_callback(callbacks.CSVLogger{})
   trainer:add_callback(callbacks.JSONLinesLogger{})
   local ok, err = pcall(function()
      trainer:build()
      local summary = experiment.summary(trainer.model)
      write_file(run_dir .. '/summary.txt', summary .. '\n')
      if resume_dir then
         local ck = require 'kbl.records.checkpoint'
         local path, skipped = ck.latest_valid(run_dir .. '/checkpoints')
         for _, s in ipairs(skipped or {}) do
            io.stderr:write(string.format('skipping %s: %s\n', s.path, s.reason))
         end
         if not path then
            error('--resume ' .. run_dir .. ': no valid checkpoint in ' .. run_dir .. '/checkpoints', 0)
         end
         require('kbl.callbacks.checkpoint').restore(trainer, path, {resume = true})
         trainer:message('resuming from ' .. path)
      end
      if not args.quiet then
         local params = summary:match('Total params: ([%d,]+)')
         io.write(string.format('run %s: %s%d epochs -> %s\n', tostring(cfg.name),
            params and (params .. ' parameters, ') or '', trainer:total_epochs(), run_dir))
         io.stdout:flush()
      end
      trainer:fit()
      local weights = trainer.model:state_dict()
      if next(weights) then require('kbl').save(run_dir .. '/model.safetensors', weights) end
      if has_split(trainer.source, trainer.test_split) then
         local logs = trainer:evaluate(trainer.test_split)
         trainer.test_logs = logs
         if not args.quiet then
            io.write(trainer.test_split, ': ', require('kbl.callbacks.progress').metrics_text(logs), '\n')
         end
      end
   end)
   trainer.restore_defaults()
   if not ok then error(err, 0) end
   return trainer, parts
end

return M
