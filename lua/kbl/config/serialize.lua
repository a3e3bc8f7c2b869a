--- kbl.config.serialize: writes a resolved config as a Lua chunk that rebuilds
-- the same run (`kbl run RUN_DIR/config.lua`): specs as `blocks.Dense{units =
-- 10}`, refs as `ref 'x'`, numbers exactly, and functions as their source
-- text (read from the file that defined them; one that captures locals cannot
-- be written and is replaced by nil with a warning in a comment).
local S = require 'kbl.config.spec'

local M = {}

-- The order top-level keys are written in; others follow alphabetically.
local TOP_ORDER = {'name', 'seed', 'device', 'threads', 'epochs', 'steps_per_epoch', 'validation_steps',
   'batch_size', 'eval_batch_size', 'data', 'train_split', 'validation_split', 'test_split', 'shuffle',
   'drop_remainder', 'prefetch', 'transforms', 'augment', 'model', 'loss', 'optimizer', 'metrics',
   'callbacks', 'clip_grad_norm', 'clip_grad_value', 'terminate_on_nan', 'defaults', 'vars', 'stages', 'runs'}
local TOP_RANK = {}
for i, k in ipairs(TOP_ORDER) do TOP_RANK[k] = i end

local LUA_KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
   repeat return then true until while]]):gmatch('%a+') do LUA_KEYWORDS[w] = true end

function M.number(v)
   if v ~= v then return '0/0' end
   if v == math.huge then return 'math.huge' end
   if v == -math.huge then return '-math.huge' end
   if v % 1 == 0 and math.abs(v) < 2^53 then return string.format('%d', v) end
   for _, f in ipairs{'%.15g', '%.16g', '%.17g'} do
      local s = string.format(f, v)
      if tonumber(s) == v then return s end
   end
   return string.format('%.17g', v)
end

local file_cache = {}
local function file_lines(path)
   if file_cache[path] == nil then
      local f = io.open(path, 'r')
      local lines = false
      if f then
         lines = {}
         for l in f:lines() do lines[#lines + 1] = l end
         f:close()
      end
      file_cache[path] = lines
   end
   return file_cache[path] or nil
end

-- The source text of a function defined in a file, or nil and why not.
function M.function_source(fn)
   local info = debug.getinfo(fn, 'S')
   if info.what ~= 'Lua' or not info.source:match('^@') then
      return nil, 'it is not defined in a Lua file'
   end
   local up = debug.getupvalue(fn, 1)
   if up then return nil, string.format("it uses the local '%s' from outside it", up) end
   local lines = file_lines(info.source:sub(2))
   if not lines then return nil, 'its file cannot be read' end
   local text = table.concat(lines, '\n', info.linedefined, info.lastlinedefined)
   -- cut the text to the function expression: from `function` to the last `end`
   local start = text:find('function', 1, true)
   local stop = text:match('.*()end')
   if not start or not stop then return nil, 'its source cannot be found' end
   text = text:sub(start, stop + 2)
   -- `local function f(...)` or `function a.b(...)` -> `function(...)`
   text = text:gsub('^function%s+[%w_%.:]+%s*%(', 'function(')
   if not loadstring('return ' .. text) then return nil, 'its source shares lines with other code' end
   return text
end

-- the top level's keys in TOP_RANK order, then by name (kbl.util's order otherwise)
local util = require 'kbl.util'
local function top_less(a, b)
   if type(a) == 'string' and type(b) == 'string' then
      local ra, rb = TOP_RANK[a] or 1000, TOP_RANK[b] or 1000
      if ra ~= rb then return ra < rb end
   end
   return util.key_less(a, b)
end
local TOP_SORT = {less = top_less}

local function key_text(k)
   if type(k) == 'string' and k:match('^[%a_][%w_]*$') and not LUA_KEYWORDS[k] then return k end
   if type(k) == 'number' then return '[' .. M.number(k) .. ']' end
   return '[' .. string.format('%q', k) .. ']'
end

local write
local strict = false   -- to_lua's opts.strict, while it runs

-- A table's fields as Lua: inline when short, one per line otherwise. path:
-- the key path of t, for messages.
local function write_fields(t, indent, top, path)
   local keys = util.sorted_keys(t, top and TOP_SORT or nil)
   local n = #t -- the sequence part is written without keys
   local parts = {}
   local long = top
   for _, k in ipairs(keys) do
      local v = write(t[k], indent .. '   ', (path and path ~= '') and (path .. '.' .. tostring(k)) or tostring(k))
      local positional = type(k) == 'number' and k >= 1 and k <= n and k % 1 == 0
      local item = positional and v or (key_text(k) .. ' = ' .. v)
      if v:find('\n') then long = true end
      parts[#parts + 1] = item
   end
   local flat = table.concat(parts, ', ')
   if not long and #flat + #indent <= 90 then return '{' .. flat .. '}' end
   local inner = indent .. '   '
   local out = {'{'}
   for _, p in ipairs(parts) do out[#out + 1] = inner .. p .. ',' end
   out[#out + 1] = indent .. '}'
   return table.concat(out, '\n')
end

write = function(v, indent, path)
   local t = type(v)
   if t == 'nil' then return 'nil'
   elseif t == 'boolean' then return tostring(v)
   elseif t == 'number' then return M.number(v)
   elseif t == 'string' then return (string.format('%q', v):gsub('\\\n', '\\n'))
   elseif S.is_ref(v) then return string.format('ref %q', v.path)
   elseif S.is_namespace(v) then return S.namespace_path(v)
   elseif S.is_spec(v) then
      local targ = v:table_arg()
      if targ then return v.type .. write_fields(targ, indent, false, path) end
      local args = {}
      for i = 1, v.n do args[i] = write(v.args[i], indent, path) end
      return v.type .. '(' .. table.concat(args, ', ') .. ')'
   elseif t == 'table' then return write_fields(v, indent, false, path)
   elseif t == 'function' then
      local src, why = M.function_source(v)
      if src then
         -- re-indent the body to where it is written
         local first = src:match('\n(%s*)end$') or ''
         return (src:gsub('\n' .. first, '\n' .. indent))
      end
      if strict then
         local info = debug.getinfo(v, 'S')
         local at = info.short_src and info.linedefined and info.linedefined > 0
            and string.format(' (%s:%d)', info.short_src, info.linedefined) or ''
         local name = debug.getupvalue(v, 1)
         error(string.format("config key '%s': the function%s cannot be written to the run's config.lua: %s. %s",
            path or '?', at, why, name and string.format("Make '%s' a global, or a value inside the function, "
               .. "or pass it as an argument (vars = {...} and ref 'vars.%s')", name, name)
               or 'Write it in the config file itself'), 0)
      end
      return 'nil --[[ a function was here; it cannot be written back because ' .. why .. ' ]]'
   end
   error(string.format('a config cannot hold a %s (%s)', t, tostring(v)), 0)
end

-- The modules a loaded config required (config -> list of names), which its
-- chunk requires again first (kbl.config.load records them).
M.requires = setmetatable({}, {__mode = 'k'})

-- The config as a chunk: a header comment, the modules it required, then
-- `return {...}`. opts.strict: a value that cannot be written back (a
-- function using a local from outside it) is an error naming its key and the
-- local, instead of a nil with a comment.
function M.to_lua(cfg, header, opts)
   local out = {}
   if header then
      for line in (header .. '\n'):gmatch('(.-)\n') do out[#out + 1] = '-- ' .. line end
   end
   for _, name in ipairs(M.requires[cfg] or {}) do out[#out + 1] = string.format('require %q', name) end
   strict = opts and opts.strict or false
   local ok, body = pcall(write_fields, cfg, '', true, '')
   strict = false
   if not ok then error(body, 0) end
   out[#out + 1] = 'return ' .. body
   return table.concat(out, '\n') .. '\n'
end

return M
