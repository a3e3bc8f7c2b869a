--- kbl.profile.report: recorded events made into a profile: the events inside
-- the profiled spans (steps), each with its parent and its self time (its
-- time less that of the events nested in it), the ops grouped by name with
-- calls, time, share of the step time and GFLOP/s, and the step time split
-- into data, ops and the rest (Lua and everything else), with a verdict on
-- which of the three bound the steps.
local M = {}

-- Categories whose self time is time inside ops (compute): forward ops,
-- backward nodes, optimizer updates.
M.COMPUTE = {op = true, backward = true, update = true}

local function by_start(a, b)
   if a.t0 ~= b.t0 then return a.t0 < b.t0 end
   if a.t1 ~= b.t1 then return a.t1 > b.t1 end
   return (a.rank or 0) < (b.rank or 0)
end

-- Links each event to the innermost event of its thread that contains it and
-- sums children's time into parents; events must be sorted by by_start.
local function nest(list)
   local stack = {}
   for _, ev in ipairs(list) do
      while #stack > 0 do
         local top = stack[#stack]
         if ev.t0 >= top.t0 and ev.t1 <= top.t1 then break end
         stack[#stack] = nil
      end
      local parent = stack[#stack]
      ev.parent, ev.child_time = parent, 0
      if parent then parent.child_time = parent.child_time + (ev.t1 - ev.t0) end
      ev.in_data = ev.cat == 'data' or (ev.cat == 'phase' and ev.name == 'data') or (parent and parent.in_data)
      stack[#stack + 1] = ev
   end
   for _, ev in ipairs(list) do ev.self = math.max(0, (ev.t1 - ev.t0) - ev.child_time) end
end

-- events: {name, cat, t0, t1, tid, flops, args}; spans: the profiled spans
-- {name, t0, t1, args} on the main thread (steps, or kbl.profile's one).
-- Keeps main-thread events inside a span and other threads' events that
-- overlap one. opts: main_tid, title, top (rows shown, default 15),
-- event_cost (seconds one recorded event costs), dropped (events C dropped).
function M.build(events, spans, opts)
   opts = opts or {}
   local main = opts.main_tid
   table.sort(spans, function(a, b) return a.t0 < b.t0 end)
   -- the last span starting at or before t (spans follow one another)
   local function span_before(t)
      local lo, hi = 1, #spans
      local found
      while lo <= hi do
         local mid = math.floor((lo + hi) / 2)
         if spans[mid].t0 <= t then found, lo = spans[mid], mid + 1 else hi = mid - 1 end
      end
      return found
   end
   local function inside(ev)
      if ev.tid == main then
         local s = span_before(ev.t0)
         return s ~= nil and ev.t1 <= s.t1
      end
      local s = span_before(ev.t1)   -- another thread's event: it overlaps a span
      return s ~= nil and s.t1 > ev.t0 and s.t0 < ev.t1
   end
   local kept, threads = {}, {}
   for _, s in ipairs(spans) do
      kept[#kept + 1] = {name = s.name, cat = 'step', t0 = s.t0, t1 = s.t1, tid = main, args = s.args, rank = -1}
   end
   for _, ev in ipairs(events) do
      if ev.t1 >= ev.t0 and inside(ev) then kept[#kept + 1] = ev end
   end
   table.sort(kept, function(a, b)
      if a.tid ~= b.tid then return a.tid == main or (b.tid ~= main and a.tid < b.tid) end
      return by_start(a, b)
   end)
   local per_tid = {}
   for _, ev in ipairs(kept) do
      if not per_tid[ev.tid] then
         per_tid[ev.tid] = {}
         threads[#threads + 1] = ev.tid
      end
      local l = per_tid[ev.tid]
      l[#l + 1] = ev
   end
   for _, tid in ipairs(threads) do nest(per_tid[tid]) end

   local total, data, compute = 0, 0, 0
   for _, s in ipairs(spans) do total = total + (s.t1 - s.t0) end
   local rows, by_name = {}, {}
   local stages, by_stage = {}, {}   -- data stages by self time, every thread
   for _, ev in ipairs(kept) do
      if ev.cat == 'data' then
         local key = ev.name
         local r = by_stage[key]
         if not r then
            r = {name = key, calls = 0, time = 0}
            by_stage[key] = r
            stages[#stages + 1] = r
         end
         r.calls, r.time = r.calls + 1, r.time + ev.self
      end
   end
   table.sort(stages, function(a, b) return a.time > b.time end)
   for _, ev in ipairs(per_tid[main] or {}) do
      local pdata = ev.parent and ev.parent.in_data
      if ev.in_data and not pdata then data = data + (ev.t1 - ev.t0) end
      if M.COMPUTE[ev.cat] and not ev.in_data then
         compute = compute + ev.self
         local r = by_name[ev.name]
         if not r then
            r = {name = ev.name, cat = ev.cat, calls = 0, time = 0, flops = 0}
            by_name[ev.name] = r
            rows[#rows + 1] = r
         end
         r.calls = r.calls + 1
         r.time = r.time + ev.self
         r.flops = r.flops + (ev.flops or 0)
      end
   end
   for _, r in ipairs(rows) do
      r.share = total > 0 and r.time / total or 0
      r.gflops = (r.flops > 0 and r.time > 0) and r.flops / r.time / 1e9 or nil
   end
   table.sort(rows, function(a, b)
      if a.time ~= b.time then return a.time > b.time end
      return a.name < b.name
   end)
   local other = math.max(0, total - data - compute)
   local bound = 'compute'
   if data >= compute and data >= other then bound = 'data'
   elseif other > compute then bound = 'lua' end
   local p = {
      title = opts.title or 'profile', spans = spans, events = kept, threads = threads, main_tid = main,
      total = total, data = data, compute = compute, other = other, bound = bound, rows = rows, stages = stages,
      unit = opts.unit or 'span',
      event_cost = opts.event_cost, dropped = opts.dropped or 0, top = opts.top or 15, count = #kept - #spans,
   }
   return setmetatable(p, {__index = M, __tostring = M.text})
end

local VERDICT = {
   data = 'input-bound: the steps waited for data most',
   compute = 'compute-bound: the steps spent most time inside ops',
   lua = 'bound by Lua overhead: most time went outside ops and data',
}

local function ms(s) return s * 1e3 end
local function pct(x, total) return total > 0 and 100 * x / total or 0 end

-- The table as text.
function M.text(p)
   local lines = {}
   local n = #p.spans
   lines[1] = string.format('%s: %d %s, %.1f ms in all, %.2f ms each; %d events', p.title, n,
      n == 1 and p.unit or p.unit .. 's', ms(p.total), n > 0 and ms(p.total) / n or 0, p.count)
   local w = 28
   for k = 1, math.min(p.top, #p.rows) do w = math.max(w, #p.rows[k].name) end
   lines[#lines + 1] = string.format('%-' .. w .. 's %7s %10s %7s %9s', 'op', 'calls', 'time ms', 'share', 'GFLOP/s')
   for k = 1, math.min(p.top, #p.rows) do
      local r = p.rows[k]
      lines[#lines + 1] = string.format('%-' .. w .. 's %7d %10.2f %6.1f%% %9s', r.name, r.calls, ms(r.time),
         100 * r.share, r.gflops and string.format('%.2f', r.gflops) or '-')
   end
   if #p.rows > p.top then
      local rest, calls = 0, 0
      for k = p.top + 1, #p.rows do rest, calls = rest + p.rows[k].time, calls + p.rows[k].calls end
      lines[#lines + 1] = string.format('%-' .. w .. 's %7d %10.2f %6.1f%%', '(' .. (#p.rows - p.top) .. ' more ops)',
         calls, ms(rest), pct(rest, p.total))
   end
   if #p.stages > 0 then
      local parts = {}
      for k = 1, math.min(6, #p.stages) do
         local r = p.stages[k]
         parts[k] = string.format('%s %.2f ms (%d calls)', r.name, ms(r.time), r.calls)
      end
      lines[#lines + 1] = 'data stages (self time): ' .. table.concat(parts, ', ')
   end
   local recording = (p.event_cost or 0) * p.count
   lines[#lines + 1] = string.format('time: data %.1f%% (%.1f ms), ops %.1f%% (%.1f ms), Lua and the rest %.1f%% '
      .. '(%.1f ms%s): %s', pct(p.data, p.total), ms(p.data), pct(p.compute, p.total), ms(p.compute),
      pct(p.other, p.total), ms(p.other), recording > 0 and string.format(', about %.1f ms of it the profiler\'s '
      .. 'own recording', ms(math.min(recording, p.other))) or '', VERDICT[p.bound])
   lines[#lines + 1] = '(time: self time, without the ops nested in an op; share: of the profiled time)'
   if p.dropped > 0 then
      lines[#lines + 1] = string.format('(%d backward or data events were lost for want of memory)', p.dropped)
   end
   return table.concat(lines, '\n')
end

-- Writes the Chrome trace-event JSON of the profile to path.
function M.write_trace(p, path)
   return require('kbl.profile.trace').write(p, path)
end

return M
