--- kbl.records.run: what a training run writes into its run directory, as one
-- callback for kbl.fit's Trainer, and the resume that reads it back.
--
--   run_dir/run.lock                        kbl.records.lock: held while a run writes here
--   run_dir/status.json                     kbl.records.status
--   run_dir/events.out.tfevents.<t>.<host>  kbl.records.tensorboard_logger: every logged
--                                           metric (loss/train, loss/validation...) and lr;
--                                           step scalars, histograms, hparams (config key
--                                           tensorboard); a resume goes on in the same file
--   run_dir/report.html                     kbl.records.report, rewritten each epoch
--   run_dir/checkpoints/step-<N>.ckpt       kbl.records.checkpoint: model weights,
--   run_dir/checkpoints/best.ckpt           trainer:state() (optimizer, generator,
--                                           pipeline, callbacks), the config
--   run_dir/weights.safetensors             the final weights (model:state_dict();
--                                           weights_name = 'model.safetensors' in kbl run)
--
-- kbl run gives the checkpoint policy to the config's ModelCheckpoint (placed
-- just before the recorder) and sets every_n_epochs = 0 here; the recorder
-- still writes the checkpoint of an interrupt. Resume skips checkpoints that
-- fail their checks or do not load, naming each and why.
--
--   local records = require 'kbl.records.run'
--   local rec = records.Recorder{run_dir = dir, keep_last = 3, every_n_epochs = 1,
--      every_n_steps = 500, monitor = 'val_loss', config = config_text, summary = summary_text}
--   trainer:add_callback(rec)                 -- last, so it saves the others' updated state
--   if resume_dir then records.resume(trainer, resume_dir) end
--   records.fit(trainer, rec)                 -- status 'failed' with the message on error
--
-- SIGINT or SIGTERM during fit: the recorder writes a checkpoint at the current
-- step (mid-epoch too), marks the status interrupted and raises a message that
-- says how to resume. A checkpoint holds plain data and named tensors only.
--
-- records.existing(run_dir) lists the records a run left in a directory (kbl
-- run refuses to start afresh over them), records.clear(run_dir) deletes them
-- (kbl run --overwrite); both leave other files and the lock alone.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local checkpoint = require 'kbl.records.checkpoint'
local status = require 'kbl.records.status'
local lock = require 'kbl.records.lock'
local C = lib.C

local M = {}

local SIGNALS = {[2] = 'SIGINT', [15] = 'SIGTERM'}

function M.checkpoint_dir(run_dir) return run_dir .. '/checkpoints' end

local fs = require 'kbl.io.fs'
local mkdir_p = fs.mkdir_p

-- ---- trainer state <-> checkpoint ---------------------------------------------

-- A copy of v with every tensor replaced by {__tensor = name}; the tensors go
-- into `tensors` under names made from their path (prefix/key/key...).
function M.pack(v, prefix, tensors)
   if T.is_tensor(v) then
      if tensors[prefix] then error('records: two tensors would be named ' .. prefix, 0) end
      tensors[prefix] = v
      return {__tensor = prefix}
   end
   if type(v) ~= 'table' then return v end
   local out = {}
   for k, x in pairs(v) do out[k] = M.pack(x, prefix .. '/' .. tostring(k), tensors) end
   return out
end

-- The inverse of pack.
function M.unpack(v, tensors, path)
   if type(v) ~= 'table' then return v end
   if v.__tensor then
      local t = tensors[v.__tensor]
      if not t then error(string.format('records: %s lacks tensor %s', path or 'checkpoint', v.__tensor), 0) end
      return t
   end
   local out = {}
   for k, x in pairs(v) do out[k] = M.unpack(x, tensors, path) end
   return out
end

-- Writes the trainer's whole state: model weights (model/<name>) and
-- trainer:state() with its tensors (trainer/...). extra goes into meta.
function M.save_trainer(path, trainer, extra)
   local tensors = {}
   for name, t in pairs(trainer.model:state_dict()) do tensors['model/' .. name] = t end
   local state = M.pack(trainer:state(), 'trainer', tensors)
   local meta = {format = 'kbl.run', version = 1, step = trainer.step, epoch = trainer.epoch,
      epochs_done = trainer.epochs_done, batches_done = trainer.batches_done, state = state,
      saved_at = os.date('!%Y-%m-%dT%H:%M:%SZ')}
   for k, v in pairs(extra or {}) do meta[k] = v end
   return checkpoint.save(path, {meta = meta, tensors = tensors})
end

-- Reads a trainer checkpoint: {meta, state (trainer:state()), model = {name = tensor}}.
function M.load_trainer(path)
   local meta, tensors = checkpoint.load(path)
   if meta.format ~= 'kbl.run' then error('records: ' .. path .. ' is not a training checkpoint', 0) end
   local model = {}
   for name, t in pairs(tensors) do
      local n = name:match('^model/(.*)$')
      if n then model[n] = t end
   end
   return {meta = meta, state = M.unpack(meta.state, tensors, path), model = model}
end

-- Continues `trainer` from the newest valid checkpoint of run_dir, telling on
-- stderr which newer ones it skipped and why. Returns the path, the skipped
-- list and the checkpoint's meta.
-- The newest checkpoint of dir that verifies and loads: path, the load_trainer
-- result, and the newer ones skipped ({{path =, reason =}}), newest first.
function M.latest(dir)
   local skipped = {}
   for _, e in ipairs(checkpoint.list(dir)) do
      local ok, why = checkpoint.verify(e.path)
      local r
      if ok then ok, r = pcall(M.load_trainer, e.path) end
      if ok then return e.path, r, skipped end
      skipped[#skipped + 1] = {path = e.path, reason = tostring(why or r)}
   end
   return nil, nil, skipped
end

function M.resume(trainer, run_dir, opts)
   opts = opts or {}
   local out = opts.out or io.stderr
   local path, r, skipped = M.latest(M.checkpoint_dir(run_dir))
   for _, s in ipairs(skipped) do
      -- the reasons from kbl.records.checkpoint name the file; others get it in front
      local why = s.reason:find(s.path, 1, true) and s.reason or (s.path .. ': ' .. s.reason)
      out:write('kbl: resume: skipping ', why, '\n')
   end
   if not path then
      error(string.format('resume: no valid checkpoint in %s%s', M.checkpoint_dir(run_dir),
         #skipped > 0 and (' (' .. #skipped .. ' damaged, listed above)') or ''), 0)
   end
   trainer:build()
   trainer.model:load_state_dict(r.model)
   trainer:set_state(r.state, path)
   if not opts.quiet then
      out:write(string.format('kbl: resuming from %s (step %d, epoch %d)\n', path, r.meta.step or 0,
         r.meta.epoch or 0))
   end
   return path, skipped, r.meta
end

-- ---- logs -> TensorBoard tags and report history -----------------------------

local BOOKKEEPING = {epoch = true, step = true, stage = true, lr = true, time = true, samples_per_sec = true}

local function is_metric(k, v)
   return type(v) == 'number' and not BOOKKEEPING[k] and not k:match('^time_')
end

-- {loss = .3, val_loss = .4, lr = 1e-3} -> {['loss/train'] = .3, ['loss/validation'] = .4, lr = 1e-3}
function M.scalar_tags(logs)
   local out = {}
   for k, v in pairs(logs) do
      if is_metric(k, v) then
         local val = k:match('^val_(.*)$')
         out[val and (val .. '/validation') or (k .. '/train')] = v
      end
   end
   if type(logs.lr) == 'number' then out.lr = logs.lr end
   return out
end

-- A history entry for kbl.records.report.
function M.report_entry(logs)
   local e = {epoch = logs.epoch, lr = logs.lr, stage = logs.stage, train = {}, validation = {}, times = {}}
   for k, v in pairs(logs) do
      local phase = type(v) == 'number' and k:match('^time_(.*)$')
      if phase then e.times[phase] = v end
      if is_metric(k, v) then
         local val = k:match('^val_(.*)$')
         if val then e.validation[val] = v else e.train[k] = v end
      end
   end
   return e
end

-- ---- the callback ----------------------------------------------------------------

local Recorder = {}
Recorder.__index = Recorder

function M.Recorder(opts)
   opts = opts or {}
   if not opts.run_dir then error('records.Recorder: run_dir is required', 2) end
   local self = setmetatable({name = 'Recorder', run_dir = opts.run_dir,
      every_n_steps = opts.every_n_steps, every_n_epochs = opts.every_n_epochs or 1,
      keep_last = opts.keep_last or 3, monitor = opts.monitor, mode = opts.mode,
      save_best = opts.save_best ~= false and opts.monitor ~= nil,
      tensorboard = opts.tensorboard ~= false, report = opts.report ~= false,
      final_weights = opts.final_weights ~= false, handle_signals = opts.handle_signals ~= false,
      weights_name = opts.weights_name or 'weights.safetensors', resumed_from = opts.resumed_from,
      config = opts.config, summary = opts.summary, title = opts.title,
      resume_command = opts.resume_command, checkpoint_level = opts.level}, Recorder)
   if self.monitor and not self.mode then
      local m = self.monitor
      self.mode = (m:match('acc') or m:match('auc') or m:match('f1')) and 'max' or 'min'
   end
   return self
end

function Recorder:state() return {best = self.best, best_step = self.best_step} end
function Recorder:set_state(s) self.best, self.best_step = s.best, s.best_step end

function Recorder:save(ctx, path)
   M.save_trainer(path, ctx, {config = self.config, name = ctx.name})
   self.last_checkpoint, ctx.last_checkpoint = path, path
   return path
end

function Recorder:step_checkpoint(ctx)
   local path = M.checkpoint_dir(self.run_dir) .. '/' .. checkpoint.file_name(ctx.step)
   self:save(ctx, path)
   checkpoint.prune(M.checkpoint_dir(self.run_dir), self.keep_last)
   return path
end

function Recorder:write_report(ctx, state)
   if not self.report then return end
   local history = {}
   for i, logs in ipairs(ctx.history or {}) do history[i] = M.report_entry(logs) end
   require('kbl.records.report').write(self.run_dir .. '/report.html', {title = self.title or ctx.name,
      run_dir = self.run_dir, status = state, config = self.config, summary = self.summary,
      history = history, test = self.test, updated = os.date('!%Y-%m-%d %H:%M:%S UTC')})
end

-- Removes the temporary files (<name>.tmp.<pid>) of checkpoint writes that a
-- killed process left behind; a live writer's are kept.
function M.remove_stale_temporaries(dir)
   local removed = {}
   for _, name in ipairs(fs.list_dir(dir)) do
      local pid = tonumber(name:match('%.tmp%.(%d+)$'))
      if pid and not status.is_alive(pid) then
         os.remove(dir .. '/' .. name)
         removed[#removed + 1] = name
      end
   end
   return removed
end

-- What a run writes at the top of its directory, besides the event files
-- (events.out.tfevents.*) and checkpoints/.
M.RECORD_FILES = {'config.lua', 'summary.txt', 'metrics.jsonl', 'metrics.csv', 'report.html', 'status.json',
   'model.safetensors', 'weights.safetensors'}

local function is_record(name)
   for _, f in ipairs(M.RECORD_FILES) do if name == f then return true end end
   return name == 'checkpoints' or name:match('^events%.out%.tfevents%.') ~= nil
end

-- The run records in dir (names, sorted), {} for a fresh or missing directory.
function M.existing(dir)
   local found = {}
   for _, name in ipairs(fs.list_dir(dir)) do
      if is_record(name) then found[#found + 1] = name end
   end
   return found
end

-- Deletes the run records of dir: checkpoints/ with everything in it, the
-- event files, config, summary, metrics, report, status and weights. Raises
-- naming the first file it cannot delete. Returns the names deleted.
function M.clear(dir)
   local names = M.existing(dir)
   local function remove(path)
      local ok, err = os.remove(path)
      if not ok then error('cannot delete ' .. tostring(err), 0) end
   end
   for _, name in ipairs(names) do
      local path = dir .. '/' .. name
      if name == 'checkpoints' then
         for _, f in ipairs(fs.list_dir(path)) do remove(path .. '/' .. f) end
      end
      remove(path)
   end
   return names
end

function Recorder:on_train_begin(ctx)
   mkdir_p(self.run_dir)
   if not self.locked then
      lock.acquire(self.run_dir)   -- kbl run holds it already; this only counts
      self.locked = true
   end
   mkdir_p(M.checkpoint_dir(self.run_dir))
   M.remove_stale_temporaries(M.checkpoint_dir(self.run_dir))
   status.start(self.run_dir, {step = ctx.step, epoch = ctx.epochs_done, resume = self.resumed_from})
   if self.tensorboard then self.tb = require('kbl.records.tensorboard_logger').new(self.run_dir):begin(ctx) end
   if self.handle_signals and C.kbl_interrupt_install() ~= 0 then
      error(ffi.string(C.kbl_last_error()), 0)
   end
   self:write_report(ctx, 'running')
end

function Recorder:interrupt(ctx, sig)
   local name = SIGNALS[sig] or ('signal ' .. sig)
   local path = self:step_checkpoint(ctx)
   self.interrupted = true
   local how = self.resume_command or ('kbl run <config files> --resume ' .. self.run_dir)
   local msg = string.format('interrupted by %s at step %d (epoch %d); checkpoint written to %s. '
      .. 'Resume with: %s', name, ctx.step, ctx.epoch or 0, path, how)
   status.interrupted(self.run_dir, {message = msg, step = ctx.step, epoch = ctx.epoch, checkpoint = path})
   self:close()
   self:unlock()
   error(msg, 0)
end

function Recorder:on_epoch_begin(ctx)
   if self.tb then self.tb:on_epoch_begin(ctx) end
end

function Recorder:on_batch_end(ctx, step, logs)
   local sig = self.handle_signals and C.kbl_interrupt_pending() or 0
   if sig ~= 0 then return self:interrupt(ctx, sig) end
   if self.tb and self.tb.per_step then self.tb:on_batch_end(ctx, step, logs) end
   if self.every_n_steps and step % self.every_n_steps == 0 then self:step_checkpoint(ctx) end
end

function Recorder:on_epoch_end(ctx, epoch, logs)
   if self.tb then self.tb:on_epoch_end(ctx, M.scalar_tags(logs)) end
   local improved = false
   local v = self.monitor and logs[self.monitor]
   if type(v) == 'number' and v == v then
      if self.best == nil or (self.mode == 'max' and v > self.best) or (self.mode ~= 'max' and v < self.best) then
         self.best, self.best_step, improved = v, ctx.step, true
      end
   end
   if self.every_n_epochs and self.every_n_epochs > 0 and epoch % self.every_n_epochs == 0 then
      self:step_checkpoint(ctx)
   end
   if improved and self.save_best then
      local last = ctx.last_checkpoint
      self:save(ctx, M.checkpoint_dir(self.run_dir) .. '/best.ckpt')
      self.last_checkpoint, ctx.last_checkpoint = last, last
   end
   status.write(self.run_dir, {state = 'running', pid = status.pid(), host = status.host(), step = ctx.step,
      epoch = epoch, checkpoint = ctx.last_checkpoint})
   self:write_report(ctx, 'running')
   -- a signal during the epoch's last step or its validation: stop here, the
   -- epoch finished (the check after each step comes first otherwise)
   local sig = self.handle_signals and C.kbl_interrupt_pending() or 0
   if sig ~= 0 then return self:interrupt(ctx, sig) end
end

function Recorder:close()
   if self.tb then self.tb:close() end   -- kept: record_test appends the test metrics
   if self.handle_signals then
      C.kbl_interrupt_clear()
      C.kbl_interrupt_restore()
   end
end

-- Gives back the run directory's lock, once the status is final.
function Recorder:unlock()
   if self.locked then lock.release(self.run_dir); self.locked = false end
end

-- failure: the message of a run that failed (a NaN loss), from kbl.fit.
function Recorder:on_train_end(ctx, _, failure)
   if self.interrupted or self.closed then return end
   self.closed = true
   if self.tb then self.tb:finish(ctx, failure and 'failure' or 'success') end
   if failure then
      self:close()
      status.failed(self.run_dir, failure, {step = ctx.step, checkpoint = ctx.last_checkpoint})
      self:write_report(ctx, 'failed: ' .. failure)
      self:unlock()
      return
   end
   if self.final_weights then
      require('kbl.io.safetensors').save(self.run_dir .. '/' .. self.weights_name, ctx.model:state_dict(),
         {step = ctx.step, epoch = ctx.epoch or 0, format = 'pt'})
   end
   self:close()
   status.finished(self.run_dir, {step = ctx.step, epoch = ctx.epoch, checkpoint = ctx.last_checkpoint})
   self:write_report(ctx, 'finished')
   self:unlock()
end

-- Records the evaluation after training (logs of trainer:evaluate(split)) in
-- the run's files: a line of metrics.jsonl ({split =, epoch =, step =,
-- <split>_loss =, ...}), a line of summary.txt, `test` in status.json and a
-- table in report.html. Call it after fit, once the run has finished.
function Recorder:record_test(ctx, split, logs)
   local json = require 'dkjson'
   local line = {split = split, epoch = ctx.epochs_done, step = ctx.step}
   local test = {split = split}
   for k, v in pairs(logs) do
      if type(v) == 'number' then
         local clean = (v == v and v ~= math.huge and v ~= -math.huge) and v or json.null
         line[split .. '_' .. k], test[k] = clean, clean
      end
   end
   local f = assert(io.open(self.run_dir .. '/metrics.jsonl', 'a'))
   f:write(json.encode(line, {keyorder = require('kbl.util').sorted_keys(line)}), '\n')
   f:close()
   local text = split .. ': ' .. require('kbl.callbacks.progress').metrics_text(logs)
   f = assert(io.open(self.run_dir .. '/summary.txt', 'a'))
   f:write('\n', text, '\n')
   f:close()
   self.test = test
   if self.tb then self.tb:record_test(ctx, split, logs) end
   local s = status.read(self.run_dir, {raw = true}) or {}
   if s.state == 'finished' then
      status.finished(self.run_dir, {step = s.step, epoch = s.epoch, checkpoint = s.checkpoint, resume = s.resume,
         test = test})
      self:write_report(ctx, 'finished')
   end
   return text
end

-- load_run(dir) -> model, config, trainer: a `kbl run` directory's model,
-- built from its config.lua (on one batch of its data, as the run built it)
-- with the run's final weights (model.safetensors), or its newest valid
-- checkpoint's for a run that did not finish; in eval mode. config is the
-- resolved config table; trainer the kbl.fit trainer around the model
-- (evaluate, predict). opts.weights: another safetensors file.
function M.load_run(dir, opts)
   opts = opts or {}
   if type(dir) ~= 'string' or not fs.is_dir(dir) then
      error('load_run: ' .. tostring(dir) .. ' is not a run directory', 2)
   end
   local config = require 'kbl.config'
   local path = dir .. '/config.lua'
   if not fs.exists(path) then error('load_run: ' .. dir .. ' has no config.lua (is it a kbl run directory?)', 2) end
   local cfg, origins = config.load({path})
   local trainer = require('kbl.config.experiment').trainer(cfg, {quiet = true, origins = origins})
   local ok, err = pcall(function()
      trainer:build()
      local weights = opts.weights or (dir .. '/model.safetensors')
      if opts.weights or fs.exists(weights) then
         trainer.model:load_state_dict(require('kbl.io.safetensors').load(weights))
      else
         local ckpt = M.latest(M.checkpoint_dir(dir))
         if not ckpt then
            error(string.format('load_run: %s has no weights: no model.safetensors and no valid checkpoint', dir), 0)
         end
         trainer.model:load_state_dict(M.load_trainer(ckpt).model)
      end
   end)
   if trainer.restore_defaults then trainer.restore_defaults() end
   if not ok then error(err, 0) end
   trainer.model:eval()
   return trainer.model, cfg, trainer
end

-- Runs trainer:fit(); on an error that is not an interrupt, marks the run failed
-- with the message before passing the error on.
function M.fit(trainer, recorder)
   local ok, res = xpcall(function() return trainer:fit() end, function(e)
      return {msg = e, trace = debug.traceback('', 2)}
   end)
   if ok then return res end
   if recorder and not recorder.interrupted then
      recorder:close()
      pcall(status.failed, recorder.run_dir, tostring(res.msg), {step = trainer.step,
         checkpoint = trainer.last_checkpoint})
   end
   if recorder then recorder:unlock() end
   error(res.msg, 0)
end

return M
