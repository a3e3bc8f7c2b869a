-- report: report.html is one self-contained page (no script, nothing fetched)
-- with the test metrics, SVG curves per quantity and split (round tick labels,
-- stage boundaries, the test value marked), the time per phase of each epoch,
-- the model summary and the config; it is rendered with headless Chromium
-- (pending when chromium is absent): the rendered DOM must hold the curves
-- with their points, and at 1600 pixels the charts fill the width.
local H = require 'helper'
local report = require 'kbl.records.report'

local tmp = H.tmpdir()

local function history(n)
   local h = {}
   for e = 1, n do
      h[e] = {epoch = e, train = {loss = 1 / e, accuracy = 0.5 + e / 40},
         validation = {loss = 1.2 / e, accuracy = 0.45 + e / 40}, lr = 0.1 * 0.5 ^ e}
   end
   return h
end

local slurp = H.read

-- {class -> number of points} for every <path class="series ..."> in html.
local function series_points(html)
   local out = {}
   for tag in html:gmatch('<path[^>]*>') do
      local class = tag:match('class="series ([^"]*)"')
      local d = tag:match(' d="([^"]*)"')
      if class and d then
         local n = 0
         for _ in d:gmatch('[ML]%-?[%d%.]+ %-?[%d%.]+') do n = n + 1 end
         out[#out + 1] = {class = class, points = n}
      end
   end
   return out
end

local function chromium()
   for _, name in ipairs{'chromium', 'chromium-browser', 'google-chrome'} do
      if H.run('command -v ' .. name .. ' >/dev/null') == 0 then return name end
   end
end

describe('report', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('draws a chart per quantity with a curve per split, and the learning rate', function()
      local charts = report.charts(history(6))
      local names = {}
      for i, c in ipairs(charts) do names[i] = c.name end
      assert.are.same({'loss', 'accuracy', 'learning rate'}, names)
      assert.are.equal(2, #charts[1].series)
      assert.are.equal('train', charts[1].series[1].label)
      assert.are.equal('validation', charts[1].series[2].label)
      assert.are.equal(6, #charts[1].series[2].points)
      assert.are.same({3, 1.2 / 3}, charts[1].series[2].points[3])
   end)

   it('keeps to one page: no script, no link, no fetched resource; escapes text', function()
      local html = report.render{title = 'a <b> & c', config = 'note = "<script>alert(1)</script>"',
         summary = 'Dense <784 -> 10>', history = history(3)}
      assert.is_nil(html:find('<script', 1, true))
      assert.is_nil(html:find('<link', 1, true))
      assert.is_nil(html:find('src=', 1, true))
      assert.is_nil(html:find('href=', 1, true))
      assert.is_nil(html:find('url(', 1, true))
      assert.truthy(html:find('&lt;script&gt;alert(1)&lt;/script&gt;', 1, true))
      assert.truthy(html:find('Dense &lt;784 -&gt; 10&gt;', 1, true))
      assert.truthy(html:find('<title>a &lt;b&gt; &amp; c</title>', 1, true))
   end)

   it('skips values that are not finite and renders an empty history', function()
      local h = history(4)
      h[2].train.loss = 0 / 0
      h[3].validation.loss = math.huge
      local pts = series_points(report.render{history = h})
      assert.are.same({class = 'train', points = 3}, pts[1])
      assert.are.same({class = 'validation', points = 3}, pts[2])
      local empty = report.render{history = {}}
      assert.are.equal(0, #series_points(empty))
      assert.truthy(empty:find('No epoch has finished yet', 1, true))
   end)

   it('is rewritten atomically at each epoch end', function()
      local path = tmp .. '/report.html'
      for e = 1, 3 do
         report.write(path, {title = 'run', history = history(e)})
         local pts = series_points(slurp(path))
         assert.are.equal(e, pts[1].points)
      end
      local rc, out = H.run('ls ' .. tmp)
      assert.are.equal(0, rc)
      assert.are.equal('report.html\n', out)   -- no temporary file left behind
   end)

   it('renders in headless Chromium with the curves and their points', function()
      local browser = chromium()
      if not browser then return pending('chromium is not installed (apt-get install chromium)') end
      local path = tmp .. '/render.html'
      report.write(path, {title = 'render test', config = 'return {epochs = 5}', summary = 'Dense 4 -> 2',
         history = history(5)})
      -- A sanitizer run preloads libasan into every child; chromium then crawls,
      -- so it runs without it, with a profile of its own and a time limit.
      local cmd = 'env -u LD_PRELOAD timeout 120 ' .. browser .. ' --headless --no-sandbox --disable-gpu '
         .. '--user-data-dir=' .. tmp .. '/profile'
      local rc, dom = H.run(cmd .. ' --dump-dom file://' .. path .. ' 2>/dev/null')
      assert.are_not.equal(124, rc, 'chromium did not finish within 120 s')
      assert.are.equal(0, rc, dom)
      local pts = series_points(dom)
      assert.are.equal(5, #pts)   -- loss and accuracy for train and validation, and lr
      for _, p in ipairs(pts) do assert.are.equal(5, p.points, p.class) end
      local svgs = 0
      for _ in dom:gmatch('<svg ') do svgs = svgs + 1 end
      assert.are.equal(3, svgs)   -- no time chart: the history has no timings
      assert.truthy(dom:find('return {epochs = 5}', 1, true))
      assert.truthy(dom:find('Dense 4 -&gt; 2', 1, true))
      -- and it paints: a screenshot is written
      local png = tmp .. '/render.png'
      rc = H.run(cmd .. ' --window-size=1000,800 --screenshot=' .. png .. ' file://' .. path)
      assert.are.equal(0, rc)
      assert.are.equal('\137PNG', slurp(png):sub(1, 4))
   end)
   it('labels axes with round ticks in one format, a constant learning rate too', function()
      local function labels(lo, hi) return report.axis(lo, hi, 4).labels end
      assert.are.same({'0', '0.0005', '0.0010', '0.0015', '0.0020'}, labels(1e-3, 1e-3))
      assert.are.same({'0.44', '0.46', '0.48', '0.50', '0.52', '0.54'}, labels(0.4522, 0.5241))
      assert.are.same({'0', '1', '2', '3'}, labels(0.179, 2.35))
      assert.are.same({'0', '1e-5', '2e-5'}, labels(1e-5, 1e-5))
      assert.are.same({'2.0e6', '2.5e6', '3.0e6'}, labels(2e6, 3e6))
      assert.are.same({'-1.0', '-0.5', '0', '0.5', '1.0'}, labels(0, 0))
      local ax = report.axis(0.4522, 0.5241, 4)
      assert.is_true(ax.lo <= 0.4522 and ax.hi >= 0.5241)
      -- the page: every y tick of every chart is a round number, none in the old 8.90e-04 style
      local h = history(4)
      for _, e in ipairs(h) do e.lr = 8.9e-4 end
      local html = report.render{history = h}
      local n = 0
      for label in html:gmatch('<text class="tick y"[^>]*>([^<]*)</text>') do
         n = n + 1
         assert.is_nil(label:find('e%-0'), label)
         local v = tonumber(label)
         local step = v ~= 0 and 10 ^ math.floor(math.log10(math.abs(v))) or 1
         assert.is_true(math.abs(v / step - math.floor(v / step + 0.5)) < 1e-9 or #label <= 6, label)
      end
      assert.is_true(n >= 12)
      assert.truthy(html:find('>0.0010</text>', 1, true))   -- the constant lr's axis: 0 to 0.0020
   end)

   it('shows the test metrics first, marks them and the stages on the curves, and times each phase', function()
      local h = history(6)
      for e, row in ipairs(h) do
         row.stage = e <= 2 and 1 or 2
         row.times = {data = 0.1 * e, forward = 0.5, backward = 1, update = 0.2, validation = 0.3}
      end
      local html = report.render{history = h, test = {split = 'test', loss = 0.3, accuracy = 0.9}}
      local test_at = html:find('<h2>Test (test split)</h2>', 1, true)
      local curves_at = html:find('<h2>Curves</h2>', 1, true)
      assert.truthy(test_at and curves_at and test_at < curves_at)
      assert.truthy(html:find('<th>accuracy</th><th>loss</th></tr><tr><td>0.9</td><td>0.3</td>', 1, true))
      local _, stages = html:gsub('<line class="stage"', '')
      assert.are.equal(3, stages)   -- loss, accuracy, learning rate
      local _, labels = html:gsub('<text class="stage"[^>]*>stage 2</text>', '')
      assert.are.equal(3, labels)
      local _, marks = html:gsub('<polygon class="test"', '')
      assert.are.equal(2, marks)    -- loss and accuracy; the learning rate has no test value
      local _, bars = html:gsub('<rect class="phase ', '')
      assert.are.equal(6 * 5, bars)
      assert.truthy(html:find('<rect class="phase data"[^>]*><title>epoch 6 data: 0.6 s</title>'))
      for _, col in ipairs{'stage', 'data s', 'forward s', 'backward s', 'update s', 'validation s'} do
         assert.truthy(html:find('<th>' .. col .. '</th>', 1, true), col)
      end
      -- the boundary sits between epochs 2 and 3 of the loss chart's x axis
      local x2 = tonumber(html:match('<text class="tick x" x="([%d.]+)" y="%d+" text%-anchor="middle">2</text>'))
      local x3 = tonumber(html:match('<text class="tick x" x="([%d.]+)" y="%d+" text%-anchor="middle">3</text>'))
      local xs = tonumber(html:match('<line class="stage" x1="([%d.]+)"'))
      assert.near((x2 + x3) / 2, xs, 0.2)
   end)

   it('fills the page width in headless Chromium', function()
      local browser = chromium()
      if not browser then return pending('chromium is not installed (apt-get install chromium)') end
      if not H.python_has('torchvision') then return pending('python3-torchvision is not installed (reads the PNG)') end
      local h = history(5)
      for _, row in ipairs(h) do row.times = {data = 0.1, forward = 0.5, backward = 1, update = 0.2} end
      local path = tmp .. '/wide.html'
      report.write(path, {title = 'wide', history = h})
      local png = tmp .. '/wide.png'
      local rc = H.run('env -u LD_PRELOAD timeout 120 ' .. browser .. ' --headless --no-sandbox --disable-gpu '
         .. '--user-data-dir=' .. tmp .. '/profile2 --hide-scrollbars --window-size=1600,1000 --screenshot=' .. png
         .. ' file://' .. path .. ' 2>/dev/null')
      assert.are.equal(0, rc)
      -- the rightmost pixel of a plot's fill (#fafafa): 440-pixel charts would end near x = 1370
      local out
      rc, out = H.run('/usr/bin/python3 spec/fixtures/png_extent.py ' .. png .. ' 250')
      assert.are.equal(0, rc, out)
      local right, width = out:match('(%d+) (%d+)')
      assert.are.equal(1600, tonumber(width))
      assert.is_true(tonumber(right) > 1500, out)
   end)
end)
