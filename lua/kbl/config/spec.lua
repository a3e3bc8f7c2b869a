--- kbl.config.spec: what a config constructs. Inside a config, `blocks.Dense{units
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
   kbl = 'kbl', blocks = 'kbl.blocks', optim = 'kbl.optim', losses = 'kbl.losses',
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
-- makes a spec of that type. guard(path, k), when given, may refuse a step
-- (the --set sandbox); where, when given, is where every spec made through it
-- was written.
local Namespace = {}
local namespace_paths = setmetatable({}, {__mode = 'k'})
local function namespace(path, guard, where)
   local proxy = setmetatable({}, {
      __index = function(_, k)
         if type(k) ~= 'string' then return nil end
         if guard then guard(path, k) end
         return namespace(path .. '.' .. k, guard, where)
      end,
      __call = function(_, ...)
         local n = select('#', ...)
         return M.new(path, {...}, n, where or caller_where(2))
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
-- Lua library (math, string, table, os.getenv...). Config files are trusted
-- code, like a Makefile.
function M.env()
   local env = {}
   for _, name in ipairs(M.NAMESPACES) do env[name] = namespace(name) end
   env.ref = function(path) return M.ref(path, caller_where(2)) end
   return setmetatable(env, {__index = _G})
end

-- ---- the --set sandbox --------------------------------------------------------

-- What a --set value sees besides the namespaces and ref: copies of the pure
-- parts of the Lua library (copies, so that a value cannot change kbl's own).
local function copy_of(t, except)
   local c = {}
   for k, v in pairs(t) do if k ~= except then c[k] = v end end
   return c
end
local SAFE_STRING = copy_of(string, 'dump')
local SAFE = {
   math = copy_of(math), string = SAFE_STRING, table = copy_of(table), tostring = tostring,
   tonumber = tonumber, type = type, pairs = pairs, ipairs = ipairs, next = next, select = select,
   unpack = unpack, assert = assert, error = error, pcall = pcall,
}
-- Names a --set value may not reach, at the top or as a step of a type path
-- (kbl.lib holds the FFI and the raw C functions; kbl.save and
-- data.idx.write would write files from a spec built with the run).
M.FORBIDDEN = {}
for w in ([[os io ffi jit require load loadstring loadfile dofile package debug setfenv getfenv rawset rawget
   rawequal setmetatable getmetatable collectgarbage module newproxy coroutine print _G dump lib C cdef
   save write remove rename execute popen exit]]):gmatch('%S+') do M.FORBIDDEN[w] = true end

local function refuse(name, level)
   error(string.format("'%s' is not available to a --set value (it sees kbl, blocks, optim, losses, "
      .. "metrics, data, callbacks, ref, math, string and table; config files are trusted Lua)", name), level)
end

-- What a raw Lua runtime error in a --set value means, said for a user
-- ("attempt to call global 'rgf' (a nil value)" -> "'rgf' is not defined in
-- the config scope"); other messages (the value's own error()) unchanged.
local LUA_ERRORS = {
   {'^table index is (%a+)$', 'a table key is %1'},
   {'^stack overflow', 'it recurses too deep'},
   {'^not enough memory', 'it needs too much memory'},
   {'^string length overflow', 'it makes a string too long'},
   {"^invalid key to 'next'", 'it changes a table while walking it'},
   {'^error in error handling', 'it fails while handling an error'},
   {"^bad argument (#%d+) to '([^']+)' %((.*)%)$", "argument %1 of '%2' is wrong (%3)"},
   {"^bad argument (#%d+) to '([^']+)'$", "argument %1 of '%2' is wrong"},
}
function M.explain_lua_error(msg)
   msg = tostring(msg):gsub('^%(%-%-set%):%d+: ', '')
   local what, name, vtype = msg:match("^attempt to (.-) %a+ '([^']+)' %(a (%a+) value%)$")
   if what then
      if vtype == 'nil' then return string.format("'%s' is not defined in the config scope", name) end
      return string.format("cannot %s '%s', which is a %s", what, name, vtype)
   end
   local rest = msg:match('^attempt to (.*)$')
   if rest then
      return 'cannot ' .. rest:gsub('a (%a+) value', 'a %1'):gsub('with nil$', 'with nothing (nil)')
   end
   for _, r in ipairs(LUA_ERRORS) do
      local out, n = msg:gsub(r[1], r[2])
      if n > 0 then return (out:gsub(" of '%?'", ' of a function')) end
   end
   return msg
end

-- Whether a --set value knows this name (else a bare word is taken as a string).
function M.set_knows(name) return SAFE[name] ~= nil or M.MODULES[name] ~= nil or name == 'ref' end

-- Evaluates a --set value: the text of a Lua expression, in the config
-- scope without the parts of Lua that reach the system (os, io, ffi,
-- require, load, dofile, debug, getmetatable...; the string metatable gives
-- no string.dump while it runs, and a function the value defines that reaches
-- it later finds nothing that loads bytecode). Specs and refs it makes are
-- marked as written at `where`. Returns ok, value or the message.
function M.eval_set(chunk, where)
   local env = {}
   local function guard(path, k)
      if M.FORBIDDEN[k] or k:sub(1, 1) == '_' then refuse(path .. '.' .. k, 4) end
   end
   for _, name in ipairs(M.NAMESPACES) do env[name] = namespace(name, guard, where) end
   env.ref = function(path) return M.ref(path, where) end
   for k, v in pairs(SAFE) do env[k] = v end
   setmetatable(env, {
      __index = function(_, k)
         if M.FORBIDDEN[k] or (type(k) == 'string' and k:sub(1, 1) == '_') then refuse(tostring(k), 3) end
         return nil
      end,
      __newindex = function(_, k) error(string.format("a --set value cannot set the global '%s'", tostring(k)), 2) end,
      __metatable = false,
   })
   setfenv(chunk, env)
   local smt = getmetatable('')
   local saved = smt.__index
   smt.__index = SAFE_STRING
   local ok, v = pcall(chunk)
   smt.__index = saved
   if not ok then return false, M.explain_lua_error(v) end
   return ok, v
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
      if type(obj) ~= 'table' then
         -- cdata, userdata (kbl.lib.C): not a table of types, and not for configs to call into
         error(string.format("unknown type '%s': %s is not a table of types", type_name, walked), 0)
      end
      local nxt = obj[part]
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

-- Where a value at path was written: its own mark, else the origin of the
-- path (file:line or --set), never '?'.
local function where_of(v, origins, path)
   if type(v) == 'table' and v.where then return v.where end
   return require('kbl.config.schema').where(origins, path)
end
M.where_of = where_of

-- The message for a constructor that failed: where the offending key was set
-- (a quoted name in the message that is an argument of this spec, else an
-- argument named as a word, as in "lr must be a number"), else where the
-- spec was written; its own "file:line:" prefix dropped; and for an unknown
-- option listed among "(options: a, b)" without a suggestion, the closest of
-- them.
function M.build_error(v, path, err, origins)
   local msg = tostring(err):gsub('^[^%s:]+%.lua:%d+: ', ''):gsub('^kbl: ', '')
   local where = where_of(v, origins, path)
   if origins then
      local function origin(word)
         return origins[path == '' and word or path .. '.' .. word]
      end
      local found
      for word in msg:gmatch("'([%w_]+)'") do
         found = origin(word)
         if found then break end
      end
      local targ = v:table_arg()
      if not found and targ then
         local names = {}
         for k in pairs(targ) do if type(k) == 'string' then names[#names + 1] = k end end
         table.sort(names)
         for _, k in ipairs(names) do
            if origin(k) and msg:find('%f[%w_]' .. k .. '%f[^%w_]') then found = origin(k) break end
         end
      end
      where = found or where
   end
   local bad = msg:match("unknown %a+ '([%w_]+)'")
   local options = msg:match('options: ([%w_, ]+)%)')
   if bad and options and not msg:find('did you mean', 1, true) then
      local names = {}
      for n in options:gmatch('[%w_]+') do names[#names + 1] = n end
      local hint = require('kbl.config.schema').closest(bad, names)
      if hint then msg = msg:gsub("(unknown %a+ '[%w_]+')", "%1 (did you mean '" .. hint .. "'?)", 1) end
   end
   return string.format('%s: building %s for %s: %s', where, v.type,
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
         error(string.format("%s: ref '%s' refers to itself", where_of(v, ctx.origins, path), v.path), 0)
      end
      local target = require('kbl.config.merge').get(ctx.root, v.path)
      if target == nil then
         error(string.format("%s: ref '%s' names no value in the config (at %s)",
            where_of(v, ctx.origins, path), v.path, path), 0)
      end
      ctx.resolving[v.path] = true
      local built = M.build(target, ctx, v.path)
      ctx.resolving[v.path] = nil
      ctx.refs[v.path] = built
      return built
   elseif M.is_spec(v) then
      local okt, ctor = pcall(M.resolve_type, v.type)
      if not okt then error(string.format('%s: %s', where_of(v, ctx.origins, path), ctor), 0) end
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
         error(string.format('%s: %s is not a constructor', where_of(v, ctx.origins, path), v.type), 0)
      end
      -- made inside the scopes of its key path (model.backbone: 'model', 'backbone'), where
      -- scoped defaults by type (defaults['backbone/blocks.Dense']) reach it
      local scopes = {}
      for part in path:gmatch('[^%.]+') do if not tonumber(part) then scopes[#scopes + 1] = part end end
      local ok, obj = pcall(require('kbl.blocks.defaults').in_scope, scopes, ctor, unpack(args, 1, v.n))
      if not ok then error(M.build_error(v, path, obj, ctx.origins), 0) end
      return obj
   elseif M.is_namespace(v) then
      -- a bare name (activation = kbl.relu) stands for the object itself
      local ok, obj = pcall(M.resolve_type, namespace_paths[v])
      if not ok then error(string.format('%s: %s', where_of(nil, ctx.origins, path), obj), 0) end
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
