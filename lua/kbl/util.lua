--- kbl.util: small helpers the Lua side shares: sorted keys, the edit distance
-- behind "did you mean", counted words.
local M = {}

-- The default key order: numbers (ascending), then strings, then the rest by
-- tostring, so that a table of mixed keys sorts without an error.
local function key_less(a, b)
   local ta, tb = type(a), type(b)
   if ta ~= tb then
      if ta == 'number' or tb == 'number' then return ta == 'number' end
      if ta == 'string' or tb == 'string' then return ta == 'string' end
      return ta < tb
   end
   if ta == 'number' or ta == 'string' then return a < b end
   return tostring(a) < tostring(b)
end
M.key_less = key_less

-- The keys of t, sorted. opts.strings: string keys only; opts.less: the order.
function M.sorted_keys(t, opts)
   local strings = opts and opts.strings
   local keys = {}
   for k in pairs(t) do
      if not strings or type(k) == 'string' then keys[#keys + 1] = k end
   end
   table.sort(keys, opts and opts.less or key_less)
   return keys
end

-- The edit distance between two strings: insertions, deletions, substitutions
-- and swaps of two neighbouring characters count one each (optimal string
-- alignment), so 'epcohs' is 1 from 'epochs'.
function M.distance(a, b)
   local prev, before = {}, {}
   for j = 0, #b do prev[j] = j end
   for i = 1, #a do
      local cur = {[0] = i}
      local ca = a:byte(i)
      for j = 1, #b do
         local cost = ca == b:byte(j) and 0 or 1
         cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
         if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
            cur[j] = math.min(cur[j], before[j - 2] + 1)
         end
      end
      before, prev = prev, cur
   end
   return prev[#b]
end

-- "1 epoch", "2 epochs": n and the word, plural unless n is 1.
function M.plural(n, word, words)
   return string.format('%s %s', tostring(n), n == 1 and word or (words or word .. 's'))
end

return M
