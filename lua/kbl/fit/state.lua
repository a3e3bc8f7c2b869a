--- kbl.fit.state: the trainer's state for checkpoints and exact resume
-- (trainer:state(), set_state, resume_error, restore), kept apart from kbl.fit's
-- loop; kbl.fit installs these methods on its Trainer class.
local ffi = require 'ffi'
local kbl = require 'kbl'

local M = {}
local methods = {}

-- The generator's (seed, offset) as uint64 cdata: kbl.get_rng_state() gives Lua
-- numbers, which lose bits above 2^53; a checkpoint stores these exactly.
local function rng_state()
   local s, o = ffi.new('uint64_t[1]'), ffi.new('uint64_t[1]')
   require('kbl.lib').C.kbl_generator_get_state(s, o)
   return {seed = s[0], offset = o[0]}
end

-- The stable key of each callback that keeps state: its `key`, else its name,
-- with '#2', '#3'... for a second and third of one name. A checkpoint keys
-- callbacks' state by it, not by list position, so a callback present under
-- some display flags only (Progress) moves no other's state.
-- list: callbacks, or saved {name =} entries in their order.
local function callback_keys(list)
   local keys, seen = {}, {}
   for i, cb in ipairs(list) do
      local base = cb.key or cb.name or 'callback'
      seen[base] = (seen[base] or 0) + 1
      keys[i] = seen[base] == 1 and base or (base .. '#' .. seen[base])
   end
   return keys
end
--- The keys callbacks' states are saved under in a checkpoint (key or name, numbered when repeated).
-- @local
M.callback_keys = callback_keys

local function stateful(callbacks)
   local out = {}
   for _, cb in ipairs(callbacks) do if cb.state then out[#out + 1] = cb end end
   return out
end

--- Everything a resume needs: step, epochs, history, pipeline, generator and callbacks' states.
-- Values are numbers, strings, booleans, tables of them, and tensors (the
-- optimizer's moments), which a checkpoint stores by name.
-- @treturn table plain data
-- @usage local s = trainer:state()
function methods:state()
   local cbs = {}
   local list = stateful(self.callbacks)
   for i, key in ipairs(callback_keys(list)) do cbs[key] = {name = list[i].name, state = list[i]:state()} end
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

--- Continues from a state() on the next fit() (after the model's weights are loaded).
-- @tparam table s
-- @tparam[opt] string source where s came from (a checkpoint's path), for messages
-- @usage trainer:set_state(s, 'step-100.ckpt')
function methods:set_state(s, source)
   if type(s) ~= 'table' or s.version ~= 1 then error('fit: set_state needs a state() table (version 1)', 2) end
   -- more epochs than the run had extend it (as Keras' fit(initial_epoch =)); fewer than it has done are refused
   if (s.epochs_done or 0) > self:total_epochs() then
      local plural = require('kbl.util').plural
      error(string.format('resume: the run has done %s already, more than the %s it is now set to; '
         .. 'give epochs of at least %d', plural(s.epochs_done, 'epoch'), plural(self:total_epochs(), 'epoch'),
         s.epochs_done), 0)
   end
   self.resume_state, self.resume_source = s, source
end

--- A message about restoring the state, naming where it came from.
-- @local
function methods:resume_error(err)
   return string.format('resume%s: %s', self.resume_source and (' from ' .. self.resume_source) or '',
      (tostring(err):gsub('^resume: ', '')))
end

--- Puts a state's counters and callbacks' states back.
-- @local
function methods:restore(s)
   self.step, self.epochs_done = s.step, s.epochs_done
   self.history = s.history or {}
   self.logs = self.history[#self.history]
   local saved = s.callbacks or {}
   local numbered = {}   -- a checkpoint of an older kbl keyed them by list position
   for k in pairs(saved) do if type(k) == 'number' then numbered[#numbered + 1] = k end end
   if #numbered > 0 then
      table.sort(numbered)
      local entries = {}
      for i, k in ipairs(numbered) do entries[i] = saved[k] end
      saved = {}
      for i, key in ipairs(callback_keys(entries)) do saved[key] = entries[i] end
   end
   local list = stateful(self.callbacks)
   for i, key in ipairs(callback_keys(list)) do
      local cb, c = list[i], saved[key]
      if c and cb.set_state and (cb.name == c.name) then
         local ok, err = pcall(cb.set_state, cb, c.state, self)
         if not ok then error(self:resume_error(err), 0) end
      end
   end
   if s.pipeline and self.train_pipe.set_state then
      local ok, err = pcall(self.train_pipe.set_state, self.train_pipe, s.pipeline)
      if not ok then error(self:resume_error(err), 0) end
   end
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

--- Adds the methods above to the Trainer class and callback_keys to the kbl.fit module.
-- @local
function M.install(Trainer, fit)
   for name, f in pairs(methods) do Trainer[name] = f end
   fit.callback_keys = M.callback_keys
end

return M
