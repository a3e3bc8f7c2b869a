--- kbl.sweep.html: sweep.html, one self-contained page (inline CSS and SVG, no
-- script, nothing fetched) with the results table and, per validation metric
-- (and the monitored one), every run's curve overlaid in one chart, drawn by
-- kbl.records.report's SVG code; a legend names each run's colour.
local report = require 'kbl.records.report'
local esc = report.escape

local M = {}

-- Distinct colours (Tableau 10, then the same lighter); runs past 20 repeat.
local PALETTE = {'#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
   '#bcbd22', '#17becf', '#aec7e8', '#ffbb78', '#98df8a', '#ff9896', '#c5b0d5', '#c49c94', '#f7b6d2',
   '#c7c7c7', '#dbdb8d', '#9edae5'}

local function finite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end

-- The charts: one per metric, a series per run (rows in table order).
function M.charts(rows, monitor)
   local names, seen = {}, {}
   local function want(k)
      if not seen[k] then seen[k] = true; names[#names + 1] = k end
   end
   if monitor then want(monitor) end
   for _, r in ipairs(rows) do
      for _, h in ipairs(r.history or {}) do
         for k, v in pairs(h) do
            if type(k) == 'string' and k:match('^val_') and type(v) == 'number' then want(k) end
         end
      end
   end
   local first = table.remove(names, 1)
   table.sort(names)
   if first then table.insert(names, 1, first) end
   local charts = {}
   for _, name in ipairs(names) do
      local chart = {name = name, series = {}, legend = false}
      for i, r in ipairs(rows) do
         local pts = {}
         for j, h in ipairs(r.history or {}) do
            if finite(h[name]) then pts[#pts + 1] = {h.epoch or j, h[name]} end
         end
         if #pts > 0 then
            chart.series[#chart.series + 1] = {label = r.name, color = PALETTE[(i - 1) % #PALETTE + 1], points = pts}
         end
      end
      if #chart.series > 0 then charts[#charts + 1] = chart end
   end
   return charts
end

local CSS = [[
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { background: #fff; border: 1px solid #ddd; }
.chart .plot { fill: #fafafa; stroke: #bbb; }
.chart .grid { stroke: #e4e4e4; }
.chart .tick, .chart .axis { font-size: 11px; fill: #444; }
.chart .title { font-size: 13px; font-weight: bold; fill: #222; }
table.results { border-collapse: collapse; font-size: 12px; }
table.results td, table.results th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
table.results td.note { white-space: normal; min-width: 240px; max-width: 420px; }
table.results tr.stopped, table.results tr.failed, table.results tr.unfinished { color: #888; }
.swatch { display: inline-block; width: 14px; height: 4px; margin-right: 6px; vertical-align: middle; }
ul.legend { list-style: none; padding: 0; font-size: 12px; columns: 3; }
]]

-- The page. data: title, rows (kbl.sweep.results rows, sorted), keys (swept
-- key paths), monitor, mode.
function M.render(data)
   local rows, keys, monitor = data.rows or {}, data.keys or {}, data.monitor
   local cols = require('kbl.sweep.results').columns(rows, keys, monitor)
   local o = {'<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
      '<title>' .. esc(data.title or 'kbl sweep') .. '</title>', '<style>' .. CSS .. '</style></head><body>',
      '<h1>' .. esc(data.title or 'kbl sweep') .. '</h1>',
      string.format('<p>%d runs &middot; sorted by %s (%s)</p>', #rows, esc(monitor or '-'), esc(data.mode or '-')),
      '<h2>Runs</h2><table class="results"><tr>'}
   local colour = {}
   for i, r in ipairs(rows) do colour[r.name] = PALETTE[(i - 1) % #PALETTE + 1] end
   for _, c in ipairs(cols) do o[#o + 1] = '<th>' .. esc(c[1]) .. '</th>' end
   o[#o + 1] = '</tr>'
   for _, r in ipairs(rows) do
      o[#o + 1] = '<tr class="' .. esc(r.state) .. '">'
      for _, c in ipairs(cols) do
         local text = c[2](r)
         -- numbers to 6 digits here; sweep.csv keeps them whole
         local x = tonumber(text)
         if x and text:match('^[%d%.eE+-]+$') and #text > 8 then text = string.format('%.6g', x) end
         local cell = esc(text)
         if c[1] == 'run' then
            cell = string.format('<span class="swatch" style="background:%s"></span>%s', colour[r.name], cell)
         end
         o[#o + 1] = (c[1] == 'note' and '<td class="note">' or '<td>') .. cell .. '</td>'
      end
      o[#o + 1] = '</tr>'
   end
   o[#o + 1] = '</table>'
   o[#o + 1] = '<h2>Validation curves</h2><div class="charts">'
   local charts = M.charts(rows, monitor)
   for _, c in ipairs(charts) do o[#o + 1] = report.svg(c) end
   if #charts == 0 then o[#o + 1] = '<p>No epoch has finished yet.</p>' end
   o[#o + 1] = '</div><ul class="legend">'
   for _, r in ipairs(rows) do
      o[#o + 1] = string.format('<li><span class="swatch" style="background:%s"></span>%s</li>', colour[r.name],
         esc(r.name))
   end
   o[#o + 1] = '</ul></body></html>\n'
   return table.concat(o, '\n')
end

function M.write(path, data)
   local html = M.render(data)
   require('kbl.io.binfile').write_atomic(path, html, 'sweep ' .. path)
   return html
end

return M
