--- kbl.profile.trace: a profile as Chrome trace-event JSON, the format
-- chrome://tracing and Perfetto (ui.perfetto.dev) open: one complete ("X")
-- event per recorded event, with ts and dur in microseconds from the first
-- profiled span, pid and tid (the OS thread), a category and args, and
-- metadata ("M") events naming the process and threads. Times are rounded to
-- whole nanoseconds before they are subtracted, so an event nested in
-- another stays inside it in the file.
local json = require 'dkjson'

local M = {}

-- Trace categories: the optimizer's per-parameter updates show as 'optimizer'.
local CATEGORY = {update = 'optimizer'}

local function ns(t, base) return math.floor((t - base) * 1e9 + 0.5) end

local function args_json(ev)
   local parts = {}
   if ev.args ~= nil then
      local key = ev.cat == 'step' and 'step' or 'shapes'
      parts[#parts + 1] = json.quotestring(key) .. ':' .. (type(ev.args) == 'number' and string.format('%d', ev.args)
         or json.quotestring(tostring(ev.args)))
   end
   if ev.flops and ev.flops > 0 then
      parts[#parts + 1] = string.format('"flops":%.0f', ev.flops)
      local dur = ev.t1 - ev.t0
      if dur > 0 then parts[#parts + 1] = string.format('"GFLOP/s":%.3f', ev.flops / dur / 1e9) end
   end
   if ev.self and ev.self ~= ev.t1 - ev.t0 then parts[#parts + 1] = string.format('"self_us":%.3f', ev.self * 1e6) end
   return '{' .. table.concat(parts, ',') .. '}'
end

-- The JSON text of profile p (kbl.profile.report).
function M.encode(p)
   local base = p.spans[1] and p.spans[1].t0 or (p.events[1] and p.events[1].t0) or 0
   local pid = p.pid or 1
   local out = {}
   out[#out + 1] = string.format('{"name":"process_name","ph":"M","pid":%d,"tid":%d,"args":{"name":"kbl"}}', pid,
      p.main_tid)
   for _, tid in ipairs(p.threads) do
      local name = tid == p.main_tid and 'main (Lua)' or ('data prefetch ' .. tid)
      out[#out + 1] = string.format('{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":%s}}', pid,
         tid, json.quotestring(name))
   end
   for _, ev in ipairs(p.events) do
      local t0, t1 = ns(ev.t0, base), ns(ev.t1, base)
      out[#out + 1] = string.format('{"name":%s,"cat":"%s","ph":"X","ts":%.3f,"dur":%.3f,"pid":%d,"tid":%d,'
         .. '"args":%s}', json.quotestring(ev.name), CATEGORY[ev.cat] or ev.cat, t0 / 1e3, (t1 - t0) / 1e3, pid,
         ev.tid, args_json(ev))
   end
   return '{"displayTimeUnit":"ms","otherData":{"title":' .. json.quotestring(p.title) .. '},"traceEvents":[\n'
      .. table.concat(out, ',\n') .. '\n]}\n'
end

-- Writes the trace to path (replacing it whole: a temporary file renamed).
function M.write(p, path)
   require('kbl.io.binfile').write_atomic(path, M.encode(p), 'kbl.profile: cannot write the trace ' .. path, 0)
   return path
end

return M
