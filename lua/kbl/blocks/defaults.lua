--- blocks.defaults: defaults by block type, the way gin's bindings work. A
-- program or config sets `blocks.defaults.Dense.kernel_init = 'he_normal'` (or
-- `blocks.defaults.Dense = {kernel_init = 'he_normal'}`) and every Dense made
-- afterwards takes it unless its own arguments say otherwise, also the ones
-- that library code (MLP, ResNet, heads) makes inside itself. Keys are checked
-- against the type's options, so a misspelt default is an error, not a no-op.
--
-- Scoped, as gin's `scope/Dense.units`: `blocks.defaults['backbone/Dense'] =
-- {...}` reaches only the Dense blocks made inside the scope 'backbone' (a
-- config's model.backbone: kbl.config builds each spec inside the scopes of its
-- key path), over the unscoped defaults; a block built later (on its first
-- input) is built inside the scopes it was made in.
local M = {}

local known = {}   -- type name -> sorted list of option names
local values = {}  -- type name -> {option = value}
local scoped = {}  -- scope name -> type name -> {option = value}
local active = {}  -- the scopes in force, outermost first

local function closest(word, list)
   return require('kbl.blocks.Block').closest(word, list)
end

local function check_key(type_name, key)
   local opts = known[type_name]
   local ok = false
   for _, k in ipairs(opts) do if k == key then ok = true end end
   if not ok or key == 'name' then
      local near = closest(tostring(key), opts)
      error(string.format("blocks.defaults.%s: unknown option '%s'%s (options: %s)", type_name, tostring(key),
         near and (" (did you mean '" .. near .. "'?)") or '', table.concat(opts, ', ')), 3)
   end
end

-- The proxy for one type: reads give the set value (nil when unset), writes are checked.
local function proxy(type_name)
   return setmetatable({}, {
      __index = function(_, k) return values[type_name][k] end,
      __newindex = function(_, k, v)
         check_key(type_name, k)
         values[type_name][k] = v
      end,
      __pairs = function() return pairs(values[type_name]) end,
   })
end

local proxies = {}

-- 'blocks.Dense' (as configs write it) and 'Dense' name the same type.
local function bare(type_name)
   return type(type_name) == 'string' and (type_name:gsub('^blocks%.', '')) or type_name
end

-- 'backbone/blocks.Dense' -> 'backbone', 'Dense'; 'Dense' -> nil, 'Dense'.
local function split_scope(key)
   local scope, t = tostring(key):match('^([^/]+)/(.+)$')
   if scope then return scope, bare(t) end
   return nil, bare(key)
end

-- The proxy for a scoped type: writes are checked against the type's options.
local function scoped_proxy(scope, type_name)
   scoped[scope] = scoped[scope] or {}
   scoped[scope][type_name] = scoped[scope][type_name] or {}
   local t = scoped[scope][type_name]
   return setmetatable({}, {
      __index = function(_, k) return t[k] end,
      __newindex = function(_, k, v)
         check_key(type_name, k)
         t[k] = v
      end,
   })
end

-- The table programs write to: blocks.defaults.
M.table = setmetatable({}, {
   __index = function(_, key)
      local scope, type_name = split_scope(key)
      if scope and proxies[type_name] then return scoped_proxy(scope, type_name) end
      local p = proxies[type_name]
      if not p then
         error(string.format("blocks.defaults: unknown block type '%s'", tostring(type_name)), 2)
      end
      return p
   end,
   __newindex = function(_, key, tbl)
      local scope, type_name = split_scope(key)
      if not proxies[type_name] then
         error(string.format("blocks.defaults: unknown block type '%s'", tostring(type_name)), 2)
      end
      if type(tbl) ~= 'table' then
         error(string.format('blocks.defaults.%s must be a table of options', type_name), 2)
      end
      local fresh = {}
      for k, v in pairs(tbl) do
         check_key(type_name, k)
         fresh[k] = v
      end
      if scope then
         scoped[scope] = scoped[scope] or {}
         scoped[scope][type_name] = fresh
      else
         values[type_name] = fresh
      end
   end,
})

function M.register(type_name, option_names)
   known[type_name] = option_names
   values[type_name] = values[type_name] or {}
   proxies[type_name] = proxies[type_name] or proxy(type_name)
end

-- The values in force for a type (a plain table; empty when none): its
-- defaults, overridden by those of each scope in force, inner ones last.
function M.get(type_name)
   local out = values[type_name] or {}
   local copied = false
   for _, scope in ipairs(active) do
      local s = scoped[scope] and scoped[scope][type_name]
      if s and next(s) ~= nil then
         if not copied then
            local c = {}
            for k, v in pairs(out) do c[k] = v end
            out, copied = c, true
         end
         for k, v in pairs(s) do out[k] = v end
      end
   end
   return out
end

-- The scopes in force (a copy), outermost first.
function M.scopes()
   local c = {}
   for i, s in ipairs(active) do c[i] = s end
   return c
end

-- Runs fn(...) with the scopes `names` (a list) in force after those already
-- in force; returns what fn returns.
function M.in_scope(names, fn, ...)
   if #names == 0 then return fn(...) end
   local n = #active
   for i, s in ipairs(names) do active[n + i] = s end
   local res = {pcall(fn, ...)}
   for i = #active, n + 1, -1 do active[i] = nil end
   if not res[1] then error(res[2], 0) end
   return unpack(res, 2, table.maxn(res))
end

--- Clears the defaults of one type (scoped ones too), or of every type. Also blocks.reset_defaults.
-- @tparam[opt] string type_name 'Dense'; every type when nil
-- @usage blocks.reset_defaults('Dense')
function M.reset(type_name)
   if type_name then
      values[bare(type_name)] = {}
      for _, types in pairs(scoped) do types[bare(type_name)] = nil end
   else
      for k in pairs(values) do values[k] = {} end
      scoped = {}
   end
end

--- Runs fn with some defaults in force, then puts the previous ones back. Also blocks.with_defaults.
-- @tparam table tbl {Dense = {kernel_init = 'he_normal'}, ...}
-- @tparam function fn
-- @param ... fn's arguments
-- @return fn's results
-- @usage blocks.with_defaults({Dense = {use_bias = false}}, function() return blocks.Dense{3} end)
function M.with(tbl, fn, ...)
   local saved = {}
   for type_name, opts in pairs(tbl) do
      type_name = bare(type_name)
      saved[type_name] = values[type_name]
      M.table[type_name] = opts
      local merged = {}
      for k, v in pairs(saved[type_name] or {}) do merged[k] = v end
      for k, v in pairs(opts) do merged[k] = v end
      values[type_name] = merged
   end
   local res = {pcall(fn, ...)}
   for type_name, v in pairs(saved) do values[type_name] = v end
   if not res[1] then error(res[2], 0) end
   return unpack(res, 2, table.maxn(res))
end

return M
