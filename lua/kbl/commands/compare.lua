--- kbl compare: puts runs side by side. `kbl compare RUN_DIR... | SWEEP_DIR`
-- reads each run's config.lua (the resolved config) and metrics.jsonl, and
-- prints the config keys whose values differ between the runs, then each
-- run's final metrics; --json prints the same for machines. Config key paths
-- go through specs into their arguments, positional ones by their names
-- (blocks.Dense{16} is units = 16), so equal configs written two ways agree;
-- a spec's own path holds its type (optimizer = optim.Adam).
local json = require 'dkjson'
local fs = require 'kbl.io.fs'
local results = require 'kbl.sweep.results'

local M = {summary = 'Show the config keys that differ between runs, and their final metrics.'}

function M.describe(cmd)
   cmd:argument('dirs', 'Run directories, or a sweep directory (its runs).'):args('+'):argname('<dir>')
   cmd:flag('--json', 'Print JSON: {keys = the differing key paths, runs = [{dir, name, state, epochs, '
      .. 'config = {key = value}, metrics = {...}}]}.')
end

-- The run directories a list of arguments stands for (sweeps expanded).
function M.run_dirs(args)
   local dirs = {}
   for _, d in ipairs(args) do
      d = d:gsub('/+$', '')
      if fs.exists(d .. '/sweep.json') then
         local s = json.decode(fs.read(d .. '/sweep.json') or '')
         for _, r in ipairs(type(s) == 'table' and s.runs or {}) do dirs[#dirs + 1] = d .. '/' .. r.name end
      elseif fs.exists(d .. '/config.lua') then
         dirs[#dirs + 1] = d
      elseif not fs.is_dir(d) then
         error(string.format('kbl compare: %s: no such directory', d), 0)
      else
         error(string.format('kbl compare: %s is not a run directory (no config.lua) nor a sweep (no sweep.json)',
            d), 0)
      end
   end
   return dirs
end

-- A leaf value as short Lua text.
local function text(v)
   local S = require 'kbl.config.spec'
   local t = type(v)
   if t == 'number' then return require('kbl.config.serialize').number(v) end
   if t == 'string' then return string.format('%q', v) end
   if t == 'boolean' or t == 'nil' then return tostring(v) end
   if S.is_ref(v) then return string.format('ref %q', v.path) end
   if t == 'table' then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = text(x) end
      return '{' .. table.concat(parts, ', ') .. '}'
   end
   return '<' .. t .. '>'
end

local function is_leaf_list(v)
   local S = require 'kbl.config.spec'
   for k, x in pairs(v) do
      if type(k) ~= 'number' or type(x) == 'table' and not S.is_ref(x) then return false end
   end
   return true
end

-- {key path -> text} of a config: through specs (and their positional
-- arguments, by name) and tables; a list of plain values is one leaf.
function M.flatten(cfg)
   local S = require 'kbl.config.spec'
   local out = {}
   local function join(p, k) return p == '' and tostring(k) or (p .. '.' .. tostring(k)) end
   local function walk(v, path)
      if S.is_spec(v) then
         out[path] = v.type
         local targ = v:table_arg()
         if targ then
            local ok, ctor = pcall(S.resolve_type, v.type)
            local pos = ok and type(ctor) == 'table' and type(ctor.positional) == 'table' and ctor.positional or {}
            for k, x in pairs(targ) do walk(x, join(path, type(k) == 'number' and pos[k] or k)) end
         else
            for i = 1, v.n do walk(v.args[i], join(path, i)) end
         end
      elseif type(v) == 'table' and not S.is_ref(v) and not S.is_namespace(v) then
         if next(v) == nil or is_leaf_list(v) then
            out[path] = text(v)
         else
            for k, x in pairs(v) do walk(x, join(path, k)) end
         end
      else
         out[path] = text(v)
      end
   end
   walk(cfg, '')
   out[''] = nil
   return out
end

-- One run: {dir, name, state, epochs, flat (config), metrics (final)}.
function M.read_run(dir)
   local config = require 'kbl.config'
   local cfg = config.load({dir .. '/config.lua'}, {no_validate = true})
   local history, evals = results.history(dir)
   local last = results.final(history, evals)
   local metrics = {}
   for k, v in pairs(last) do if results.is_metric(k, v) then metrics[k] = v end end
   local ok, st = pcall(require('kbl.records.status').read, dir)
   return {dir = dir, name = dir:match('([^/]+)$'), state = ok and st and st.state or 'unknown', epochs = #history,
      flat = M.flatten(cfg), metrics = metrics}
end

-- The key paths whose values are not the same in every run, sorted.
function M.differing(runs)
   local all = {}
   for _, r in ipairs(runs) do for k in pairs(r.flat) do all[k] = true end end
   local keys = {}
   for k in pairs(all) do
      local first = runs[1].flat[k]
      for i = 2, #runs do
         if runs[i].flat[k] ~= first then keys[#keys + 1] = k; break end
      end
   end
   table.sort(keys)
   return keys
end

local function metric_names(runs)
   local seen, names = {}, {}
   for _, r in ipairs(runs) do
      for k in pairs(r.metrics) do if not seen[k] then seen[k] = true; names[#names + 1] = k end end
   end
   return results.order_metrics(names)
end

function M.table_text(runs, keys)
   local rows = {{''}}
   for i, r in ipairs(runs) do rows[1][i + 1] = r.name end
   for _, k in ipairs(keys) do
      local row = {k}
      for i, r in ipairs(runs) do row[i + 1] = r.flat[k] or '-' end
      rows[#rows + 1] = row
   end
   rows[#rows + 1] = false
   local function add(label, f)
      local row = {label}
      for i, r in ipairs(runs) do row[i + 1] = f(r) end
      rows[#rows + 1] = row
   end
   add('state', function(r) return r.state end)
   add('epochs', function(r) return tostring(r.epochs) end)
   for _, m in ipairs(metric_names(runs)) do
      add(m, function(r) return r.metrics[m] and string.format('%.6g', r.metrics[m]) or '-' end)
   end
   local width = {}
   for _, row in ipairs(rows) do
      if row then for i, c in ipairs(row) do width[i] = math.max(width[i] or 0, #c) end end
   end
   local out = {}
   for _, row in ipairs(rows) do
      if row then
         local parts = {}
         for i, c in ipairs(row) do parts[i] = c .. string.rep(' ', width[i] - #c) end
         out[#out + 1] = (table.concat(parts, '  '):gsub('%s+$', ''))
      else
         out[#out + 1] = ''
      end
   end
   if #keys == 0 then table.insert(out, 2, '(the configs are the same)') end
   return table.concat(out, '\n') .. '\n'
end

function M.run(args)
   local dirs = M.run_dirs(args.dirs)
   if #dirs == 0 then error('kbl compare: no runs to compare', 0) end
   local runs = {}
   for i, d in ipairs(dirs) do runs[i] = M.read_run(d) end
   local keys = M.differing(runs)
   if args.json then
      local out = {keys = keys, runs = {}}
      for i, r in ipairs(runs) do
         local c = {}
         for _, k in ipairs(keys) do c[k] = r.flat[k] or json.null end
         out.runs[i] = {dir = r.dir, name = r.name, state = r.state, epochs = r.epochs, config = c, metrics = r.metrics}
      end
      io.write(json.encode(out, {indent = true, keyorder = {'keys', 'runs', 'dir', 'name', 'state', 'epochs',
         'config', 'metrics'}}), '\n')
      return
   end
   io.write(M.table_text(runs, keys))
end

return M
