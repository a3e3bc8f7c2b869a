-- kbl.callbacks.checkpoint: ModelCheckpoint writes checkpoints during fit
-- through kbl.records.checkpoint (one atomic, checksummed file each), and the
-- two directions between a trainer and a checkpoint: contents(trainer) splits
-- the model's tensors and trainer:state() into plain metadata and named
-- tensors; restore(trainer, path) loads a checkpoint's weights into the
-- trainer's model and hands it the state, so the next fit() resumes exactly.
local kbl = require 'kbl'
local base = require 'kbl.callbacks.base'

local M = {}

-- Tensors inside the state (optimizer moments) are stored by name and left as
-- {__tensor = name} in the metadata.
local function split_tensors(v, path, tensors)
   if kbl.is_tensor(v) then
      tensors[path] = v
      return {__tensor = path}
   elseif type(v) == 'table' then
      local out = {}
      for k, x in pairs(v) do out[k] = split_tensors(x, path .. '.' .. tostring(k), tensors) end
      return out
   end
   return v
end

local function join_tensors(v, tensors)
   if type(v) == 'table' then
      if v.__tensor then return tensors[v.__tensor] end
      local out = {}
      for k, x in pairs(v) do out[k] = join_tensors(x, tensors) end
      return out
   end
   return v
end

-- {meta = {state =, config =, name =}, tensors = {['model.<name>'] =, ['state.<path>'] =}}
function M.contents(trainer)
   local tensors = {}
   for name, t in pairs(trainer.model:state_dict()) do tensors['model.' .. name] = t end
   local state = split_tensors(trainer:state(), 'state', tensors)
   return {meta = {kind = 'kbl.fit', state = state, config = trainer.config_text, name = trainer.name},
      tensors = tensors}
end

-- Writes a checkpoint of the trainer to path; returns path.
function M.save(trainer, path)
   require('kbl.records.checkpoint').save(path, M.contents(trainer))
   trainer.last_checkpoint = path
   return path
end

-- Reads a checkpoint: the model's state dict, the trainer state, the meta.
function M.read(path)
   local meta, tensors = require('kbl.records.checkpoint').load(path)
   local weights = {}
   for name, t in pairs(tensors) do
      local short = name:match('^model%.(.*)$')
      if short then weights[short] = t end
   end
   return weights, meta.state and join_tensors(meta.state, tensors) or nil, meta
end

-- Loads the checkpoint's weights into the (built) model; with opts.resume the
-- trainer continues from the checkpoint's state on its next fit().
function M.restore(trainer, path, opts)
   trainer:build()
   local weights, state = M.read(path)
   trainer.model:load_state_dict(weights)
   if opts and opts.resume then
      if not state then error(path .. ' holds no trainer state to resume from', 0) end
      trainer:set_state(state)
   end
   return state
end

-- ModelCheckpoint{dir = RUN_DIR/checkpoints, every_epochs = 1, every_steps = nil,
-- keep = 3, monitor = 'val_loss', mode = 'auto', save_best = true,
-- save_best_only = false}. Step checkpoints are named by step (step-N.ckpt)
-- and all but the newest `keep` removed; best.ckpt holds the best by monitor.
M.ModelCheckpoint = base.define('ModelCheckpoint', {
   every_epochs = 1, keep = 3, monitor = 'val_loss', mode = 'auto', save_best = true, save_best_only = false,
}, {
   init = function(self) self.mode = base.auto_mode(self.monitor, self.mode) end,
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
      if self.keep and self.keep > 0 then ck.prune(self.folder, self.keep) end
      return path
   end,
   on_batch_end = function(self, ctx, step)
      if self.every_steps and step % self.every_steps == 0 and not self.save_best_only then self:write(ctx) end
   end,
   on_epoch_end = function(self, ctx, epoch, logs)
      if not self.save_best_only and not self.every_steps and epoch % self.every_epochs == 0 then
         self:write(ctx)
      end
      if self.save_best or self.save_best_only then
         local v = logs[self.monitor]
         if type(v) == 'number' and v == v and base.improves(v, self.best, self.mode, 0) then
            self.best, self.best_epoch = v, epoch
            local last = ctx.last_checkpoint
            M.save(ctx, self.folder .. '/best.ckpt')
            if not self.save_best_only then ctx.last_checkpoint = last end
         end
      end
   end,
   state = function(self) return {best = self.best, best_epoch = self.best_epoch} end,
   set_state = function(self, s) self.best, self.best_epoch = s.best, s.best_epoch end,
}, {optional = {'dir', 'every_steps'}})

return M
