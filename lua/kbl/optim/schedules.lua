--- kbl.optim.schedules: learning-rate schedules. Each is a callable object:
-- `schedule(t) -> lr`, where t counts steps (or epochs) from 1, so schedule(1)
-- is the first step's rate. Without `lr` a schedule gives the factor (lr = 1).
-- The formulas are torch.optim.lr_scheduler's, with its epoch e = t - 1.
-- reduce_on_plateau is driven by a metric instead: `rule:step(value) -> lr`.
local M = {}

local function check_t(name, t)
   if type(t) ~= 'number' or t < 1 then
      error(string.format('schedules.%s: the step counts from 1, got %s', name, tostring(t)), 3)
   end
   return t - 1
end

local function need(name, opts, key)
   local v = opts[key]
   if type(v) ~= 'number' then error(string.format('schedules.%s needs a number %s', name, key), 3) end
   return v
end

local function make(name, opts, fn)
   return setmetatable({name = name, opts = opts}, {
      __call = function(_, t) return fn(check_t(name, t)) end,
      __tostring = function() return 'schedules.' .. name end,
   })
end

--- A constant rate.
-- @tparam table opts {lr} (without lr: the factor 1)
-- @treturn table a schedule: schedule(t) -> lr, t from 1
-- @usage local s = optim.schedules.constant{lr = 1e-3}
function M.constant(opts)
   opts = opts or {}
   local lr = opts.lr or 1
   return make('constant', opts, function() return lr end)
end

--- lr * gamma^floor(e / step_size), e = t - 1.
-- @tparam table opts {lr, step_size, gamma = 0.1}
-- @treturn table a schedule
-- @usage local s = optim.schedules.step{lr = 0.1, step_size = 30}
function M.step(opts)
   local lr, size, gamma = opts.lr or 1, need('step', opts, 'step_size'), opts.gamma or 0.1
   return make('step', opts, function(e) return lr * gamma ^ math.floor(e / size) end)
end

--- lr times gamma at every milestone passed.
-- @tparam table opts {lr, milestones = {...}, gamma = 0.1}
-- @treturn table a schedule
-- @usage local s = optim.schedules.multi_step{lr = 0.1, milestones = {30, 80}}
function M.multi_step(opts)
   local lr, gamma, ms = opts.lr or 1, opts.gamma or 0.1, opts.milestones
   if type(ms) ~= 'table' then error('schedules.multi_step needs a list of milestones', 2) end
   return make('multi_step', opts, function(e)
      local n = 0
      for _, m in ipairs(ms) do if e >= m then n = n + 1 end end
      return lr * gamma ^ n
   end)
end

--- lr * gamma^e, e = t - 1.
-- @tparam table opts {lr, gamma}
-- @treturn table a schedule
-- @usage local s = optim.schedules.exponential{lr = 1e-3, gamma = 0.96}
function M.exponential(opts)
   local lr, gamma = opts.lr or 1, need('exponential', opts, 'gamma')
   return make('exponential', opts, function(e) return lr * gamma ^ e end)
end

--- A linear warm-up over the first `warmup` steps, then cosine annealing from lr to
-- min_lr over the remaining total - warmup steps; min_lr after `total`.
-- @tparam table opts {lr, total, warmup = 0, min_lr = 0}
-- @treturn table a schedule
-- @usage local s = optim.schedules.cosine{lr = 0.1, total = 1000, warmup = 100}
function M.cosine(opts)
   local lr, total = opts.lr or 1, need('cosine', opts, 'total')
   local warmup, min_lr = opts.warmup or 0, opts.min_lr or 0
   if warmup >= total then error('schedules.cosine: warmup must be shorter than total', 2) end
   return make('cosine', opts, function(e)
      if e < warmup then return lr * (e + 1) / warmup end
      local span = total - warmup
      local x = math.min(e - warmup, span)
      return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * x / span)) / 2
   end)
end

--- OneCycleLR: from max_lr / div_factor up to max_lr over pct_start of the steps, then down to that / final_div_factor.
-- @tparam table opts {max_lr, total, pct_start = 0.3, div_factor = 25, final_div_factor = 1e4, anneal = 'cos' | 'linear'}
-- @treturn table a schedule
-- @usage local s = optim.schedules.one_cycle{max_lr = 0.1, total = 1000}
function M.one_cycle(opts)
   local max_lr = opts.max_lr or opts.lr or 1
   local total = need('one_cycle', opts, 'total')
   local pct = opts.pct_start or 0.3
   local initial = max_lr / (opts.div_factor or 25)
   local final = initial / (opts.final_div_factor or 1e4)
   local anneal = opts.anneal or 'cos'
   local function f(a, b, x)
      if anneal == 'linear' then return (b - a) * x + a end
      return b + (a - b) / 2 * (math.cos(math.pi * x) + 1)
   end
   if anneal ~= 'cos' and anneal ~= 'linear' then error("schedules.one_cycle: anneal is 'cos' or 'linear'", 2) end
   local up_end, down_end = pct * total - 1, total - 1
   return make('one_cycle', opts, function(e)
      if e > down_end then
         error(string.format('schedules.one_cycle: step %d is past the %d total steps', e + 1, total), 3)
      end
      if e <= up_end then return f(initial, max_lr, e / up_end) end
      return f(max_lr, final, (e - up_end) / (down_end - up_end))
   end)
end

--- A rule driven by a metric: rule:step(metric) -> lr multiplies the rate by factor
-- once the metric has not improved for more than `patience` calls, as ReduceLROnPlateau.
-- @tparam table opts {lr, mode = 'min', factor = 0.1, patience = 10, threshold = 1e-4,
-- threshold_mode = 'rel', cooldown = 0, min_lr = 0}
-- @treturn table the rule; its state is plain numbers
-- @usage local rule = optim.schedules.reduce_on_plateau{lr = 0.1}; local lr = rule:step(val_loss)
function M.reduce_on_plateau(opts)
   opts = opts or {}
   local mode, tmode = opts.mode or 'min', opts.threshold_mode or 'rel'
   if mode ~= 'min' and mode ~= 'max' then error("schedules.reduce_on_plateau: mode is 'min' or 'max'", 2) end
   if tmode ~= 'rel' and tmode ~= 'abs' then
      error("schedules.reduce_on_plateau: threshold_mode is 'rel' or 'abs'", 2)
   end
   local factor = opts.factor or 0.1
   if factor >= 1 then error('schedules.reduce_on_plateau: factor must be below 1', 2) end
   local patience, threshold, cooldown = opts.patience or 10, opts.threshold or 1e-4, opts.cooldown or 0
   local min_lr = opts.min_lr or 0
   local rule = {name = 'reduce_on_plateau', opts = opts}
   local s = {lr = opts.lr or 1, best = mode == 'min' and math.huge or -math.huge, bad = 0, cooldown = 0}
   local function better(a, best)
      if mode == 'min' then
         return tmode == 'rel' and a < best * (1 - threshold) or (tmode == 'abs' and a < best - threshold)
      end
      return tmode == 'rel' and a > best * (1 + threshold) or (tmode == 'abs' and a > best + threshold)
   end
   function rule.step(_, metric)
      if type(metric) ~= 'number' then error('reduce_on_plateau:step expects a number', 2) end
      if better(metric, s.best) then s.best, s.bad = metric, 0 else s.bad = s.bad + 1 end
      if s.cooldown > 0 then s.cooldown, s.bad = s.cooldown - 1, 0 end
      if s.bad > patience then
         s.lr = math.max(s.lr * factor, min_lr)
         s.cooldown, s.bad = cooldown, 0
      end
      return s.lr
   end
   function rule.get_lr() return s.lr end
   function rule.state() return {lr = s.lr, best = s.best, bad = s.bad, cooldown = s.cooldown} end
   function rule.set_state(_, st) for k, v in pairs(st) do s[k] = v end end
   return rule
end

--- The one rule for what a schedule gives: a kbl schedule made without lr (or one_cycle
-- without max_lr) gives a factor of the rate it replaces; one made with it, or a plain
-- function of t, gives the rate itself.
-- @param s a schedule or a function
-- @treturn boolean
-- @usage print(optim.schedules.is_factor(optim.schedules.cosine{total = 10}))  --> true
function M.is_factor(s)
   return type(s) == 'table' and type(s.opts) == 'table' and s.opts.lr == nil and s.opts.max_lr == nil
end

-- The options each schedule takes: a name it does not take is an error with
-- the closest one (kbl.options), not a silently ignored typo.
local OPTIONS = {
   constant = {'lr'}, step = {'lr', 'step_size', 'gamma'}, multi_step = {'lr', 'milestones', 'gamma'},
   exponential = {'lr', 'gamma'}, cosine = {'lr', 'total', 'warmup', 'min_lr'},
   one_cycle = {'max_lr', 'lr', 'total', 'pct_start', 'div_factor', 'final_div_factor', 'anneal'},
   reduce_on_plateau = {'lr', 'mode', 'factor', 'patience', 'threshold', 'threshold_mode', 'cooldown', 'min_lr'},
}
local check_options = require 'kbl.options'
for name, names in pairs(OPTIONS) do
   local make_schedule = M[name]
   M[name] = function(opts)
      check_options('schedules.' .. name, opts, names)
      return make_schedule(opts)
   end
end

return M
