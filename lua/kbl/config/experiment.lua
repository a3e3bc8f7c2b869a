-- kbl.config.experiment: a resolved config made into a run: defaults by type
-- applied, refs resolved, every spec built (source, model, loss, optimizer per
-- stage, metrics, callbacks), and a kbl.fit trainer over them. What `kbl run`,
-- `kbl check` and `kbl eval` share.
local kbl = require 'kbl'
local config = require 'kbl.config'
local schema = require 'kbl.config.schema'
local S = require 'kbl.config.spec'

local M = {}

local REQUIRED = {
   model = 'model = blocks.MLP{units = {256}} (or any block)',
   data = 'data = data.fashion_mnist{} (or any source)',
   loss = 'loss = losses.CrossEntropy{}',
   optimizer = 'optimizer = optim.Adam{lr = 1e-3}',
}

local SCALARS = {'seed', 'device', 'threads', 'epochs', 'steps_per_epoch', 'validation_steps', 'batch_size',
   'eval_batch_size', 'shuffle', 'drop_remainder', 'prefetch', 'train_split', 'validation_split', 'test_split',
   'clip_grad_norm', 'clip_grad_value', 'terminate_on_nan', 'name'}

local function where(origins, key) return schema.where(origins, key) end

-- Builds every part of the run. Returns a table of built parts and a function
-- that undoes the defaults by type. opts.parts limits what is built (check).
function M.build(cfg, origins)
   for _, key in ipairs{'model', 'data', 'loss', 'optimizer'} do
      if cfg[key] == nil then
         error(string.format("%s: the config has no '%s'; add %s", where(origins, ''), key, REQUIRED[key]), 0)
      end
   end
   local refs = {}
   local function build(value, path) return config.build(value, cfg, path, refs, origins) end
   local parts = {}
   for _, key in ipairs(SCALARS) do
      local v = cfg[key]
      if S.is_ref(v) then
         v = build(v, key)
         schema.check_value(key, v, origins)
      end
      parts[key] = v
   end
   local undo = config.apply_defaults(cfg)
   local ok, err = pcall(function()
      if parts.threads then kbl.set_num_threads(parts.threads) end
      -- the seed comes before the model, so that blocks initialised when built are seeded
      if parts.seed then kbl.manual_seed(parts.seed) end
      parts.source = build(cfg.data, 'data')
      parts.model = build(cfg.model, 'model')
      if type(parts.model) ~= 'table' or type(parts.model.parameters) ~= 'function' then
         error(string.format("%s: 'model' built %s, which is not a block (it has no parameters())",
            where(origins, 'model'), schema.describe(parts.model)), 0)
      end
      parts.loss = build(cfg.loss, 'loss')
      parts.metrics = build(cfg.metrics or {}, 'metrics')
      parts.callbacks = build(cfg.callbacks or {}, 'callbacks')
      parts.transforms = build(cfg.transforms, 'transforms')
      parts.augment = build(cfg.augment, 'augment')
      parts.stages = {}
      for i, st in ipairs(config.stages(cfg)) do
         local path = cfg.stages and ('stages.' .. i) or ''
         local built = {}
         for k, v in pairs(st) do
            if k ~= 'optimizer' then built[k] = build(v, path == '' and k or path .. '.' .. k) end
         end
         if st.new_optimizer then
            built.optimizer = build(st.optimizer, (cfg.stages and st.optimizer ~= cfg.optimizer)
               and path .. '.optimizer' or 'optimizer')
         end
         for _, key in ipairs{'epochs', 'lr', 'steps_per_epoch'} do
            schema.check_value(key, built[key], origins, schema.STAGE)
         end
         parts.stages[i] = built
      end
   end)
   if not ok then
      undo()
      error(err, 0)
   end
   return parts, undo
end

-- A trainer for the config. opts: quiet, progress, out, run_dir, origins.
function M.trainer(cfg, opts)
   opts = opts or {}
   local parts, undo = M.build(cfg, opts.origins)
   local fit = require 'kbl.fit'
   local trainer = fit.Trainer{
      name = parts.name, model = parts.model, source = parts.source, loss = parts.loss,
      metrics = parts.metrics, callbacks = parts.callbacks, stages = parts.stages,
      optimizer = parts.stages[1].optimizer, epochs = parts.epochs, steps_per_epoch = parts.steps_per_epoch,
      validation_steps = parts.validation_steps, seed = parts.seed, device = parts.device,
      batch_size = parts.batch_size, eval_batch_size = parts.eval_batch_size, shuffle = parts.shuffle,
      prefetch = parts.prefetch, transforms = parts.transforms, augment = parts.augment,
      drop_remainder = parts.drop_remainder, train_split = parts.train_split,
      validation_split = parts.validation_split, test_split = parts.test_split,
      clip_grad_norm = parts.clip_grad_norm, clip_grad_value = parts.clip_grad_value,
      terminate_on_nan = parts.terminate_on_nan, quiet = opts.quiet, progress = opts.progress, out = opts.out,
      run_dir = opts.run_dir,
   }
   trainer.restore_defaults = undo
   return trainer, parts
end

-- The model summary text (blocks print it as they make it; quietly here).
function M.summary(model)
   if type(model.summary) ~= 'function' then return tostring(model) end
   local saved = print
   _G.print = function() end
   local ok, text = pcall(model.summary, model)
   _G.print = saved
   if not ok then error(text, 0) end
   return type(text) == 'string' and text or tostring(model)
end

return M
