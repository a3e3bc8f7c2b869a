-- kbl.config.spec: what a config constructs. Inside a config, `blocks.Dense{units
-- = 10}` makes a spec (a type name and its arguments), not a block; `ref 'x'`
-- makes a reference to another config value. Both are plain data until the run
-- starts, when build() turns them into real objects. So any argument at any
-- depth can be overridden and the whole config printed back as Lua.
local M = {}

local Spec = {}
Spec.__index = Spec
local Ref = {}
Ref.__index = Ref
M.Spec, M.Ref = Spec, Ref

-- The namespaces a config sees, and the modules they stand for.
M.MODULES = {
   kbl = 'kbl', blocks = 'blocks', optim = 'kbl.optim', losses = 'kbl.losses',
   metrics = 'kbl.metrics', data = 'kbl.data', callbacks = 'kbl.callbacks',
}
M.NAMESPACES = {'kbl', 'blocks', 'optim', 'losses', 'metrics', 'data', 'callbacks'}

function M.is_spec(v) return type(v) == 'table' and getmetatable(v) == Spec end
function M.is_ref(v) return type(v) == 'table' and getmetatable(v) == Ref end

-- spec('blocks.Dense', {units = 10}) or with several arguments.
function M.new(type_name, args, nargs, where)
   return setmetatable({type = type_name, args = args or {}, n = nargs or #(args or {}), where = where}, Spec)
end

function M.ref(path, where)
   if type(path) ~= 'string' or path == '' then
      error("ref needs a key path such as ref 'batch_size' or ref 'optimizer.lr'", 2)
   end
   return setmetatable({path = path, where = where}, Ref)
end

-- The one table argument through which config paths go (`model.units`), or nil.
function Spec:table_arg()
   if self.n == 1 and type(self.args[1]) == 'table' and not M.is_spec(self.args[1])
      and not M.is_ref(self.args[1]) then
      return self.args[1]
   end
   return nil
end

local function caller_where(level)
   local info = debug.getinfo(level + 1, 'Sl')
   if info and info.currentline and info.currentline > 0 then
      return info.short_src .. ':' .. info.currentline
   end
   return nil
end

-- A namespace proxy: indexing goes deeper (optim.schedules.cosine), calling
-- makes a spec of that type.
local Namespace = {}
local namespace_paths = setmetatable({}, {__mode = 'k'})
local function namespace(path)
   local proxy = setmetatable({}, {
      __index = function(_, k)
         if type(k) ~= 'string' then return nil end
         return namespace(path .. '.' .. k)
      end,
      __call = function(_, ...)
         local n = select('#', ...)
         return M.new(path, {...}, n, caller_where(2))
      end,
      __newindex = function(_, k)
         error(string.format("a config cannot set %s.%s; change defaults by type with "
            .. "defaults = {['%s'] = {...}} or a value with --set", path, tostring(k), path), 2)
      end,
      __tostring = function() return path end,
      __namespace = path,
      __metatable = Namespace,
   })
   namespace_paths[proxy] = path
   return proxy
end
M.namespace = namespace

function M.is_namespace(v) return type(v) == 'table' and getmetatable(v) == Namespace end
-- 'optim.schedules' for the proxy that stands for it.
function M.namespace_path(v) return namespace_paths[v] end

-- The environment a config file runs in: the namespaces, ref, and the plain
-- Lua library (math, string, table, os.getenv...).
function M.env()
   local env = {}
   for _, name in ipairs(M.NAMESPACES) do env[name] = namespace(name) end
   env.ref = function(path) return M.ref(path, caller_where(2)) end
   return setmetatable(env, {__index = _G})
end

-- ---- building ---------------------------------------------------------------

-- The real object a type name stands for: 'blocks.Dense' -> blocks.Dense.
function M.resolve_type(type_name)
   local root, rest = type_name:match('^([%w_]+)%.?(.*)$')
   local modname = M.MODULES[root]
   if not modname then error(string.format("unknown type '%s' (types start with one of %s)",
      type_name, table.concat(M.NAMESPACES, ', ')), 0) end
   local ok, obj = pcall(require, modname)
   if not ok then error(string.format("%s needs the module %s, which failed to load: %s",
      type_name, modname, tostring(obj)), 0) end
   local walked = root
   for part in rest:gmatch('[^%.]+') do
      local nxt = type(obj) == 'table' and obj[part] or nil
      if nxt == nil then
         local names = {}
         if type(obj) == 'table' then
            for k in pairs(obj) do if type(k) == 'string' then names[#names + 1] = k end end
         end
         local hint = require('kbl.config.schema').closest(part, names)
         error(string.format("unknown type '%s': %s has no '%s'%s", type_name, walked, part,
            hint and string.format(" (did you mean '%s.%s'?)", walked, hint) or ''), 0)
      end
      obj, walked = nxt, walked .. '.' .. part
   end
   return obj
end

local function copy_map(t)
   local c = {}
   for k, v in pairs(t) do c[k] = v end
   return c
end

-- The message for a constructor that failed: where the offending key was set
-- (a quoted name in the message that is an argument of this spec), else where
-- the spec was written; its own "file:line:" prefix dropped; and for an
-- unknown option listed among "(options: a, b)" without a suggestion, the
-- closest of them.
function M.build_error(v, path, err, origins)
   local msg = tostring(err):gsub('^[^%s:]+%.lua:%d+: ', ''):gsub('^kbl: ', '')
   local where = v.where
   if origins then
      for word in msg:gmatch("'([%w_]+)'") do
         local key = path == '' and word or path .. '.' .. word
         if origins[key] then where = origins[key] break end
      end
   end
   local bad = msg:match("unknown %a+ '([%w_]+)'")
   local options = msg:match('options: ([%w_, ]+)%)')
   if bad and options and not msg:find('did you mean', 1, true) then
      local names = {}
      for n in options:gmatch('[%w_]+') do names[#names + 1] = n end
      local hint = require('kbl.config.schema').closest(bad, names)
      if hint then msg = msg:gsub("(unknown %a+ '[%w_]+')", "%1 (did you mean '" .. hint .. "'?)", 1) end
   end
   return string.format('%s: building %s for %s: %s', where or '?', v.type,
      path ~= '' and "'" .. path .. "'" or 'the config', msg)
end

-- Builds value v: specs become objects, refs their targets, tables are copied
-- with their members built. ctx = {root = config, defaults = {type -> args},
-- refs = {path -> built}, origins = {path -> where set}}. Errors name the path and where the
-- spec was written.
function M.build(v, ctx, path)
   path = path or ''
   if M.is_ref(v) then
      local cached = ctx.refs[v.path]
      if cached ~= nil then return cached end
      ctx.resolving = ctx.resolving or {}
      if ctx.resolving[v.path] then
         error(string.format("%s: ref '%s' refers to itself", v.where or path, v.path), 0)
      end
      local target = require('kbl.config.merge').get(ctx.root, v.path)
      if target == nil then
         error(string.format("%s: ref '%s' names no value in the config (at %s)",
            v.where or '?', v.path, path), 0)
      end
      ctx.resolving[v.path] = true
      local built = M.build(target, ctx, v.path)
      ctx.resolving[v.path] = nil
      ctx.refs[v.path] = built
      return built
   elseif M.is_spec(v) then
      local ctor = M.resolve_type(v.type)
      local args = {}
      for i = 1, v.n do args[i] = v.args[i] end
      local targ = v:table_arg()
      if targ then
         targ = copy_map(targ)
         local d = ctx.defaults and ctx.defaults[v.type]
         if d then
            for k, dv in pairs(d) do if targ[k] == nil then targ[k] = dv end end
         end
         args[1] = targ
      end
      for i = 1, v.n do args[i] = M.build(args[i], ctx, path) end
      if type(ctor) ~= 'function' and not (getmetatable(ctor) or {}).__call then
         error(string.format('%s: %s is not a constructor', v.where or path, v.type), 0)
      end
      local ok, obj = pcall(ctor, unpack(args, 1, v.n))
      if not ok then error(M.build_error(v, path, obj, ctx.origins), 0) end
      return obj
   elseif M.is_namespace(v) then
      -- a bare name (activation = kbl.relu) stands for the object itself
      local ok, obj = pcall(M.resolve_type, namespace_paths[v])
      if not ok then error(string.format('%s: %s', path, obj), 0) end
      return obj
   elseif type(v) == 'table' then
      local out = {}
      for k, x in pairs(v) do
         out[k] = M.build(x, ctx, path == '' and tostring(k) or path .. '.' .. tostring(k))
      end
      return out
   end
   return v
end

return M
