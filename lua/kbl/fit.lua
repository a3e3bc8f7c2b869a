-- kbl.fit: the trainer. One loop over model, data source, loss, optimizer,
-- metrics and callbacks: forward, loss, backward, clip, step, metrics; each
-- step's intermediates freed with kbl.scope; validation each epoch under
-- no-grad; evaluate and predict on any split; stages (each with its epochs,
-- optimizer, learning rate and frozen parts); per-phase timings.
--
--   local fit = require 'kbl.fit'
--   local trainer = fit.Trainer{model = m, source = src, loss = losses.CrossEntropy{},
--      optimizer = optim.Adam{lr = 1e-3}, metrics = {metrics.Accuracy{}}, epochs = 10, batch_size = 128}
--   local history = trainer:fit()
--   local test = trainer:evaluate('test')          --> {loss = ..., accuracy = ...}
--
-- Hooks for run records (checkpoints, exact resume): callbacks receive the
-- trainer as their context (ctx.model, ctx.optimizer, ctx.step, ctx.epoch,
-- ctx.logs, ctx.history, ctx.run_dir; ctx.stop_training = true ends the run
-- after this epoch, = 'now' after this step) in on_train_begin,
-- on_stage_begin, on_epoch_begin, on_batch_begin, on_batch_end, on_epoch_end and
-- on_train_end; trainer:state() gathers everything a resume needs and
-- trainer:set_state(s) (before fit) continues from it.
local ffi = require 'ffi'
local kbl = require 'kbl'

local M = {}

-- ---- wall clock and terminal ------------------------------------------------
-- Phases are timed with the monotonic wall clock (os.clock is CPU time summed
-- over threads). The asm name keeps this declaration apart from others'.
ffi.cdef[[int kbl_fit_isatty(int fd) __asm__("isatty");]]
local now = require('kbl.clock').now
M.now = now
function M.isatty(fd) return ffi.C.kbl_fit_isatty(fd or 1) == 1 end

-- ---- the trainer --------------------------------------------------------------

local Trainer = {}
Trainer.__index = Trainer

local OPTIONS = {
   model = true, source = true, train_data = true, validation_data = true, loss = true, optimizer = true,
   metrics = true, callbacks = true, epochs = true, steps_per_epoch = true, validation_steps = true,
   seed = true, device = true, batch_size = true, eval_batch_size = true, shuffle = true, prefetch = true,
   transforms = true, augment = true, drop_remainder = true, train_split = true, validation_split = true,
   test_split = true, clip_grad_norm = true, clip_grad_value = true, stages = true, progress = true,
   quiet = true, out = true, run_dir = true, terminate_on_nan = true, name = true,
}

-- Trainer{...}: see the module comment. Required: model, loss, an optimizer
-- (or stages that each name one), and data (source, or train_data pipeline).
function M.Trainer(opts)
   for k in pairs(opts) do
      if not OPTIONS[k] then
         local names = {}
         for n in pairs(OPTIONS) do names[#names + 1] = n end
         error(string.format("fit.Trainer: unknown option '%s' (did you mean '%s'?)", tostring(k),
            require('kbl.config.schema').closest(tostring(k), names)), 2)
      end
   end
   for _, k in ipairs{'model', 'loss'} do
      if opts[k] == nil then error('fit.Trainer: ' .. k .. ' is required', 2) end
   end
   if opts.source == nil and opts.train_data == nil then
      error('fit.Trainer: give a data source (source =) or a training pipeline (train_data =)', 2)
   end
   local self = setmetatable({}, Trainer)
   for k, v in pairs(opts) do self[k] = v end
   self.trainer = self
   self.metrics = opts.metrics or {}
   self.callbacks = {}
   self.batch_size = opts.batch_size or 32
   self.eval_batch_size = opts.eval_batch_size or self.batch_size
   self.train_split = opts.train_split or 'train'
   if opts.validation_split == nil then self.validation_split = 'validation' end
   if opts.test_split == nil then self.test_split = 'test' end
   self.device = opts.device or 'cpu'
   self.stages = opts.stages or {{name = 'main', epochs = opts.epochs or 1, optimizer = opts.optimizer,
      steps_per_epoch = opts.steps_per_epoch, new_optimizer = true}}
   for i, st in ipairs(self.stages) do
      st.index = st.index or i
      st.epochs = st.epochs or opts.epochs or 1
   end
   if not self.stages[1].optimizer and not opts.optimizer then
      error('fit.Trainer: an optimizer is required', 2)
   end
   self.optimizer_arg, self.steps_per_epoch_arg = opts.optimizer, opts.steps_per_epoch
   self.step, self.epoch, self.epochs_done, self.batches_done = 0, 0, 0, 0
   self.history = {}
   self.stop_training = false
   -- the progress display first, so that the epoch line comes before what
   -- other callbacks say about the epoch (early stopping, a lowered rate)
   local cbs = require 'kbl.callbacks'
   if not opts.quiet and opts.progress ~= 'none' then
      self.callbacks[#self.callbacks + 1] = cbs.Progress{mode = opts.progress or 'auto', out = opts.out}
   end
   if opts.terminate_on_nan ~= false then self.callbacks[#self.callbacks + 1] = cbs.TerminateOnNaN{} end
   for _, cb in ipairs(opts.callbacks or {}) do self.callbacks[#self.callbacks + 1] = cb end
   return self
end

function Trainer:total_epochs()
   local n = 0
   for _, st in ipairs(self.stages) do n = n + st.epochs end
   return n
end

-- A line for the person watching (early stopping, a lowered rate...), unless quiet.
function Trainer:message(text)
   if self.quiet then return end
   local out = self.out or io.stdout
   out:write(text, '\n')
   out:flush()
end

function Trainer:add_callback(cb) self.callbacks[#self.callbacks + 1] = cb; return cb end

function Trainer:call(hook, ...)
   for _, cb in ipairs(self.callbacks) do
      local fn = cb[hook]
      if fn then fn(cb, self, ...) end
   end
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

-- A batched pipeline over a split of the source: shuffled, then batched, then
-- the transforms (every split) and the augmentations (training only), which
-- are batched kernels, then prefetched.
function Trainer:pipeline(split, training, batch_size)
   if not self.source then error("fit: no data source to take the '" .. split .. "' split from", 0) end
   local ok, pipe = pcall(self.source.split, self.source, split)
   if not ok then error((tostring(pipe):gsub('^[^%s:]+%.lua:%d+: ', '')), 0) end
   if training and self.shuffle ~= false then
      local sh = type(self.shuffle) == 'table' and self.shuffle or {}
      pipe = pipe:shuffle{seed = sh.seed or self.seed or 1, buffer = sh.buffer}
   end
   pipe = pipe:batch(batch_size or (training and self.batch_size or self.eval_batch_size),
      {drop_remainder = training and self.drop_remainder or false})
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

-- Seeds the generator, makes the pipelines and builds the (lazy) model on one
-- small batch, so that parameters exist before training (for the optimizer,
-- the summary and loading weights). Idempotent.
function Trainer:build()
   if self.built then return self end
   if self.seed then kbl.manual_seed(self.seed) end
   self.train_pipe = self.train_data or self:pipeline(self.train_split, true)
   if self.validation_data then
      self.val_pipe = self.validation_data
   elseif has_split(self, self.validation_split) then
      self.val_pipe = self:pipeline(self.validation_split, false)
   end
   local probe = self.source and self:pipeline(self.train_split, false, 2) or self.train_pipe
   local batch = probe:iter()()
   if not batch then error('fit: the training split gave no batch', 0) end
   if self.model.to and self.device ~= 'cpu' then self.model:to(self.device) end
   self.model:eval()
   kbl.no_grad(function() return self.model(to_device(self, batch.x)) end)
   self.model:train()
   if self.source and probe.close then probe:close() end
   self.built = true
   return self
end

-- ---- stages -----------------------------------------------------------------

local function patterns(p)
   if p == nil then return {} end
   return type(p) == 'string' and {p} or p
end

function Trainer:enter_stage(i)
   local prev, st = self.stages[i - 1], self.stages[i]
   self.stage, self.stage_index = st, i
   if prev then for _, p in ipairs(patterns(prev.freeze)) do self.model:unfreeze(p) end end
   for _, p in ipairs(patterns(st.freeze)) do self.model:freeze(p) end
   for _, p in ipairs(patterns(st.unfreeze)) do self.model:unfreeze(p) end
   -- a stage's own optimizer starts fresh (its state is keyed by the position
   -- of each trainable parameter, so a stage that changes freezing needs one;
   -- configs build one for it); a stage without one keeps the one before
   if st.optimizer then
      self.optimizer_obj = st.optimizer
   elseif not self.optimizer_obj then
      self.optimizer_obj = self.optimizer_arg or self.optimizer
   end
   self.optimizer = self.optimizer_obj
   if st.lr then self.optimizer:set_lr(st.lr) end
   self.params = nil -- the trainable list changes with freezing
   self.steps_per_epoch = st.steps_per_epoch or self.steps_per_epoch_arg
   self:call('on_stage_begin', st)
end

-- ---- one step and one epoch ----------------------------------------------------

function Trainer:parameters()
   if not self.params then self.params = self.model:parameters() end
   return self.params
end

-- Running logs of the epoch so far: loss and metrics.
function Trainer:running_logs()
   local logs = {loss = self.run_count > 0 and self.run_loss / self.run_count or 0 / 0}
   for _, m in ipairs(self.metrics) do
      local r = m:result()
      if type(r) == 'number' then logs[m.name] = r end
   end
   return logs
end

function Trainer:train_step(batch)
   local t1 = now()
   local x, y = to_device(self, batch.x), to_device(self, batch.y)
   local n = x:size(1)
   local model, params = self.model, nil
   local times = self.phase
   local loss_value, bad = kbl.scope(function()
      local pred = model(x)
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
      local t3 = now()
      times.backward = times.backward + (t3 - t2)
      params = self:parameters()
      if self.stage.clip_grad_norm or self.clip_grad_norm then
         require('kbl.optim').clip_grad_norm(params, self.stage.clip_grad_norm or self.clip_grad_norm)
      end
      if self.stage.clip_grad_value or self.clip_grad_value then
         require('kbl.optim').clip_grad_value(params, self.stage.clip_grad_value or self.clip_grad_value)
      end
      self.optimizer:step(params)
      model:zero_grad()
      times.update = times.update + (now() - t3)
      return lv
   end)
   return loss_value, n, bad
end

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
   self:call('on_epoch_begin', self.epoch)
   local it = pipe:iter()
   while not (self.steps_per_epoch and self.batches_done >= self.steps_per_epoch) do
      local t0 = now()
      local batch = it()
      if batch == nil then break end
      self.phase.data = self.phase.data + (now() - t0)
      self:call('on_batch_begin', self.step + 1)
      local lv, n, bad = self:train_step(batch)
      self.step = self.step + 1
      if bad then
         self.failed = string.format('%s; stopped', bad)
         return false
      end
      self.batches_done = self.batches_done + 1
      self.run_loss = self.run_loss + lv * n
      self.run_count = self.run_count + n
      self.run_samples = self.run_samples + n
      self.last_batch_logs = {loss = lv, size = n, batch = self.batches_done, step = self.step}
      self:call('on_batch_end', self.step, self.last_batch_logs)
      if self.stop_training == 'now' then return 'stopped' end
   end
   return true
end

-- Mean loss and metrics over a pipeline, under no-grad, in eval mode.
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
            local x, y = to_device(self, batch.x), to_device(self, batch.y)
            local pred = self.model(x)
            local n = x:size(1)
            loss_sum = loss_sum + self.loss(pred, y):item() * n
            count = count + n
            for _, m in ipairs(self.metrics) do m:update(pred, y) end
         end)
      end
   end)
   if was_training ~= false then self.model:train() end
   local logs = {[prefix .. 'loss'] = count > 0 and loss_sum / count or 0 / 0}
   for _, m in ipairs(self.metrics) do logs[prefix .. m.name] = m:result() end
   return logs
end

-- evaluate('test') or evaluate(pipeline): {loss =, <metric> = ...}.
function Trainer:evaluate(split, opts)
   opts = opts or {}
   self:build()
   local pipe = type(split) == 'string' and self:pipeline(split, false) or split or self.val_pipe
   if not pipe then error('fit: evaluate needs a split name or a pipeline', 2) end
   return self:evaluate_pipeline(pipe, opts.steps, opts.prefix)
end

-- predict('test') or predict(pipeline): the model's outputs for every
-- element, concatenated along the first dim.
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
         outs[#outs + 1] = kbl.keep(self.model(to_device(self, batch.x)))
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
   self.epoch_steps = self.batches_done
   self.epochs_done, self.batches_done = self.epoch, 0
   self.logs = logs
   self.history[#self.history + 1] = numbers_only(logs)
   self:call('on_epoch_end', self.epoch, logs)
end

-- Trains through every stage; returns the history (a list of epoch logs).
function Trainer:fit()
   self:build()
   local resume = self.resume_state
   self.resume_state = nil
   self.stop_training = false
   self.resumed = resume ~= nil
   if resume then self.step, self.epochs_done, self.epoch = resume.step, resume.epochs_done, resume.epochs_done end
   self:call('on_train_begin')
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
      if self.stop_training then break end
      self:enter_stage(si)
      -- the saved optimizer state belongs to the stage it was saved in; a resume
      -- at the boundary into the next stage starts that stage's optimizer afresh
      if resume and si == start_stage and resume.stage == si and resume.optimizer
         and self.optimizer.load_state_dict then
         self.optimizer:load_state_dict(resume.optimizer)
         if resume.lr then self.optimizer:set_lr(resume.lr) end
      end
      local st = self.stages[si]
      for e = math.max(1, first_epoch - epoch_base), st.epochs do
         self.epoch, self.stage_epoch = epoch_base + e, e
         local how = self:run_epoch()
         if not how then
            self:call('on_train_end', self.logs)
            local msg = self.failed
            if self.last_checkpoint then msg = msg .. '; the last good checkpoint is ' .. self.last_checkpoint end
            error(msg, 0)
         end
         if how == 'stopped' then break end -- stop_training = 'now': in the middle of the epoch
         self:finish_epoch()
         if self.stop_training then break end
      end
      epoch_base = epoch_base + st.epochs
   end
   self:call('on_train_end', self.logs)
   return self.history
end

-- ---- state for checkpoints and exact resume ----------------------------------

-- The generator's (seed, offset) as uint64 cdata: kbl.get_rng_state() gives Lua
-- numbers, which lose bits above 2^53; a checkpoint stores these exactly.
local function rng_state()
   local s, o = ffi.new('uint64_t[1]'), ffi.new('uint64_t[1]')
   require('kbl.lib').C.kbl_generator_get_state(s, o)
   return {seed = s[0], offset = o[0]}
end

-- Everything a resume needs besides the model's tensors: counters, optimizer
-- state, generator state, pipeline position, callbacks' and metrics' state.
-- Values are numbers, strings, booleans, tables of them, and tensors (the
-- optimizer's moments), which a checkpoint stores by name.
function Trainer:state()
   local cbs = {}
   for i, cb in ipairs(self.callbacks) do
      if cb.state then cbs[i] = {name = cb.name, state = cb:state()} end
   end
   local ms = {}
   for i, m in ipairs(self.metrics) do if m.state then ms[i] = m:state() end end
   return {
      version = 1,
      step = self.step, epochs_done = self.epochs_done, batches_done = self.batches_done,
      stage = self.stage_index or 1,
      optimizer = self.optimizer and self.optimizer.state_dict and self.optimizer:state_dict() or nil,
      lr = self.optimizer and self.optimizer.get_lr and self.optimizer:get_lr() or nil,
      rng = rng_state(),
      pipeline = self.train_pipe and self.train_pipe.state and self.train_pipe:state() or nil,
      callbacks = cbs,
      running = {loss = self.run_loss or 0, count = self.run_count or 0, samples = self.run_samples or 0,
         metrics = ms},
      history = self.history,
   }
end

-- Continue from a state() on the next fit() (after the model's weights are
-- loaded). The optimizer's state is loaded when its stage begins.
function Trainer:set_state(s)
   if type(s) ~= 'table' or s.version ~= 1 then error('fit: set_state needs a state() table (version 1)', 2) end
   self.resume_state = s
end

function Trainer:restore(s)
   self.step, self.epochs_done = s.step, s.epochs_done
   self.history = s.history or {}
   self.logs = self.history[#self.history]
   for i, c in pairs(s.callbacks or {}) do
      local cb = self.callbacks[i]
      if cb and cb.set_state and (cb.name == c.name) then cb:set_state(c.state) end
   end
   if s.pipeline and self.train_pipe.set_state then self.train_pipe:set_state(s.pipeline) end
   if (s.batches_done or 0) > 0 then
      self.resume_batches = s.batches_done
      local r = s.running or {}
      self.run_loss, self.run_count, self.run_samples = r.loss or 0, r.count or 0, r.samples or 0
      for i, m in ipairs(self.metrics) do
         if m.set_state and r.metrics and r.metrics[i] then m:set_state(r.metrics[i]) end
      end
   end
   if s.rng then kbl.set_rng_state(s.rng) end
end

-- The class, for extending the trainer.
M.Trainer_class = Trainer

-- fit.fit{...}: makes a Trainer and trains it; returns the trainer and history.
function M.fit(opts)
   local t = M.Trainer(opts)
   local h = t:fit()
   return t, h
end

return M
