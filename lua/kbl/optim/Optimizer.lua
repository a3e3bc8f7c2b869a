--- kbl.optim.Optimizer: what every optimizer shares. An optimizer holds its
-- hyper-parameters and, from the first step on, a state table per parameter
-- (plain numbers and tensors, keyed by the parameter's name when step is
-- given names, else by its position in the list given to step), which
-- state_dict/load_state_dict save and restore exactly. Keyed by name, a
-- parameter's moments survive a change of which parameters train.
-- The update itself is one fused C call per parameter (core/optim.c).
local ffi = require 'ffi'
local kbl = require 'kbl'
local T = require 'kbl.tensor'
local C = kbl.lib.C
local live, is_tensor = T.live, T.is_tensor

local Optimizer = {}
Optimizer.__index = Optimizer

local function copy(v)
   if type(v) ~= 'table' then return v end
   local out = {}
   for k, x in pairs(v) do out[k] = copy(x) end
   return out
end

local sorted_keys = require('kbl.util').sorted_keys

--- Raises libkbl's message when a fused update returns non-zero.
-- @local
function Optimizer.check(rc)
   if rc ~= 0 then error(ffi.string(C.kbl_last_error()), 3) end
end

--- A zero tensor like p that outlives kbl.scope (optimizer state).
-- @local
function Optimizer.zeros_like(p)
   return kbl.keep(kbl.zeros(p:size(), {dtype = p.dtype, device = p.device}))
end

--- Makes an optimizer type: optim.NAME{hyper-parameters} then makes an optimizer.
-- @tparam string name
-- @tparam table spec {defaults = {...}, validate = fn(h), init = fn(p, h) -> state,
-- update = fn(param_ptr, grad_ptr, state, h, param)}
-- @treturn table the type
-- @usage local Plain = optim.Optimizer.define('Plain', {defaults = {lr = 0.1}, init = ..., update = ...})
function Optimizer.define(name, spec)
   local cls = setmetatable({name = name, defaults = spec.defaults}, {
      __call = function(cls, opts) return Optimizer.new(cls, opts or {}) end,
   })
   cls.spec = spec
   return cls
end

local function callable(v)
   if type(v) == 'function' then return true end
   local mt = type(v) == 'table' and getmetatable(v)
   return mt and mt.__call ~= nil or false
end

-- A rate given as a schedule (kbl.optim.schedules or a function of the step,
-- counted from 1): the rate it gives is the rate (absolute). A kbl schedule
-- made without lr gives a factor, which an optimizer has no rate to scale:
-- an error says so (LearningRateScheduler takes those).
local function rate_schedule(name, s)
   if require('kbl.optim.schedules').is_factor(s) then
      error(string.format('optim.%s: lr = %s gives a factor (it names no lr); give it the rate: %s{lr = 1e-3, ...}',
         name, tostring(s), tostring(s)), 4)
   end
   return s
end

--- Makes an optimizer of a type from its hyper-parameters (what optim.NAME{...} calls).
-- @tparam table cls the type
-- @tparam table opts the hyper-parameters
-- @treturn table the optimizer
-- @usage local opt = optim.Optimizer.new(optim.SGD, {lr = 0.1})
function Optimizer.new(cls, opts)
   if type(opts) ~= 'table' then error('optim.' .. cls.name .. ' expects a table of options', 3) end
   local h = {}
   local schedule
   if callable(opts.lr) then
      schedule = rate_schedule(cls.name, opts.lr)
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      o.lr = schedule(1)
      if type(o.lr) ~= 'number' then
         error(string.format('optim.%s: the lr schedule gave %s at step 1, not a number', cls.name, tostring(o.lr)), 3)
      end
      opts = o
   end
   for k, v in pairs(cls.defaults) do h[k] = copy(v) end
   for k, v in pairs(opts) do
      if cls.defaults[k] == nil and k ~= 'lr' then
         error(string.format("optim.%s: unknown option '%s' (options: %s)", cls.name, tostring(k),
            table.concat(sorted_keys(cls.defaults), ', ')), 3)
      end
      h[k] = copy(v)
   end
   if type(h.lr) ~= 'number' or h.lr < 0 then
      error(string.format('optim.%s: lr must be a non-negative number, got %s', cls.name, tostring(h.lr)), 3)
   end
   if cls.spec.validate then
      local ok, err = pcall(cls.spec.validate, h)
      if not ok then error('optim.' .. cls.name .. ': ' .. tostring(err):gsub('^.-:%d+: ', ''), 3) end
   end
   local self = setmetatable({}, Optimizer)
   self.class = cls
   self.name = cls.name
   self.hyper = h
   self.initial_lr = h.lr
   self.schedule = schedule
   self.state = {}
   self.steps = 0
   return self
end

--- The current learning rate.
-- @treturn number
-- @usage print(opt:get_lr())
function Optimizer:get_lr() return self.hyper.lr end

--- Sets the learning rate. A parameter group with its own lr keeps its ratio to
-- the optimizer's initial lr, so a schedule scales every group alike. An
-- optimizer whose lr is a schedule refuses another rate (as Keras does).
-- @tparam number lr
-- @usage opt:set_lr(1e-4)
function Optimizer:set_lr(lr)
   if type(lr) ~= 'number' or lr < 0 then error('optim: lr must be a non-negative number, got ' .. tostring(lr), 2) end
   if self.schedule and lr ~= self.hyper.lr then
      error(string.format('optim.%s: its lr follows %s, so it cannot be set to %.6g (by ReduceLROnPlateau, '
         .. "LearningRateScheduler or a stage's lr): use one or the other", self.name, tostring(self.schedule), lr), 2)
   end
   self.hyper.lr = lr
end

-- A list of tensors, or a list of groups {params = {...}, lr =, weight_decay =, ...}
-- -> a list of groups.
local function groups_of(self, params)
   if type(params) ~= 'table' then
      error('optim.' .. self.name .. ':step expects a list of parameters or of parameter groups', 3)
   end
   if #params == 0 or is_tensor(params[1]) then return {{params = params}} end
   for i, g in ipairs(params) do
      if type(g) ~= 'table' or type(g.params) ~= 'table' then
         error(string.format('optim.%s:step: element %d is neither a tensor nor a group {params = ...}',
            self.name, i), 3)
      end
      for k in pairs(g) do
         if k ~= 'params' and self.class.defaults[k] == nil and k ~= 'lr' then
            error(string.format("optim.%s:step: group %d has an unknown option '%s'", self.name, i, tostring(k)), 3)
         end
      end
   end
   return params
end

-- The hyper-parameters of a group: the optimizer's, overridden by the group's.
local function group_hyper(self, g)
   if next(g, nil) == 'params' and next(g, 'params') == nil then return self.hyper end
   local h = {}
   for k, v in pairs(self.hyper) do h[k] = v end
   for k, v in pairs(g) do if k ~= 'params' then h[k] = v end end
   if g.lr then h.lr = g.lr * (self.initial_lr ~= 0 and self.hyper.lr / self.initial_lr or 1) end
   return h
end

--- One update of every parameter that has a gradient. Parameters are numbered
-- across groups in order; names (optional, one per parameter in that order)
-- key their state, else the position does.
-- @tparam table params a list of parameters, or of groups {params = {...}, lr = ...}
-- @tparam[opt] table names the parameters' names
-- @usage model:zero_grad(); loss:backward(); opt:step(model:parameters())
function Optimizer:step(params, names)
   local groups = groups_of(self, params)
   if self.schedule then   -- the rate of this step (counted from 1)
      local lr = self.schedule(self.steps + 1)
      if type(lr) ~= 'number' or lr ~= lr or lr < 0 then
         error(string.format('optim.%s: the lr schedule gave %s at step %d', self.name, tostring(lr),
            self.steps + 1), 2)
      end
      self.hyper.lr = lr
   end
   local spec = self.class.spec
   local k = 0
   for _, g in ipairs(groups) do
      local h = group_hyper(self, g)
      for _, p in ipairs(g.params) do
         k = k + 1
         if not is_tensor(p) then
            error(string.format('optim.%s:step: parameter %d is not a tensor', self.name, k), 2)
         end
         local pp = live(p)
         if pp.grad ~= nil then
            local key = names and names[k] or k
            local st = self.state[key]
            if st == nil then
               st = spec.init(p, h)
               self.state[key] = st
            end
            spec.update(pp, pp.grad, st, h, p)
         end
      end
   end
   self.steps = self.steps + 1
end

--- Clears the gradients of the given parameters.
-- @param _ the optimizer (its state is not touched)
-- @tparam table params
-- @usage opt:zero_grad(model:parameters())
function Optimizer.zero_grad(_, params)
   for _, p in ipairs(params) do
      if is_tensor(p) then p.grad = nil else Optimizer.zero_grad(nil, p.params) end
   end
end

--- The optimizer's state as plain data (numbers, strings, booleans and tensor copies).
-- @treturn table
-- @usage local sd = opt:state_dict()
function Optimizer:state_dict()
   local state = {}
   for k, st in pairs(self.state) do
      local s = {}
      for name, v in pairs(st) do s[name] = is_tensor(v) and v:clone() or copy(v) end
      state[k] = s
   end
   return {type = self.name, hyper = copy(self.hyper), initial_lr = self.initial_lr, steps = self.steps,
      state = state}
end

local function shape_str(t) return '[' .. table.concat(t:size(), ', ') .. '] ' .. t.dtype end

--- Checks a state dict against the parameters: shapes, dtypes and names; raises naming the parameter.
-- @tparam table sd
-- @tparam table params
-- @tparam[opt] table names
-- @usage opt:check_state(sd, model:parameters())
function Optimizer:check_state(sd, params, names)
   local flat = {}
   for _, g in ipairs(groups_of(self, params)) do
      for _, p in ipairs(g.params) do flat[#flat + 1] = p end
   end
   local function label(k)
      return string.format("parameter %s (%d of %d)", names and names[k] and ("'" .. names[k] .. "'") or '', k, #flat)
   end
   local position = {}
   for i, n in ipairs(names or {}) do position[n] = i end
   for k, st in pairs(sd.state) do
      local i = tonumber(k) or position[k]
      -- a state by name of a parameter that does not train now (frozen in this
      -- stage) is kept for when it trains again
      if type(k) == 'string' and not tonumber(k) and not i and names then goto continue end
      if not i or not flat[i] then
         error(string.format('optim.%s: the saved state is for parameter %s, but there are %d parameters',
            self.name, tostring(k), #flat), 0)
      end
      if type(st) ~= 'table' then
         error(string.format('optim.%s: the saved state of %s is a %s, not a table', self.name, label(i), type(st)), 0)
      end
      local p = flat[i]
      for _, name in ipairs(sorted_keys(st)) do
         local v = st[name]
         if is_tensor(v) then
            local a, b = v:size(), p:size()
            local same = #a == #b and v.dtype == p.dtype
            for d = 1, #a do same = same and a[d] == b[d] end
            if not same then
               error(string.format('optim.%s: the saved %s of %s is %s, the parameter is %s', self.name, name,
                  label(i), shape_str(v), shape_str(p)), 0)
            end
         end
      end
      ::continue::
   end
end

--- Loads a state from state_dict, checked against the parameters first (check_state).
-- @tparam table sd
-- @tparam table params
-- @tparam[opt] table names with names, a state saved by position is keyed by them
-- @usage opt:load_state_dict(sd, model:parameters())
function Optimizer:load_state_dict(sd, params, names)
   if type(sd) ~= 'table' or type(sd.state) ~= 'table' then
      error('optim.' .. self.name .. ':load_state_dict expects a table made by state_dict()', 2)
   end
   if sd.type ~= self.name then
      error(string.format('optim.%s:load_state_dict: the state was saved by %s', self.name, tostring(sd.type)), 2)
   end
   if params then self:check_state(sd, params, names) end
   local state = {}
   for k, st in pairs(sd.state) do
      local s = {}
      for name, v in pairs(st) do s[name] = is_tensor(v) and kbl.keep(v:clone()) or copy(v) end
      local i = tonumber(k)
      state[i and names and names[i] or i or k] = s
   end
   self.state = state
   self.hyper = copy(sd.hyper)
   self.initial_lr = sd.initial_lr
   self.steps = sd.steps or 0
end

function Optimizer:__tostring()
   local parts = {}
   for _, k in ipairs(sorted_keys(self.hyper)) do
      local v = self.hyper[k]
      if type(v) == 'table' then v = '{' .. table.concat(v, ', ') .. '}' end
      parts[#parts + 1] = k .. ' = ' .. tostring(v)
   end
   return 'optim.' .. self.name .. '{' .. table.concat(parts, ', ') .. '}'
end

return Optimizer
