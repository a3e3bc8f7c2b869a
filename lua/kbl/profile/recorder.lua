--- kbl.profile.recorder: the Lua side's event list while a profile records.
-- Events are kept in flat arrays (name, category, start, end, flops, args), so
-- that recording one costs a clock read and a few stores. `on` says whether
-- the wrappers record: they test it first and otherwise call straight through.
local now = require('kbl.clock').now

local R = {on = false, n = 0}

-- Forgets every event.
function R.reset()
   R.n = 0
   R.name, R.cat, R.t0, R.t1, R.flops, R.args = {}, {}, {}, {}, {}, {}
end
R.reset()

-- Opens an event now and returns its index; close(i) ends it. An event left
-- open (its op raised an error) is dropped when the profile is read.
function R.open(name, cat, args)
   local i = R.n + 1
   R.n = i
   R.name[i], R.cat[i], R.args[i], R.t1[i] = name, cat, args, false
   R.t0[i] = now()
   return i
end

function R.close(i) R.t1[i] = now() end

-- An event whose times are known already (the trainer's phases).
function R.add(name, cat, t0, t1, args)
   local i = R.n + 1
   R.n = i
   R.name[i], R.cat[i], R.t0[i], R.t1[i], R.args[i] = name, cat, t0, t1, args
   return i
end

-- The events as a list of tables {name, cat, t0, t1, flops, args}.
function R.events()
   local out = {}
   for i = 1, R.n do
      if R.t1[i] then
         out[#out + 1] = {name = R.name[i], cat = R.cat[i], t0 = R.t0[i], t1 = R.t1[i], flops = R.flops[i],
            args = R.args[i]}
      end
   end
   return out
end

return R
