--- kbl.callbacks.checkpoint: ModelCheckpoint writes checkpoints during fit in
-- the run-record format of kbl.records.run (one atomic, checksummed file each:
-- the model's tensors, trainer:state() with the optimizer's moments, the
-- config), keeping the last K, the best by a monitored metric, every N steps
-- or epochs; and the way back: read(path) and restore(trainer, path), which
-- loads a checkpoint's weights into the trainer's model and hands it the
-- state, so the next fit() resumes exactly.
local base = require 'kbl.callbacks.base'

local M = {}

-- Writes a checkpoint of the trainer to path; returns path.
function M.save(trainer, path)
   require('kbl.records.run').save_trainer(path, trainer, {config = trainer.config_text, name = trainer.name})
   trainer.last_checkpoint = path
   return path
end

-- Reads a checkpoint: the model's state dict, the trainer state, the meta.
function M.read(path)
   local r = require('kbl.records.run').load_trainer(path)
   return r.model, r.state, r.meta
end

-- Loads the checkpoint's weights into the (built) model; with opts.resume the
-- trainer continues from the checkpoint's state on its next fit().
function M.restore(trainer, path, opts)
   trainer:build()
   local weights, state = M.read(path)
   trainer.model:load_state_dict(weights)
   if opts and opts.resume then
      if not state then error(path .. ' holds no trainer state to resume from', 0) end
      trainer:set_state(state, path)
   end
   return state
end

--- Writes checkpoints during fit: every N epochs or steps, keeping the newest,
-- and the best by a monitored quantity (best.ckpt).
-- @option dir where the checkpoints go (default RUN_DIR/checkpoints)
-- @option every_epochs a checkpoint every N epochs
-- @option every_steps a checkpoint every N steps instead (mid-epoch; optional)
-- @option keep how many step or epoch checkpoints to keep (the newest)
-- @option monitor the logs' key that picks the best
-- @option mode 'min', 'max' or 'auto'
-- @option save_best whether to keep best.ckpt
-- @option save_best_only whether to write only when the monitor improves
-- @usage callbacks.ModelCheckpoint{every_steps = 100, keep = 2}
M.ModelCheckpoint = base.define('ModelCheckpoint', {
   every_epochs = 1, keep = 3, monitor = 'val_loss', mode = 'auto', save_best = true, save_best_only = false,
}, {
   init = function(self)
      self.mode = base.auto_mode(self.monitor, self.mode)
      if self.every_steps ~= nil and not (type(self.every_steps) == 'number' and self.every_steps >= 1) then
         error('callbacks.ModelCheckpoint: every_steps must be a positive number, got '
            .. tostring(self.every_steps), 0)
      end
      if type(self.keep) ~= 'number' or self.keep < 1 then
         error('callbacks.ModelCheckpoint: keep must be at least 1, got ' .. tostring(self.keep), 0)
      end
   end,
   on_train_begin = function(self, ctx)
      self.folder = self.dir and self.dir:gsub('{run_dir}', ctx.run_dir or '.')
         or (ctx.run_dir and ctx.run_dir .. '/checkpoints')
      if not self.folder then error('ModelCheckpoint: give dir = ... (there is no run directory)', 0) end
      base.mkdir_p(self.folder)
   end,
   write = function(self, ctx)
      local ck = require 'kbl.records.checkpoint'
      local path = self.folder .. '/' .. ck.file_name(ctx.step)
      M.save(ctx, path)
      ck.prune(self.folder, self.keep)
      return path
   end,
   on_batch_end = function(self, ctx, step)
      if self.every_steps and step % self.every_steps == 0 and not self.save_best_only then self:write(ctx) end
   end,
   on_epoch_end = function(self, ctx, epoch, logs)
      local improved = false
      if self.save_best or self.save_best_only then
         local v = logs[self.monitor]
         if type(v) == 'number' and v == v and base.improves(v, self.best, self.mode, 0) then
            self.best, self.best_epoch, improved = v, epoch, true
         end
      end
      -- at a step checkpoint already written for this step, the epoch-end one
      -- replaces it: the epoch is finished now, with its logs in the state
      local due = self.every_steps and ctx.step % self.every_steps == 0 or
         (not self.every_steps and self.every_epochs and self.every_epochs > 0 and epoch % self.every_epochs == 0)
      if not self.save_best_only and due then self:write(ctx) end
      if improved then
         local last = ctx.last_checkpoint
         M.save(ctx, self.folder .. '/best.ckpt')
         if not self.save_best_only then ctx.last_checkpoint = last end
      end
   end,
   state = function(self) return {best = self.best, best_epoch = self.best_epoch} end,
   set_state = function(self, s) self.best, self.best_epoch = s.best, s.best_epoch end,
}, {optional = {'dir', 'every_steps'}})

return M
