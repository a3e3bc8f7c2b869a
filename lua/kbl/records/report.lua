--- kbl.records.report: report.html in the run directory, one self-contained page
-- (inline CSS and SVG, no script, nothing fetched from the network) with the
-- test metrics, a chart per quantity (loss, each metric, the learning rate)
-- with one curve per split (train, validation) over the epochs, the test value
-- marked at the last epoch and stage boundaries drawn across, the time each
-- epoch spent in each phase, the epoch table, the model summary and the
-- config. Axes carry round tick values (1, 2 or 5 times a power of ten) and
-- the charts fill the page's width. The trainer rewrites it atomically at
-- each epoch end.
--
--   report.write(run_dir .. '/report.html', {
--      title = 'fashion_mnist_mlp', config = config_text, summary = summary_text,
--      history = {{epoch = 1, stage = 1, train = {loss = 0.61, accuracy = 0.78},
--                  validation = {loss = 0.52, accuracy = 0.81}, lr = 1e-3,
--                  times = {data = 0.2, forward = 1.1, backward = 2.0, update = 0.3, validation = 0.4}}, ...},
--      test = {split = 'test', loss = 0.5, accuracy = 0.82}})
local json = require 'dkjson'

local M = {}

local function esc(s)
   return (tostring(s):gsub('[&<>"]', {['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;'}))
end
M.escape = esc

local function finite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end

-- A short label for a value shown alone (a tooltip).
local function fmt(v)
   if v == 0 then return '0' end
   local a = math.abs(v)
   if a >= 1e4 or a < 1e-3 then return string.format('%.2e', v) end
   return (string.format('%.4g', v))
end

-- ---- round ticks ----------------------------------------------------------------

-- A round step (1, 2 or 5 times a power of ten) near range / n.
function M.nice_step(range, n)
   local raw = range / (n or 4)
   local mag = 10 ^ math.floor(math.log10(raw))
   local f = raw / mag
   return (f <= 1 and 1 or f <= 2 and 2 or f <= 5 and 5 or 10) * mag
end

-- The axis over [lo, hi]: {lo =, hi =, step =, ticks = {...}, labels = {...}},
-- lo and hi widened to multiples of a round step. A constant series gets the
-- axis from 0 to twice its value (or -1 to 1 for zero). Labels share one
-- format: as many decimals as the step needs, or powers of ten for very small
-- or large values (5e-6, not 0.000005).
function M.axis(lo, hi, n)
   if lo == hi then
      if lo == 0 then lo, hi = -1, 1 else lo, hi = math.min(0, 2 * lo), math.max(0, 2 * hi) end
   end
   local step = M.nice_step(hi - lo, n or 4)
   local a, b = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
   local ticks, labels = {}, {}
   local k = math.floor((b - a) / step + 0.5)
   local big = math.max(math.abs(a), math.abs(b))
   local places = math.floor(math.log10(step) + 1e-9)
   local sci = step < 1e-4 or big >= 1e6
   for i = 0, k do
      local v = a + i * step
      if math.abs(v) < step * 1e-6 then v = 0 end
      ticks[#ticks + 1] = v
      local text
      if v == 0 then
         text = '0'
      elseif sci then
         local digits = math.max(0, math.floor(math.log10(math.abs(v)) + 1e-9) - places)
         text = string.format(string.format('%%.%de', digits), v):gsub('e([+-])0*(%d)', 'e%1%2'):gsub('e%+', 'e')
      else
         text = string.format(string.format('%%.%df', math.max(0, -places)), v)   -- %d: never '-0'
      end
      labels[#labels + 1] = text
   end
   return {lo = a, hi = b, step = step, ticks = ticks, labels = labels}
end

local SPLITS = {
   {key = 'train', label = 'train', color = '#1f77b4'},
   {key = 'validation', label = 'validation', color = '#ff7f0e'},
}

-- Where the stage changes: {{x = between the two epochs, label = 'stage N'}}.
local function stage_marks(history)
   local marks = {}
   for i = 2, #history do
      local a, b = history[i - 1], history[i]
      if a.stage and b.stage and a.stage ~= b.stage then
         marks[#marks + 1] = {x = ((a.epoch or i - 1) + (b.epoch or i)) / 2, label = 'stage ' .. tostring(b.stage)}
      end
   end
   return marks
end

-- The charts to draw: {name, series = {{label, color, points = {{epoch, value}}}},
-- stages = {{x, label}}, test = {x, value} (the test split's value, at the last epoch)}.
function M.charts(history, test)
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
   local marks = stage_marks(history or {})
   local last = history and history[#history]
   for _, name in ipairs(names) do
      local chart = {name = name, series = {}, stages = marks}
      if type(test) == 'table' and finite(test[name]) and last then
         chart.test = {x = last.epoch or #history, value = test[name], label = test.split or 'test'}
      end
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
      charts[#charts + 1] = {name = 'learning rate', series = {{label = 'lr', color = '#2ca02c', points = lr}},
         stages = marks}
   end
   return charts
end

local W, H, ML, MR, MT, MB = 440, 250, 64, 16, 28, 40

-- The x axis over epochs: integer ticks a round step apart.
local function epoch_ticks(xmin, xmax)
   local step = math.max(1, M.nice_step(xmax - xmin, 8))
   local out = {}
   for e = math.ceil(xmin / step) * step, math.floor(xmax), step do
      if e >= xmin then out[#out + 1] = e end
   end
   return out
end

-- One chart as an SVG element: axes with round ticks, a <path> and dots per
-- series, dashed lines where the stage changes, the test value as a diamond.
function M.svg(chart)
   local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
   for _, s in ipairs(chart.series) do
      for _, p in ipairs(s.points) do
         xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
         ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      end
   end
   if chart.test then ymin, ymax = math.min(ymin, chart.test.value), math.max(ymax, chart.test.value) end
   if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
   if xmax == xmin then xmin, xmax = xmin - 1, xmax + 1 end
   local ax = M.axis(ymin, ymax, 4)
   ymin, ymax = ax.lo, ax.hi
   local pw, ph = W - ML - MR, H - MT - MB
   local function X(v) return ML + (v - xmin) / (xmax - xmin) * pw end
   local function Y(v) return MT + (ymax - v) / (ymax - ymin) * ph end
   local o = {}
   o[#o + 1] = string.format('<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
      .. 'viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(chart.name))
   o[#o + 1] = string.format('<text class="title" x="%d" y="18">%s</text>', ML, esc(chart.name))
   o[#o + 1] = string.format('<rect class="plot" x="%d" y="%d" width="%d" height="%d"/>', ML, MT, pw, ph)
   for i, v in ipairs(ax.ticks) do
      local y = Y(v)
      o[#o + 1] = string.format('<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>', ML, y, ML + pw, y)
      o[#o + 1] = string.format('<text class="tick y" x="%d" y="%.1f" text-anchor="end">%s</text>', ML - 6, y + 4,
         ax.labels[i])
   end
   for _, e in ipairs(epoch_ticks(xmin, xmax)) do
      o[#o + 1] = string.format('<text class="tick x" x="%.1f" y="%d" text-anchor="middle">%d</text>',
         X(e), MT + ph + 16, e)
   end
   o[#o + 1] = string.format('<text class="axis" x="%.1f" y="%d" text-anchor="middle">epoch</text>', ML + pw / 2, H - 6)
   for _, m in ipairs(chart.stages or {}) do
      if m.x > xmin and m.x < xmax then
         o[#o + 1] = string.format('<line class="stage" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>', X(m.x), MT, X(m.x),
            MT + ph)
         o[#o + 1] = string.format('<text class="stage" x="%.1f" y="%d">%s</text>', X(m.x) + 3, MT + 11, esc(m.label))
      end
   end
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
   if chart.test then
      local x, y = X(chart.test.x), Y(chart.test.value)
      o[#o + 1] = string.format('<polygon class="test" points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f">'
         .. '<title>%s: %s</title></polygon>', x, y - 6, x + 6, y, x, y + 6, x - 6, y, esc(chart.test.label),
         string.format('%.6g', chart.test.value))
      o[#o + 1] = string.format('<text class="legend test" x="%.1f" y="%.1f" text-anchor="end">%s</text>', x - 6,
         y < MT + 14 and y + 16 or y - 8, esc(chart.test.label))   -- above the diamond, below it at the top
   end
   o[#o + 1] = '</svg>'
   return table.concat(o, '\n')
end

-- The phases of an epoch's time, in the order they run, with their colours.
M.PHASES = {
   {key = 'data', color = '#9467bd'}, {key = 'forward', color = '#1f77b4'},
   {key = 'backward', color = '#ff7f0e'}, {key = 'update', color = '#2ca02c'},
   {key = 'validation', color = '#8c564b'},
}

-- Seconds per epoch by phase, stacked bars (nil when no epoch has timings).
function M.time_svg(history)
   local rows, top = {}, 0
   for i, h in ipairs(history or {}) do
      if type(h.times) == 'table' then
         local total = 0
         for _, ph in ipairs(M.PHASES) do
            local v = h.times[ph.key]
            if finite(v) and v > 0 then total = total + v end
         end
         rows[#rows + 1] = {epoch = h.epoch or i, times = h.times}
         top = math.max(top, total)
      end
   end
   if #rows == 0 then return nil end
   local ax = M.axis(0, top > 0 and top or 1, 4)
   local mt = MT + 16   -- a row for the legend under the title
   local pw, ph = W - ML - MR, H - mt - MB
   local function Y(v) return mt + (ax.hi - v) / (ax.hi - ax.lo) * ph end
   local slot = pw / #rows
   local bw = math.max(2, math.min(40, slot * 0.7))
   local o = {string.format('<svg class="chart times" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
      .. 'viewBox="0 0 %d %d" role="img" aria-label="time per epoch">', W, H, W, H),
      string.format('<text class="title" x="%d" y="18">time per epoch by phase (seconds)</text>', ML),
      string.format('<rect class="plot" x="%d" y="%d" width="%d" height="%d"/>', ML, mt, pw, ph)}
   for i, v in ipairs(ax.ticks) do
      o[#o + 1] = string.format('<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>', ML, Y(v), ML + pw, Y(v))
      o[#o + 1] = string.format('<text class="tick y" x="%d" y="%.1f" text-anchor="end">%s</text>', ML - 6,
         Y(v) + 4, ax.labels[i])
   end
   local every = math.max(1, M.nice_step(#rows, 8))
   for i, r in ipairs(rows) do
      local x, acc = ML + (i - 0.5) * slot - bw / 2, 0
      for _, p in ipairs(M.PHASES) do
         local v = r.times[p.key]
         if finite(v) and v > 0 then
            o[#o + 1] = string.format('<rect class="phase %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
               .. 'fill="%s"><title>epoch %d %s: %.3g s</title></rect>', p.key, x, Y(acc + v), bw,
               Y(acc) - Y(acc + v), p.color, r.epoch, p.key, v)
            acc = acc + v
         end
      end
      if (r.epoch - rows[1].epoch) % every == 0 then
         o[#o + 1] = string.format('<text class="tick x" x="%.1f" y="%d" text-anchor="middle">%d</text>',
            x + bw / 2, mt + ph + 16, r.epoch)
      end
   end
   o[#o + 1] = string.format('<text class="axis" x="%.1f" y="%d" text-anchor="middle">epoch</text>', ML + pw / 2, H - 6)
   for k, p in ipairs(M.PHASES) do
      local x = ML + (k - 1) * 70
      o[#o + 1] = string.format('<rect x="%d" y="25" width="10" height="10" fill="%s"/>', x, p.color)
      o[#o + 1] = string.format('<text class="legend" x="%d" y="34">%s</text>', x + 13, p.key)
   end
   o[#o + 1] = '</svg>'
   return table.concat(o, '\n')
end

local CSS = [[
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
.charts .chart { width: 100%; height: auto; }
.chart { background: #fff; border: 1px solid #ddd; }
.chart line.stage { stroke: #777; stroke-dasharray: 4 3; }
.chart text.stage { font-size: 10px; fill: #555; }
.chart polygon.test { fill: #d62728; }
.chart text.test { fill: #d62728; }
.chart .plot { fill: #fafafa; stroke: #bbb; }
.chart .grid { stroke: #e4e4e4; }
.chart .tick, .chart .legend, .chart .axis { font-size: 11px; fill: #444; }
.chart .title { font-size: 13px; font-weight: bold; fill: #222; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
table.epochs { border-collapse: collapse; font-size: 12px; }
table.epochs td, table.epochs th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
.wide { overflow-x: auto; }
table.test { font-size: 14px; }
]]

-- The table of numbers under the charts: epoch, stage, split/metric columns,
-- lr, then the seconds of each phase.
local function epoch_table(history, charts)
   if #history == 0 then return '<p>No epoch has finished yet.</p>' end
   local cols = {}
   for _, c in ipairs(charts) do
      if c.name ~= 'learning rate' then
         for _, s in ipairs(SPLITS) do cols[#cols + 1] = {s.key, c.name} end
      end
   end
   local phases, staged = {}, false
   for _, p in ipairs(M.PHASES) do
      for _, h in ipairs(history) do
         if type(h.times) == 'table' and type(h.times[p.key]) == 'number' then phases[#phases + 1] = p.key break end
      end
   end
   for _, h in ipairs(history) do if h.stage and h.stage ~= history[1].stage then staged = true end end
   local o = {'<div class="wide"><table class="epochs"><tr><th>epoch</th>' .. (staged and '<th>stage</th>' or '')}
   for _, c in ipairs(cols) do o[#o + 1] = '<th>' .. esc(c[1] .. ' ' .. c[2]) .. '</th>' end
   o[#o + 1] = '<th>lr</th>'
   for _, p in ipairs(phases) do o[#o + 1] = '<th>' .. esc(p) .. ' s</th>' end
   o[#o + 1] = '</tr>'
   local function num(v) return '<td>' .. (type(v) == 'number' and string.format('%.6g', v) or '') .. '</td>' end
   for i, h in ipairs(history) do
      o[#o + 1] = '<tr><td>' .. esc(h.epoch or i) .. '</td>'
         .. (staged and ('<td>' .. esc(h.stage or '') .. '</td>') or '')
      for _, c in ipairs(cols) do o[#o + 1] = num(h[c[1]] and h[c[1]][c[2]]) end
      o[#o + 1] = num(h.lr)
      for _, p in ipairs(phases) do
         local v = type(h.times) == 'table' and h.times[p] or nil
         o[#o + 1] = '<td>' .. (type(v) == 'number' and string.format('%.3g', v) or '') .. '</td>'
      end
      o[#o + 1] = '</tr>'
   end
   o[#o + 1] = '</table></div>'
   return table.concat(o, '\n')
end

-- The evaluation after training: a row of metrics.
local function test_table(test)
   local names = {}
   for k, v in pairs(test) do if type(v) == 'number' then names[#names + 1] = k end end
   table.sort(names)
   local t = {'<h2>Test (' .. esc(test.split or 'test') .. ' split)</h2><table class="epochs test"><tr>'}
   for _, k in ipairs(names) do t[#t + 1] = '<th>' .. esc(k) .. '</th>' end
   t[#t + 1] = '</tr><tr>'
   for _, k in ipairs(names) do t[#t + 1] = string.format('<td>%.6g</td>', test[k]) end
   t[#t + 1] = '</tr></table>'
   return table.concat(t)
end

-- The page as a string. data: title, config (text or table), summary (text),
-- history (see the top), status (text, optional), run_dir (optional), test
-- (optional: {split = 'test', loss = ..., accuracy = ...}).
function M.render(data)
   data = data or {}
   local history = data.history or {}
   local test = type(data.test) == 'table' and data.test or nil
   local charts = M.charts(history, test)
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
   if test then o[#o + 1] = test_table(test) end   -- {split =, <metric> = value}: the evaluation after training
   o[#o + 1] = '<h2>Curves</h2><div class="charts">'
   for _, c in ipairs(charts) do o[#o + 1] = M.svg(c) end
   local times = M.time_svg(history)
   if times then o[#o + 1] = times end
   o[#o + 1] = '</div>'
   o[#o + 1] = '<h2>Epochs</h2>' .. epoch_table(history, charts)
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
