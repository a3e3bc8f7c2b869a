--- kbl.records.tensorboard_logger: what a run logs to its TensorBoard event
-- file, for the recorder of kbl.records.run. Options come from the config's
-- `tensorboard` table (the trainer option of that name):
--
--   tensorboard = {
--      scalars_every_steps = 50,     -- step/loss (mean over the steps since the last
--                                    -- one), step/lr, step/samples_per_sec; 0: off
--      histograms_every_steps = 500, -- weights/<param> and gradients/<param>; 0: off
--      histogram_buckets = 30,
--      hparams = true,               -- the config's scalar keys and the final metrics
--   }                                -- for the hparams plugin (kbl.records.tensorboard_hparams)
--
-- Besides those, each epoch's metrics (loss/train, loss/validation, lr...) at
-- the epoch's last step, and after training the test split's (loss/test...).
-- Gradients are read where kbl.fit calls ctx.grad_hook (after the update,
-- before the gradients are zeroed: as applied, after clipping); the hook is
-- set only for the steps that log them, so with histograms off a step costs
-- nothing more.
--
-- A resumed run goes on writing the same file, so TensorBoard sees one series:
-- the events the stopped run wrote after its checkpoint (steps past the one
-- resumed from; the epoch's metrics at that step when the checkpoint was taken
-- before the epoch's end ran; a session end) are dropped first, and the
-- hparams written again (a resume may change the config: --set epochs=8).
local tensorboard = require 'kbl.records.tensorboard'
local hparams = require 'kbl.records.tensorboard_hparams'
local T = require 'kbl.tensor'
local now = require('kbl.clock').now

local M = {}

M.DEFAULTS = {scalars_every_steps = 0, histograms_every_steps = 0, histogram_buckets = 30, hparams = true}

-- The options, checked (a script gives them to fit.Trainer unchecked by the
-- config schema).
function M.options(given)
   local o = {}
   for k, v in pairs(M.DEFAULTS) do o[k] = v end
   if given == nil then return o end
   if type(given) ~= 'table' then error('tensorboard: the options must be a table, got ' .. type(given), 0) end
   for k, v in pairs(given) do
      local d = M.DEFAULTS[k]
      if d == nil then error(string.format("tensorboard: unknown option '%s'", tostring(k)), 0) end
      if type(d) == 'number' and not (type(v) == 'number' and v >= 0 and v % 1 == 0) then
         error(string.format("tensorboard: option '%s' must be an integer >= 0, got %s", k, tostring(v)), 0)
      elseif type(d) == 'boolean' and type(v) ~= 'boolean' then
         error(string.format("tensorboard: option '%s' must be true or false, got %s", k, tostring(v)), 0)
      end
      o[k] = v
   end
   if o.histogram_buckets < 1 then error("tensorboard: option 'histogram_buckets' must be >= 1", 0) end
   return o
end

-- Tags of the epoch metrics (kbl.records.run's scalar_tags).
local function is_epoch_tag(tag)
   return tag == 'lr' or tag:match('/train$') ~= nil or tag:match('/validation$') ~= nil
end

-- The histogram of a tensor's values (a host copy for a CUDA tensor).
function M.tensor_histogram(t, buckets)
   local h = T.host(t)
   if not h:is_contiguous() then h = h:contiguous() end
   local hist = tensorboard.histogram(T.elem_ptr(h._p), h:numel(), buckets)
   h:numel()   -- keeps h (and the memory read above) alive until here
   return hist
end

local Logger = {}
Logger.__index = Logger

function M.new(run_dir) return setmetatable({run_dir = run_dir}, Logger) end

local function named_parameters(ctx)
   local params, names = ctx:parameters()
   local out = {}
   for i, p in ipairs(params) do out[i] = {names and names[i] or ('param' .. i), p} end
   return out
end

-- The scalar tags that the hparams plugin shows as this run's metrics.
local function metric_tags(ctx)
   local names = {'loss'}
   for _, m in ipairs(ctx.metrics or {}) do names[#names + 1] = m.name end
   local splits = {'train'}
   if ctx.val_pipe then splits[#splits + 1] = 'validation' end
   local test = ctx.test_split
   if test and ctx.source and ctx.source.size then
      local ok, n = pcall(ctx.source.size, ctx.source, test)
      if ok and (n or 0) > 0 then splits[#splits + 1] = test end
   end
   local tags = {}
   for _, s in ipairs(splits) do
      for _, n in ipairs(names) do tags[#tags + 1] = n .. '/' .. s end
   end
   return tags
end

-- The hparams: the resolved config's scalar keys (kbl run gives the config as
-- ctx.resolved_config), else the trainer's plain options.
local function run_params(ctx)
   if type(ctx.resolved_config) == 'table' then return hparams.flatten(ctx.resolved_config) end
   local out = {}
   for k in pairs(require('kbl.config.schema').TOP) do
      local v = ctx[k]
      if type(v) == 'number' or type(v) == 'string' or type(v) == 'boolean' then out[k] = v end
   end
   return out
end

-- The experiment and this session's start, at step 0.
function Logger:write_hparams(ctx)
   if not self.opts.hparams then return end
   local params = run_params(ctx)
   self.tb:add_values({hparams.experiment(params, metric_tags(ctx)),
      hparams.session_start(params, tensorboard.wall_time())}, 0)
end

function Logger:begin(ctx)
   self.opts = M.options(ctx.tensorboard)
   self.per_step = self.opts.scalars_every_steps > 0 or self.opts.histograms_every_steps > 0
   local files = ctx.resumed and tensorboard.files(self.run_dir) or {}
   if #files > 0 then
      -- opened at the first epoch (or the end), once it is known whether the
      -- epoch resumed from will run its end again
      self.resume = {step = ctx.step, files = files}
   else
      self.tb = tensorboard.open(self.run_dir)
      self:write_hparams(ctx)
   end
   self.path = self.tb and self.tb.path
   self.loss_sum, self.loss_n, self.samples, self.since = 0, 0, 0, now()
   self:arm(ctx, ctx.step + 1)
   return self
end

-- Drops what the stopped run wrote after its checkpoint and opens its newest
-- event file to go on. mid_epoch: the checkpoint was taken inside an epoch
-- (its end runs again). The hparams are written again: a resume may change
-- the config (--set epochs=8 extends the run).
local RESTATED = {[hparams.SESSION_END_TAG] = true, [hparams.EXPERIMENT_TAG] = true,
   [hparams.SESSION_START_TAG] = true}

function Logger:continue(ctx, mid_epoch)
   local r = self.resume
   self.resume = nil
   local dropped = 0
   for _, path in ipairs(r.files) do
      dropped = dropped + tensorboard.keep(path, function(e)
         if e.step > r.step then return false end
         for _, tag in ipairs(e.tags) do
            if RESTATED[tag] and (tag == hparams.SESSION_END_TAG or self.opts.hparams) then return false end
            if mid_epoch and e.step == r.step and is_epoch_tag(tag) then return false end
         end
         return true
      end)
   end
   self.dropped = dropped
   self.path = r.files[#r.files]
   self.tb = tensorboard.open(nil, {append = self.path})
   self:write_hparams(ctx)
end

function Logger:on_epoch_begin(ctx)
   if self.resume then self:continue(ctx, (ctx.batches_done or 0) > 0) end
   self.loss_sum, self.loss_n, self.samples, self.since = 0, 0, 0, now()
end

-- Sets ctx.grad_hook for step `step` when it logs histograms, clears it otherwise.
function Logger:arm(ctx, step)
   local every = self.opts.histograms_every_steps
   if every > 0 and step % every == 0 then
      self.grads = {}
      ctx.grad_hook = function(trainer)
         for _, np in ipairs(named_parameters(trainer)) do
            local g = np[2].grad
            if g then self.grads['gradients/' .. np[1]] = M.tensor_histogram(g, self.opts.histogram_buckets) end
         end
      end
   elseif ctx.grad_hook ~= nil then
      ctx.grad_hook = nil
   end
end

function Logger:on_batch_end(ctx, step, logs)
   local o = self.opts
   if o.scalars_every_steps > 0 and logs then
      local n = logs.size or 1
      self.loss_sum, self.loss_n, self.samples = self.loss_sum + logs.loss * n, self.loss_n + n, self.samples + n
      if step % o.scalars_every_steps == 0 then
         local t = now()
         local vals = {['step/loss'] = self.loss_sum / self.loss_n}
         if t > self.since then vals['step/samples_per_sec'] = self.samples / (t - self.since) end
         local opt = ctx.optimizer
         local lr = opt and opt.get_lr and opt:get_lr()
         if type(lr) == 'number' then vals['step/lr'] = lr end
         self.tb:add_scalars(vals, step)
         self.loss_sum, self.loss_n, self.samples, self.since = 0, 0, 0, t
      end
   end
   if o.histograms_every_steps > 0 then
      if step % o.histograms_every_steps == 0 then
         local hists = self.grads or {}
         for _, np in ipairs(named_parameters(ctx)) do
            hists['weights/' .. np[1]] = M.tensor_histogram(np[2], o.histogram_buckets)
         end
         self.tb:add_histograms(hists, step)
         self.grads = nil
      end
      self:arm(ctx, step + 1)
   end
end

-- tags: the epoch's scalars ({['loss/train'] = ..., lr = ...}).
function Logger:on_epoch_end(ctx, tags)
   if self.resume then self:continue(ctx, false) end
   self.tb:add_scalars(tags, ctx.step)
end

-- The end of training: the hparams session's status ('success' or 'failure').
function Logger:finish(ctx, status)
   if self.resume then self:continue(ctx, false) end
   if ctx.grad_hook ~= nil then ctx.grad_hook = nil end
   if self.opts.hparams and self.tb and self.tb.f then
      self.tb:add_values({hparams.session_end(status, tensorboard.wall_time())}, ctx.step)
   end
end

-- The evaluation after training: <metric>/<split> at the last step, appended
-- to the (closed) event file.
function Logger:record_test(ctx, split, logs)
   if not self.path then return end
   local tags = {}
   for k, v in pairs(logs) do if type(v) == 'number' then tags[k .. '/' .. split] = v end end
   local w = tensorboard.open(nil, {append = self.path})
   w:add_scalars(tags, ctx.step)
   w:close()
end

function Logger:close()
   if self.tb then self.tb:close() end
end

return M
