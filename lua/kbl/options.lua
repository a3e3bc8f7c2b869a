--- kbl.options: checks an options table against the names a constructor
-- takes, so that a typo (`validaton = 5`) is an error naming the closest
-- option instead of being ignored. Data sources and schedules use it (blocks,
-- optimizers, losses, metrics and callbacks check their own).
--
--   require('kbl.options')('data.fashion_mnist', o, {'dir', 'validation'})
local schema = require 'kbl.config.schema'

return function(what, o, names)
   if type(o) ~= 'table' then return end
   local known = {}
   for _, n in ipairs(names) do known[n] = true end
   local keys = {}
   for k in pairs(o) do keys[#keys + 1] = k end
   table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
   for _, k in ipairs(keys) do
      if not known[k] then
         local sorted = {}
         for i, n in ipairs(names) do sorted[i] = n end
         table.sort(sorted)
         error(string.format("%s: unknown option '%s' (did you mean '%s'?) (options: %s)", what, tostring(k),
            schema.closest(tostring(k), sorted), table.concat(sorted, ', ')), 3)
      end
   end
end
