--- kbl eval: evaluates a trained model on a split. Given a run directory, it
-- rebuilds the run from RUN_DIR/config.lua and loads RUN_DIR/model.safetensors
-- (or, for a run that did not finish, its newest valid checkpoint); given a
-- checkpoint file, the config stored in it. --json prints one JSON object of
-- metric names and values on stdout.
local M = {summary = 'Evaluate a run directory or a checkpoint on a split.'}

function M.describe(cmd)
   cmd:argument('path', 'A run directory or a checkpoint file.')
   cmd:option('--split', 'The split to evaluate on.', 'test')
   cmd:option('--set', 'Override a config value: key=value (repeatable).'):count('*'):argname('<key=value>')
   cmd:flag('--json', 'Print one JSON object of metric names and values.')
end


local fs = require 'kbl.io.fs'
local exists, is_dir = fs.exists, fs.is_dir

-- The config file and the weights (a safetensors file or a checkpoint) to use.
local function locate(path)
   if is_dir(path) then
      local cfg = path .. '/config.lua'
      if not exists(cfg) then error(path .. ' is not a run directory: it has no config.lua', 0) end
      if exists(path .. '/model.safetensors') then return cfg, path .. '/model.safetensors', 'safetensors' end
      local ok, ck = pcall(require, 'kbl.records.checkpoint')
      local latest = ok and ck.latest_valid(path .. '/checkpoints')
      if latest then return cfg, latest, 'checkpoint' end
      error(path .. ' has no weights: neither model.safetensors nor a valid checkpoint in checkpoints/', 0)
   end
   if not exists(path) then error('cannot open ' .. path .. ' (give a run directory or a checkpoint file)', 0) end
   return nil, path, 'checkpoint'
end

function M.run(args)
   local kbl = require 'kbl'
   local config = require 'kbl.config'
   local experiment = require 'kbl.config.experiment'
   local cfg_file, weights_file, kind = locate(args.path)
   local files = {cfg_file}
   local tmp
   if not cfg_file then
      local _, _, meta = require('kbl.callbacks.checkpoint').read(weights_file)
      if type(meta.config) ~= 'string' then error(weights_file .. ' holds no config; evaluate its run directory', 0) end
      tmp = os.tmpname()
      local f = assert(io.open(tmp, 'w'))
      f:write(meta.config)
      f:close()
      files = {tmp}
   end
   local ok_load, cfg, origins = pcall(config.load, files, {set = args.set or {}})
   if tmp then os.remove(tmp) end
   if not ok_load then error(cfg, 0) end
   local trainer = experiment.trainer(cfg, {quiet = true, origins = origins})
   local ok, res = pcall(function()
      trainer:build()
      if kind == 'safetensors' then
         trainer.model:load_state_dict((kbl.load(weights_file)))
      else
         require('kbl.callbacks.checkpoint').restore(trainer, weights_file)
      end
      return trainer:evaluate(args.split)
   end)
   trainer.restore_defaults()
   if not ok then error(res, 0) end
   if args.json then
      local json = require 'dkjson'
      local keys = {}
      for k in pairs(res) do keys[#keys + 1] = k end
      print(json.encode(res, {keyorder = require('kbl.callbacks.loggers').order(keys)}))
   else
      print(args.split .. ': ' .. require('kbl.callbacks.progress').metrics_text(res))
   end
end

return M
