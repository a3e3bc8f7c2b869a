--- kbl.callbacks.monitor: callbacks driven by a monitored quantity of the epoch
-- logs: EarlyStopping ends the run when it stops improving, ReduceLROnPlateau
-- lowers the learning rate.
local kbl = require 'kbl'
local base = require 'kbl.callbacks.base'
local plural = require('kbl.util').plural

local M = {}

local function shape_str(t) return '[' .. table.concat(t:size(), ', ') .. '] ' .. t.dtype end

-- Saved weights (name -> tensor) against the model's: the same names, shapes and dtypes.
local function check_weights(saved, model)
   local names = {}
   for name in pairs(model) do names[#names + 1] = name end
   for name in pairs(saved) do if model[name] == nil then names[#names + 1] = name end end
   table.sort(names)
   for _, name in ipairs(names) do
      local a, b = saved[name], model[name]
      local why
      if not kbl.is_tensor(a) then why = 'is missing'
      elseif b == nil then why = 'is not in the model'
      else
         local sa, sb = a:size(), b:size()
         local same = #sa == #sb and a.dtype == b.dtype
         for d = 1, #sa do same = same and sa[d] == sb[d] end
         if not same then why = string.format('is %s, the model has %s', shape_str(a), shape_str(b)) end
      end
      if why then error(string.format("EarlyStopping: the saved best weight '%s' %s", name, why), 0) end
   end
end

--- Stops training when a monitored quantity has stopped improving.
-- @option monitor the logs' key watched ('val_loss', 'val_accuracy', 'loss', ...)
-- @option mode 'min', 'max' or 'auto' (max for accuracies, F1, precision, recall, AUC, IoU; else min)
-- @option patience epochs without improvement before stopping
-- @option min_delta the smallest change that counts as an improvement
-- @option restore_best_weights whether to load the best epoch's weights back when stopping
-- @option baseline a value to beat (optional): no improvement until the monitor passes it
-- @usage callbacks.EarlyStopping{monitor = 'val_accuracy', patience = 3, restore_best_weights = true}
M.EarlyStopping = base.define('EarlyStopping', {
   monitor = 'val_loss', mode = 'auto', patience = 5, min_delta = 0, restore_best_weights = false,
}, {
   init = function(self)
      self.mode = base.auto_mode(self.monitor, self.mode)
      self.wait, self.best, self.best_epoch, self.stopped_epoch = 0, self.baseline, nil, nil
   end,
   on_epoch_end = function(self, ctx, epoch, logs)
      local v = base.monitored(self, logs)
      if v == nil then return end
      if base.improves(v, self.best, self.mode, self.min_delta) then
         self.best, self.best_epoch, self.wait = v, epoch, 0
         if self.restore_best_weights then
            self.best_weights = {}
            kbl.no_grad(function()
               for name, t in pairs(ctx.model:state_dict()) do self.best_weights[name] = kbl.keep(t:clone()) end
            end)
         end
      else
         self.wait = self.wait + 1
         if self.wait >= self.patience then
            self.stopped_epoch = epoch
            ctx:message(string.format('early stopping at epoch %d: %s has not improved for %s '
               .. '(best %.6g at epoch %s)', epoch, self.monitor, plural(self.wait, 'epoch'), self.best or 0 / 0,
               tostring(self.best_epoch)))
            return 'stop'
         end
      end
   end,
   on_train_end = function(self, ctx)
      if self.restore_best_weights and self.best_weights and self.stopped_epoch then
         ctx.model:load_state_dict(self.best_weights)
         ctx:message(string.format('restored the weights of epoch %d (%s %.6g)', self.best_epoch, self.monitor,
            self.best))
      end
   end,
   -- the best weights too (tensors, which a checkpoint stores by name), so that
   -- a resumed run restores the same ones at its end
   state = function(self)
      return {wait = self.wait, best = self.best, best_epoch = self.best_epoch, stopped_epoch = self.stopped_epoch,
         best_weights = self.best_weights}
   end,
   -- ctx (the trainer, on resume): the saved best weights are checked against its model
   set_state = function(self, s, ctx)
      if s.best_weights and ctx and ctx.model then check_weights(s.best_weights, ctx.model:state_dict()) end
      self.wait, self.best, self.best_epoch, self.stopped_epoch = s.wait, s.best, s.best_epoch, s.stopped_epoch
      self.best_weights = s.best_weights
   end,
}, {optional = {'baseline'}})

--- Lowers the learning rate when a monitored quantity has stopped improving.
-- @option monitor the logs' key watched
-- @option mode 'min', 'max' or 'auto' (as EarlyStopping)
-- @option factor the rate is multiplied by this
-- @option patience epochs without improvement before lowering
-- @option min_delta the smallest change that counts as an improvement
-- @option cooldown epochs to wait after a reduction before counting again
-- @option min_lr the rate never goes below this
-- @usage callbacks.ReduceLROnPlateau{factor = 0.5, patience = 1}
M.ReduceLROnPlateau = base.define('ReduceLROnPlateau', {
   monitor = 'val_loss', mode = 'auto', factor = 0.1, patience = 2, min_delta = 1e-4, cooldown = 0, min_lr = 0,
}, {
   init = function(self)
      if not (self.factor > 0 and self.factor < 1) then
         error('callbacks.ReduceLROnPlateau: factor must be between 0 and 1, got ' .. tostring(self.factor), 0)
      end
      self.mode = base.auto_mode(self.monitor, self.mode)
      self.wait, self.cooldown_left, self.best = 0, 0, nil
   end,
   on_epoch_end = function(self, ctx, epoch, logs)
      local v = base.monitored(self, logs)
      if v == nil then return end
      if self.cooldown_left > 0 then self.cooldown_left = self.cooldown_left - 1 end
      if base.improves(v, self.best, self.mode, self.min_delta) then
         self.best, self.wait = v, 0
      elseif self.cooldown_left == 0 then
         self.wait = self.wait + 1
         if self.wait >= self.patience then
            local old = ctx.optimizer:get_lr()
            local new = math.max(old * self.factor, self.min_lr)
            if new < old then
               ctx.optimizer:set_lr(new)
               ctx:message(string.format('epoch %d: %s has not improved for %s; learning rate %.3g -> %.3g',
                  epoch, self.monitor, plural(self.wait, 'epoch'), old, new))
            end
            self.wait, self.cooldown_left = 0, self.cooldown
         end
      end
   end,
   state = function(self) return {wait = self.wait, best = self.best, cooldown_left = self.cooldown_left} end,
   set_state = function(self, s) self.wait, self.best, self.cooldown_left = s.wait, s.best, s.cooldown_left end,
})

return M
