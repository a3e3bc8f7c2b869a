--- kbl.config.schema: the keys an experiment config may have, their types, and
-- validation whose messages name the key path, the file and line that set it,
-- and the closest valid key. The arguments inside a spec are checked by the
-- constructor the spec names when the run starts (their errors get the same
-- file and line, see kbl.config.spec).
local S = require 'kbl.config.spec'

local M = {}

-- ---- the closest valid key --------------------------------------------------

local distance = require('kbl.util').distance   -- edit distance, swaps of neighbours counting one
M.distance = distance

local function common_prefix(a, b)
   local i = 0
   while i < #a and i < #b and a:sub(i + 1, i + 1) == b:sub(i + 1, i + 1) do i = i + 1 end
   return i
end

-- The name in names nearest to key (edit distance; ties go to the longer
-- common prefix, then by order), or nil.
function M.closest(key, names)
   local best, bd, bp
   local sorted = {}
   for _, n in ipairs(names) do sorted[#sorted + 1] = n end
   table.sort(sorted)
   local k = key:lower()
   for _, n in ipairs(sorted) do
      local l = n:lower()
      local d = distance(k, l)
      if l:sub(1, #key) == k then d = d - 0.5 end -- a prefix is closer
      local p = common_prefix(k, l)
      if not bd or d < bd or (d == bd and p > bp) then best, bd, bp = n, d, p end
   end
   return best
end

-- ---- types ------------------------------------------------------------------

local function is_int(v) return type(v) == 'number' and v % 1 == 0 and v > -2^53 and v < 2^53 end

local function is_object(v)
   local t = type(v)
   return t == 'table' or t == 'function' or t == 'userdata' or t == 'cdata'
end

-- name -> {check, description}
local TYPES = {
   string = {function(v) return type(v) == 'string' end, 'a string'},
   integer = {is_int, 'an integer'},
   posint = {function(v) return is_int(v) and v >= 1 end, 'an integer >= 1'},
   count = {function(v) return is_int(v) and v >= 0 end, 'an integer >= 0'},
   posnum = {function(v) return type(v) == 'number' and v > 0 end, 'a number > 0'},
   boolean = {function(v) return type(v) == 'boolean' end, 'true or false'},
   device = {function(v) return v == 'cpu' or v == 'cuda' or (type(v) == 'string' and v:match('^cuda:%d+$')) end,
      "'cpu' or 'cuda'"},
   object = {is_object, 'a spec such as blocks.MLP{...}'},
   list = {function(v) return type(v) == 'table' and not S.is_spec(v) and (v[1] ~= nil or next(v) == nil) end,
      'a list {...}'},
   map = {function(v) return type(v) == 'table' and not S.is_spec(v) end, 'a table'},
   split = {function(v) return v == false or type(v) == 'string' end, 'a split name or false'},
   shuffle = {function(v) return type(v) == 'boolean' or (type(v) == 'table' and not S.is_spec(v)) end,
      'true, false or {buffer = n}'},
   names = {function(v) return type(v) == 'string' or (type(v) == 'table' and not S.is_spec(v)) end,
      'a config name or a list of them'},
   patterns = {function(v) return type(v) == 'string' or (type(v) == 'table' and not S.is_spec(v)) end,
      "a path pattern ('backbone.*') or a list of them"},
   tensorboard = {function(v) return type(v) == 'table' and not S.is_spec(v) end,
      'a table such as {scalars_every_steps = 50}'},
   profile = {function(v) return type(v) == 'table' and not S.is_spec(v) end,
      'a table {from = N, to = M} of the steps to profile'},
}
M.TYPES = TYPES

-- The keys of an experiment. Values that are refs are checked once resolved.
M.TOP = {
   name = 'string',             -- the experiment's name: runs/<name>/<time>/
   extends = 'names',           -- base configs this file builds on (gone once loaded)
   seed = 'integer',            -- seeds the generator, initialisation and shuffling
   -- 'cpu' or 'cuda': where the model and the batches live
   device = 'device',
   threads = 'posint',          -- kbl.set_num_threads
   -- epochs to train (the first stage runs these unless it names its own)
   epochs = 'posint',
   steps_per_epoch = 'posint',  -- at most this many steps an epoch
   -- at most this many batches each validation
   validation_steps = 'posint',
   -- examples a training batch
   batch_size = 'posint',
   -- examples a batch in validation and test (default batch_size)
   eval_batch_size = 'posint',
   -- the model, a block spec: blocks.Model{...}, blocks.MLP{...}
   model = 'object',
   data = 'object',             -- a source: data.fashion_mnist{...}
   -- the loss: losses.CrossEntropy{}, losses.MSE{}, ...
   loss = 'object',
   -- optim.Adam{lr = 1e-3} and the like; lr may be a schedule
   optimizer = 'object',
   -- metrics computed each step and each validation: {metrics.Accuracy{}}
   metrics = 'list',
   -- callbacks.EarlyStopping{...}, callbacks.ModelCheckpoint{...}, ...
   callbacks = 'list',
   -- shuffle the training split each epoch (true, false or {buffer = n})
   shuffle = 'shuffle',
   -- drop the last, smaller training batch
   drop_remainder = 'boolean',
   -- batches made ahead on a thread (0: none)
   prefetch = 'count',
   transforms = 'list',         -- pipeline steps for every split: {'normalize', {mean =, std =}}
   augment = 'list',            -- pipeline steps for the training split only
   -- the split trained on (default 'train')
   train_split = 'string',
   -- the split validated each epoch (default 'validation'; false: none)
   validation_split = 'split',
   -- the split evaluated after training (default 'test'; false: none)
   test_split = 'split',
   -- scales the gradients down to this total norm each step
   clip_grad_norm = 'posnum',
   -- clamps each gradient element to [-v, v] each step
   clip_grad_value = 'posnum',
   -- stop on a NaN or infinite loss (default true; callbacks.TerminateOnNaN)
   terminate_on_nan = 'boolean',
   -- stages run in turn, each inheriting the one before: {{epochs = 2, freeze = 'backbone'}, {lr = 1e-4}}
   stages = 'list',
   defaults = 'map',            -- defaults by type: {['blocks.Dense'] = {kernel_init = 'he_normal'}}
   runs = 'string',             -- where run directories go (default 'runs')
   vars = 'map',                -- free values for ref 'vars.x'
   sweep = 'map',               -- kbl sweep's grid, random search and halving (kbl run ignores it)
   tensorboard = 'tensorboard', -- what the event file holds besides epoch metrics (M.TENSORBOARD)
   profile = 'profile',         -- {from = 10, to = 20}: profile those steps (kbl.profile; kbl run --profile)
}

-- The keys of TOP that the config itself uses; every other one is an option
-- of kbl.fit's Trainer, under the same name (this is the one list of them).
M.CONFIG_ONLY = {extends = true, threads = true, defaults = true, runs = true, vars = true, sweep = true}

-- The Trainer's options that a script gives and a config does not.
M.TRAINER = {
   train_data = 'object',       -- a training pipeline instead of data's train split
   validation_data = 'object',  -- a validation pipeline
   progress = 'string',         -- 'auto', 'bar', 'lines' or 'none'
   quiet = 'boolean',           -- no progress or messages
   out = 'object',              -- where progress goes (io.stdout)
   run_dir = 'string',          -- the run directory, for callbacks
}

-- The keys a stage may name; the rest come from the stage before it.
--   name: the stage's name in progress lines and records
--   epochs: epochs of this stage
--   steps_per_epoch: at most this many steps an epoch in this stage
--   optimizer: a new optimizer for this stage (its state starts afresh)
--   lr: the learning rate from this stage on (the optimizer's, or a schedule's base)
--   freeze: parameter paths to freeze from this stage on ('backbone' or 'backbone.*', or a list)
--   unfreeze: parameter paths to train again
--   clip_grad_norm: as the top-level key, for this stage
--   clip_grad_value: as the top-level key, for this stage
M.STAGE = {
   name = 'string', epochs = 'posint', steps_per_epoch = 'posint', optimizer = 'object',
   lr = 'posnum', freeze = 'patterns', unfreeze = 'patterns', clip_grad_norm = 'posnum',
   clip_grad_value = 'posnum',
}

-- The keys of `tensorboard` (kbl.records.tensorboard_logger; 0 turns a kind off).
M.TENSORBOARD = {
   scalars_every_steps = 'count',    -- step/loss, step/lr, step/samples_per_sec every N steps
   histograms_every_steps = 'count', -- weights/<param> and gradients/<param> every N steps
   histogram_buckets = 'posint',     -- buckets per histogram (30)
   hparams = 'boolean',              -- the config's scalar keys and final metrics (true)
}

-- The keys of `profile`: the first and last step profiled, counted from 1 over the run.
M.PROFILE = {from = 'posint', to = 'posint'}

-- ---- validation -------------------------------------------------------------

-- Where a path was set: the origin of its longest recorded prefix.
function M.where(origins, path)
   origins = origins or {}
   local p = path
   while p and p ~= '' do
      if origins[p] then return origins[p] end
      p = p:match('^(.*)%.[^%.]*$')
   end
   return origins[''] or 'config'
end

local function describe(v)
   if type(v) == 'string' then return string.format('string %q', v) end
   if S.is_spec(v) then return 'a spec ' .. v.type .. '{...}' end
   if type(v) == 'table' then return 'a table' end
   return string.format('%s %s', type(v), tostring(v))
end
M.describe = describe

local function keys_of(schema)
   local names = {}
   for k in pairs(schema) do names[#names + 1] = k end
   return names
end

local function check_map(tbl, schema, prefix, origins)
   local keys = {}
   for k in pairs(tbl) do keys[#keys + 1] = k end
   table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
   for _, k in ipairs(keys) do
      local v = tbl[k]
      local path = prefix .. tostring(k)
      local tname = type(k) == 'string' and schema[k]
      if not tname then
         local hint = M.closest(tostring(k), keys_of(schema))
         error(string.format("%s: unknown config key '%s' (did you mean '%s'?)",
            M.where(origins, path), path, prefix .. hint), 0)
      end
      if not S.is_ref(v) then
         local ty = TYPES[tname]
         if not ty[1](v) then
            error(string.format("%s: config key '%s' must be %s, got %s",
               M.where(origins, path), path, ty[2], describe(v)), 0)
         end
      end
   end
end

-- Checks a resolved config; raises the first problem as one clear line.
function M.validate(cfg, origins)
   check_map(cfg, M.TOP, '', origins)
   if type(cfg.stages) == 'table' then
      for i, st in ipairs(cfg.stages) do
         local path = 'stages.' .. i
         if type(st) ~= 'table' or S.is_spec(st) then
            error(string.format("%s: config key '%s' must be a table of stage settings, got %s",
               M.where(origins, path), path, describe(st)), 0)
         end
         check_map(st, M.STAGE, path .. '.', origins)
      end
   end
   if type(cfg.tensorboard) == 'table' and not S.is_spec(cfg.tensorboard) then
      check_map(cfg.tensorboard, M.TENSORBOARD, 'tensorboard.', origins)
   end
   if type(cfg.profile) == 'table' and not S.is_spec(cfg.profile) then
      local pr = cfg.profile
      check_map(pr, M.PROFILE, 'profile.', origins)
      for _, k in ipairs{'from', 'to'} do
         if pr[k] == nil then
            error(string.format("%s: config key 'profile' needs '%s': profile = {from = 10, to = 20} profiles "
               .. 'steps 10 to 20', M.where(origins, 'profile'), k), 0)
         end
      end
      if not S.is_ref(pr.from) and not S.is_ref(pr.to) and pr.from > pr.to then
         error(string.format("%s: config key 'profile' has from = %d after to = %d; the steps run from..to",
            M.where(origins, 'profile'), pr.from, pr.to), 0)
      end
   end
   if type(cfg.defaults) == 'table' then
      for tname, d in pairs(cfg.defaults) do
         local path = 'defaults.' .. tostring(tname)
         -- a type name, or a scope and a block type: ['backbone/blocks.Dense']
         local scope, tn = tostring(tname):match('^([%w_]+)/(.*)$')
         if type(tname) ~= 'string' or not (tn or tname):match('^[%a_][%w_]*%.')
            or (scope and not tn:match('^blocks%.')) then
            error(string.format("%s: defaults are keyed by a type name such as ['blocks.Dense'], or a scope "
               .. "and a block type such as ['backbone/blocks.Dense'], got %s", M.where(origins, path),
               describe(tname)), 0)
         end
         local root = (tn or tname):match('^([%w_]+)')
         if not S.MODULES[root] then
            error(string.format("%s: defaults key '%s' does not start with one of %s",
               M.where(origins, path), tname, table.concat(S.NAMESPACES, ', ')), 0)
         end
         if type(d) ~= 'table' or S.is_spec(d) then
            error(string.format("%s: config key '%s' must be a table of arguments, got %s",
               M.where(origins, path), path, describe(d)), 0)
         end
      end
   end
   for _, key in ipairs{'metrics', 'callbacks'} do
      if type(cfg[key]) == 'table' then
         for i, v in ipairs(cfg[key]) do
            if not is_object(v) then
               local path = key .. '.' .. i
               error(string.format("%s: config key '%s' must be a spec such as %s, got %s",
                  M.where(origins, path), path,
                  key == 'metrics' and 'metrics.Accuracy{}' or 'callbacks.EarlyStopping{}', describe(v)), 0)
            end
         end
      end
   end
   return true
end

-- Checks one resolved scalar (after refs): used for the values refs stand for.
function M.check_value(key, v, origins, schema)
   local tname = (schema or M.TOP)[key]
   if tname and v ~= nil and not TYPES[tname][1](v) then
      error(string.format("%s: config key '%s' must be %s, got %s", M.where(origins, key), key,
         TYPES[tname][2], describe(v)), 0)
   end
end

return M
