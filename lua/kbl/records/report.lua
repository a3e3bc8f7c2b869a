-- kbl.records.report: report.html in the run directory, one self-contained page
-- (inline CSS and SVG, no script, nothing fetched from the network) with the
-- config, the model summary and a chart per quantity (loss, each metric, the
-- learning rate) with one curve per split (train, validation) over the epochs.
-- The trainer rewrites it atomically at each epoch end.
--
--   report.write(run_dir .. '/report.html', {
--      title = 'fashion_mnist_mlp', config = config_text, summary = summary_text,
--      history = {{epoch = 1, train = {loss = 0.61, accuracy = 0.78},
--                  validation = {loss = 0.52, accuracy = 0.81}, lr = 1e-3}, ...}})
local json = require 'dkjson'

local M = {}

local function esc(s)
   return (tostring(s):gsub('[&<>"]', {['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;'}))
end
M.escape = esc

local function finite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end

-- A short label for an axis value.
local function fmt(v)
   if v == 0 then return '0' end
   local a = math.abs(v)
   if a >= 1e4 or a < 1e-3 then return string.format('%.2e', v) end
   return (string.format('%.4g', v))
end

local SPLITS = {
   {key = 'train', label = 'train', color = '#1f77b4'},
   {key = 'validation', label = 'validation', color = '#ff7f0e'},
}

-- The charts to draw: {name, series = {{label, color, points = {{epoch, value}}}}}.
function M.charts(history)
   local names, seen = {}, {}
   for _, h in ipairs(history or {}) do
      for _, s in ipairs(SPLITS) do
         for name in pairs(h[s.key] or {}) do
            if not seen[name] then seen[name] = true; names[#names + 1] = name end
         end
      end
   end
   table.sort(names, function(a, b)
      if a == 'loss' or b == 'loss' then return a == 'loss' and b ~= 'loss' end
      return a < b
   end)
   local charts = {}
   for _, name in ipairs(names) do
      local chart = {name = name, series = {}}
      for _, s in ipairs(SPLITS) do
         local pts = {}
         for i, h in ipairs(history) do
            local v = h[s.key] and h[s.key][name]
            if finite(v) then pts[#pts + 1] = {h.epoch or i, v} end
         end
         if #pts > 0 then chart.series[#chart.series + 1] = {label = s.label, color = s.color, points = pts} end
      end
      charts[#charts + 1] = chart
   end
   local lr = {}
   for i, h in ipairs(history or {}) do
      if finite(h.lr) then lr[#lr + 1] = {h.epoch or i, h.lr} end
   end
   if #lr > 0 then
      charts[#charts + 1] = {name = 'learning rate', series = {{label = 'lr', color = '#2ca02c', points = lr}}}
   end
   return charts
end

local W, H, ML, MR, MT, MB = 440, 250, 64, 16, 28, 40

-- One chart as an SVG element: axes, ticks, a <path> and dots per series.
function M.svg(chart)
   local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
   for _, s in ipairs(chart.series) do
      for _, p in ipairs(s.points) do
         xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
         ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      end
   end
   if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
   if xmax == xmin then xmin, xmax = xmin - 1, xmax + 1 end
   if ymax == ymin then
      local d = ymin == 0 and 1 or math.abs(ymin) * 0.1
      ymin, ymax = ymin - d, ymax + d
   end
   local pad = (ymax - ymin) * 0.05
   ymin, ymax = ymin - pad, ymax + pad
   local pw, ph = W - ML - MR, H - MT - MB
   local function X(v) return ML + (v - xmin) / (xmax - xmin) * pw end
   local function Y(v) return MT + (ymax - v) / (ymax - ymin) * ph end
   local o = {}
   o[#o + 1] = string.format('<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
      .. 'viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(chart.name))
   o[#o + 1] = string.format('<text class="title" x="%d" y="18">%s</text>', ML, esc(chart.name))
   o[#o + 1] = string.format('<rect class="plot" x="%d" y="%d" width="%d" height="%d"/>', ML, MT, pw, ph)
   for i = 0, 4 do
      local v = ymin + (ymax - ymin) * i / 4
      local y = Y(v)
      o[#o + 1] = string.format('<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>', ML, y, ML + pw, y)
      o[#o + 1] = string.format('<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>', ML - 6, y + 4, fmt(v))
   end
   -- epoch ticks: at most ~8, on integers
   local step = math.max(1, math.ceil((xmax - xmin) / 8))
   for e = math.ceil(xmin), math.floor(xmax), step do
      o[#o + 1] = string.format('<text class="tick" x="%.1f" y="%d" text-anchor="middle">%d</text>',
         X(e), MT + ph + 16, e)
   end
   o[#o + 1] = string.format('<text class="axis" x="%.1f" y="%d" text-anchor="middle">epoch</text>', ML + pw / 2, H - 6)
   for k, s in ipairs(chart.series) do
      local d = {}
      for i, p in ipairs(s.points) do d[i] = string.format('%s%.2f %.2f', i == 1 and 'M' or 'L', X(p[1]), Y(p[2])) end
      o[#o + 1] = string.format(
         '<path class="series %s" data-points="%d" d="%s" fill="none" stroke="%s" stroke-width="2"/>',
         esc(s.label), #s.points, table.concat(d, ' '), s.color)
      for _, p in ipairs(s.points) do
         o[#o + 1] = string.format(
            '<circle cx="%.2f" cy="%.2f" r="3" fill="%s"><title>%s epoch %s: %s</title></circle>',
            X(p[1]), Y(p[2]), s.color, esc(s.label), fmt(p[1]), string.format('%.6g', p[2]))
      end
      -- the legend sits in the title row, right-aligned, clear of the curves
      -- (chart.legend = false: the page draws its own, as sweep.html does)
      if chart.legend ~= false then
         local lx, ly = W - MR - 96 * (#chart.series - k + 1), 18
         o[#o + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>',
            lx, ly - 4, lx + 18, ly - 4, s.color)
         o[#o + 1] = string.format('<text class="legend" x="%d" y="%d">%s</text>', lx + 24, ly, esc(s.label))
      end
   end
   o[#o + 1] = '</svg>'
   return table.concat(o, '\n')
end

local CSS = [[
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { background: #fff; border: 1px solid #ddd; }
.chart .plot { fill: #fafafa; stroke: #bbb; }
.chart .grid { stroke: #e4e4e4; }
.chart .tick, .chart .legend, .chart .axis { font-size: 11px; fill: #444; }
.chart .title { font-size: 13px; font-weight: bold; fill: #222; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
table.epochs { border-collapse: collapse; font-size: 12px; }
table.epochs td, table.epochs th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
]]

-- The table of numbers under the charts: epoch, then split/metric columns.
local function epoch_table(history, charts)
   if #history == 0 then return '<p>No epoch has finished yet.</p>' end
   local cols = {}
   for _, c in ipairs(charts) do
      if c.name ~= 'learning rate' then
         for _, s in ipairs(SPLITS) do cols[#cols + 1] = {s.key, c.name} end
      end
   end
   local o = {'<table class="epochs"><tr><th>epoch</th>'}
   for _, c in ipairs(cols) do o[#o + 1] = '<th>' .. esc(c[1] .. ' ' .. c[2]) .. '</th>' end
   o[#o + 1] = '<th>lr</th></tr>'
   for i, h in ipairs(history) do
      o[#o + 1] = '<tr><td>' .. esc(h.epoch or i) .. '</td>'
      for _, c in ipairs(cols) do
         local v = h[c[1]] and h[c[1]][c[2]]
         o[#o + 1] = '<td>' .. (type(v) == 'number' and string.format('%.6g', v) or '') .. '</td>'
      end
      o[#o + 1] = '<td>' .. (type(h.lr) == 'number' and string.format('%.6g', h.lr) or '') .. '</td></tr>'
   end
   o[#o + 1] = '</table>'
   return table.concat(o, '\n')
end

-- The page as a string. data: title, config (text or table), summary (text),
-- history (see the top), status (text, optional), run_dir (optional), test
-- (optional: {split = 'test', loss = ..., accuracy = ...}).
function M.render(data)
   data = data or {}
   local history = data.history or {}
   local charts = M.charts(history)
   local config = data.config
   if type(config) == 'table' then config = json.encode(config, {indent = true}) end
   local o = {'<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
      '<title>' .. esc(data.title or 'kbl run') .. '</title>', '<style>' .. CSS .. '</style></head><body>',
      '<h1>' .. esc(data.title or 'kbl run') .. '</h1>'}
   local facts = {}
   if data.run_dir then facts[#facts + 1] = 'run directory: ' .. esc(data.run_dir) end
   if data.status then facts[#facts + 1] = 'status: ' .. esc(data.status) end
   facts[#facts + 1] = 'epochs: ' .. #history
   if data.updated then facts[#facts + 1] = 'updated: ' .. esc(data.updated) end
   o[#o + 1] = '<p>' .. table.concat(facts, ' &middot; ') .. '</p>'
   o[#o + 1] = '<h2>Curves</h2><div class="charts">'
   for _, c in ipairs(charts) do o[#o + 1] = M.svg(c) end
   o[#o + 1] = '</div>'
   o[#o + 1] = '<h2>Epochs</h2>' .. epoch_table(history, charts)
   if type(data.test) == 'table' then   -- {split =, <metric> = value}: the evaluation after training
      local names = {}
      for k, v in pairs(data.test) do if type(v) == 'number' then names[#names + 1] = k end end
      table.sort(names)
      local t = {'<h2>Test (' .. esc(data.test.split or 'test') .. ' split)</h2><table class="epochs test"><tr>'}
      for _, k in ipairs(names) do t[#t + 1] = '<th>' .. esc(k) .. '</th>' end
      t[#t + 1] = '</tr><tr>'
      for _, k in ipairs(names) do t[#t + 1] = string.format('<td>%.6g</td>', data.test[k]) end
      t[#t + 1] = '</tr></table>'
      o[#o + 1] = table.concat(t)
   end
   o[#o + 1] = '<h2>Model</h2><pre class="summary">' .. esc(data.summary or '(no summary)') .. '</pre>'
   o[#o + 1] = '<h2>Config</h2><pre class="config">' .. esc(config or '(no config)') .. '</pre>'
   o[#o + 1] = '</body></html>\n'
   return table.concat(o, '\n')
end

-- Renders and writes path atomically (a reader never sees half a page).
function M.write(path, data)
   local html = M.render(data)
   require('kbl.io.binfile').write_atomic(path, html, 'report ' .. path)
   return html
end

return M
