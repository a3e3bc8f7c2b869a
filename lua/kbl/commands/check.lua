--- kbl check: validates configs without training: composes them, checks every
-- key and type, builds every spec (data source, model, loss, optimizers,
-- metrics, callbacks) and runs one training batch through the model and the
-- loss under no-grad, so that shapes, label ranges and class counts are
-- checked before a run. Prints one line per config set and exits 0, or names
-- the first problem and exits 1.
local M = {summary = 'Validate experiment configs without training.'}

function M.describe(cmd)
   cmd:argument('files', 'Config files or names, composed as by kbl run.'):args('+')
   cmd:option('--set', 'Override a value: key=value (repeatable).'):count('*'):argname('<key=value>')
   cmd:flag('--no-build', 'Only check keys and types; build nothing.')
end

-- The options that set how many outputs a block makes.
local OUT_KEYS = {num_classes = true, units = true, outputs = true, classes = true, filters = true}

-- The key path in the model's config that sets its number of outputs to n
-- (the last such in the model, as a head comes last): 'model.head.num_classes',
-- 'model.2.units' for blocks.Dense{5}, 'model.units.2' for units = {64, 5}.
local function output_key(model_cfg, n)
   local S = require 'kbl.config.spec'
   local found
   local function walk(v, path)
      if S.is_spec(v) then
         local targ = v:table_arg()
         if not targ then return end
         local ok, ctor = pcall(S.resolve_type, v.type)
         local pos = ok and type(ctor) == 'table' and ctor.positional or {}
         for _, k in ipairs(require('kbl.util').sorted_keys(targ)) do
            local name = type(k) == 'number' and pos[k] or k
            local x = targ[k]
            if OUT_KEYS[name] and x == n then found = path .. '.' .. name end
            if OUT_KEYS[name] and type(x) == 'table' and not S.is_spec(x) and #x > 0 and x[#x] == n then
               found = path .. '.' .. name .. '.' .. #x
            end
            walk(x, path .. '.' .. tostring(k))
         end
      elseif type(v) == 'table' and not S.is_ref(v) and not S.is_namespace(v) then
         for k, x in pairs(v) do walk(x, path .. '.' .. tostring(k)) end
      end
   end
   walk(model_cfg, 'model')
   return found
end

-- One batch of the training split (transforms applied, not shuffled) through
-- the model and the loss, under no-grad. For losses.CrossEntropy, labels
-- (of the batch, and up to the source's meta.num_classes) beyond the classes
-- the model's output has are named before the loss sees them.
local function one_batch(trainer, cfg, origins)
   local kbl = require 'kbl'
   local schema = require 'kbl.config.schema'
   local pipe = trainer:pipeline(trainer.train_split, false)
   local batch = pipe:iter()()
   if pipe.close then pipe:close() end
   if not batch then error(string.format("the '%s' split gave no batch", trainer.train_split), 0) end
   local model = trainer.model
   model:eval()
   local ok, err = pcall(kbl.no_grad, function()
      local x, y = batch.x, batch.y
      if trainer.device and trainer.device ~= 'cpu' then x, y = x:to(trainer.device), y and y:to(trainer.device) end
      if type(model.prepare) == 'function' then x = model:prepare(x) end   -- a Model's preprocess, as fit runs it
      local pred = model(x)
      local loss = trainer.loss
      if type(loss) == 'table' and loss.type_name == 'CrossEntropy' and kbl.is_tensor(y)
         and (y.dtype == 'int64' or y.dtype == 'int32') and kbl.is_tensor(pred) and pred:dim() >= 2
         and y:numel() > 0 then
         local classes = pred:size(2)
         local meta = trainer.source and trainer.source.meta or {}
         -- labels equal to ignore_index may lie anywhere: then only the source's count is known
         local seen = loss.ignore_index == nil and y:max():item() or 0
         local top = math.max(seen, tonumber(meta.num_classes) or 0)
         if top > classes then
            local key = output_key(cfg.model, classes)
            error({checked = string.format("%s: labels go up to %d but the model's output has %d classes%s",
               schema.where(origins, key or 'model'), top, classes, key and ' (' .. key .. ')' or '')})
         end
      end
      if y ~= nil then trainer.loss(pred, y) end
   end)
   model:train()
   if not ok then
      if type(err) == 'table' and err.checked then error(err.checked, 0) end
      error('one training batch through the model and the loss: ' .. require('kbl.message').clean(err), 0)
   end
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
      one_batch(trainer, cfg, origins)
      local n = 0
      for _, p in ipairs(trainer.model:parameters()) do n = n + p:numel() end
      print(string.format('ok: %s: %s, %d trainable parameters, %s%s', table.concat(args.files, ' '),
         tostring(cfg.name), n, require('kbl.util').plural(trainer:total_epochs(), 'epoch'),
         #trainer.stages > 1 and string.format(' in %d stages', #trainer.stages) or ''))
   end)
   trainer.restore_defaults()
   if not ok then error(err, 0) end
end

return M
