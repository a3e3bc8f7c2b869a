-- kbl.optim.Optimizer: what every optimizer shares. An optimizer holds its
-- hyper-parameters and, from the first step on, a state table per parameter
-- (plain numbers and tensors, keyed by the parameter's position in the list
-- given to step), which state_dict/load_state_dict save and restore exactly.
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

local function sorted_keys(t)
   local keys = {}
   for k in pairs(t) do keys[#keys + 1] = k end
   table.sort(keys)
   return keys
end

-- Raises libkbl's message when a fused update returns non-zero.
function Optimizer.check(rc)
   if rc ~= 0 then error(ffi.string(C.kbl_last_error()), 3) end
end

-- A zero tensor like p that outlives kbl.scope (optimizer state).
function Optimizer.zeros_like(p)
   return kbl.keep(kbl.zeros(p:size(), {dtype = p.dtype, device = p.device}))
end

-- Optimizer.define(name, {defaults =, validate = fn(h), init = fn(p, h) -> state,
-- update = fn(param_ptr, grad_ptr, state, h, param)}) -> the constructor table:
-- optim.NAME{hyper-parameters} makes an optimizer.
function Optimizer.define(name, spec)
   local cls = setmetatable({name = name, defaults = spec.defaults}, {
      __call = function(cls, opts) return Optimizer.new(cls, opts or {}) end,
   })
   cls.spec = spec
   return cls
end

function Optimizer.new(cls, opts)
   if type(opts) ~= 'table' then error('optim.' .. cls.name .. ' expects a table of options', 3) end
   local h = {}
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
   self.state = {}
   self.steps = 0
   return self
end

function Optimizer:get_lr() return self.hyper.lr end

-- Sets the learning rate. A parameter group with its own lr keeps its ratio to
-- the optimizer's initial lr, so a schedule scales every group alike.
function Optimizer:set_lr(lr)
   if type(lr) ~= 'number' or lr < 0 then error('optim: lr must be a non-negative number, got ' .. tostring(lr), 2) end
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

-- One update of every parameter that has a gradient. Parameters are numbered
-- across groups in order; that position keys their state.
function Optimizer:step(params)
   local groups = groups_of(self, params)
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
            local st = self.state[k]
            if st == nil then
               st = spec.init(p, h)
               self.state[k] = st
            end
            spec.update(pp, pp.grad, st, h, p)
         end
      end
   end
   self.steps = self.steps + 1
end

-- Clears the gradients of the given parameters.
function Optimizer.zero_grad(_, params)
   for _, p in ipairs(params) do
      if is_tensor(p) then p.grad = nil else Optimizer.zero_grad(nil, p.params) end
   end
end

-- Plain data: numbers, strings, booleans and tensors (copies, so that later
-- steps do not change a saved state).
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

function Optimizer:load_state_dict(sd)
   if type(sd) ~= 'table' or type(sd.state) ~= 'table' then
      error('optim.' .. self.name .. ':load_state_dict expects a table made by state_dict()', 2)
   end
   if sd.type ~= self.name then
      error(string.format('optim.%s:load_state_dict: the state was saved by %s', self.name, tostring(sd.type)), 2)
   end
   local state = {}
   for k, st in pairs(sd.state) do
      local s = {}
      for name, v in pairs(st) do s[name] = is_tensor(v) and kbl.keep(v:clone()) or copy(v) end
      state[tonumber(k)] = s
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
