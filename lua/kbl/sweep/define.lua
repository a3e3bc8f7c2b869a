--- kbl.sweep.define: a sweep's definition from the command line and the
-- config's `sweep = {...}` table (the command line overriding it): the files
-- (absolute), the fixed --set values, the grid or random search and its points,
-- successive halving; the key a sweep directory is found by again; and the
-- validation of every point before anything runs (keys, types and the options
-- of the constructors its swept keys reach, with did-you-mean, the message
-- naming the --grid a value came from).
local json = require 'dkjson'
local space = require 'kbl.sweep.space'

local M = {}

local function cwd()
   local p = io.popen('pwd')
   local d = p:read('*l')
   p:close()
   return d or '.'
end

local function absolute(path)
   if path:sub(1, 1) == '/' then return path end
   return cwd() .. '/' .. path:gsub('^%./', '')
end

-- A Lua value as the text --set takes.
local function value_text(v)
   local s = require('kbl.config.serialize').to_lua({x = v})
   return (s:match('^return {%s*x = (.-),%s*}%s*$') or s)
end

function M.posint(v, what)
   local n = tonumber(v)
   if not n or n < 1 or n % 1 ~= 0 then
      error(string.format('%s must be an integer >= 1, got %s', what, tostring(v)), 0)
   end
   return n
end

-- {rungs = {...}, eta = n} from 'rungs=1,2 eta=2' words or a config table.
local function parse_halving(h, what)
   if h == nil then return nil end
   local out = {}
   if type(h) == 'table' and h[1] and type(h[1]) == 'string' then   -- words from the command line
      for _, word in ipairs(h) do
         local k, v = word:match('^(%w+)=(.*)$')
         if k == 'rungs' then
            out.rungs = {}
            for _, r in ipairs(space.split_top(v)) do out.rungs[#out.rungs + 1] = tonumber(r) or r end
         elseif k == 'eta' then out.eta = tonumber(v) or v
         else
            error(string.format("%s: unknown setting '%s' (expected rungs=1,2 and eta=2)", what, word), 0)
         end
      end
   elseif type(h) == 'table' then
      require('kbl.options')(what, h, {'rungs', 'eta'})
      out.rungs, out.eta = h.rungs, h.eta
   else
      error(string.format('%s must be a table {rungs = {1, 2}, eta = 2}', what), 0)
   end
   if type(out.rungs) ~= 'table' or #out.rungs == 0 then error(what .. ': give rungs, the epochs to decide at', 0) end
   for i, r in ipairs(out.rungs) do
      M.posint(r, what .. ' rung')
      if i > 1 and r <= out.rungs[i - 1] then error(what .. ': rungs must increase', 0) end
   end
   out.eta = out.eta or 2
   if type(out.eta) ~= 'number' or out.eta < 2 or out.eta % 1 ~= 0 then
      error(what .. ': eta must be an integer >= 2', 0)
   end
   return out
end

-- The monitored metric and mode the config names (its ModelCheckpoint or
-- EarlyStopping), else val_loss (loss without a validation split).
function M.config_monitor(cfg)
   local S = require 'kbl.config.spec'
   for _, cb in ipairs(type(cfg.callbacks) == 'table' and cfg.callbacks or {}) do
      local a = S.is_spec(cb) and cb:table_arg()
      if a and type(a.monitor) == 'string' then return a.monitor, type(a.mode) == 'string' and a.mode or nil end
   end
   return cfg.validation_split == false and 'loss' or 'val_loss'
end

-- The sweep's definition from the command line and the config's sweep table.
function M.definition(args)
   local config = require 'kbl.config'
   if #args.files == 0 then
      error('kbl sweep: give config files (names are found in lua/kbl/configs), or --resume SWEEP_DIR', 0)
   end
   local files = {}
   for i, f in ipairs(args.files) do files[i] = absolute(config.find(f)) end
   local sets = args.set or {}
   local cfg = config.load(files, {set = sets})
   local tbl = cfg.sweep or {}
   local where = "config key 'sweep'"
   require('kbl.options')(where, tbl, {'grid', 'random', 'seed', 'monitor', 'mode', 'halving', 'jobs'})
   local entries, at = {}, {}
   local function add(e, src)
      e.src = src
      if at[e.key] then entries[at[e.key]] = e else entries[#entries + 1] = e; at[e.key] = #entries end
   end
   if type(tbl.grid) == 'table' then
      local keys = {}
      for k in pairs(tbl.grid) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
         local v = tbl.grid[k]
         if type(v) == 'string' then add(space.parse(k .. '=' .. v, 'sweep.grid'), 'sweep.grid')
         else add(space.from_values(k, v, where, value_text), 'sweep.grid') end
      end
   end
   for _, g in ipairs(args.grid or {}) do add(space.parse(g, '--grid'), '--grid') end
   if #entries == 0 then
      error('kbl sweep: nothing to sweep: give --grid key=v1,v2 (or a sweep = {grid = {...}} table in the config)', 0)
   end
   local def = {files = files, sets = sets, grid = {}, base = config.to_lua(cfg)}
   for i, e in ipairs(entries) do def.grid[i] = e.text end
   def.random = args.random and M.posint(args.random, '--random') or tbl.random and M.posint(tbl.random, 'sweep.random')
   def.seed = args.seed and M.posint(args.seed, '--seed') or tbl.seed or 1
   def.halving = parse_halving(args.halving, '--halving') or parse_halving(tbl.halving, 'sweep.halving')
   local points = def.random and space.random(entries, def.random, def.seed) or space.grid(entries)
   return def, points, entries, cfg, tbl
end

-- The key a sweep directory is found by: what decides what its runs are.
function M.key(def)
   return json.encode({def.files, def.sets, def.grid, def.random or false, def.random and def.seed or false,
      def.halving and {def.halving.rungs, def.halving.eta} or false, def.base})
end

-- Composes and validates every point: keys and types (kbl.config), then the
-- specs its swept keys reach, built (their constructors check their options).
-- A message names the --grid (or sweep.grid) the value came from.
function M.validate(def, points, entries)
   local config = require 'kbl.config'
   local src = {}
   for _, e in ipairs(entries) do src[e.key] = (e.src == '--grid' and '--grid ' or 'sweep.grid: ') .. e.text end
   local built = {}
   local cfgs = {}
   for i, p in ipairs(points) do
      local sets = {}
      for _, s in ipairs(def.sets) do sets[#sets + 1] = s end
      for _, s in ipairs(p.sets) do sets[#sets + 1] = s end
      local ok, err = pcall(function()
         local cfg, origins = config.load(def.files, {set = sets})
         cfgs[i] = cfg
         for _, kv in ipairs(p.values) do
            local top = kv[1]:match('^([^%.]+)')
            local id = top .. '\0' .. kv[1] .. '\0' .. kv[2]
            if cfg[top] ~= nil and type(cfg[top]) == 'table' and not built[id] and top ~= 'stages' then
               built[id] = true
               local undo = config.apply_defaults(cfg)
               local okb, e = pcall(config.build, cfg[top], cfg, top, {}, origins)
               undo()
               if not okb then error(e, 0) end
            end
         end
      end)
      if not ok then
         local msg = tostring(err)
         for _, kv in ipairs(p.values) do
            local a, b = msg:find('--set ' .. kv[1] .. '=' .. kv[2], 1, true)
            if a then msg = msg:sub(1, a - 1) .. src[kv[1]] .. ' (value ' .. kv[2] .. ')' .. msg:sub(b + 1) end
         end
         error(msg, 0)
      end
   end
   return cfgs
end

return M
