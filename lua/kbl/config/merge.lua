--- kbl.config.merge: deep merge of configs, and reading and writing a value by
-- key path ('model.head.units', 'stages.2.lr'). A path goes through a spec into
-- its argument table, so `--set model.units=20` reaches blocks.MLP{units = ...}.
--
-- Merge rules: maps merge key by key, recursively; a list (a table with [1],
-- or an empty table) replaces what was there; a spec of the same type merges
-- its arguments, a spec of another type replaces; anything else replaces.
local S = require 'kbl.config.spec'

local M = {}

local function is_plain(v)
   return type(v) == 'table' and not S.is_spec(v) and not S.is_ref(v) and not S.is_namespace(v)
end
M.is_plain = is_plain

function M.is_list(v) return is_plain(v) and (v[1] ~= nil or next(v) == nil) end

function M.copy(v)
   if S.is_spec(v) then
      local args = {}
      for i = 1, v.n do args[i] = M.copy(v.args[i]) end
      return S.new(v.type, args, v.n, v.where)
   elseif is_plain(v) then
      local c = {}
      for k, x in pairs(v) do c[k] = M.copy(x) end
      return c
   end
   return v
end

local function merge_maps(a, b)
   local out = M.copy(a)
   for k, v in pairs(b) do out[k] = M.merge(out[k], v) end
   return out
end

-- A block's positional arguments stand for options (blocks.Dense{10} is
-- units = 10). When a later file or a --set names such an option (named[key]
-- given), the positional arguments of args become named ones, so the later
-- value replaces the earlier instead of clashing with it. Changes args.
local function name_positionals(type_name, args, named)
   if args[1] == nil then return end
   local ok, ctor = pcall(S.resolve_type, type_name)
   local pos = ok and type(ctor) == 'table' and ctor.positional
   if type(pos) ~= 'table' or #args > #pos then return end
   local clash = false
   for i, key in ipairs(pos) do
      if args[i] ~= nil and named[key] ~= nil and named[i] == nil then clash = true end
   end
   if not clash then return end
   for i, key in ipairs(pos) do
      if args[i] ~= nil then
         if args[key] == nil then args[key] = args[i] end
         args[i] = nil
      end
   end
end

-- The merge of b over a (new tables; a and b are not changed).
function M.merge(a, b)
   if b == nil then return M.copy(a) end
   if S.is_spec(b) then
      if S.is_spec(a) and a.type == b.type and a:table_arg() and b:table_arg() then
         local base = M.copy(a:table_arg())
         name_positionals(a.type, base, b:table_arg())
         local merged = M.merge(base, b:table_arg())
         -- positional items of b replace a's (a Sequential's list of blocks)
         if b:table_arg()[1] ~= nil then
            for k in pairs(merged) do
               if type(k) == 'number' and b:table_arg()[k] == nil then merged[k] = nil end
            end
         end
         return S.new(b.type, {merged}, 1, b.where)
      end
      return M.copy(b)
   end
   if is_plain(b) and not M.is_list(b) then
      if is_plain(a) and not M.is_list(a) then return merge_maps(a, b) end
      if S.is_spec(a) and a:table_arg() then
         local base = M.copy(a:table_arg())
         name_positionals(a.type, base, b)
         return S.new(a.type, {merge_maps(base, b)}, 1, a.where)
      end
   end
   return M.copy(b)
end

-- Finds what would make a deep merge recurse forever or overflow the stack: a
-- table that contains itself, or tables nested more than max_depth deep.
-- Returns nil; or 'cycle', the key path of the field that refers back and the
-- path of the table it refers to; or 'deep' and the path where max_depth is
-- passed. Paths go through a spec into its arguments, as config paths do.
function M.check_nesting(v, max_depth)
   local path, on_path = {}, {}
   local function fields(node)
      if S.is_spec(node) then return node:table_arg() or node.args end
      if is_plain(node) then return node end
      return nil
   end
   local function walk(node, depth)
      local f = fields(node)
      if not f then return nil end
      if on_path[f] then return 'cycle', table.concat(path, '.'), on_path[f] end
      if depth > max_depth then return 'deep', table.concat(path, '.') end
      on_path[f] = table.concat(path, '.')
      for k, x in pairs(f) do
         path[#path + 1] = tostring(k)
         local kind, at, back = walk(x, depth + 1)
         path[#path] = nil
         if kind then return kind, at, back end
      end
      on_path[f] = nil
      return nil
   end
   return walk(v, 0)
end

-- 'a.b.2' -> {'a', 'b', 2}
-- 'a.b.1' -> {'a', 'b', 1}; a key with dots goes in brackets, quoted or not:
-- "defaults[blocks.Dense].use_bias" -> {'defaults', 'blocks.Dense', 'use_bias'}.
-- Returns nil and a message for an unclosed bracket.
function M.split(path)
   local parts, i = {}, 1
   while i <= #path do
      local c = path:sub(i, i)
      if c == '.' then
         i = i + 1
      elseif c == '[' then
         local close = path:find(']', i + 1, true)
         if not close then return nil, string.format("'[' at character %d has no ']'", i) end
         local inner = path:sub(i + 1, close - 1)
         local quoted = inner:match('^"(.*)"$') or inner:match("^'(.*)'$")
         parts[#parts + 1] = quoted or tonumber(inner) or inner
         i = close + 1
      else
         local j = path:find('[%.%[]', i) or (#path + 1)
         local p = path:sub(i, j - 1)
         parts[#parts + 1] = tonumber(p) or p
         i = j
      end
   end
   return parts
end

-- The table whose fields a path step reads: a spec's argument table.
local function fields_of(node)
   if S.is_spec(node) then return node:table_arg() end
   if is_plain(node) then return node end
   return nil
end
M.fields_of = fields_of

function M.get(root, path)
   local node = root
   for _, k in ipairs(type(path) == 'table' and path or M.split(path)) do
      local f = fields_of(node)
      if not f then return nil end
      node = f[k]
   end
   return node
end

-- Sets root[path] = value in place, making maps on the way. Returns nil, or
-- the prefix that cannot hold fields and what is there.
function M.set(root, path, value)
   local parts = type(path) == 'table' and path or M.split(path)
   local node = root
   for i = 1, #parts - 1 do
      local f = fields_of(node)
      local k = parts[i]
      if f[k] == nil then f[k] = {} end
      local nxt = f[k]
      if not fields_of(nxt) then
         local prefix = {}
         for j = 1, i do prefix[j] = tostring(parts[j]) end
         return table.concat(prefix, '.'), nxt
      end
      node = nxt
   end
   local last = parts[#parts]
   if S.is_spec(node) then name_positionals(node.type, fields_of(node), {[last] = value}) end
   fields_of(node)[last] = value
   return nil
end

return M
