-- bench/epoch.lua — seconds per training epoch of the Fashion-MNIST examples
-- (lua/kbl/configs/fashion_mnist_{mlp,cnn}.lua) in kbl against the same models in
-- PyTorch (bench/epoch.py), in one run, each at the faster of 1 and 2 threads;
-- kbl in its default environment, PyTorch at its best (bench/torch_best.lua).
--   bin/kbl bench/epoch.lua [mlp] [cnn]      (or: kbl bench epoch)
--   bin/kbl bench/epoch.lua accuracy         the CNN example's whole run (10
--                                            epochs): seconds per epoch and test accuracy
-- kbl's time is the epoch time fit logs (training steps and data, without
-- validation), PyTorch's the same loop without validation.
local json = require 'dkjson'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local root = here .. '/..'
local wanted = {}
for _, a in ipairs(arg or {}) do wanted[a] = true end

if wanted.accuracy then
   local dir = os.tmpname()
   os.remove(dir)
   local cmd = string.format('%s/bin/kbl run %s/examples/fashion_mnist_cnn.lua --run-dir %s 2>&1', root, root, dir)
   local p = io.popen(cmd)
   local out = p:read('*a')
   assert(p:close(), 'bench: kbl run failed: ' .. cmd .. '\n' .. out)
   local times = {}
   for line in io.lines(dir .. '/metrics.jsonl') do
      local rec = json.decode(line)
      if rec and rec.time then times[#times + 1] = rec.time end
   end
   os.execute('rm -rf ' .. dir)
   local sum, min = 0, math.huge
   for _, t in ipairs(times) do sum, min = sum + t, math.min(min, t) end
   print(string.format('fashion_mnist_cnn, %d epochs at the default thread count: %.2f s/epoch mean, %.2f fastest',
      #times, sum / #times, min))
   print('test: ' .. (out:match('\ntest: ([^\n]*)') or ('(no test line) ' .. out)))
   return
end
if not next(wanted) then wanted = {mlp = true, cnn = true} end

local function kbl_epoch(name, threads)
   local dir = os.tmpname()
   os.remove(dir)
   local cmd = string.format('%s/bin/kbl run %s/examples/fashion_mnist_%s.lua --set threads=%d '
      .. '--set epochs=1 --quiet --run-dir %s >/dev/null 2>&1', root, root, name, threads, dir)
   assert(os.execute(cmd) == 0, 'bench: kbl run failed: ' .. cmd)
   local f = assert(io.open(dir .. '/metrics.jsonl'))
   local rec = json.decode(f:read('*l'))
   f:close()
   os.execute('rm -rf ' .. dir)
   return rec.time
end

local kbl = {}
for name in pairs(wanted) do
   for _, threads in ipairs{1, 2} do
      local t = kbl_epoch(name, threads)
      if not kbl[name] or t < kbl[name].seconds then kbl[name] = {seconds = t, threads = threads} end
   end
end

local names = {}
for name in pairs(wanted) do names[#names + 1] = name end
table.sort(names)
local torch = dofile(here .. '/torch_best.lua')(function(env)
   local p = io.popen(env .. '/usr/bin/python3 ' .. here .. '/epoch.py ' .. table.concat(names, ' '))
   local out = p:read('*a')
   p:close()
   return json.decode(out) or error('bench: PyTorch side failed: ' .. out)
end)

print(string.format('%-6s %14s %27s %8s', 'model', 'kbl s/epoch', 'torch s/epoch (at its best)', 'ratio'))
for _, name in ipairs(names) do
   local k, t = kbl[name], torch[name]
   print(string.format('%-6s %10.2f (%d) %10.2f %-14s %8.3f', name, k.seconds, k.threads, t.seconds,
      '(' .. t.threads .. ', ' .. t.env .. ')', k.seconds / t.seconds))
end
print('(threads, and PyTorch\'s environment, in parentheses; ratio = kbl time / PyTorch time, lower is better)')
