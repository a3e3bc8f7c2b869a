--- kbl.sweep.results: a sweep's runs as rows (the swept values, state, epochs,
-- the final and best monitored metric, the other final metrics, time, why a
-- run was stopped), read from each run directory's metrics.jsonl and
-- status.json; sorted by the monitored metric; written as sweep.csv and
-- printed as a table. A run stopped by successive halving counts the epochs
-- up to its rung only, so the rows do not depend on when it was paused.
local json = require 'dkjson'

local M = {}

local BOOKKEEPING = {epoch = true, step = true, stage = true, lr = true, time = true, samples_per_sec = true}

function M.is_metric(k, v) return type(v) == 'number' and not BOOKKEEPING[k] and not k:match('^time_') end

-- The epoch logs of a run directory, in order ({} when there are none), and
-- the evaluations after training (the {"split": "test", "epoch": n, ...} lines).
function M.history(dir)
   local out, evals = {}, {}
   local f = io.open(dir .. '/metrics.jsonl', 'r')
   if not f then return out, evals end
   for line in f:lines() do
      local obj = json.decode(line)
      if type(obj) == 'table' then
         if obj.split == nil then out[#out + 1] = obj else evals[#evals + 1] = obj end
      end
   end
   f:close()
   return out, evals
end

-- The final metrics: the last epoch's, with those of the last evaluation made
-- at or before that epoch (test_loss, test_accuracy...).
function M.final(history, evals)
   local last = history[#history]
   local out = {}
   if not last then return out end
   for k, v in pairs(last) do out[k] = v end
   for _, e in ipairs(evals or {}) do
      if (e.epoch or 0) <= (last.epoch or 0) then
         for k, v in pairs(e) do if M.is_metric(k, v) then out[k] = v end end
      end
   end
   return out
end

-- 'max' or 'min' for a monitored metric (as kbl's callbacks choose: accuracy
-- and the like are maximised).
function M.auto_mode(monitor, mode)
   return require('kbl.callbacks.base').auto_mode(monitor, mode)
end

local function better(a, b, mode)
   if mode == 'max' then return a > b end
   return a < b
end

local function finite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end

-- One run's row. run: {index, name, dir, values, stop = {rung =, ...} or nil,
-- failed = message or nil}; monitor and mode name the metric.
function M.row(run, monitor, mode)
   local history, evals = M.history(run.dir)
   if run.stop then
      local kept = {}
      for _, h in ipairs(history) do if (h.epoch or 0) <= run.stop.rung then kept[#kept + 1] = h end end
      history = kept
   end
   local ok, st = pcall(require('kbl.records.status').read, run.dir)
   st = ok and st or nil
   local row = {index = run.index, name = run.name, dir = run.dir, values = run.values, history = history,
      epochs = #history, time = 0,
      last = M.final(history, evals)}
   for _, h in ipairs(history) do row.time = row.time + (tonumber(h.time) or 0) end
   if run.stop then
      row.state, row.note = 'stopped', run.stop.reason
   elseif run.failed or (st and st.state == 'failed') then
      row.state, row.note = 'failed', tostring(run.failed or st.message or '')
   elseif st and st.state == 'finished' and not run.unfinished then
      row.state = 'finished'
   else
      row.state = 'unfinished'
   end
   local v = row.last[monitor]
   row.final = finite(v) and v or nil
   for _, h in ipairs(history) do
      local x = h[monitor]
      if finite(x) and (row.best == nil or better(x, row.best, mode)) then row.best, row.best_epoch = x, h.epoch end
   end
   return row
end

local STATE_RANK = {finished = 1, stopped = 2, unfinished = 3, failed = 4}

-- Sorts rows: finished runs first, then stopped, unfinished and failed ones;
-- within each, by the best monitored value (runs without one last), then index.
function M.sort(rows, mode)
   table.sort(rows, function(a, b)
      local sa, sb = STATE_RANK[a.state] or 9, STATE_RANK[b.state] or 9
      if sa ~= sb then return sa < sb end
      if (a.best == nil) ~= (b.best == nil) then return a.best ~= nil end
      if a.best ~= nil and a.best ~= b.best then return better(a.best, b.best, mode) end
      return a.index < b.index
   end)
   for i, r in ipairs(rows) do r.rank = i end
   return rows
end

-- Metric names in table order: as the loggers order them, the test split's
-- after the training and validation ones.
function M.order_metrics(names)
   names = require('kbl.callbacks.loggers').order(names)
   local out = {}
   for _, n in ipairs(names) do if not n:match('^test_') then out[#out + 1] = n end end
   for _, n in ipairs(names) do if n:match('^test_') then out[#out + 1] = n end end
   return out
end

-- The other final metrics the rows logged (not the monitored one), ordered as
-- the loggers order them.
function M.metric_names(rows, monitor)
   local seen, names = {}, {}
   for _, r in ipairs(rows) do
      for k, v in pairs(r.last) do
         if M.is_metric(k, v) and k ~= monitor and not seen[k] then seen[k] = true; names[#names + 1] = k end
      end
   end
   return M.order_metrics(names)
end

local function num(v)
   if v == nil then return '' end
   if v % 1 == 0 and math.abs(v) < 2^53 then return string.format('%d', v) end
   return string.format('%.14g', v)
end

local function csv_field(s)
   s = tostring(s)
   if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
   return s
end

-- The columns: {header, function(row) -> text}.
function M.columns(rows, keys, monitor)
   local cols = {{'rank', function(r) return tostring(r.rank) end}, {'run', function(r) return r.name end}}
   for k, key in ipairs(keys) do
      cols[#cols + 1] = {key, function(r) return r.values[k] and r.values[k][2] or '' end}
   end
   cols[#cols + 1] = {'state', function(r) return r.state end}
   cols[#cols + 1] = {'epochs', function(r) return tostring(r.epochs) end}
   cols[#cols + 1] = {monitor, function(r) return num(r.final) end}
   cols[#cols + 1] = {'best_' .. monitor, function(r) return num(r.best) end}
   cols[#cols + 1] = {'best_epoch', function(r) return r.best_epoch and tostring(r.best_epoch) or '' end}
   for _, m in ipairs(M.metric_names(rows, monitor)) do
      cols[#cols + 1] = {m, function(r) return num(finite(r.last[m]) and r.last[m] or nil) end}
   end
   cols[#cols + 1] = {'time_s', function(r) return string.format('%.2f', r.time) end}
   cols[#cols + 1] = {'note', function(r) return r.note or '' end}
   return cols
end

-- sweep.csv's text.
function M.csv(rows, keys, monitor)
   local cols = M.columns(rows, keys, monitor)
   local out = {}
   local head = {}
   for i, c in ipairs(cols) do head[i] = csv_field(c[1]) end
   out[1] = table.concat(head, ',')
   for _, r in ipairs(rows) do
      local f = {}
      for i, c in ipairs(cols) do f[i] = csv_field(c[2](r)) end
      out[#out + 1] = table.concat(f, ',')
   end
   return table.concat(out, '\n') .. '\n'
end

-- The table printed at the end: rank, run, the swept values, state, epochs,
-- the monitored metric (final and best) and time, in aligned columns.
function M.text(rows, keys, monitor)
   local short = require('kbl.sweep.space').short_keys(keys)
   local cols = {{'#', function(r) return tostring(r.rank) end}, {'run', function(r) return r.name end}}
   for k in ipairs(keys) do
      cols[#cols + 1] = {short[k], function(r) return r.values[k] and r.values[k][2] or '' end}
   end
   local function short_num(v) return v == nil and '-' or string.format('%.4g', v) end
   cols[#cols + 1] = {'state', function(r) return r.state end}
   cols[#cols + 1] = {'epochs', function(r) return tostring(r.epochs) end}
   cols[#cols + 1] = {monitor, function(r) return short_num(r.final) end}
   cols[#cols + 1] = {'best', function(r) return short_num(r.best) end}
   cols[#cols + 1] = {'time', function(r) return string.format('%.1fs', r.time) end}
   local cells, width = {}, {}
   for i, c in ipairs(cols) do width[i] = #c[1] end
   for j, r in ipairs(rows) do
      cells[j] = {}
      for i, c in ipairs(cols) do
         cells[j][i] = c[2](r)
         width[i] = math.max(width[i], #cells[j][i])
      end
   end
   local function line(values)
      local parts = {}
      for i, v in ipairs(values) do parts[i] = v .. string.rep(' ', width[i] - #v) end
      return (table.concat(parts, '  '):gsub('%s+$', ''))
   end
   local head = {}
   for i, c in ipairs(cols) do head[i] = c[1] end
   local out = {line(head)}
   for j in ipairs(rows) do out[#out + 1] = line(cells[j]) end
   for _, r in ipairs(rows) do
      if r.note and r.note ~= '' then out[#out + 1] = string.format('%s: %s', r.name, r.note) end
   end
   return table.concat(out, '\n') .. '\n'
end

return M
