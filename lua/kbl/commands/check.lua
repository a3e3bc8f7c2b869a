-- kbl check: validates configs without training: composes them, checks every
-- key and type, builds every spec (data source, model, loss, optimizers,
-- metrics, callbacks) and runs the model once on a small batch. Prints one line
-- per config set and exits 0, or names the first problem and exits 1.
local M = {summary = 'Validate experiment configs without training.'}

function M.describe(cmd)
   cmd:argument('files', 'Config files or names, composed as by kbl run.'):args('+')
   cmd:option('--set', 'Override a value: key=value (repeatable).'):count('*'):argname('<key=value>')
   cmd:flag('--no-build', 'Only check keys and types; build nothing.')
end

function M.run(args)
   local config = require 'kbl.config'
   local cfg, origins = config.load(args.files, {set = args.set or {}})
   if args.no_build then
      print(string.format('ok: %s (keys and types)', table.concat(args.files, ' ')))
      return
   end
   local experiment = require 'kbl.config.experiment'
   local trainer = experiment.trainer(cfg, {quiet = true, origins = origins})
   local ok, err = pcall(function()
      trainer:build()
      local n = 0
      for _, p in ipairs(trainer.model:parameters()) do n = n + p:numel() end
      print(string.format('ok: %s: %s, %d trainable parameters, %d epochs%s', table.concat(args.files, ' '),
         tostring(cfg.name), n, trainer:total_epochs(),
         #trainer.stages > 1 and string.format(' in %d stages', #trainer.stages) or ''))
   end)
   trainer.restore_defaults()
   if not ok then error(err, 0) end
end

return M
