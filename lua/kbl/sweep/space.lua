--- kbl.sweep.space: what a sweep varies and the points it runs. A grid entry
-- is `key=v1,v2,...` (Lua values as --set takes them, split at the commas
-- outside braces, brackets, parentheses and quotes): the grid runs the cross
-- product, the first key varying slowest. With random search (n points from
-- a seed) each key is sampled: a list uniformly, `log(a,b)` log-uniformly,
-- `uniform(a,b)`, `int(a,b)` (both ends included) and `choice(v1,v2,...)`.
-- Sampled numbers are kept to 4 significant digits, so the value a run gets
-- is the one its name and sweep.csv show. The generator is SplitMix64 on
-- LuaJIT's 64-bit integers: the same seed gives the same points everywhere.
--
--   local space = require 'kbl.sweep.space'
--   local e = space.parse('optimizer.lr=1e-3,3e-4', '--grid')   -- {key =, values = {...}, text =}
--   local points = space.grid({e, ...})          -- or space.random({e, ...}, n, seed)
--   -- points[i] = {index = i, values = {{key, text}, ...}, sets = {'optimizer.lr=1e-3', ...}}
local M = {}

-- Splits s at the commas that are not inside (), {}, [] or a string.
function M.split_top(s)
   local parts, depth, start, quote, i = {}, 0, 1, nil, 1
   while i <= #s do
      local c = s:sub(i, i)
      if quote then
         if c == '\\' then i = i + 1 elseif c == quote then quote = nil end
      elseif c == '"' or c == "'" then quote = c
      elseif c == '(' or c == '{' or c == '[' then depth = depth + 1
      elseif c == ')' or c == '}' or c == ']' then depth = depth - 1
      elseif c == ',' and depth == 0 then
         parts[#parts + 1] = s:sub(start, i - 1)
         start = i + 1
      end
      i = i + 1
   end
   parts[#parts + 1] = s:sub(start)
   for k, p in ipairs(parts) do parts[k] = p:match('^%s*(.-)%s*$') end
   return parts
end

local DISTS = {log = 2, uniform = 2, int = 2, choice = true}

-- Parses 'key=values' (what: where it came from, for messages: '--grid').
-- Returns {key =, text =, values = {texts}} or {key =, text =, dist =, args =}.
function M.parse(text, what)
   local key, rest = text:match('^%s*([%w_%.]+)%s*=(.*)$')
   if not key then
      error(string.format("%s %s: expected key=values (optimizer.lr=1e-3,3e-4 or optimizer.lr='log(1e-4,1e-2)')",
         what, text), 0)
   end
   local e = {key = key, text = text}
   local name, inner = rest:match('^%s*([%a_]+)%s*(%b())%s*$')
   if name and DISTS[name] then
      local args = M.split_top(inner:sub(2, -2))
      if name == 'choice' then
         e.dist, e.values = name, args
      else
         local a, b = tonumber(args[1]), tonumber(args[2])
         if #args ~= 2 or not a or not b or a > b or (name == 'log' and a <= 0)
            or (name == 'int' and (a % 1 ~= 0 or b % 1 ~= 0)) then
            error(string.format('%s %s: %s(a,b) takes two numbers a <= b%s', what, text, name,
               name == 'log' and ', both > 0' or name == 'int' and ', both integers' or ''), 0)
         end
         e.dist, e.args = name, {a, b}
      end
   else
      e.values = M.split_top(rest)
   end
   if e.values then
      for _, v in ipairs(e.values) do
         if v == '' then error(string.format('%s %s: an empty value (two commas in a row?)', what, text), 0) end
      end
   end
   return e
end

-- A grid entry from a `sweep.grid` table of a config: key -> list of Lua values.
function M.from_values(key, list, what, to_text)
   if type(list) ~= 'table' or list[1] == nil then
      error(string.format("%s: sweep.grid['%s'] must be a list of values", what, key), 0)
   end
   local texts = {}
   for i, v in ipairs(list) do texts[i] = to_text(v) end
   return {key = key, values = texts, text = key .. '=' .. table.concat(texts, ',')}
end

-- ---- points -------------------------------------------------------------------

local function point(index, values)
   local sets = {}
   for i, kv in ipairs(values) do sets[i] = kv[1] .. '=' .. kv[2] end
   return {index = index, values = values, sets = sets}
end

-- The cross product of the entries' values, the first entry varying slowest.
function M.grid(entries)
   for _, e in ipairs(entries) do
      if e.dist and e.dist ~= 'choice' then
         error(string.format('--grid %s: a range is sampled, not gridded: give --random N', e.text), 0)
      end
   end
   local points = {}
   local function walk(i, acc)
      if i > #entries then
         local copy = {}
         for k, v in ipairs(acc) do copy[k] = v end
         points[#points + 1] = point(#points + 1, copy)
         return
      end
      for _, v in ipairs(entries[i].values) do
         acc[i] = {entries[i].key, v}
         walk(i + 1, acc)
      end
      acc[i] = nil
   end
   if #entries > 0 then walk(1, {}) end
   return points
end

-- SplitMix64: a generator of doubles in [0, 1) from a seed.
function M.generator(seed)
   local bit = require 'bit'
   local x = 0ULL + seed
   return function()
      x = x + 0x9E3779B97F4A7C15ULL
      local z = x
      z = bit.bxor(z, bit.rshift(z, 30)) * 0xBF58476D1CE4E5B9ULL
      z = bit.bxor(z, bit.rshift(z, 27)) * 0x94D049BB133111EBULL
      z = bit.bxor(z, bit.rshift(z, 31))
      return tonumber(bit.rshift(z, 11)) / 2 ^ 53
   end
end

local function short_number(v)
   local s = string.format('%.4g', v)
   return (s:gsub('e%+?(%-?)0*(%d)', 'e%1%2'))
end

-- n points sampled from the entries with the seed.
function M.random(entries, n, seed)
   local u = M.generator(seed)
   local points = {}
   for i = 1, n do
      local values = {}
      for k, e in ipairs(entries) do
         local v
         if e.values then
            v = e.values[math.min(#e.values, 1 + math.floor(u() * #e.values))]
         elseif e.dist == 'log' then
            v = short_number(math.exp(math.log(e.args[1]) + u() * (math.log(e.args[2]) - math.log(e.args[1]))))
         elseif e.dist == 'uniform' then
            v = short_number(e.args[1] + u() * (e.args[2] - e.args[1]))
         else -- int
            v = string.format('%d', math.min(e.args[2], e.args[1] + math.floor(u() * (e.args[2] - e.args[1] + 1))))
         end
         values[k] = {e.key, v}
      end
      points[i] = point(i, values)
   end
   return points
end

-- ---- names --------------------------------------------------------------------

-- The shortest trailing part of each key that tells the keys apart:
-- optimizer.lr -> lr, model.1.units and model.3.units stay apart.
function M.short_keys(keys)
   local out = {}
   for i, k in ipairs(keys) do
      local parts = {}
      for p in k:gmatch('[^%.]+') do parts[#parts + 1] = p end
      for n = 1, #parts do
         local s = table.concat(parts, '.', #parts - n + 1)
         local clash = false
         for j, other in ipairs(keys) do
            if j ~= i and (other == s or other:sub(-#s - 1) == '.' .. s) then clash = true end
         end
         if not clash or n == #parts then out[i] = s; break end
      end
   end
   return out
end

-- A value's text made fit for a directory name: {512,256} -> 512-256.
local function compact(text)
   local s = text:gsub('%s', ''):gsub('["\']', ''):gsub('[{}%(%)%[%]]', ''):gsub(',', '-')
   s = s:gsub('[^%w%._%-=+]', '_')
   if #s > 24 then s = s:sub(1, 24) end
   return s
end

-- '<i>-<short description>' for each point, i padded to the same width.
function M.dir_names(points)
   local width = #tostring(#points)
   local keys = {}
   for k, kv in ipairs(points[1] and points[1].values or {}) do keys[k] = kv[1] end
   local short = M.short_keys(keys)
   local names = {}
   for i, p in ipairs(points) do
      local parts = {}
      for k, kv in ipairs(p.values) do parts[k] = short[k] .. '=' .. compact(kv[2]) end
      local desc = table.concat(parts, '_')
      if #desc > 80 then desc = desc:sub(1, 80) end
      names[i] = string.format('%0' .. width .. 'd', p.index) .. (desc ~= '' and ('-' .. desc) or '')
   end
   return names
end

return M
