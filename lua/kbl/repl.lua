--- kbl.repl: the interactive prompt of `kbl repl`. LuaJIT with kbl, blocks,
-- optim, data, losses, metrics and callbacks preloaded; line editing, history
-- (~/.kbl_history) and tab completion of fields and methods through GNU
-- readline (lua-readline; plain io.read without it). An
-- expression's value is printed without `=`, tensors and tables pretty-printed;
-- `local x = ...` at the start of a line keeps x for the next lines (it becomes
-- a field of the session's environment); an incomplete chunk continues on the
-- next line; an error is printed and the session goes on. `?kbl.conv2d` and
-- help(kbl.conv2d) print the documentation (kbl.doc); a function prints as its
-- signature and where it is defined.
local M = {}

-- ---- evaluation ---------------------------------------------------------------

-- The session's environment: the libraries, then the globals.
function M.new_env()
   local env = {}
   local preload = {kbl = 'kbl', blocks = 'kbl.blocks', optim = 'kbl.optim', data = 'kbl.data',
      losses = 'kbl.losses', metrics = 'kbl.metrics', callbacks = 'kbl.callbacks', fit = 'kbl.fit'}
   local missing = {}
   for name, mod in pairs(preload) do
      local ok, v = pcall(require, mod)
      if ok then env[name] = v else missing[#missing + 1] = name end
   end
   table.sort(missing)
   -- help(kbl.conv2d), help('config.stages'): the documentation (kbl.doc)
   env.help = function(v) print(require('kbl.doc').help(v)) end
   return setmetatable(env, {__index = _G}), missing
end

-- `local a, b = 1, 2` -> `a, b = 1, 2`; `local function f` -> `function f`;
-- `local x` -> `x = nil`. Only a statement at the start of the chunk: locals
-- inside blocks stay local, as they should.
function M.rewrite_locals(src)
   local body = src:match('^%s*local%s+function%s+(.*)$')
   if body then return 'function ' .. body end
   local names, rest = src:match('^%s*local%s+([%a_][%w_]*%s*[%w_,%s]*)(.*)$')
   if names then
      if rest:match('^=') then return names .. rest end
      if rest:match('^%s*;?%s*$') then return (names:gsub('%s+$', '')) .. ' = nil' end
   end
   return src
end

-- Compiles a chunk: as an expression first (its values get printed), then as
-- statements. Returns fn; or nil, message, incomplete (more lines may finish it).
function M.compile(src, env)
   local fn = loadstring('return ' .. src, '=stdin')
   if not fn then
      local err
      fn, err = loadstring(M.rewrite_locals(src), '=stdin')
      if not fn then
         return nil, err, err:match("'<eof>'") ~= nil or err:match('<eof>$') ~= nil
      end
   end
   setfenv(fn, env)
   return fn
end

local function pack(...) return {n = select('#', ...), ...} end

-- Runs a compiled chunk; returns ok and its values (or the message).
function M.eval(fn)
   local res = pack(xpcall(fn, function(e)
      if type(e) ~= 'string' then e = tostring(e) end
      return e
   end))
   return res[1], res
end

-- ---- printing -------------------------------------------------------------------

local LIMIT = 40 -- items shown per table

-- kbl.doc, loaded the first time a function is printed or help asked for.
function M.doc() return require 'kbl.doc' end

-- `?kbl.conv2d` (a line that starts with ?): the name's documentation, or nil.
function M.help_line(src)
   local name = src:match('^%s*%?%s*([%w_%.:]*)%s*$')
   if not name then return nil end
   return M.doc().help(name ~= '' and name or nil)
end

local function is_ident(k) return type(k) == 'string' and k:match('^[%a_][%w_]*$') ~= nil end

local sorted_keys = require('kbl.util').sorted_keys

-- A value as the REPL shows it: tensors and objects by their __tostring,
-- tables as nested constructors (depth 3, LIMIT items each), functions by
-- their signature. Written here, not with inspect or penlight's pretty (both
-- tried on the same values): inspect prints an object with __tostring as a
-- table plus a comment and its <metatable>, pretty.write quotes a tensor's text
-- as a long string and a function's address, and neither limits the items of a
-- long table (a 60000-row list floods the terminal).
function M.format(v, depth, seen)
   depth, seen = depth or 0, seen or {}
   local t = type(v)
   if t == 'string' then return (string.format('%q', v):gsub('\\\n', '\\n')) end
   if t == 'number' then
      if v % 1 == 0 and math.abs(v) < 2^53 then return string.format('%d', v) end
      return string.format('%.14g', v)
   end
   if t == 'function' then
      -- its signature and where it is defined, not `function: 0x...`
      local ok, text = pcall(depth == 0 and M.doc().describe_function or M.doc().short_function, v)
      return ok and text or tostring(v)
   end
   if t ~= 'table' then return tostring(v) end
   local mt = getmetatable(v)
   if mt and mt.__tostring then return tostring(v) end
   if seen[v] then return '<cycle>' end
   if depth >= 3 then return '{...}' end
   seen[v] = true
   local parts, n, total = {}, #v, 0
   for _ in pairs(v) do total = total + 1 end
   for i = 1, math.min(n, LIMIT) do parts[#parts + 1] = M.format(v[i], depth + 1, seen) end
   for _, k in ipairs(sorted_keys(v)) do
      if #parts >= LIMIT then break end
      if not (type(k) == 'number' and k >= 1 and k <= n and k % 1 == 0) then
         local key = is_ident(k) and k or '[' .. M.format(k, depth + 1, seen) .. ']'
         parts[#parts + 1] = key .. ' = ' .. M.format(v[k], depth + 1, seen)
      end
   end
   seen[v] = nil
   if total > #parts then parts[#parts + 1] = string.format('... (%d more)', total - #parts) end
   local flat = '{' .. table.concat(parts, ', ') .. '}'
   if #flat <= 80 and not flat:find('\n') then return flat end
   local pad = string.rep('   ', depth + 1)
   return '{\n' .. pad .. table.concat(parts, ',\n' .. pad) .. '\n' .. string.rep('   ', depth) .. '}'
end

-- ---- completion -------------------------------------------------------------------

-- Names reachable from a value: its fields, its metatable's __index chain, and
-- for tensors their methods and properties.
local function fields_of(v, methods_only)
   local names, seen = {}, {}
   local function add(k, val)
      if type(k) == 'string' and is_ident(k) and not seen[k] then
         if not methods_only or type(val) == 'function' or val == true then
            seen[k] = true
            names[#names + 1] = k
         end
      end
   end
   local T = package.loaded['kbl.tensor']
   if type(v) == 'cdata' and T and T.is_tensor(v) then
      for k, fn in pairs(T.methods) do add(k, fn) end
      if not methods_only then
         for _, k in ipairs{'shape', 'dtype', 'ndim', 'device', 'grad', 'requires_grad', 'is_leaf', 'grad_fn'} do
            add(k, true)
         end
      end
      return names
   end
   local depth = 0
   while type(v) == 'table' and depth < 8 do
      for k, val in pairs(v) do add(k, val) end
      local mt = getmetatable(v)
      local idx = type(mt) == 'table' and rawget(mt, '__index')
      if type(idx) ~= 'table' or idx == v then break end
      v, depth = idx, depth + 1
   end
   return names
end

-- Completions of the word before the cursor: 'kbl.ze' -> {'kbl.zeros', ...},
-- 'x:si' -> {'x:size'}, 'pri' -> {'print'}.
function M.complete(word, env)
   local prefix, sep, partial = word:match('^(.-)([%.:])([%w_]*)$')
   local candidates, base
   if prefix then
      if not prefix:match('^[%a_][%w_]*[%w_%.]*$') then return {} end
      local v = env
      for part in prefix:gmatch('[^%.]+') do
         local ok, nxt = pcall(function() return v[part] end)
         if not ok or nxt == nil then return {} end
         v = nxt
      end
      candidates = fields_of(v, sep == ':')
      base = prefix .. sep
   else
      partial = word
      candidates = fields_of(env)
      for _, k in ipairs{'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'if', 'in',
         'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while'} do
         candidates[#candidates + 1] = k
      end
      base = ''
   end
   local out = {}
   for _, c in ipairs(candidates) do
      -- names starting with _ only when asked for
      if c:sub(1, #partial) == partial and (c:sub(1, 1) ~= '_' or partial:sub(1, 1) == '_') then
         out[#out + 1] = base .. c
      end
   end
   table.sort(out)
   return out
end

-- ---- line input -----------------------------------------------------------------------

-- Line editing, history and completion come from GNU readline through
-- lua-readline (Debian lua-readline). It replaced an FFI binding of readline
-- after measuring both under LuaJIT on the same pty session (spec/repl_spec.lua):
-- the same behaviour (editing, history, completion of fields and methods) and
-- the same set-up time (0.4 ms each), while lua-readline calls the completion
-- function through the Lua C API, where the binding needed an FFI callback
-- (a limited resource, slow to enter, unsafe from JIT-compiled code: the read
-- had to be jit.off) and its own malloc'ed match arrays. Without lua-readline,
-- or off a terminal, lines come from io.read.

-- A reader on lua-readline, or nil when it is not installed.
function M.readline_reader(env)
   local ok, RL = pcall(require, 'readline')
   if not ok then return nil end
   local history = (os.getenv('HOME') or '.') .. '/.kbl_history'
   RL.set_readline_name('kbl')
   RL.set_options{histfile = history, ignoredups = true, completion = true, auto_add = false}
   RL.set_complete_function(function(text)
      RL.set_completion_append_character('')   -- `x:size(`, not `x:size (`; readline resets it each time
      local ok2, list = pcall(M.complete, text, env)
      return ok2 and list or {}
   end)
   return {
      kind = 'readline',
      read = function(prompt) return RL.readline(prompt) end,
      add = function(line) if line:match('%S') then RL.add_history(line) end end,
      close = function() pcall(RL.save_history) end,
   }
end

-- A reader: {read(prompt) -> line or nil, add(line), close(), kind}.
function M.reader(env)
   local tty = require('posix.unistd').isatty(0) == 1
   if tty and os.getenv('KBL_REPL_PLAIN') == nil then
      local rd = M.readline_reader(env)
      if rd then return rd end
   end
   return {
      kind = tty and 'plain (install lua-readline for line editing)' or 'plain',
      read = function(prompt)
         if tty then io.write(prompt) io.flush() end
         return io.read('*l')
      end,
      add = function() end,
      close = function() end,
   }
end

-- ---- the loop ------------------------------------------------------------------------------

-- Runs a compiled chunk and prints its values (kept in `_`) or its error.
function M.show(fn, env, out)
   local ok, res = M.eval(fn)
   if not ok then
      out:write('error: ', require('kbl.message').clean(res[2]), '\n')
      return false
   end
   if res.n > 1 then
      local parts = {}
      for i = 2, res.n do parts[#parts + 1] = M.format(res[i]) end
      out:write(table.concat(parts, '\t'), '\n')
      rawset(env, '_', res[2])
   end
   return true
end

-- repl.run{out = io.stdout, reader = nil}: reads until end of input.
function M.run(opts)
   opts = opts or {}
   local out = opts.out or io.stdout
   local env, missing = M.new_env()
   local reader = opts.reader or M.reader(env)
   if not opts.quiet then
      local kbl = rawget(env, 'kbl')
      out:write(string.format('kbl %s on %s (%s input). Preloaded: kbl, blocks, optim, data, losses, metrics, '
         .. 'callbacks%s. Ctrl-D quits.\n', kbl and kbl.version() or '?', jit.version, reader.kind,
         #missing > 0 and (' (missing: ' .. table.concat(missing, ', ') .. ')') or ''))
   end
   local buffer = nil
   while true do
      local line = reader.read(buffer and '>> ' or '> ')
      if line == nil then break end
      local src = buffer and (buffer .. '\n' .. line) or line
      local help = not buffer and M.help_line(src)
      if help then
         reader.add(src)
         out:write(help, '\n')
      elseif src:match('%S') then
         local fn, err, incomplete = M.compile(src, env)
         if not fn and incomplete then
            buffer = src
         else
            reader.add((src:gsub('\n', ' ')))
            buffer = nil
            if fn then M.show(fn, env, out) else out:write('error: ', err, '\n') end
         end
      end
      out:flush()
   end
   if buffer then out:write('error: incomplete input at the end: ', buffer, '\n') end
   reader.close()
   out:write('\n')
end

return M
