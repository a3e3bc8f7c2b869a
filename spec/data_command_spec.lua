-- `kbl data pack`, `info` and `show` end to end, on a tiny generated image folder;
-- the page from show is rendered in headless Chromium.
local H = require 'helper'
local kbl = require 'kbl'
local ffi = require 'ffi'
local T = require 'kbl.tensor'
local C = kbl.lib.C

local function chromium()
   for _, name in ipairs{'chromium', 'chromium-browser', 'google-chrome'} do
      if H.run('command -v ' .. name .. ' >/dev/null') == 0 then return name end
   end
end

describe('kbl data', function()
   local tmp, root
   setup(function()
      tmp = H.tmpdir()
      root = tmp .. '/pics'
      -- 3 classes, 4, 2 and 3 images of 6x5 pixels; grey levels spread over 10..250
      local counts = {cats = 4, dogs = 2, owls = 3}
      for name, n in pairs(counts) do
         os.execute('mkdir -p ' .. root .. '/' .. name)
         for i = 1, n do
            local t = (kbl.arange(30):view(1, 6, 5) * 8 + 10):to('uint8')
            assert(C.kbl_data_image_write(string.format('%s/%s/%d.png', root, name, i), T.live(t)) == 0,
               ffi.string(C.kbl_last_error()))
         end
      end
   end)
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('info prints splits, counts per class, shapes, dtype and value range', function()
      local rc, out, err = H.kbl('data info ' .. root .. ' --channels 1', tmp)
      assert.are.equal(0, rc, err)
      assert.matches('x: float32 [1, 6, 5]', out, 1, true)
      assert.matches('y: int64 []', out, 1, true)
      assert.matches('classes: 3', out, 1, true)
      assert.matches('train%s+9%s+%[0%.0392157, 0%.94902%]', out)
      assert.matches('1%s+cats%s+4\n', out)
      assert.matches('2%s+dogs%s+2\n', out)
      assert.matches('3%s+owls%s+3', out)
      local _
      rc, _, err = H.kbl('data info ' .. tmp .. '/nothing', tmp)
      assert.are.equal(1, rc)
      assert.matches('cannot find the source', err, 1, true)
   end)

   it('pack writes records that info reads back the same', function()
      local rc, out, err = H.kbl('data pack ' .. root .. ' --channels 1 --out ' .. tmp .. '/rec', tmp)
      assert.are.equal(0, rc, err)
      assert.matches('train 9 records in 1 shard', out, 1, true)
      local rc2, out2 = H.kbl('data info ' .. tmp .. '/rec', tmp)
      assert.are.equal(0, rc2)
      assert.matches('source: records', out2, 1, true)
      assert.matches('train%s+9%s+%[0%.0392157, 0%.94902%]', out2)
      assert.matches('2%s+dogs%s+2\n', out2)
      -- packing over existing records is refused
      local _
      rc, _, err = H.kbl('data pack ' .. root .. ' --out ' .. tmp .. '/rec', tmp)
      assert.are.equal(1, rc)
      assert.matches('already holds records', err, 1, true)
      -- a zstd level, negative written either way; one zstd lacks is named
      for i, level in ipairs{'--level -3', '--level=-3', '--level 19'} do
         local out_dir = tmp .. '/rec_level' .. i
         rc, _, err = H.kbl('data pack ' .. root .. ' --channels 1 --out ' .. out_dir .. ' ' .. level, tmp)
         assert.are.equal(0, rc, level .. ': ' .. err)
         local rc3, out3 = H.kbl('data info ' .. out_dir, tmp)
         assert.are.equal(0, rc3)
         assert.matches('train%s+9%s+%[0%.0392157, 0%.94902%]', out3)
      end
      rc, _, err = H.kbl('data pack ' .. root .. ' --out ' .. tmp .. '/rec_bad --level 99', tmp)
      assert.are.equal(1, rc)
      assert.matches("zstd level 99 is outside zstd's", err, 1, true)
      rc, _, err = H.kbl('data pack ' .. root .. ' --out ' .. tmp .. '/rec_bad --level 2.5', tmp)
      assert.are.equal(2, rc)
      assert.matches('--level must be a whole number (a zstd level), got 2.5', err, 1, true)
   end)

   it('show writes a self-contained page of samples with their classes, which Chromium renders', function()
      local page = tmp .. '/grid.html'
      local rc, out, err = H.kbl('data show ' .. root .. ' --channels 1 -n 6 -o ' .. page, tmp)
      assert.are.equal(0, rc, err)
      assert.matches('wrote 6 samples', out, 1, true)
      local html = H.read(page)
      local imgs = 0
      for _ in html:gmatch('src="data:image/png;base64,') do imgs = imgs + 1 end
      assert.are.equal(6, imgs)
      assert.is_nil(html:find('<script', 1, true))
      assert.is_nil(html:find('http', 1, true))
      local browser = chromium()
      if not browser then return pending('chromium is not installed (apt-get install chromium)') end
      local cmd = 'env -u LD_PRELOAD timeout 120 ' .. browser .. ' --headless --no-sandbox --disable-gpu '
         .. '--user-data-dir=' .. tmp .. '/profile'
      -- the DOM after loading: every image decoded (naturalWidth 5) and captioned
      local probe = tmp .. '/probe.html'
      H.write(probe, html:gsub('</body>', '<pre id="probe"></pre><script>window.onload=function(){'
         .. 'var s=[];document.querySelectorAll("figure").forEach(function(f){var i=f.querySelector("img");'
         .. 's.push(i.naturalWidth+"x"+i.naturalHeight+":"+f.querySelector("figcaption").textContent)});'
         .. 'document.getElementById("probe").textContent=s.join("|")}</script></body>'))
      local rc2, dom = H.run(cmd .. ' --virtual-time-budget=5000 --dump-dom file://' .. probe .. ' 2>/dev/null')
      assert.are_not.equal(124, rc2, 'chromium did not finish within 120 s')
      assert.are.equal(0, rc2, dom)
      local got = dom:match('<pre id="probe">([^<]*)</pre>')
      assert.truthy(got, dom:sub(1, 300))
      local n = 0
      for cell in got:gmatch('[^|]+') do
         n = n + 1
         assert.matches('^5x6:%a+ %(%d%)$', cell)
      end
      assert.are.equal(6, n)
   end)

   it('show -o grid.png tiles the samples in one image and prints their classes row by row', function()
      local png = tmp .. '/grid.png'
      local rc, out, err = H.kbl('data show ' .. root .. ' --channels 1 -n 6 -o ' .. png, tmp)
      assert.are.equal(0, rc, err)
      assert.matches('wrote 6 samples to ' .. png .. ' (2 x 3 grid)', out, 1, true)
      local rows = {}
      for l in out:gmatch('row %d: ([^\n]*)') do rows[#rows + 1] = l end
      assert.are.equal(2, #rows)
      for _, l in ipairs(rows) do assert.matches('^%a+ %(%d%), %a+ %(%d%), %a+ %(%d%)$', l) end
      -- 3 columns of 5 and 2 rows of 6 pixels, 2 apart on white; every cell the sample
      local g = T.wrap(C.kbl_data_image_read(png, 1))
      assert.are.same({1, 2 * 8 + 2, 3 * 7 + 2}, g:size())
      local sample = (kbl.arange(30):view(1, 6, 5) * 8 + 10):to('uint8')
      local white = 0
      for r = 0, 1 do
         for q = 0, 2 do
            assert.are.equal(H.bytes(sample), H.bytes(g:narrow(2, 3 + r * 8, 6):narrow(3, 3 + q * 7, 5)))
         end
      end
      for _, v in ipairs(g:view(-1):tolist()) do if v == 255 then white = white + 1 end end
      assert.are.equal(18 * 23 - 6 * 30, white)
   end)

   it('show --augmented runs a config\'s augmentations; plain sources are refused', function()
      local cfg = H.write(tmp .. '/exp.lua', string.format([[
return {
   extends = 'fit',
   data = data.image_folder{root = %q, channels = 1},
   augment = {{'random_crop', {size = 4}}},
   model = blocks.Sequential{blocks.Flatten{}, blocks.Dense{3}},
   optimizer = optim.SGD{lr = 0.1},
}]], root))
      local page = tmp .. '/aug.html'
      local rc, out, err = H.kbl('data show ' .. cfg .. ' --augmented -n 5 -o ' .. page, tmp)
      assert.are.equal(0, rc, err)
      assert.matches('wrote 5 samples', out, 1, true)
      assert.matches('x float32 [1, 4, 4]', H.read(page), 1, true)
      local _
      rc, _, err = H.kbl('data show ' .. root .. ' --augmented -o ' .. page, tmp)
      assert.are.equal(1, rc)
      assert.matches('needs an experiment config', err, 1, true)
   end)
end)
