--- kbl.config: experiment configs. A config file is a Lua chunk returning a
-- table; it runs with kbl, blocks, optim, losses, metrics, data, callbacks and
-- ref in scope, where every constructor makes a spec (kbl.config.spec). Files
-- compose: `extends = {'fit'}` inside a file, several files on the command line
-- and `--set key=value` override what came before, tables merging deeply
-- (kbl.config.merge). Bare names are looked up in lua/kbl/configs, beside the file
-- that names them, and in the current directory. Config files are trusted Lua,
-- like a Makefile; a --set value is a Lua value evaluated in a sandbox (the
-- config scope without os, io, ffi, require, load...: spec.eval_set). A config
-- whose tables contain themselves or nest too deep is refused, naming the key.
--
--   local config = require 'kbl.config'
--   local cfg, origins = config.load({'fit', 'fashion_mnist_mlp'}, {set = {'optimizer.lr=3e-4'}})
--   print(config.to_lua(cfg))
local S = require 'kbl.config.spec'
local merge = require 'kbl.config.merge'
local lines = require 'kbl.config.lines'
local schema = require 'kbl.config.schema'
local serialize = require 'kbl.config.serialize'

local M = {}
M.spec, M.ref, M.is_spec, M.is_ref = S.new, S.ref, S.is_spec, S.is_ref
M.merge, M.get, M.copy = merge.merge, merge.get, merge.copy
M.validate, M.closest = schema.validate, schema.closest
M.to_lua = serialize.to_lua

local function this_dir()
   return (debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.')
end

-- lua/kbl/configs, beside lua/kbl (in a checkout and in an installed tree alike).
M.configs_dir = this_dir() .. '/../configs'

local function readable(path)
   local f = io.open(path, 'r')
   if not f then return false end
   local ok = f:read(0) ~= nil or f:seek('end') == 0
   f:close()
   return ok
end

local function dirname(path) return path:match('^(.*)/[^/]*$') or '.' end

-- The file a config name stands for: a path as given, else NAME.lua in
-- lua/kbl/configs, beside the naming file (from_dir) and in the current directory.
function M.find(name, from_dir)
   local looked = {}
   local function try(p)
      looked[#looked + 1] = p
      return readable(p) and p or nil
   end
   if name:find('/') or name:match('%.lua$') then
      local found = try(name)
      if not found and from_dir and not name:match('^/') then found = try(from_dir .. '/' .. name) end
      if found then return found end
   end
   if not name:match('%.lua$') then
      local file = name .. '.lua'
      local found = try(M.configs_dir .. '/' .. file)
         or (from_dir and try(from_dir .. '/' .. file)) or try(file)
      if found then return found end
   end
   local shown = {}
   for i, p in ipairs(looked) do
      local n
      repeat p, n = p:gsub('[^/%.][^/]*/%.%./', '', 1) until n == 0
      local cwd = os.getenv('PWD')
      if cwd and p:sub(1, #cwd + 1) == cwd .. '/' then p = p:sub(#cwd + 2) end
      shown[i] = p
   end
   local hint = M.closest_config(name, from_dir)
   error(string.format("cannot find config '%s' (looked for %s)%s", name, table.concat(shown, ', '),
      hint and string.format(" (did you mean '%s'?)", hint) or ''), 0)
end

-- The config name nearest to name among lua/kbl/configs and the naming file's
-- directory, when one is near enough to be a typo; else nil.
function M.closest_config(name, from_dir)
   local base = name:match('([^/]+)$'):gsub('%.lua$', '')
   local names = {}
   for _, d in ipairs{M.configs_dir, from_dir or '.'} do
      local p = io.popen("ls -1 '" .. d:gsub("'", "'\\''") .. "' 2>/dev/null")
      if p then
         for f in p:lines() do
            local n = f:match('^(.+)%.lua$')
            if n and n ~= base then names[#names + 1] = n end
         end
         p:close()
      end
   end
   local best = schema.closest(base, names)
   if best and schema.distance(base:lower(), best:lower()) <= math.max(1, math.floor(#base / 3)) then
      return best
   end
   return nil
end

-- How deep a config's tables may nest (a real one is a few levels deep).
local MAX_DEPTH = 100

-- The message for a table that contains itself or nests too deep; paths are
-- full key paths ('' is the whole config).
local function nesting_message(kind, at, back)
   if kind == 'cycle' then
      return string.format("config key '%s' refers back to %s, which holds it (a config is a tree of values; "
         .. "a table cannot contain itself)", at, back == '' and 'the whole config' or "'" .. back .. "'")
   end
   local parts = {}
   for p in at:gmatch('[^%.]+') do parts[#parts + 1] = p end
   local shown = table.concat(parts, '.', 1, math.min(#parts, 8)) .. (#parts > 8 and '...' or '')
   return string.format("config key '%s' nests tables more than %d deep (at %s)", parts[1] or '', MAX_DEPTH, shown)
end

-- file:line of the longest prefix of path that keylines knows, else file.
local function line_of(file, keylines, path)
   local p = path
   while p and p ~= '' do
      if keylines[p] then return file .. ':' .. keylines[p] end
      p = p:match('^(.*)%.[^%.]*$')
   end
   return file
end

-- The modules the configs being loaded require, in order (M.load gathers
-- them, so that the saved config requires them too: a user's block type).
local required

-- Runs one config file; returns its table (not yet merged with what it extends).
local function run_file(path)
   local f = io.open(path, 'r')
   local src = f:read('*a')
   f:close()
   local chunk, err = loadstring(src, '@' .. path)
   if not chunk then
      local where, msg = err:match('^(.-:%d+): (.*)$')
      error(string.format('%s: syntax error in config: %s', where or path, msg or err), 0)
   end
   local env = S.env()
   env.require = function(name)
      local m = require(name)
      if required and type(name) == 'string' and not required[name] then
         required[name] = true
         required[#required + 1] = name
      end
      return m
   end
   setfenv(chunk, env)
   local ok, res = xpcall(chunk, function(e)
      if type(e) ~= 'string' then return tostring(e) end
      -- name the config's own line even when the error came from deeper down
      if not e:find(path, 1, true) then
         for level = 2, 12 do
            local info = debug.getinfo(level, 'Sl')
            if not info then break end
            if info.short_src == path or info.source == '@' .. path then
               return string.format('%s:%d: %s', path, info.currentline, e)
            end
         end
      end
      return e
   end)
   if not ok then
      local where, msg = tostring(res):match('^([^%s:]+:%d+): (.*)$')
      error(where and string.format('%s: error in config: %s', where, msg)
         or string.format('%s: error in config: %s', path, tostring(res)), 0)
   end
   if type(res) ~= 'table' or S.is_spec(res) then
      error(string.format('%s: a config must return a table of settings, got %s', path, schema.describe(res)), 0)
   end
   return res, lines.key_lines(src)
end

-- Loads a file and what it extends; merges into (acc, origins).
local function load_into(path, acc, origins, seen)
   if seen[path] then error(string.format('%s: config extends itself (through %s)', path, seen[path]), 0) end
   seen[path] = path
   local tbl, keylines = run_file(path)
   local kind, at, back = merge.check_nesting(tbl, MAX_DEPTH)
   if kind then error(line_of(path, keylines, at) .. ': ' .. nesting_message(kind, at, back), 0) end
   local bases = tbl.extends
   if bases ~= nil then
      if type(bases) == 'string' then bases = {bases} end
      if type(bases) ~= 'table' then
         error(string.format("%s:%d: config key 'extends' must be a config name or a list of them, got %s",
            path, keylines.extends or 1, schema.describe(bases)), 0)
      end
      for i, b in ipairs(bases) do
         local ok, found = pcall(M.find, b, dirname(path))
         if not ok then
            error(string.format('%s:%d: %s', path, keylines['extends.' .. i] or keylines.extends or 1, found), 0)
         end
         acc = load_into(found, acc, origins, seen)
      end
      tbl.extends = nil
   end
   seen[path] = nil
   for p, l in pairs(keylines) do
      if p ~= 'extends' and not p:match('^extends%.') then origins[p] = path .. ':' .. l end
   end
   origins[''] = path
   return merge.merge(acc, tbl)
end

-- Parses 'key=value' and sets it in cfg. The value is a Lua expression in
-- the config scope (a literal, a table, a spec such as optim.SGD{lr = 0.1},
-- ref 'x'), evaluated without os, io, ffi, require, load and the other ways
-- out of the sandbox (kbl.config.spec.eval_set); a bare word that is no name
-- there (--set device=cpu) is taken as a string.
function M.apply_set(cfg, origins, assignment)
   -- a key is a dotted path; a part with dots goes in brackets: defaults[blocks.Dense].use_bias
   local key, text = assignment:match('^%s*([%w_%.]+)%s*=(.*)$')
   if not key then key, text = assignment:match('^%s*([%w_%.]*%[[^=]*)%s*=(.*)$') end
   local where = '--set ' .. assignment
   if not key then
      error(string.format("%s: expected key=value (a Lua value: --set optimizer.lr=3e-4, "
         .. "--set 'model.units={512,512}', --set device='cuda')", where), 0)
   end
   local function fail(msg)
      error(string.format('%s: %s', where, (tostring(msg):gsub('^%(%-%-set%):%d+: ', ''))), 0)
   end
   local word = text:match('^%s*([%a_][%w_]*)%s*$')
   local value
   if word and not S.set_knows(word) and word ~= 'nil' and word ~= 'true' and word ~= 'false' then
      value = word
   else
      local chunk, err = loadstring('return ' .. text, '=(--set)')
      if chunk then
         local ok, v = S.eval_set(chunk, where)
         if not ok then fail(v) end
         value = v
      end
      if value == nil then
         word = text:match('^%s*([%w_%-%./:]+)%s*$')
         if not word or word == 'nil' then
            fail(string.format('the value is not a Lua value (%s)',
               err and err:gsub('^%(%-%-set%):%d+: ', '') or 'it is nil'))
         end
         value = word
      end
   end
   local kind, at, back = merge.check_nesting(value, MAX_DEPTH)
   if kind then
      local function full(p) return p == '' and key or key .. '.' .. p end
      fail(nesting_message(kind, full(at), back and full(back)))
   end
   local parts, bad_key = merge.split(key)
   if not parts then fail(bad_key) end
   local first = parts[1]
   if not schema.TOP[first] then
      local names = {}
      for k in pairs(schema.TOP) do names[#names + 1] = k end
      error(string.format("%s: unknown config key '%s' (did you mean '%s'?)", where, first,
         schema.closest(tostring(first), names)), 0)
   end
   if first == 'stages' and #parts >= 3 and not schema.STAGE[parts[3]] then
      local names = {}
      for k in pairs(schema.STAGE) do names[#names + 1] = k end
      error(string.format("%s: unknown stage key '%s' (did you mean '%s'?)", where, tostring(parts[3]),
         schema.closest(tostring(parts[3]), names)), 0)
   end
   local bad, there = merge.set(cfg, parts, value)
   if bad then
      error(string.format("%s: cannot set '%s': '%s' holds %s, not a table", where, key, bad,
         schema.describe(there)), 0)
   end
   for p in pairs(origins) do
      if p == key or p:sub(1, #key + 1) == key .. '.' then origins[p] = nil end
   end
   origins[key] = where
end

-- Loads, composes and validates: files (names or paths) in order, then each
-- opts.set assignment. Returns the config and origins (key path -> where set).
function M.load(files, opts)
   opts = opts or {}
   if type(files) == 'string' then files = {files} end
   if #files == 0 then error('no config given (kbl run FILE... ; bare names are found in lua/kbl/configs)', 0) end
   local cfg, origins = {}, {}
   local outer = required
   required = {}
   local ok, err = pcall(function()
      for _, name in ipairs(files) do cfg = load_into(M.find(name), cfg, origins, {}) end
   end)
   local names = required
   required = outer
   if not ok then error(err, 0) end
   if #names > 0 then
      local list = {}
      for i, n in ipairs(names) do list[i] = n end
      serialize.requires[cfg] = list
   end
   for _, a in ipairs(opts.set or {}) do M.apply_set(cfg, origins, a) end
   if cfg.name == nil then
      local last = files[#files]
      cfg.name = (last:match('([^/]+)%.lua$') or last:match('([^/]+)$'))
   end
   if not opts.no_validate then schema.validate(cfg, origins) end
   return cfg, origins
end

-- The stages of a run: each inherits the one before and overrides what it
-- names. Without `stages`, one stage made of the top-level settings. Each
-- resolved stage says whether it needs a new optimizer (it named one, or
-- changed what is frozen).
function M.stages(cfg)
   local base = {}
   for k in pairs(schema.STAGE) do
      if cfg[k] ~= nil and k ~= 'name' then base[k] = merge.copy(cfg[k]) end
   end
   base.freeze, base.unfreeze = {}, {}
   if type(cfg.stages) ~= 'table' or #cfg.stages == 0 then
      base.index, base.name, base.new_optimizer = 1, 'main', true
      return {base}
   end
   local out, prev = {}, base
   for i, st in ipairs(cfg.stages) do
      local cur = merge.merge(prev, st)
      for _, k in ipairs{'freeze', 'unfreeze'} do
         if type(cur[k]) == 'string' then cur[k] = {cur[k]} end
      end
      if st.unfreeze == nil then cur.unfreeze = {} end
      cur.index = i
      cur.name = st.name or ('stage ' .. i)
      -- a stage that changes freezing keeps the optimizer (its state is keyed by parameter name)
      cur.new_optimizer = i == 1 or st.optimizer ~= nil
      out[i] = cur
      prev = cur
   end
   return out
end

-- Builds a value of the config (specs into objects), with its defaults by type.
function M.build(value, cfg, path, refs, origins)
   local ctx = {root = cfg, defaults = cfg.defaults or {}, refs = refs or {}, origins = origins}
   return S.build(value, ctx, path)
end

-- Applies defaults by type for blocks (blocks.defaults.Dense...), so they reach
-- blocks built inside library code too. Returns a function that undoes it.
-- Other types take their defaults when their spec is built (M.build).
function M.apply_defaults(cfg)
   local undo = {}
   local defaults = cfg.defaults or {}
   local names = {}
   for tname in pairs(defaults) do names[#names + 1] = tname end
   table.sort(names)
   for _, tname in ipairs(names) do
      -- 'blocks.Dense', or scoped 'backbone/blocks.Dense' (Dense blocks made under model.backbone)
      local scope, bare_name = tname:match('^([%w_]+)/blocks%.([%w_]+)$')
      local bname = bare_name and (scope .. '/' .. bare_name) or tname:match('^blocks%.([%w_]+)$')
      if bname then
         local blocks = require 'kbl.blocks'
         if type(blocks.defaults) ~= 'table' then
            error(string.format("defaults['%s']: this blocks library has no defaults table", tname), 0)
         end
         blocks.defaults[bname] = blocks.defaults[bname] or {}
         local target = blocks.defaults[bname]
         for k, v in pairs(defaults[tname]) do
            undo[#undo + 1] = {target, k, target[k]}
            target[k] = M.build(v, cfg, 'defaults.' .. tname .. '.' .. k)
         end
      end
   end
   return function()
      for i = #undo, 1, -1 do
         local u = undo[i]
         u[1][u[2]] = u[3]
      end
   end
end

return M
