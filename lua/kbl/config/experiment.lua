--- kbl.config.experiment: a resolved config made into a run: defaults by type
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

-- The keys of schema.TOP taken as they are (no spec to build): those of a
-- plain type.
local PLAIN = {string = true, integer = true, posint = true, count = true, posnum = true, boolean = true,
   device = true, split = true, shuffle = true, tensorboard = true, profile = true}
local SCALARS = {}
for k, ty in pairs(schema.TOP) do if PLAIN[ty] then SCALARS[#SCALARS + 1] = k end end
table.sort(SCALARS)

local function where(origins, key) return schema.where(origins, key) end

-- With stages, the first stage runs the top-level `epochs` unless it names
-- its own, and each later stage inherits the one before. A top-level epochs
-- that the first stage overrides, given with --set or in the file that has the
-- stages, is refused rather than ignored; from a base config (fit's epochs =
-- 10) it is only a default.
local function check_stage_epochs(cfg, origins)
   if type(cfg.stages) ~= 'table' or #cfg.stages == 0 or cfg.epochs == nil or not origins then return end
   local first = cfg.stages[1]
   if type(first) ~= 'table' or first.epochs == nil then return end
   local from, stages_from = origins.epochs or '', (origins.stages or ''):gsub(':%d+$', '')
   if not (from:match('^%-%-set') or from:gsub(':%d+$', '') == stages_from) then return end
   error(string.format("%s: 'epochs' = %s is not used: with stages, the first stage runs the top-level epochs "
      .. "unless it names its own (it names %s) and each later stage inherits the one before; set a stage's "
      .. "epochs (--set stages.1.epochs=%s), or leave epochs out of the first stage",
      from, tostring(cfg.epochs), tostring(first.epochs), tostring(cfg.epochs)), 0)
end

-- Builds every part of the run. Returns a table of built parts and a function
-- that undoes the defaults by type. opts.parts limits what is built (check).
function M.build(cfg, origins)
   for _, key in ipairs{'model', 'data', 'loss', 'optimizer'} do
      if cfg[key] == nil then
         error(string.format("%s: the config has no '%s'; add %s", where(origins, ''), key, REQUIRED[key]), 0)
      end
   end
   check_stage_epochs(cfg, origins)
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
   -- every trainer option is a config key of the same name (schema.TOP), or one of opts
   local o = {}
   for k in pairs(fit.OPTIONS) do if k ~= 'source' and k ~= 'data' then o[k] = parts[k] end end
   o.data, o.optimizer = parts.source, parts.stages[1].optimizer
   o.quiet, o.progress, o.out, o.run_dir = opts.quiet, opts.progress, opts.out, opts.run_dir
   local trainer = fit.Trainer(o)
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
