-- report: report.html is one self-contained page (no script, nothing fetched)
-- with the config, the model summary and SVG curves per quantity and split; it
-- is rendered with headless Chromium (pending when chromium is absent) and the
-- rendered DOM must hold the curves with their points.
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
      assert.are.equal(3, svgs)
      assert.truthy(dom:find('return {epochs = 5}', 1, true))
      assert.truthy(dom:find('Dense 4 -&gt; 2', 1, true))
      -- and it paints: a screenshot is written
      local png = tmp .. '/render.png'
      rc = H.run(cmd .. ' --window-size=1000,800 --screenshot=' .. png .. ' file://' .. path)
      assert.are.equal(0, rc)
      assert.are.equal('\137PNG', slurp(png):sub(1, 4))
   end)
end)
