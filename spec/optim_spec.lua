-- optim: each optimizer against steps written by PyTorch on a small quadratic
-- (spec/fixtures/make_optim_fixtures.py), parameter groups, exact state
-- round trips, schedules, clipping and error messages.
local kbl = require 'kbl'
local optim = require 'kbl.optim'
local H = require 'helper'
local F = dofile('spec/fixtures/optim_fixtures.lua')

local function start(dtype)
   local w = kbl.tensor(F.start.w, {dtype = dtype, requires_grad = true})
   local b = kbl.tensor(F.start.b, {dtype = dtype, requires_grad = true})
   return w, b
end

-- f(w, b) = 0.5 sum(s (w - c)^2) + 0.5 sum(t (b - d)^2), through autograd
local function loss_of(w, b)
   local dt = {dtype = w.dtype}
   local s, c = kbl.tensor(F.start.s, dt), kbl.tensor(F.start.c, dt)
   local t, d = kbl.tensor(F.start.t, dt), kbl.tensor(F.start.d, dt)
   return ((w - c):square() * s):sum() * 0.5 + ((b - d):square() * t):sum() * 0.5
end

local function params_of(case, w, b)
   if not case.groups then return {w, b} end
   local g1, g2 = {params = {w}}, {params = {b}}
   for k, v in pairs(case.groups[1]) do g1[k] = v end
   for k, v in pairs(case.groups[2]) do g2[k] = v end
   return {g1, g2}
end

local function run_steps(opt, case, w, b, n)
   for _ = 1, n do
      w.grad, b.grad = nil, nil
      loss_of(w, b):backward()
      opt:step(params_of(case, w, b))
   end
end

describe('optim', function()
   for _, case in ipairs(F.cases) do
      it(case.name .. ' matches PyTorch for ' .. #case.w .. ' steps', function()
         local w, b = start(case.dtype)
         local opt = optim[case.optimizer](case.opts)
         local tol = case.dtype == 'float32' and 2e-6 or 1e-6
         for i = 1, #case.w do
            run_steps(opt, case, w, b, 1)
            H.assert_close(w, case.w[i], tol, case.name .. ' step ' .. i .. ' w')
            H.assert_close(b, case.b[i], tol, case.name .. ' step ' .. i .. ' b')
         end
      end)
   end

   it('state_dict and load_state_dict resume bit-identically', function()
      for _, case in ipairs(F.cases) do
         local w1, b1 = start(case.dtype)
         local opt1 = optim[case.optimizer](case.opts)
         run_steps(opt1, case, w1, b1, 2)
         local sd = opt1:state_dict()
         -- a second optimizer and copies of the parameters, restored from the saved state
         local w2, b2 = w1:detach():clone(), b1:detach():clone()
         w2.requires_grad, b2.requires_grad = true, true
         local opt2 = optim[case.optimizer]{}
         opt2:load_state_dict(sd)
         run_steps(opt1, case, w1, b1, 3)
         run_steps(opt2, case, w2, b2, 3)
         local a, e = H.flat(w1), H.flat(w2)
         for i = 1, #a do assert.are.equal(a[i], e[i], case.name .. ': w differs after the round trip') end
         a, e = H.flat(b1), H.flat(b2)
         for i = 1, #a do assert.are.equal(a[i], e[i], case.name .. ': b differs after the round trip') end
      end
   end)

   it('state_dict holds plain data, keyed by parameter position, and is a snapshot', function()
      local w, b = start('float64')
      local opt = optim.Adam{lr = 0.1}
      run_steps(opt, {}, w, b, 1)
      local sd = opt:state_dict()
      assert.are.equal('Adam', sd.type)
      assert.are.equal(1, sd.state[1].step)
      assert.is_true(kbl.is_tensor(sd.state[2].exp_avg_sq))
      local saved = H.flat(sd.state[1].exp_avg)
      run_steps(opt, {}, w, b, 1)
      assert.are.same(saved, H.flat(sd.state[1].exp_avg))
      local function plain(v, path)
         local tv = type(v)
         if tv == 'table' then
            for k, x in pairs(v) do plain(x, path .. '.' .. tostring(k)) end
         else
            assert(tv == 'number' or tv == 'string' or tv == 'boolean' or kbl.is_tensor(v), path .. ' is ' .. tv)
         end
      end
      plain(sd, 'sd')
   end)

   it('keys state by parameter name when step is given names, so it survives a change of the list', function()
      local w, b = start('float64')
      local opt = optim.Adam{lr = 0.1}
      local function steps(params, names, n)
         for _ = 1, n do
            w.grad, b.grad = nil, nil
            loss_of(w, b):backward()
            opt:step(params, names)
         end
      end
      steps({w, b}, {'w', 'b'}, 2)
      steps({b}, {'b'}, 1)   -- w frozen: b is now first in the list, and keeps its own moments
      assert.are.equal(2, opt.state.w.step)
      assert.are.equal(3, opt.state.b.step)
      assert.is_nil(opt.state[1])
      -- the same three updates of b by position, with b in one place throughout
      local w2, b2 = start('float64')
      local ref = optim.Adam{lr = 0.1}
      for _ = 1, 3 do
         w2.grad, b2.grad = nil, nil
         loss_of(w2, b2):backward()
         ref:step({b2})
      end
      assert.are.same(H.flat(b2), H.flat(b))
   end)

   it('loads a state saved by position (an older checkpoint) under the parameters\' names', function()
      local w1, b1 = start('float64')
      local old = optim.Adam{lr = 0.1}
      run_steps(old, {}, w1, b1, 2)
      local sd = old:state_dict()   -- keyed 1, 2
      local w2, b2 = w1:detach():clone(), b1:detach():clone()
      w2.requires_grad, b2.requires_grad = true, true
      local new = optim.Adam{}
      new:load_state_dict(sd, {w2, b2}, {'w', 'b'})
      assert.are.equal(2, new.state.w.step)
      for _ = 1, 2 do
         w1.grad, b1.grad, w2.grad, b2.grad = nil, nil, nil, nil
         loss_of(w1, b1):backward()
         loss_of(w2, b2):backward()
         old:step({w1, b1})
         new:step({w2, b2}, {'w', 'b'})
      end
      assert.are.same(H.flat(w1), H.flat(w2))
      assert.are.same(H.flat(b1), H.flat(b2))
      -- one that does not fit the parameters is a clear error
      local ok, err = pcall(new.load_state_dict, optim.Adam{}, sd, {b2, w2}, {'b', 'w'})
      assert.is_false(ok)
      assert.matches("optim.Adam: the saved exp_avg of parameter 'b' (1 of 2) is [3, 2] float64, the parameter is "
         .. '[4] float64', err, 1, true)
   end)

   it('takes a schedule as lr: the rate of each step, absolute; one that gives a factor is refused', function()
      local sched = optim.schedules.exponential{lr = 0.1, gamma = 0.5}
      local w1, b1 = start('float64')
      local a = optim.Adam{lr = sched}
      assert.are.equal(0.1, a:get_lr())
      local w2, b2 = start('float64')
      local b = optim.Adam{lr = 0.1}
      for step = 1, 3 do
         b:set_lr(0.1 * 0.5 ^ (step - 1))
         run_steps(a, {}, w1, b1, 1)
         run_steps(b, {}, w2, b2, 1)
         assert.are.equal(0.1 * 0.5 ^ (step - 1), a:get_lr())
      end
      assert.are.same(H.flat(w2), H.flat(w1))
      -- a plain function of the step is a rate too
      local f = optim.SGD{lr = function(t) return 1 / t end}
      local w3, b3 = start('float64')
      run_steps(f, {}, w3, b3, 2)
      assert.are.equal(0.5, f:get_lr())
      assert.has_error(function() optim.Adam{lr = optim.schedules.exponential{gamma = 0.5}} end,
         'optim.Adam: lr = schedules.exponential gives a factor (it names no lr); give it the rate: '
         .. 'schedules.exponential{lr = 1e-3, ...}')
      assert.has_error(function() a:set_lr(0.5) end, "optim.Adam: its lr follows schedules.exponential, so it "
         .. "cannot be set to 0.5 (by ReduceLROnPlateau, LearningRateScheduler or a stage's lr): use one or the other")
      -- LearningRateScheduler, the same rule: relative = false on a factor would set the rate to 1
      local cbs = require 'kbl.callbacks'
      assert.is_true(cbs.LearningRateScheduler{optim.schedules.exponential{gamma = 0.5}}.relative)
      assert.is_false(cbs.LearningRateScheduler{function() return 0.1 end}.relative)
      local ok, err = pcall(cbs.LearningRateScheduler, {optim.schedules.exponential{gamma = 0.5}, relative = false})
      assert.is_false(ok)
      assert.matches('names no lr, so it gives a factor (from 1), and relative = false would make that the rate',
         err, 1, true)
   end)

   it('skips parameters without a gradient and keeps positions stable', function()
      local w, b = start('float64')
      local before = H.flat(b)
      local opt = optim.SGD{lr = 0.1, momentum = 0.9}
      w.grad = kbl.ones({3, 2}, {dtype = 'float64'})
      opt:step({w, b})
      assert.are.same(before, H.flat(b))
      assert.is_nil(opt.state[2])
      assert.is_not_nil(opt.state[1].momentum_buffer)
      H.assert_close(w, {{0.4, -1.1}, {1.4, 1.9}, {-0.4, 0.7}}, 1e-12)
   end)

   it('get_lr and set_lr; a group with its own lr keeps its ratio', function()
      local w = kbl.zeros({2}, {dtype = 'float64', requires_grad = true})
      local b = kbl.zeros({2}, {dtype = 'float64', requires_grad = true})
      local opt = optim.SGD{lr = 0.1}
      assert.are.equal(0.1, opt:get_lr())
      opt:set_lr(0.05)
      assert.are.equal(0.05, opt:get_lr())
      w.grad = kbl.ones({2}, {dtype = 'float64'})
      b.grad = kbl.ones({2}, {dtype = 'float64'})
      opt:step({{params = {w}}, {params = {b}, lr = 1.0}})
      H.assert_close(w, {-0.05, -0.05}, 1e-12)
      H.assert_close(b, {-0.5, -0.5}, 1e-12)
   end)

   it('updates float32 parameters of many elements (the threaded path)', function()
      kbl.manual_seed(3)
      local p = kbl.randn({300, 400}, {requires_grad = true})
      local g = kbl.randn({300, 400})
      local ref = p:detach():clone()
      p.grad = g
      local opt = optim.Adam{lr = 0.01}
      opt:step({p})
      -- first Adam step: p - lr * g / (|g| + eps) elementwise
      local expect = ref - g / (g:abs() + 1e-8) * 0.01
      H.assert_close(p, expect, 1e-5)
   end)

   it('rejects bad options and bad parameters with clear messages', function()
      assert.has_error(function() optim.Adam{lr = 1e-3, beta = 0.9} end,
         "optim.Adam: unknown option 'beta' (options: amsgrad, betas, eps, lr, weight_decay)")
      assert.has_error(function() optim.SGD{lr = -1} end, 'optim.SGD: lr must be a non-negative number, got -1')
      assert.has_error(function() optim.SGD{lr = 0.1, nesterov = true} end,
         'optim.SGD: nesterov needs a positive momentum and zero dampening')
      local ok, err = pcall(function() optim.SGD{lr = 0.1}:step({1, 2}) end)
      assert.is_false(ok)
      assert.matches('neither a tensor nor a group', err)
      local p = kbl.zeros({2, 2}, {requires_grad = true})
      p.grad = kbl.ones({2, 2})
      local opt = optim.Adam{}
      opt:step({p})
      local st = opt:state_dict()
      assert.has_error(function() optim.SGD{}:load_state_dict(st) end,
         'optim.SGD:load_state_dict: the state was saved by Adam')
      ok, err = pcall(function() optim.SGD{lr = 0.1}:step({{params = {p}, momentun = 0.9}}) end)
      assert.is_false(ok)
      assert.matches("unknown option 'momentun'", err)
   end)

   it('the C kernels name the op and the mismatched shapes', function()
      local C = kbl.lib.C
      local ffi = require 'ffi'
      local T = require 'kbl.tensor'
      local p = kbl.zeros({2, 3})
      local g = kbl.zeros({3, 2})
      assert.are.equal(-1, C.kbl_sgd_step(T.live(p), T.live(g), nil, 0.1, 0, 0, 0, 0, 0))
      assert.matches('sgd_step: gradient %[3, 2%] float32 does not match parameter %[2, 3%] float32',
         ffi.string(C.kbl_last_error()))
      local m = kbl.zeros({2, 3}, {dtype = 'float64'})
      assert.are.equal(-1, C.kbl_adam_step(T.live(p), T.live(kbl.zeros({2, 3})), T.live(m), T.live(m), nil,
         0.1, 0.9, 0.999, 1e-8, 0, 1, 0))
      assert.matches("adam_step: state 'exp_avg'", ffi.string(C.kbl_last_error()))
   end)
end)

describe('optim.schedules', function()
   local S = optim.schedules
   for name, f in pairs(F.schedules) do
      if name ~= 'reduce_on_plateau' then
         it(name .. ' gives the values of PyTorch', function()
            local kind = name == 'one_cycle_linear' and 'one_cycle' or name
            local sched = S[kind](f.opts)
            for t = 1, #f.values do
               H.assert_close(sched(t), f.values[t], 1e-12, name .. ' at ' .. t)
            end
         end)
      end
   end

   it('reduce_on_plateau follows the metric as PyTorch', function()
      local f = F.schedules.reduce_on_plateau
      local rule = S.reduce_on_plateau(f.opts)
      local lr = rule:get_lr()
      for i = 1, #f.values do
         H.assert_close(lr, f.values[i], 1e-12, 'epoch ' .. i)
         lr = rule:step(f.metric[i])
      end
      local st = rule:state()
      local again = S.reduce_on_plateau(f.opts)
      again:set_state(st)
      assert.are.equal(rule:step(2), again:step(2))
   end)

   it('cosine warms up linearly, then anneals; constant is constant', function()
      local s = S.cosine{lr = 1, warmup = 4, total = 8, min_lr = 0}
      H.assert_close(kbl.tensor({s(1), s(2), s(3), s(4)}, {dtype = 'float64'}), {0.25, 0.5, 0.75, 1.0}, 1e-12)
      H.assert_close(kbl.tensor({s(5), s(6), s(7), s(8), s(9), s(20)}, {dtype = 'float64'}),
         {1, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0, 0}, 1e-12)
      local c = S.constant{lr = 0.3}
      assert.are.equal(0.3, c(1))
      assert.are.equal(0.3, c(1000))
      -- without lr, a schedule gives the factor
      assert.are.equal(0.25, S.step{step_size = 2, gamma = 0.5}(5))
   end)

   it('rejects steps below 1 and missing arguments', function()
      assert.has_error(function() S.step{lr = 1, step_size = 2}(0) end,
         'schedules.step: the step counts from 1, got 0')
      assert.has_error(function() S.exponential{lr = 1} end, 'schedules.exponential needs a number gamma')
      assert.has_error(function() S.cosine{lr = 1, total = 5, warmup = 5} end,
         'schedules.cosine: warmup must be shorter than total')
   end)
end)

describe('optim clipping', function()
   local c = F.clip
   local function grads()
      local a = kbl.zeros({2, 2}, {dtype = 'float64', requires_grad = true})
      local b = kbl.zeros({3}, {dtype = 'float64', requires_grad = true})
      a.grad = kbl.tensor(c.g1, {dtype = 'float64'})
      b.grad = kbl.tensor(c.g2, {dtype = 'float64'})
      return a, b
   end
   for _, case in ipairs{{'norm', 5.0, nil}, {'norm_inf', 2.0, math.huge}, {'norm_1', 4.0, 1},
      {'norm_large', 100.0, nil}} do
      it('clip_grad_norm (' .. case[1] .. ') matches PyTorch and returns the norm', function()
         local a, b = grads()
         local total = optim.clip_grad_norm({a, b}, case[2], case[3])
         local ref = c[case[1]]
         H.assert_close(total, ref.ret, 1e-12)
         H.assert_close(a.grad, ref.a, 1e-12)
         H.assert_close(b.grad, ref.b, 1e-12)
      end)
   end

   it('clip_grad_value clamps every element', function()
      local a, b = grads()
      local nograd = kbl.zeros({2}, {requires_grad = true})
      optim.clip_grad_value({{params = {a}}, {params = {b, nograd}}}, 2.5)
      H.assert_close(a.grad, c.value.a, 1e-12)
      H.assert_close(b.grad, c.value.b, 1e-12)
      assert.is_nil(nograd.grad)
   end)
end)
