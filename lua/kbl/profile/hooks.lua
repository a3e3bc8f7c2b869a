--- kbl.profile.hooks: the wrappers a profile installs while it records, and
-- takes out again: every op of kbl's op modules (as kbl.NAME, t:NAME() and
-- the modules' own entries, so ops that call ops nest), t:backward(), every
-- optimizer's step and per-parameter update, gradient clipping, and the data
-- pipeline's stages (each stage's next(), the batches gathered and augmented
-- on this thread, the stacking of elements). Nothing here is in place when no
-- profile records, so code that is not profiled runs exactly as before.
-- (Backward nodes and the prefetch threads are timed in C: core/profile.c.)
local R = require 'kbl.profile.recorder'
local flops = require 'kbl.profile.flops'
local T = require 'kbl.tensor'

local is_tensor = T.is_tensor
local C = require('kbl.lib').C

-- A CUDA op returns before its kernels finish: the profiler waits for the
-- device when an op made a CUDA tensor, so that its event covers its work
-- (the profiled steps lose the overlap of host and device).
local function settle(t)
   if is_tensor(t) and t._p ~= nil and t._p.device ~= 0 then C.kbl_cuda_synchronize() end
end

local M = {}

local OP_MODULES = {'creation', 'views', 'elementwise', 'reduce', 'nn', 'index', 'conv'}

-- Entries of the op modules that are not ops: helpers, the generator's state,
-- and requires_grad_, which only sets a flag.
local NOT_OPS = {
   unary = true, binary = true, scalar_like = true, unary_ops = true, check_dim = true, reduction_id = true,
   first_out_of_range = true, zero_based = true, dims_arg = true, device_id = true, manual_seed = true,
   get_rng_state = true, set_rng_state = true, requires_grad_ = true,
}

-- "[128,784]" for a tensor; nil for anything else.
local function shape_str(t)
   if not is_tensor(t) then return nil end
   local p = t._p
   if p == nil then return nil end
   local n = p.ndim
   if n == 0 then return '[]' end
   local s = '[' .. tonumber(p.shape[0])
   for d = 1, n - 1 do s = s .. ',' .. tonumber(p.shape[d]) end
   return s .. ']'
end
M.shape_str = shape_str

local function shape_of(t)
   if not is_tensor(t) or t._p == nil then return nil end
   local p, s = t._p, {}
   for d = 0, p.ndim - 1 do s[d + 1] = tonumber(p.shape[d]) end
   return s
end

-- Closes event i and passes the results through (a wrapper's tail call, with
-- no closure made per call).
local function close_with(i, ...)
   R.close(i)
   return ...
end

local function shapes_arg(a, b)
   local sa, sb = shape_str(a), shape_str(b)
   if sa and sb then return sa .. ' ' .. sb end
   return sa or sb
end

-- The wrapper of op f named name: records an 'op' event while R.on, with the
-- shapes of its first two arguments, and for ops with a flop count the count.
local function op_wrapper(name, f)
   local open, close = R.open, R.close
   local function done(i, ...)
      settle((...))
      close(i)
      return ...
   end
   if flops.FORWARD[name] then
      local function done_counted(i, a, b, ...)
         settle((...))
         close(i)
         R.flops[i] = flops.forward(name, shape_of((...)), a, b)
         return ...
      end
      return function(x, w, ...)
         if not R.on then return f(x, w, ...) end
         local i = open(name, 'op', shapes_arg(x, w))
         return done_counted(i, shape_of(x), shape_of(w), f(x, w, ...))
      end
   end
   return function(...)
      if not R.on then return f(...) end
      local i = open(name, 'op', shapes_arg(...))
      return done(i, f(...))
   end
end

-- Replacements put in place, to be undone: {table, key, original}.
local installed = {}

local function replace(tbl, key, new)
   installed[#installed + 1] = {tbl, key, tbl[key]}
   tbl[key] = new
end

-- The name an op goes by when several entries hold one function (mm, bmm and
-- matmul): one with a flop count, else the longest, else the first in order.
local function better(a, b)
   local fa, fb = flops.FORWARD[a] ~= nil, flops.FORWARD[b] ~= nil
   if fa ~= fb then return fa end
   if #a ~= #b then return #a > #b end
   return a < b
end

local function install_ops()
   local kbl = require 'kbl'
   local modules = {}
   for _, m in ipairs(OP_MODULES) do modules[#modules + 1] = require('kbl.ops.' .. m) end
   local names_of = {}   -- function -> its names
   for _, m in ipairs(modules) do
      for name, fn in pairs(m) do
         if type(fn) == 'function' and not NOT_OPS[name] and name:sub(1, 1) ~= '_' then
            local list = names_of[fn] or {}
            names_of[fn] = list
            list[#list + 1] = name
         end
      end
   end
   names_of[require('kbl.autograd').backward] = {'backward'}
   local wrapper = {}
   for fn, names in pairs(names_of) do
      table.sort(names, better)
      wrapper[fn] = op_wrapper(names[1], fn)
   end
   local tables = {kbl, T.methods, require('kbl.autograd')}
   for _, m in ipairs(modules) do tables[#tables + 1] = m end
   for _, tbl in ipairs(tables) do
      local keys = {}
      for k, v in pairs(tbl) do if wrapper[v] then keys[#keys + 1] = k end end
      for _, k in ipairs(keys) do replace(tbl, k, wrapper[tbl[k]]) end
   end
end

-- Optimizers: step (one event per call, 'Adam step') and the fused update of
-- each parameter ('Adam update', cat 'optimizer', a compute event), and clipping.
local function install_optim()
   local optim = require 'kbl.optim'
   local Optimizer = optim.Optimizer
   local step, step_names = Optimizer.step, {}
   replace(Optimizer, 'step', function(self, ...)
      if not R.on then return step(self, ...) end
      local name = step_names[self.name]
      if not name then
         name = tostring(self.name) .. ' step'
         step_names[self.name] = name
      end
      local i = R.open(name, 'optimizer')
      return close_with(i, step(self, ...))
   end)
   local seen = {}
   for _, cls in pairs(optim) do
      local spec = type(cls) == 'table' and rawget(cls, 'spec')
      if type(spec) == 'table' and type(spec.update) == 'function' and not seen[spec] then
         seen[spec] = true
         local update, name = spec.update, tostring(cls.name) .. ' update'
         replace(spec, 'update', function(pp, gp, st, h, p)
            if not R.on then return update(pp, gp, st, h, p) end
            local i = R.open(name, 'update', shape_str(p))
            update(pp, gp, st, h, p)
            settle(p)
            R.close(i)
         end)
      end
   end
   for _, k in ipairs{'clip_grad_norm', 'clip_grad_value'} do
      replace(optim, k, op_wrapper(k, optim[k]))
   end
end

-- ---- data ---------------------------------------------------------------------

-- The label of a pipeline node: its step as written (batch(128), shuffle{...}).
local function describe(node)
   local ok, s = pcall(node._describe, node)
   return ok and tostring(s) or 'stage'
end

local function data_wrapper(label, f)
   return function(...)
      if not R.on then return f(...) end
      local i = R.open(label, 'data')
      return close_with(i, f(...))
   end
end

-- Wraps the next() of each stream of a live iteration, from the last stage up
-- to the source: stream k belongs to the k-th node counting back from pipe.
local wrapped_streams = setmetatable({}, {__mode = 'k'})
function M.wrap_live(pipe)
   local live = type(pipe) == 'table' and rawget(pipe, '_live')
   local s, node = live and live.s, pipe
   while type(s) == 'table' and type(s.next) == 'function' and node do
      if not wrapped_streams[s] then
         wrapped_streams[s] = true
         replace(s, 'next', data_wrapper(describe(node), s.next))
      end
      s, node = s.up, node.parent
   end
end

local function install_data()
   local Pipeline = require 'kbl.data.pipeline'
   local B = require 'kbl.data.base'
   -- an iteration begun while recording has its stages wrapped, and each batch
   -- it hands out is one 'next batch' event
   local iter = Pipeline.iter
   replace(Pipeline, 'iter', function(self, ...)
      local it = iter(self, ...)
      M.wrap_live(self)
      return data_wrapper('next batch', it)
   end)
   replace(B, 'run', data_wrapper('gather + augment', B.run))
   replace(B, 'stack', data_wrapper('stack elements', B.stack))
end

-- Puts every wrapper in place (once; install twice is an error).
function M.install()
   if #installed > 0 then error('kbl.profile: the profiler is already installed', 2) end
   install_ops()
   install_optim()
   install_data()
end

-- Takes every wrapper out, last first.
function M.uninstall()
   for k = #installed, 1, -1 do
      local e = installed[k]
      e[1][e[2]] = e[3]
   end
   installed = {}
end

function M.is_installed() return #installed > 0 end

-- The cost of recording one empty op event, in seconds (for the report).
function M.event_cost()
   local was_on, n0 = R.on, R.n
   local noop = op_wrapper('noop', function() end)
   R.on = true
   local t0 = require('kbl.clock').now()
   for _ = 1, 200 do noop() end
   local dt = require('kbl.clock').now() - t0
   R.on = was_on
   for i = n0 + 1, R.n do R.name[i], R.t1[i] = nil, nil end
   R.n = n0
   return dt / 200
end

return M
