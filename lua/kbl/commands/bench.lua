--- kbl bench NAME: runs bench/NAME.lua from the source checkout, which times kbl
-- against PyTorch on one workload family and prints the ratios. kbl bench
-- EXPERIMENT: builds an experiment as kbl run does and times its training step
-- on synthetic batches, its data pipeline, and the two together
-- (kbl.profile.bench). Which one: see DISPATCH below.
local fs = require 'kbl.io.fs'

local M = {summary = 'Run a benchmark from bench/ (kbl against PyTorch), or time an experiment\'s training step '
   .. 'and data pipeline.'}

local DISPATCH = 'An argument with a "/" or ending in .lua, or several arguments, name an experiment (config files '
   .. 'or names, composed as by kbl run); "list" lists the benchmarks; a bare NAME is bench/NAME.lua when that '
   .. 'file exists, else a config name (lua/kbl/configs/NAME.lua or ./NAME.lua).'

function M.describe(cmd)
   cmd:argument('target', 'A benchmark name (bench/NAME.lua), "list", or an experiment\'s config files.'):args('+')
   cmd:option('--steps', 'Experiments: steps timed in each measurement.', '20'):convert(tonumber)
   cmd:option('--warmup', 'Experiments: steps run first, untimed.', '3'):convert(tonumber)
   cmd:option('--set', 'Experiments: override a value, key=value, as kbl run (repeatable).'):count('*')
      :argname('<key=value>')
   cmd:flag('--json', 'Experiments: print one JSON object instead of the table.')
   cmd:epilog(DISPATCH .. '\nAn experiment reports steps/s, samples/s and peak RSS of the training step on '
      .. 'synthetic batches (the real batches\' shapes and dtypes), of the data pipeline alone, and of both '
      .. 'together, and whether the pipeline is slower than the step (input-bound).')
end

local function bench_dir()
   local src = debug.getinfo(1, 'S').source:sub(2)
   local root = src:match('^(.*)/lua/kbl/commands/[^/]*$')
   if root then return root .. '/bench' end
   -- an installed tree, TREE/share/lua/5.1/kbl/commands/: TREE/share/kbl/bench
   -- (cmake --install), or the rock's own directory (luarocks make keeps what
   -- it does not place in lua/, lib/ or bin/ there)
   local tree = src:match('^(.*)/share/lua/5%.1/kbl/commands/[^/]*$')
   if not tree then return 'bench' end
   if fs.exists(tree .. '/share/kbl/bench/README.md') then return tree .. '/share/kbl/bench' end
   local p = io.popen('ls -d ' .. tree .. '/lib/luarocks/rocks-5.1/kbl/*/share/kbl/bench 2>/dev/null')
   local found = p:read('*l')
   p:close()
   return found or (tree .. '/share/kbl/bench')
end

-- Whether the arguments name an experiment rather than a benchmark of bench/.
local function is_experiment(targets, dir)
   if #targets > 1 then return true end
   local t = targets[1]
   if t == 'list' then return false end
   if t:find('/', 1, true) or t:match('%.lua$') then return true end
   return not fs.exists(dir .. '/' .. t .. '.lua')
end

local function count_option(v, name)
   if type(v) ~= 'number' or v % 1 ~= 0 or v < 0 or (name == '--steps' and v < 1) then
      error(string.format('kbl bench: %s must be a whole number%s, got %s', name,
         name == '--steps' and ' >= 1' or ' >= 0', tostring(v)), 0)
   end
   return v
end

function M.run(args)
   local dir = bench_dir()
   local targets = args.target
   if is_experiment(targets, dir) then
      local bench = require 'kbl.profile.bench'
      local r = bench.experiment(targets, {set = args.set, steps = count_option(args.steps, '--steps'),
         warmup = count_option(args.warmup, '--warmup')})
      print(args.json and bench.json(r) or bench.text(r))
      return
   end
   local name = targets[1]
   if args.json or #(args.set or {}) > 0 then
      error('kbl bench ' .. name .. ': --json and --set are for experiments; bench/' .. name .. '.lua takes none', 0)
   end
   if name == 'list' then
      for _, file in ipairs(fs.list_dir(dir)) do   -- what ls dir/*.lua listed: no dot files
         local base = file:match('^([^.].*)%.lua$')
         if base then print(base) end
      end
      return
   end
   local path = dir .. '/' .. name .. '.lua'
   local chunk, err = loadfile(path)
   if not chunk then error('no benchmark ' .. name .. ' (' .. tostring(err) .. ')', 0) end
   chunk()
end

return M
