-- bench/conv_transpose.lua — conv_transpose2d forward (no grad) with and without
-- its bias, kbl only, at one thread: the measurement behind adding the bias
-- apart (core/conv_device.c). BENCH_CLOCK=cpu for CPU time.
--   bin/kbl bench/conv_transpose.lua
local kbl = require 'kbl'
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local timing = dofile(here .. '/timing.lua')

kbl.set_num_threads(1)
kbl.manual_seed(0)
local function ms(x, w, b, opts)
   local fn = function() kbl.scope(function() kbl.no_grad(function() kbl.conv_transpose2d(x, w, b, opts) end) end) end
   return timing.time(fn, {iters = 20}) * 1e3
end
for _, c in ipairs{{x = {128, 64, 7, 7}, w = {64, 32, 4, 4}, o = {stride = 2, padding = 1}},
                   {x = {128, 32, 14, 14}, w = {32, 64, 3, 3}, o = {padding = 1}}} do
   local x, w, b = kbl.randn(c.x), kbl.randn(c.w), kbl.randn(c.w[2])
   print(string.format('conv_transpose2d x %s w %s: with bias %.3f ms, without %.3f ms', table.concat(c.x, 'x'),
      table.concat(c.w, 'x'), ms(x, w, b, c.o), ms(x, w, nil, c.o)))
end
