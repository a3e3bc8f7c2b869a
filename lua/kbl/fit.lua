--- kbl.fit: the trainer. One loop over model, data source, loss, optimizer,
-- metrics and callbacks: forward, loss, backward, clip, step, metrics; each
-- step's intermediates freed with kbl.scope; validation each epoch under
-- no-grad; evaluate and predict on any split; stages (each with its epochs,
-- optimizer, learning rate and frozen parts); per-phase timings.
--
--   local fit = require 'kbl.fit'
--   local trainer = fit.Trainer{model = m, data = src, loss = losses.CrossEntropy{},
--      optimizer = optim.Adam{lr = 1e-3}, metrics = {metrics.Accuracy{}}, epochs = 10, batch_size = 128}
--   local history = trainer:fit()
--   local test = trainer:evaluate('test')          --> {loss = ..., accuracy = ...}
--
-- Hooks for run records (checkpoints, exact resume): callbacks receive the
-- trainer as their context (ctx.model, ctx.optimizer, ctx.step, ctx.epoch,
-- ctx.logs, ctx.history, ctx.run_dir) in on_train_begin, on_stage_begin,
-- on_epoch_begin, on_batch_begin, on_batch_end, on_epoch_end and on_train_end,
-- and return their decision: nil to go on, 'stop' to end the run after this
-- epoch, 'stop_now' after this step (ctx.stop_training = true / 'now', the
-- older way, still works). trainer:state() gathers everything a resume needs
-- and trainer:set_state(s) (before fit) continues from it.
--
-- The trainer's options are read-only once it is made (trainer.options);
-- what changes as it runs is its state (kbl.fit reads trainer.x from the
-- state, then the options).
local ffi = require 'ffi'
local kbl = require 'kbl'

local M = {}

-- ---- wall clock and terminal ------------------------------------------------
-- Phases are timed with the monotonic wall clock (os.clock is CPU time summed
-- over threads). The asm name keeps this declaration apart from others'.
ffi.cdef[[int kbl_fit_isatty(int fd) __asm__("isatty");]]
local now = require('kbl.clock').now
--- The monotonic wall clock in seconds (phase timings).
-- @local
M.now = now
--- Whether a file descriptor is a terminal (the progress display's choice).
-- @local
function M.isatty(fd) return ffi.C.kbl_fit_isatty(fd or 1) == 1 end

-- ---- the trainer --------------------------------------------------------------

local Trainer = {}

-- The options a Trainer takes: the experiment keys of kbl.config.schema that
-- reach the trainer (the one list of them), and those only a script gives.
-- `source` is the old name of `data`.
local schema = require 'kbl.config.schema'
local OPTIONS = {}
for k in pairs(schema.TOP) do if not schema.CONFIG_ONLY[k] then OPTIONS[k] = true end end
for k in pairs(schema.TRAINER) do OPTIONS[k] = true end
OPTIONS.source = true
M.OPTIONS = OPTIONS

-- What changes as the trainer runs, under names that options also have: the
-- optimizer in use, the callbacks (with the trainer's own), the stage's
-- steps_per_epoch.
local STATE = {optimizer = true, callbacks = true, steps_per_epoch = true}

-- A trainer is two tables: its options (read-only once made, defaults filled
-- in) and its state (counters, pipelines, the optimizer in use...). Reading
-- trainer.x finds a method, then the state, then the options; writing one
-- sets the state, and an option's name is an error.
Trainer.__index = function(self, k)
   local m = Trainer[k]
   if m ~= nil then return m end
   local v = rawget(self, '_state')[k]
   if v ~= nil then return v end
   return rawget(self, 'options')[k]
end
Trainer.__newindex = function(self, k, v)
   if OPTIONS[k] and not STATE[k] then
      error(string.format("fit: the option '%s' is read-only once the trainer is made; give it to "
         .. 'fit.Trainer{...}', tostring(k)), 2)
   end
   rawget(self, '_state')[k] = v
end

local function read_only(t)
   return setmetatable({}, {__index = t,
      __newindex = function(_, k)
         error(string.format("fit: the option '%s' is read-only once the trainer is made", tostring(k)), 2)
      end})
end

local warned_source = false

--- Makes a trainer. Its options are the experiment keys of kbl.config.schema that
-- reach the trainer (`kbl doc config`) and those only a script gives (`kbl doc config.trainer`).
-- Required: model, loss, an optimizer (or stages that each name one), and data (a
-- source, or a train_data pipeline).
-- @tparam table opts {model =, data =, loss =, optimizer =, metrics =, callbacks =, epochs =, batch_size =, ...}
-- @treturn table the trainer: trainer:fit(), trainer:evaluate('test'), trainer:predict('test')
-- @usage local trainer = fit.Trainer{model = m, data = src, loss = losses.CrossEntropy{},
--    optimizer = optim.Adam{}, epochs = 2}
-- local history = trainer:fit()
function M.Trainer(opts)
   for k in pairs(opts) do
      if not OPTIONS[k] then
         local names = {}
         for n in pairs(OPTIONS) do if n ~= 'source' then names[#names + 1] = n end end
         error(string.format("fit.Trainer: unknown option '%s' (did you mean '%s'?)", tostring(k),
            schema.closest(tostring(k), names)), 2)
      end
   end
   for _, k in ipairs{'model', 'loss'} do
      if opts[k] == nil then error('fit.Trainer: ' .. k .. ' is required', 2) end
   end
   local o = {}
   for k, v in pairs(opts) do o[k] = v end
   if o.source ~= nil then
      if o.data ~= nil and o.data ~= o.source then
         error('fit.Trainer: give the data once: data = (source = is its old name)', 2)
      end
      if not warned_source then
         warned_source = true
         io.stderr:write("warning: fit.Trainer: 'source =' is now 'data =' (the name configs use)\n")
      end
      o.data = o.source
   end
   o.source = o.data   -- read as trainer.source too
   if o.data == nil and o.train_data == nil then
      error('fit.Trainer: give a data source (data =) or a training pipeline (train_data =)', 2)
   end
   o.metrics = o.metrics or {}
   o.batch_size = o.batch_size or 32
   o.eval_batch_size = o.eval_batch_size or o.batch_size
   o.train_split = o.train_split or 'train'
   if o.validation_split == nil then o.validation_split = 'validation' end
   if o.test_split == nil then o.test_split = 'test' end
   o.device = o.device or 'cpu'
   local stages = {}
   for i, st in ipairs(opts.stages or {{name = 'main', optimizer = opts.optimizer,
      steps_per_epoch = opts.steps_per_epoch}}) do
      local c = {}
      for k, v in pairs(st) do c[k] = v end
      c.index = c.index or i
      c.epochs = c.epochs or opts.epochs or 1
      stages[i] = read_only(c)
   end
   o.stages = stages
   if not stages[1].optimizer and not opts.optimizer then
      error('fit.Trainer: an optimizer is required', 2)
   end
   local self = setmetatable({options = read_only(o), _state = {}}, Trainer)
   local state = rawget(self, '_state')
   state.trainer = self
   state.callbacks = {}
   state.step, state.epoch, state.epochs_done, state.batches_done = 0, 0, 0, 0
   state.history = {}
   -- the progress display first, so that the epoch line comes before what
   -- other callbacks say about the epoch (early stopping, a lowered rate)
   local cbs = require 'kbl.callbacks'
   if not o.quiet and o.progress ~= 'none' then
      state.callbacks[#state.callbacks + 1] = cbs.Progress{mode = o.progress or 'auto', out = o.out}
   end
   if o.terminate_on_nan ~= false then state.callbacks[#state.callbacks + 1] = cbs.TerminateOnNaN{} end
   for _, cb in ipairs(o.callbacks or {}) do state.callbacks[#state.callbacks + 1] = cb end
   return self
end

--- The epochs of every stage together.
-- @treturn number
-- @usage print(trainer:total_epochs())
function Trainer:total_epochs()
   local n = 0
   for _, st in ipairs(self.stages) do n = n + st.epochs end
   return n
end

--- Prints a line for the person watching (early stopping, a lowered rate...), unless quiet.
-- @tparam string text
-- @usage ctx:message('lowering the rate')
function Trainer:message(text)
   if self.quiet then return end
   local out = self.out or io.stdout
   out:write(text, '\n')
   out:flush()
end

--- Adds a callback.
-- @tparam table cb
-- @treturn table cb
-- @usage trainer:add_callback(callbacks.CSVLogger{path = 'log.csv'})
function Trainer:add_callback(cb) self.callbacks[#self.callbacks + 1] = cb; return cb end

-- What a hook may return: nil (go on), 'stop' (end the run after this epoch)
-- or 'stop_now' (after this step). The strongest of the callbacks' wins.
local DECISIONS = {stop = 1, stop_now = 2}
M.DECISIONS = DECISIONS

local function stronger(a, b)
   if a == nil then return b end
   if b == nil then return a end
   return DECISIONS[b] > DECISIONS[a] and b or a
end

--- Calls a hook of every callback; returns the decision (nil, 'stop' or 'stop_now').
-- @local
function Trainer:call(hook, ...)
   local decision
   for _, cb in ipairs(self.callbacks) do
      local fn = cb[hook]
      if fn then
         local d = fn(cb, self, ...)
         if d ~= nil and not DECISIONS[d] then
            error(string.format("fit: %s's %s returned %s; a hook returns nil, 'stop' or 'stop_now'",
               tostring(cb.name or cb), hook, tostring(d)), 0)
         end
         decision = stronger(decision, d)
      end
   end
   local legacy = rawget(self, '_state').stop_training
   if legacy then decision = stronger(decision, legacy == 'now' and 'stop_now' or 'stop') end
   return decision
end

-- ---- data -------------------------------------------------------------------

-- Pipeline steps from a config: {'normalize', {mean = 0.286, std = 0.353}}
-- calls pipe:normalize{...}; a function is a map over batches.
local function apply_steps(pipe, steps, what)
   for i, st in ipairs(steps or {}) do
      if type(st) == 'function' then
         pipe = pipe:map(st, {batched = true})
      else
         local name = type(st) == 'table' and (st[1] or st.op)
         local fn = type(name) == 'string' and pipe[name]
         if not fn then
            error(string.format("fit: %s step %d names '%s', which a pipeline does not have", what, i,
               tostring(name)), 0)
         end
         pipe = fn(pipe, unpack(st, 2, table.maxn(st)))
      end
   end
   return pipe
end

--- A batched pipeline over a split of the source: shuffled, batched, transformed, augmented (training only), prefetched.
-- @tparam string split
-- @tparam boolean training
-- @tparam[opt] number batch_size
-- @tparam[opt] boolean shard on several processes, each takes its rows of every batch
--   (training pipelines always do; kbl.dist.trainer)
-- @treturn table the pipeline
-- @usage local p = trainer:pipeline('validation', false)
function Trainer:pipeline(split, training, batch_size, shard)
   if not self.source then error("fit: no data source to take the '" .. split .. "' split from", 0) end
   local ok, pipe = pcall(self.source.split, self.source, split)
   if not ok then error((tostring(pipe):gsub('^[^%s:]+%.lua:%d+: ', '')), 0) end
   if training and self.shuffle ~= false then
      local sh = type(self.shuffle) == 'table' and self.shuffle or {}
      pipe = pipe:shuffle{seed = sh.seed or self.seed or 1, buffer = sh.buffer}
   end
   pipe = pipe:batch(batch_size or (training and self.batch_size or self.eval_batch_size),
      {drop_remainder = training and self.drop_remainder or false})
   -- on several processes each takes its rows of every global batch (kbl.dist.trainer)
   if training or shard then pipe = require('kbl.dist.trainer').shard(pipe, not training) end
   pipe = apply_steps(pipe, self.transforms, 'transforms')
   if training then pipe = apply_steps(pipe, self.augment, 'augment') end
   if (self.prefetch or 2) > 0 and pipe.prefetch then pipe = pipe:prefetch(self.prefetch or 2) end
   return pipe
end

local function has_split(self, name)
   if not name or not self.source then return false end
   local sizes = self.source.meta and self.source.meta.sizes
   if sizes then return (sizes[name] or 0) > 0 end
   local ok, n = pcall(self.source.size, self.source, name)
   return ok and (n or 0) > 0
end

local function to_device(self, t)
   if self.device ~= 'cpu' and kbl.is_tensor(t) then return t:to(self.device) end
   return t
end

-- The model's input for a batch's x: a Model's preprocess part runs in
-- training, evaluation and predict alike (what trains is what deploys).
local function model_input(self, x)
   x = to_device(self, x)
   local m = self.model
   if type(m.prepare) == 'function' then return m:prepare(x) end
   return x
end

--- Seeds the generator, makes the pipelines and builds the (lazy) model on one small
-- batch, so that parameters exist before training. Idempotent.
-- @usage trainer:build(); trainer.model:load('w.safetensors')
function Trainer:build()
   if self.built then return self end
   if self.seed then kbl.manual_seed(self.seed) end
   self.train_pipe = self.train_data or self:pipeline(self.train_split, true)
   if self.validation_data then
      self.val_pipe = self.validation_data
   elseif has_split(self, self.validation_split) then
      self.val_pipe = self:pipeline(self.validation_split, false, nil, true)
   end
   local probe = self.source and self:pipeline(self.train_split, false, 2) or self.train_pipe
   local batch = probe:iter()()
   if not batch then error('fit: the training split gave no batch', 0) end
   if self.model.to and self.device ~= 'cpu' then self.model:to(self.device) end
   self.model:eval()
   -- a head without num_classes takes the data's (meta.num_classes), as it is built here
   require('kbl.blocks.ClassificationHead').with_data_meta(self.source and self.source.meta, function()
      kbl.no_grad(function() return self.model(model_input(self, batch.x)) end)
   end)
   self.model:train()
   if self.source and probe.close then probe:close() end
   local dist_trainer = require 'kbl.dist.trainer'
   if dist_trainer.enabled() then self.dist = dist_trainer.new(self) end
   self.built = true
   return self
end

-- ---- stages -----------------------------------------------------------------

local function patterns(p)
   if p == nil then return {} end
   return type(p) == 'string' and {p} or p
end

--- Enters a stage: freezing, the optimizer, the learning rate.
-- @local
function Trainer:enter_stage(i, resume)
   local prev, st = self.stages[i - 1], self.stages[i]
   self.stage, self.stage_index = st, i
   if prev then for _, p in ipairs(patterns(prev.freeze)) do self.model:unfreeze(p) end end
   for _, p in ipairs(patterns(st.freeze)) do self.model:freeze(p) end
   for _, p in ipairs(patterns(st.unfreeze)) do self.model:unfreeze(p) end
   -- a stage's own optimizer starts fresh; a stage without one keeps the one
   -- before, whose state is keyed by parameter name, so that moments survive
   -- a change of freezing
   local used
   self.optimizer, used = self:stage_optimizer(i)
   if st.lr then self.optimizer:set_lr(st.lr) end
   self.params, self.param_names = nil, nil -- the trainable list changes with freezing
   self.steps_per_epoch = st.steps_per_epoch or self.options.steps_per_epoch
   local decision = self:call('on_stage_begin', st)
   -- then the saved state (the callbacks' was restored before: on_stage_begin
   -- sees the stage's starting optimizer, as in the run that was not stopped)
   local _, saved_with = self:stage_optimizer(resume and resume.stage or 1)
   if resume and resume.optimizer and saved_with == used and self.optimizer.load_state_dict then
      local params, names = self:parameters()
      local ok, err = pcall(self.optimizer.load_state_dict, self.optimizer, resume.optimizer, params, names)
      if not ok then error(self:resume_error(err), 0) end
      if resume.stage ~= i and st.lr then self.optimizer:set_lr(st.lr) end
   end
   if resume and resume.stage == i and resume.lr then self.optimizer:set_lr(resume.lr) end
   return decision
end

--- The optimizer a stage trains with.
-- @local
function Trainer:stage_optimizer(i)
   for j = i, 1, -1 do
      local o = self.stages[j].optimizer
      if o then return o, j end
   end
   return self.options.optimizer, 1
end

-- ---- one step and one epoch ----------------------------------------------------
-- run_epoch returns how the epoch ended: 'done', 'stop_now' (a callback
-- stopped it after a step) or 'failed' and the message.

--- The trainable parameters, and their names (what keys the optimizer's state).
-- @return params, names
-- @usage local params = trainer:parameters()
function Trainer:parameters()
   if not self.params then
      local m = self.model
      if type(m.named_parameters) == 'function' then
         local params, names = {}, {}
         for i, np in ipairs(m:named_parameters{trainable = true}) do names[i], params[i] = np[1], np[2] end
         self.params, self.param_names = params, names
      else
         self.params = m:parameters()
      end
   end
   return self.params, self.param_names
end

--- The running logs of the epoch so far: loss and metrics.
-- @treturn table
-- @usage local logs = ctx:running_logs()
function Trainer:running_logs()
   local logs = {loss = self.run_count > 0 and self.run_loss / self.run_count or 0 / 0}
   for _, m in ipairs(self.metrics) do
      local r = m:result()
      if type(r) == 'number' then logs[m.name] = r end
   end
   return logs
end

--- One training step on a batch: forward, loss, backward, clip, step, metrics.
-- @local
function Trainer:train_step(batch)
   local t1 = now()
   local x, y = batch.x, to_device(self, batch.y)
   local n = x:size(1)
   local model, params = self.model, nil
   local times = self.phase
   if self.dist then self.dist:begin_step(self, n) end
   local loss_value, bad = kbl.scope(function()
      local pred = model(model_input(self, x))
      local loss = self.loss(pred, y)
      local reg = model.regularization_loss and model:regularization_loss()
      if reg then loss = loss + reg end
      local lv = loss:item()
      kbl.no_grad(function()
         local p = pred:detach()
         for _, m in ipairs(self.metrics) do m:update(p, y) end
      end)
      local t2 = now()
      times.forward = times.forward + (t2 - t1)
      for _, cb in ipairs(self.callbacks) do
         if cb.check_loss then
            local msg = cb:check_loss(self, lv)
            if msg then return lv, msg end
         end
      end
      loss:backward()
      if self.dist then self.dist:finish_grads() end   -- the sum over ranks of the gradients
      local t3 = now()
      times.backward = times.backward + (t3 - t2)
      params = self:parameters()
      if self.stage.clip_grad_norm or self.clip_grad_norm then
         require('kbl.optim').clip_grad_norm(params, self.stage.clip_grad_norm or self.clip_grad_norm)
      end
      if self.stage.clip_grad_value or self.clip_grad_value then
         require('kbl.optim').clip_grad_value(params, self.stage.clip_grad_value or self.clip_grad_value)
      end
      self.optimizer:step(params, self.param_names)
      if self.grad_hook then self.grad_hook(self) end   -- set only for steps that log gradients
      model:zero_grad()
      local t4 = now()
      times.update = times.update + (t4 - t3)
      if self.profiler then self.profiler:phases(t1, t2, t3, t4) end   -- when the config asks for a profile
      return lv
   end)
   return loss_value, n, bad
end

--- One epoch of training steps.
-- @local
function Trainer:run_epoch()
   local pipe = self.train_pipe
   local resuming = self.resume_batches and self.resume_batches > 0
   if not resuming and pipe.set_epoch then pipe:set_epoch(self.epoch) end
   self.batches_done = self.resume_batches or 0
   self.resume_batches = nil
   if not resuming then
      self.run_loss, self.run_count, self.run_samples = 0, 0, 0
      for _, m in ipairs(self.metrics) do m:reset() end
   end
   local nb = pipe.num_batches and pipe:num_batches() or nil
   if nb and self.steps_per_epoch then nb = math.min(nb, self.steps_per_epoch)
   elseif self.steps_per_epoch then nb = self.steps_per_epoch end
   self.steps_in_epoch = nb
   self.phase = {data = 0, forward = 0, backward = 0, update = 0}
   self.epoch_start = now()
   self.model:train()
   self.decision = stronger(self.decision, self:call('on_epoch_begin', self.epoch))
   if self.decision == 'stop_now' then return 'stop_now' end
   local it = pipe:iter()
   local prof = self.profiler   -- kbl.profile's, when the config asks for a profile
   while not (self.steps_per_epoch and self.batches_done >= self.steps_per_epoch) do
      if prof then prof:step_begin(self.step + 1) end
      local t0 = now()
      local batch = it()
      if batch == nil then break end
      local t1 = now()
      self.phase.data = self.phase.data + (t1 - t0)
      if prof then prof:phase('data', t0, t1) end
      self.decision = stronger(self.decision, self:call('on_batch_begin', self.step + 1))
      local lv, n, bad = self:train_step(batch)
      if self.dist then lv, n, bad = self.dist:end_step(self, lv, n, bad) end   -- the global batch's
      self.step = self.step + 1
      if bad then return 'failed', string.format('%s; stopped', bad) end
      self.batches_done = self.batches_done + 1
      self.run_loss = self.run_loss + lv * n
      self.run_count = self.run_count + n
      self.run_samples = self.run_samples + n
      self.last_batch_logs = {loss = lv, size = n, batch = self.batches_done, step = self.step}
      self.decision = stronger(self.decision, self:call('on_batch_end', self.step, self.last_batch_logs))
      if prof then prof:step_end() end
      if self.decision == 'stop_now' then return 'stop_now' end
   end
   return 'done'
end

--- Mean loss and metrics over a pipeline, under no-grad, in eval mode.
-- @tparam table pipe
-- @tparam[opt] number steps at most this many batches
-- @tparam[opt] string prefix of the logs' keys ('val_')
-- @treturn table {loss =, <metric> = ...}
-- @usage local logs = trainer:evaluate_pipeline(p)
function Trainer:evaluate_pipeline(pipe, steps, prefix)
   prefix = prefix or ''
   local was_training = self.model.training
   self.model:eval()
   for _, m in ipairs(self.metrics) do m:reset() end
   local loss_sum, count, k = 0, 0, 0
   kbl.no_grad(function()
      for batch in pipe:iter() do
         if steps and k >= steps then break end
         k = k + 1
         kbl.scope(function()
            local x, y = batch.x, to_device(self, batch.y)
            local pred = self.model(model_input(self, x))
            local n = x:size(1)
            loss_sum = loss_sum + self.loss(pred, y):item() * n
            count = count + n
            for _, m in ipairs(self.metrics) do m:update(pred, y) end
         end)
      end
   end)
   if was_training ~= false then self.model:train() end
   -- a validation split shared out over processes: the sums of all
   if self.dist then loss_sum, count = self.dist:merge_eval(self, pipe, loss_sum, count) end
   local logs = {[prefix .. 'loss'] = count > 0 and loss_sum / count or 0 / 0}
   for _, m in ipairs(self.metrics) do logs[prefix .. m.name] = m:result() end
   return logs
end

--- Mean loss and metrics over a split or a pipeline.
-- @param split a split name or a pipeline
-- @tparam[opt] table opts
-- @treturn table {loss =, <metric> = ...}
-- @usage local test = trainer:evaluate('test')
function Trainer:evaluate(split, opts)
   opts = opts or {}
   self:build()
   local pipe = type(split) == 'string' and self:pipeline(split, false) or split or self.val_pipe
   if not pipe then error('fit: evaluate needs a split name or a pipeline', 2) end
   return self:evaluate_pipeline(pipe, opts.steps, opts.prefix)
end

--- The model's outputs for every element of a split or a pipeline, concatenated along
-- the first dim; a Model's postprocess runs on them.
-- @param split a split name or a pipeline
-- @tparam[opt] table opts
-- @treturn tensor
-- @usage local probs = trainer:predict('test')
function Trainer:predict(split, opts)
   opts = opts or {}
   self:build()
   local pipe = type(split) == 'string' and self:pipeline(split, false) or split
   local outs = {}
   local was_training = self.model.training
   self.model:eval()
   kbl.no_grad(function()
      for batch in pipe:iter() do
         if opts.steps and #outs >= opts.steps then break end
         local y = self.model(model_input(self, batch.x))
         local post = self.model._child and self.model._child.postprocess
         if post and type(self.model.prepare) == 'function' then y = post(y) end
         outs[#outs + 1] = kbl.keep(y)
      end
   end)
   if was_training ~= false then self.model:train() end
   if #outs == 0 then return nil end
   return #outs == 1 and outs[1] or kbl.cat(outs, 1)
end

-- ---- the loop -----------------------------------------------------------------

local function numbers_only(logs)
   local out = {}
   for k, v in pairs(logs) do if type(v) == 'number' or type(v) == 'string' then out[k] = v end end
   return out
end

--- Validation, logs and callbacks at the end of an epoch.
-- @local
function Trainer:finish_epoch()
   local logs = self:running_logs()
   logs.epoch, logs.step, logs.stage = self.epoch, self.step, self.stage_index
   logs.lr = self.optimizer.get_lr and self.optimizer:get_lr() or nil
   local elapsed = now() - self.epoch_start
   local p = self.phase
   logs.time = elapsed
   logs.samples_per_sec = elapsed > 0 and self.run_samples / elapsed or 0
   logs.time_data, logs.time_forward, logs.time_backward, logs.time_update = p.data, p.forward, p.backward, p.update
   if self.val_pipe then
      local t = now()
      for k, v in pairs(self:evaluate_pipeline(self.val_pipe, self.validation_steps, 'val_')) do logs[k] = v end
      logs.time_validation = now() - t
   end
   local busy = p.data + p.forward + p.backward + p.update
   if busy > 0 and p.data / busy > 0.25 and elapsed > 0.5 and not self.warned_data then
      self.warned_data = true
      io.stderr:write(string.format('warning: epoch %d spent %d%% of its step time waiting for data; '
         .. 'the pipeline is the bottleneck (add :prefetch(n) or :cache(path), or lighten its maps)\n',
         self.epoch, math.floor(100 * p.data / busy + 0.5)))
   end
   if self.dist then logs = self.dist:agree_logs(logs) end   -- rank 0's, on every rank
   self.epoch_steps = self.batches_done
   self.epochs_done, self.batches_done = self.epoch, 0
   self.logs = logs
   self.history[#self.history + 1] = numbers_only(logs)
   return self:call('on_epoch_end', self.epoch, logs)
end

--- Trains through every stage.
-- @treturn table the history: a list of epoch logs
-- @usage local history = trainer:fit()
function Trainer:fit()
   self:build()
   local resume = self.resume_state
   self.resume_state = nil
   self.stop_training, self.decision = nil, nil
   self.resumed = resume ~= nil
   if resume then self.step, self.epochs_done, self.epoch = resume.step, resume.epochs_done, resume.epochs_done end
   self.decision = self:call('on_train_begin')
   if self.profile and not self.profiler then self.profiler = require('kbl.profile').for_trainer(self, self.profile) end
   local start_stage, first_epoch = 1, 1
   if resume then
      self:restore(resume)
      first_epoch = self.epochs_done + 1
      local acc = 0
      for i, st in ipairs(self.stages) do
         if first_epoch <= acc + st.epochs then start_stage = i break end
         acc = acc + st.epochs
         start_stage = i + 1
      end
   end
   local epoch_base = 0
   for i = 1, start_stage - 1 do epoch_base = epoch_base + self.stages[i].epochs end
   for si = start_stage, #self.stages do
      if self.decision then break end
      -- the saved optimizer state belongs to the optimizer in use when it was
      -- saved: loaded when the first stage run trains with that one
      self.decision = stronger(self.decision, self:enter_stage(si, si == start_stage and resume or nil))
      local st = self.stages[si]
      for e = math.max(1, first_epoch - epoch_base), st.epochs do
         if self.decision then break end
         self.epoch, self.stage_epoch = epoch_base + e, e
         local how, failure = self:run_epoch()
         if how == 'failed' then
            if self.profiler then self.profiler:finish() end
            self:call('on_train_end', self.logs, failure)
            if self.last_checkpoint then
               failure = failure .. '; the last good checkpoint is ' .. self.last_checkpoint
            end
            error(failure, 0)
         end
         if how == 'done' then self.decision = stronger(self.decision, self:finish_epoch()) end
      end
      epoch_base = epoch_base + st.epochs
   end
   if self.profiler then self.profiler:finish() end
   self:call('on_train_end', self.logs)
   return self.history
end

-- ---- state for checkpoints and exact resume: kbl/fit/state.lua -------------
require('kbl.fit.state').install(Trainer, M)

-- The class, for extending the trainer.
M.Trainer_class = Trainer

--- Makes a Trainer and trains it.
-- @tparam table opts the Trainer's options
-- @return the trainer and the history (a list of epoch logs)
-- @usage local trainer, history = fit.fit{model = m, data = src, loss = losses.MSE{}, optimizer = optim.SGD{}}
function M.fit(opts)
   local t = M.Trainer(opts)
   local h = t:fit()
   return t, h
end

return M
