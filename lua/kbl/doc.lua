--- kbl.doc: the documentation of kbl's public API at run time: `kbl doc NAME`,
-- `?name` and help(value) in the REPL, function signatures, and the coverage
-- spec. It reads the LDoc comments (`--- summary`, `-- @param`, `-- @usage`,
-- `-- @option` for a block's options) straight from the Lua sources, the same
-- comments scripts/doc.sh turns into the HTML reference with LDoc, and the
-- config keys from kbl.config.schema (their types from its checks, their words
-- from the comments beside the keys), so help cannot disagree with the code or
-- with `kbl check`. Why parse the sources instead of keeping a generated
-- index: the sources are installed with the modules (no build step, no stale
-- index), a file is parsed only when something in it is asked for (a few
-- hundred microseconds, then cached), and LDoc itself is not needed at run time.
-- The parser is kbl.doc.source, the config keys kbl.doc.config, the coverage
-- check's enumeration of the public API kbl.doc.coverage.
local M = {}

local source = require 'kbl.doc.source'
local names_of, params_on = source.names_of, source.params_on
M.file, M.parse_block = source.file, source.parse_block

-- ---- finding a value's entry ---------------------------------------------------

-- Short names for modules, as configs and the REPL see them.
M.ROOTS = {kbl = 'kbl', blocks = 'kbl.blocks', data = 'kbl.data', optim = 'kbl.optim', losses = 'kbl.losses',
   metrics = 'kbl.metrics', callbacks = 'kbl.callbacks', fit = 'kbl.fit', schedules = 'kbl.optim.schedules',
   Tensor = 'kbl.tensor'}

local function source_file(fn)
   local info = debug.getinfo(fn, 'S')
   if info.what ~= 'Lua' or info.source:sub(1, 1) ~= '@' then return nil end
   return info.source:sub(2), info.linedefined
end

local module_path = source.module_path

-- The module name a table was loaded as (package.loaded), or nil.
local function module_name_of(t)
   for name, v in pairs(package.loaded) do
      if v == t and type(name) == 'string' then return name end
   end
   return nil
end
M.module_name_of = module_name_of

local function is_block_type(v)
   return type(v) == 'table' and rawget(v, 'type_name') ~= nil and rawget(v, 'options') ~= nil
end

-- The doc block of a function: above its definition, else a block naming it
-- (`@function name`, or a line `M.name = ...`/`define('name', ...)`) in its file
-- or in the parent module's file.
local function block_of_function(fn, key, parent_files)
   local path, line = source_file(fn)
   if path then
      local d = M.file(path)
      if d and d.by_line[line] then return d.by_line[line], d, line end
      if d and key and d.by_name[key] then return d.by_name[key], d, line end
   end
   for _, p in ipairs(parent_files or {}) do
      local d = M.file(p)
      if d and key and d.by_name[key] then return d.by_name[key], d end
   end
   return nil, path and M.file(path), line
end

-- The files to search for a name inside a table: its module's file, the
-- files of the modules it collects (kbl gathers kbl.ops.*).
local function files_of_table(t)
   local out = {}
   local name = module_name_of(t)
   if name then
      out[#out + 1] = module_path(name)
      -- then its submodules (kbl.callbacks.monitor defines what kbl.callbacks gathers)
      local subs = {}
      for n in pairs(package.loaded) do
         if type(n) == 'string' and n:sub(1, #name + 1) == name .. '.' then subs[#subs + 1] = n end
      end
      table.sort(subs)
      for _, n in ipairs(subs) do out[#out + 1] = module_path(n) end
   end
   if name == 'kbl' then
      for _, m in ipairs{'kbl.ops.creation', 'kbl.ops.views', 'kbl.ops.elementwise', 'kbl.ops.reduce', 'kbl.ops.nn',
         'kbl.ops.index', 'kbl.autograd', 'kbl.ops.conv', 'kbl.tensor'} do
         out[#out + 1] = module_path(m)
      end
   end
   return out
end

-- Walks a dotted name from a root: returns value, parent, last key, the path of names.
local function walk(name)
   local parts = {}
   for p in name:gmatch('[^%.:]+') do parts[#parts + 1] = p end
   if #parts == 0 then return nil end
   local modname = M.ROOTS[parts[1]] or parts[1]
   -- the longest prefix that is a module: kbl.data.csv -> require 'kbl.data'
   local v, start
   for n = #parts, 1, -1 do
      local mn = (n == 1) and modname or (modname .. '.' .. table.concat(parts, '.', 2, n))
      if module_path(mn) then
         local ok, m = pcall(require, mn)
         if ok then v, start = m, n + 1 break end
      end
   end
   if v == nil then return nil end
   if modname == 'kbl.tensor' and start <= #parts then v = v.methods end
   local parent, key = nil, nil
   if start > #parts and #parts > 1 then
      -- the name is a module of its own (optim.Adam is kbl.optim.Adam): its parent module holds it
      local pm = (#parts == 2) and modname or (modname .. '.' .. table.concat(parts, '.', 2, #parts - 1))
      local ok, m = pcall(require, pm)
      if ok and type(m) == 'table' then parent, key = m, parts[#parts] end
   end
   for i = start, #parts do
      -- a constructor function's methods live in a table beside it (fit.Trainer -> fit.Trainer_class)
      if type(v) == 'function' and type(parent) == 'table' and type(rawget(parent, key .. '_class')) == 'table' then
         v = parent[key .. '_class']
      end
      if type(v) ~= 'table' then return nil end
      parent, key = v, parts[i]
      local ok, nxt = pcall(function() return v[parts[i]] end)
      if not ok or nxt == nil then return nil end
      v = nxt
   end
   return v, parent, key, parts
end

local function option_default(v)
   if type(v) == 'table' and getmetatable(v) and getmetatable(v).__tostring then return tostring(v) end
   if type(v) == 'string' then return string.format('%q', v) end
   if type(v) == 'table' then return require('kbl.repl').format(v) end
   return tostring(v)
end

-- The entry of a block type: the doc block above Block.extend, its options
-- with their defaults (from the type) and words (from @option).
local function block_entry(cls, name)
   local path = module_path('kbl.blocks.' .. cls.type_name)
   local d = path and M.file(path)
   local b = d and d.by_name[cls.type_name]
   if d and not b then
      for _, blk in ipairs(d.blocks) do
         if blk.code and blk.code:find("'" .. cls.type_name .. "'", 1, true) then b = blk break end
      end
   end
   b = b or (d and d.module)
   local e = {name = name or ('blocks.' .. cls.type_name), kind = 'block', block = b,
      source = b and (path .. ':' .. (b.line or b.first)) or path, head = d and d.head, options = {}}
   local docs = b and b.options or {}
   local common = require('kbl.blocks.Block').COMMON_OPTIONS or {name = true}
   for _, k in ipairs(cls.option_names or {}) do
      local o = docs[k]
      if not o and common[k] then
         o = {text = 'the block\'s name in parameter paths (all blocks take it)', common = true}
      end
      e.options[#e.options + 1] = {name = k, default = option_default(cls.options[k]), text = o and o.text,
         common = o and o.common}
   end
   return e
end

-- The entry of a callback type (base.define): its options are its defaults' keys.
local function class_entry(cls, key, name, parent_files)
   for _, p in ipairs(parent_files) do
      local d = M.file(p)
      if d and d.by_name[key] then
         local b = d.by_name[key]
         local e = {name = name, kind = 'class', block = b, source = p .. ':' .. (b.line or b.first), options = {}}
         local defaults = rawget(cls, 'defaults')
         if type(defaults) == 'table' then
            for _, k in ipairs(require('kbl.util').sorted_keys(defaults, {strings = true})) do
               local o = b.options[k]
               e.options[#e.options + 1] = {name = k, default = option_default(defaults[k]), text = o and o.text}
            end
            -- options without a default (optional ones), documented with @option
            for _, o in ipairs(b.options) do
               if o.name and defaults[o.name] == nil then
                  e.options[#e.options + 1] = {name = o.name, default = 'nil', text = o.text}
               end
            end
         end
         return e
      end
   end
   -- a class in a file of its own (optim.Adam): the file's doc
   local mn = module_name_of(cls)
   local path = mn and module_path(mn)
   local d = path and M.file(path)
   local b = d and (d.by_name[key] or d.module)
   local e = {name = name, kind = 'class', block = b, head = d and d.head, source = path, options = {}}
   local defaults = rawget(cls, 'defaults')
   if type(defaults) == 'table' and rawget(cls, 'name') then   -- a callback type without a doc comment
      for _, k in ipairs(require('kbl.util').sorted_keys(defaults, {strings = true})) do
         e.options[#e.options + 1] = {name = k, default = option_default(defaults[k])}
      end
   end
   return e
end

-- The elementwise ops made from core/ops_unary.def (kbl.relu, kbl.exp, ...) are
-- documented where they are described, that table: the entry names the op, its
-- parameters' defaults (kbl_unary_info) and, in a checkout, the formula and the
-- comment of its line in the .def file.
local function def_lines()
   local path = module_path('kbl.lib')
   path = path and path:gsub('lua/kbl/lib%.lua$', 'core/ops_unary.def')
   local d = path and M.file(path)
   return d and d.lines or {}, path
end

local function unary_entry(name, u)
   local lines, path = def_lines()
   local text, at = nil, nil
   for i, l in ipairs(lines) do
      local fwd = l:match('^KBL_UNARY%([%w_]+, ' .. name .. ', [^,]+, [%w_]+, [%w_]+, [%w_]+, [^,]+, [^,]+, (.*)$')
      if fwd then
         at = i
         -- the forward expression runs to the comma before the derivative
         local depth, cut = 0, nil
         for k = 1, #fwd do
            local ch = fwd:sub(k, k)
            if ch == '(' then depth = depth + 1 elseif ch == ')' then depth = depth - 1
            elseif ch == ',' and depth == 0 then cut = k break end
         end
         text = 'y = ' .. (cut and fwd:sub(1, cut - 1) or fwd)
         local note = lines[i - 1] and lines[i - 1]:match('^/%*%s*(.-)%s*%*/$')
         if note then text = text .. ' (' .. note .. ')' end
         break
      end
   end
   local params, sig = {}, {'t'}
   if u.p0 ~= 0 or (text and text:match('p0')) then
      params[#params + 1] = {name = 'p0', opt = true, default = tostring(u.p0), text = ''}
      sig[#sig + 1] = '[p0=' .. tostring(u.p0) .. ']'
   end
   if u.p1 ~= 0 or (text and text:match('p1')) then
      params[#params + 1] = {name = 'p1', opt = true, default = tostring(u.p1), text = ''}
      sig[#sig + 1] = '[p1=' .. tostring(u.p1) .. ']'
   end
   local body = 'Elementwise ' .. name .. ' of a tensor, as a function and a method (t:' .. name .. '()); '
      .. 'differentiable' .. (u.grad and '' or ' (no gradient)') .. '.'
      .. (u.kind == 'activation' and (" Also an activation: blocks.Dense{n, activation = '" .. name .. "'}.") or '')
      .. (text and ('\n' .. text) or '')
   return {summary = body, text = body, params = params, returns = {{type = 'tensor', text = 'a new tensor'}},
      options = {}, see = {}, usage = {'local y = kbl.' .. name .. '(kbl.randn{2, 3})'}, file = path or '',
      line = at, def = true}, 'kbl.' .. name .. '(' .. table.concat(sig, ', ') .. ')'
end

local function unary_op(fn, key)
   local ew = package.loaded['kbl.ops.elementwise']
   if not ew or not key or rawget(ew, key) ~= fn then return nil end
   for _, u in ipairs(ew.unary_ops) do
      if u.name == key and u.kind ~= 'internal' then return u end
   end
   return nil
end

-- lookup(name) -> entry, or nil and why. An entry: {name, kind ('function', 'block',
-- 'class', 'module', 'config', 'value'), block (the parsed doc comment or nil),
-- signature, source ('file:line'), options, head (a module's opening comment)}.
function M.lookup(name)
   if type(name) ~= 'string' or name == '' then return nil, 'give a name such as kbl.conv2d' end
   name = name:gsub('^%?', ''):gsub('%(%)$', '')
   if name == 'config' or name:match('^config%.') then return M.config_entry(name) end
   local v, parent, key = walk(name)
   if v == nil then return nil, "no such name: '" .. name .. "'" .. M.suggest(name) end
   return M.entry(v, name, parent, key)
end

-- entry(value, name, parent, key): the entry of a value found under that name.
function M.entry(v, name, parent, key)
   local parent_files = type(parent) == 'table' and files_of_table(parent) or {}
   if parent == require('kbl.tensor').methods then parent_files = files_of_table(require 'kbl') end
   if is_block_type(v) then return block_entry(v, name) end
   if type(v) == 'function' then
      local u = unary_op(v, key)
      if u then
         local b, sig = unary_entry(key, u)
         local args = sig:match('%(.*$')
         if name:find(':', 1, true) then args = args:gsub('^%(t,?%s*', '(') end
         return {name = name, kind = 'function', block = b, signature = name .. args,
            source = b.line and (b.file .. ':' .. b.line) or nil}
      end
      local b, d, line = block_of_function(v, key, parent_files)
      local e = {name = name, kind = 'function', block = b}
      local path = d and d.path
      if b then e.source = b.file .. ':' .. (b.line or b.first)
      elseif path then
         e.source = path .. ':' .. (line or '?')
         e.plain = line and d.plain[line]
      end
      e.signature = M.signature(v, name, b, d, line)
      -- a method shown as obj:name(...) takes its receiver implicitly: drop it
      -- unless the function was written with ':' (which has no self in its list)
      local code = (b and b.code) or (d and line and d.lines[line]) or ''
      if name:find(':', 1, true) and not code:match('function%s+[%w_%.]+:') then
         e.signature = e.signature:gsub('%(%[?[%w_]*%]?,?%s*', '(', 1)
      end
      return e
   end
   if type(v) == 'table' then
      local mn = module_name_of(v)
      if mn and not (getmetatable(v) and getmetatable(v).__call) then
         local path = module_path(mn)
         local d = path and M.file(path)
         return {name = name, kind = 'module', block = d and d.module, head = d and d.head, source = path,
            module = mn, value = v}
      end
      return class_entry(v, key, name, parent_files)
   end
   -- a plain value in a module (a constant): its comment
   for _, p in ipairs(parent_files) do
      local d = M.file(p)
      if d and key and d.by_name[key] then
         local b = d.by_name[key]
         return {name = name, kind = 'value', block = b, source = p .. ':' .. (b.line or b.first)}
      end
   end
   return {name = name, kind = 'value'}
end

-- The nearest public names, for "no such name" messages.
function M.suggest(name)
   local root, rest = name:match('^([^%.]+)%.?(.*)$')
   local mn = M.ROOTS[root] or root
   local ok, m = pcall(require, mn)
   if not ok or type(m) ~= 'table' or rest == '' then return '' end
   local keys = {}
   for k in pairs(m) do if type(k) == 'string' then keys[#keys + 1] = k end end
   local near = require('kbl.config.schema').closest(rest:match('[^%.]+$'), keys)
   return near and (" (did you mean '" .. root .. '.' .. near .. "'?)") or ''
end

-- ---- signatures --------------------------------------------------------------------

-- The call a function takes: from its @param tags, else its definition line,
-- else its parameter count. 'kbl.conv2d(x, weight[, bias[, opts]])'.
function M.signature(fn, name, b, d, line)
   if not b and not d then
      local path
      path, line = source_file(fn)
      d = path and M.file(path)
      b = d and d.by_line[line]
   end
   name = name or '?'
   local params
   if b and #b.params > 0 then
      local parts = {}
      for _, p in ipairs(b.params) do
         local s = p.name or '?'
         if p.opt then s = '[' .. s .. (p.default and ('=' .. p.default) or '') .. ']' end
         parts[#parts + 1] = s
      end
      params = table.concat(parts, ', ')
   elseif d and line and d.lines[line] then
      params = params_on(d.lines[line])
      -- a method defined with ':' has self
      if params and d.lines[line]:match('function%s+[%w_%.]+:') and name:match('%.[%w_]+$') then
         params = 'self' .. (params ~= '' and ', ' .. params or '')
      end
   end
   if not params then
      -- no source to read (a function typed at the prompt): the parameters' names
      local info = debug.getinfo(fn, 'u')
      local parts = {}
      for i = 1, info.nparams or 0 do parts[i] = debug.getlocal(fn, i) or ('a' .. i) end
      if info.isvararg then parts[#parts + 1] = '...' end
      params = table.concat(parts, ', ')
   end
   return name .. '(' .. params .. ')'
end

-- What the REPL prints for a function instead of `function: 0x...`.
function M.describe_function(fn)
   local path, line = source_file(fn)
   if not path then
      if debug.getinfo(fn, 'S').what == 'C' then return tostring(fn) end
      local where = debug.getinfo(fn, 'S')
      return string.format('function %s  -- %s:%d', M.signature(fn, M.name_of(fn) or ''),
         where.short_src, where.linedefined)
   end
   local d = M.file(path)
   local b = d and d.by_line[line]
   local name = M.name_of(fn) or (b and b.code and names_of(b.code)[1])
   if not name and d and d.lines[line] then
      name = d.lines[line]:match('function%s+([%w_%.:]+)') or d.lines[line]:match('([%w_%.]+)%s*=%s*function')
   end
   local short = path:match('([^/]+/[^/]+)$') or path
   return string.format('function %s  -- %s:%d', M.signature(fn, name or 'function', b, d, line), short, line)
end

-- A function inside a printed table: 'function(x, weight, bias, opts)'.
function M.short_function(fn)
   return M.signature(fn, 'function'):gsub('^function%(', 'function(')
end

-- ---- config keys (kbl.doc.config) -------------------------------------------------

function M.config_keys() return require('kbl.doc.config').config_keys() end
function M.config_entry(name) return require('kbl.doc.config').config_entry(name) end

-- ---- text ---------------------------------------------------------------------------

local function wrap(text, indent)
   return indent .. text:gsub('\n', '\n' .. indent)
end

-- The entry as `kbl doc` prints it.
function M.format(e)
   local out = {}
   local function add(s) out[#out + 1] = s end
   local b = e.block
   if e.kind == 'config' then
      local k = e.key
      if k then
         add(string.format('%s: %s', k.name, k.type_text))
         if k.text then add(wrap(k.text, '   ')) end
      else
         add(e.name)
      end
      if e.text then add(wrap(e.text, '   ')) end
      if e.keys then
         add('')
         for _, kk in ipairs(e.keys) do
            add(string.format('   %-18s %s%s', kk.key, kk.type_text, kk.text and ('. ' .. kk.text) or ''))
         end
      end
      return table.concat(out, '\n')
   end
   add(e.signature or e.name)
   -- a block's file opens with its full description; its doc comment has the summary
   if e.kind == 'block' and e.head and e.head ~= '' then add(wrap(e.head, '   '))
   elseif b and b.text ~= '' then add(wrap(b.text, '   '))
   elseif e.head and e.head ~= '' then add(wrap(e.head, '   '))
   elseif e.plain then add(wrap(e.plain, '   '))
   elseif not b then add('   (no documentation yet)') end
   if b and #b.params > 0 then
      add('Arguments:')
      for _, p in ipairs(b.params) do
         add(string.format('   %s%s%s  %s', p.name or '?', p.type and (' (' .. p.type .. ')') or '',
            p.opt and (p.default and (' [default ' .. p.default .. ']') or ' [optional]') or '', p.text or ''))
      end
   end
   if (not e.options or #e.options == 0) and b and #b.options > 0 then
      add('Options:')
      for _, o in ipairs(b.options) do add(string.format('   %-18s %s', o.name or '?', o.text or '')) end
   end
   if e.options and #e.options > 0 then
      add('Options:')
      for _, o in ipairs(e.options) do
         if not o.common then
            add(string.format('   %-18s = %-14s %s', o.name, o.default or '', o.text or '(undocumented)'))
         end
      end
   end
   if b and #b.returns > 0 then
      add('Returns:')
      for _, r in ipairs(b.returns) do add('   ' .. (r.type and (r.type .. ' ') or '') .. (r.text or '')) end
   end
   if b and b.usage and #b.usage > 0 then
      add('Example:')
      for _, l in ipairs(b.usage) do add('   ' .. l) end
   end
   if e.kind == 'module' and e.value then
      local names = {}
      for k in pairs(e.value) do if type(k) == 'string' and k:sub(1, 1) ~= '_' then names[#names + 1] = k end end
      table.sort(names)
      add('Fields: ' .. table.concat(names, ', '))
   end
   if e.source then add('(' .. e.source:gsub('^.*/lua/', ''):gsub('^.*/core/', 'core/') .. ')') end
   return table.concat(out, '\n')
end

-- help(value or name): the entry's text, for the REPL.
function M.help(v)
   local e, err
   if type(v) == 'string' then
      e, err = M.lookup(v)
   elseif v == nil then
      return 'help(value) or ?name prints the documentation: help(kbl.conv2d), ?blocks.Conv2D, ?config.stages'
   else
      -- an object (a block, an optimizer, a metric): its type's entry
      local tn = type(v) == 'table' and v.type_name
      local blocks = package.loaded['kbl.blocks']
      if tn and blocks and blocks.is_block(v) and blocks[tn] then
         return M.format(M.entry(blocks[tn], 'blocks.' .. tn))
      end
      local name = M.name_of(v)
      -- optimizers, callbacks, losses and metrics print as their type: optim.Adam{...}
      local typed = not name and type(v) == 'table' and tostring(v):match('^([%a_]+%.[%w_]+)')
      if typed and M.lookup(typed) then return M.format(M.lookup(typed)) end
      if not name and type(v) ~= 'function' then
         return string.format('%s: a %s, not one of kbl\'s documented names (try ?kbl, ?blocks, ?config)',
            tostring(v), type(v))
      end
      e = M.entry(v, name or tostring(v), M.parent_of(v), name and name:match('[%.:]([%w_]+)$'))
   end
   if not e then return err end
   return M.format(e)
end

-- The public name of a value (searching the roots one level deep): 'kbl.conv2d'.
local name_cache = setmetatable({}, {__mode = 'k'})
local parent_cache = setmetatable({}, {__mode = 'k'})
function M.name_of(v)
   if name_cache[v] then return name_cache[v] end
   local order = {'kbl', 'blocks', 'data', 'optim', 'losses', 'metrics', 'callbacks', 'fit', 'schedules'}
   for _, root in ipairs(order) do
      local m = package.loaded[M.ROOTS[root]]
      if type(m) == 'table' then
         if m == v then name_cache[v] = root return root end
         for k, x in pairs(m) do
            if x == v and type(k) == 'string' then
               name_cache[v], parent_cache[v] = root .. '.' .. k, m
               return name_cache[v]
            end
         end
      end
   end
   local T = package.loaded['kbl.tensor']
   if T then
      for k, x in pairs(T.methods) do
         if x == v then name_cache[v], parent_cache[v] = 'Tensor:' .. k, T.methods return name_cache[v] end
      end
   end
   return nil
end
function M.parent_of(v) M.name_of(v) return parent_cache[v] end

-- ---- coverage (kbl.doc.coverage) -------------------------------------------------

function M.public() return require('kbl.doc.coverage').public() end
function M.undocumented() return require('kbl.doc.coverage').undocumented() end

return M
