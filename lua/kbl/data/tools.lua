--- kbl.data.tools: what `kbl data pack`, `info` and `show` do (kbl/commands/data.lua
-- parses the arguments and finds the source).
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C

local M = {}

function M.pack(args, resolve)
   local r = resolve(args.source, args)
   local fs = require 'kbl.io.fs'
   if fs.exists(args.out .. '/index.json') then
      error('kbl data pack: ' .. args.out .. ' already holds records (index.json); choose another --out', 0)
   end
   local idx = require('kbl.data.records').pack(r.source, args.out, {shard_mb = args.shard_mb, level = args.level})
   local parts = {}
   for _, name in ipairs(r.source:splits()) do
      local list = idx.splits[name]
      if list then
         local n = 0
         for _, sh in ipairs(list) do n = n + sh.count end
         parts[#parts + 1] = string.format('%s %d records in %d shard%s', name, n, #list, #list == 1 and '' or 's')
      end
   end
   print('packed ' .. args.source .. ' into ' .. args.out .. ': ' .. table.concat(parts, ', '))
end

-- The batches of a split in order (at most limit rows; nil: all).
local function batches(src, split, limit)
   local p = src:split(split)
   if limit then p = p:take(limit) end
   return p:batch(1024)
end


function M.info(args, resolve)
   local r = resolve(args.source, args)
   local src = r.source
   local meta = src.meta
   local out = {}
   local function p(...) out[#out + 1] = string.format(...) end
   p('source: %s%s', src.name, r.config and (' (from the config ' .. args.source .. ')') or '')
   local xs = meta.shapes and meta.shapes.x or {}
   local ys = meta.shapes and meta.shapes.y
   p('x: %s [%s]', meta.dtypes and meta.dtypes.x or '?', table.concat(xs, ', '))
   if meta.dtypes and meta.dtypes.y then p('y: %s [%s]', meta.dtypes.y, table.concat(ys or {}, ', ')) end
   local names = meta.class_names or {}
   local nc = meta.num_classes or #names
   if nc > 0 then p('classes: %d', nc) end
   local counts, splits = {}, src:splits()
   p('%-12s %10s  %s', 'split', 'count', 'x range')
   local SAMPLE = 4096
   for _, split in ipairs(splits) do
      local base = src.bases[split]
      local n = src:size(split)
      local lo, hi, seen = math.huge, -math.huge, 0
      local cls = {}
      if base.x and kbl.is_tensor(base.x) then -- in memory: every row
         if n > 0 then
            lo = base.x:min():item() * base.x_scale
            hi = base.x:max():item() * base.x_scale
         end
         seen = n
      else -- decoded or streamed: a sample
         for b in batches(src, split, math.min(n, SAMPLE)):iter() do
            lo = math.min(lo, b.x:min():item())
            hi = math.max(hi, b.x:max():item())
            seen = seen + b.x:size(1)
         end
      end
      local y = base.y
      if y and kbl.is_tensor(y) and (y.dtype == 'int64' or y.dtype == 'int32') and y:dim() == 1 then
         for _, v in ipairs(y:tolist()) do cls[v] = (cls[v] or 0) + 1 end
      elseif meta.dtypes and meta.dtypes.y == 'int64' then
         for b in batches(src, split):iter() do
            if b.y and b.y:dim() == 1 then for _, v in ipairs(b.y:tolist()) do cls[v] = (cls[v] or 0) + 1 end end
         end
      end
      counts[split] = cls
      local range = n == 0 and '-' or string.format('[%.6g, %.6g]%s', lo, hi,
         seen < n and string.format(' (first %d)', seen) or '')
      p('%-12s %10d  %s', split, n, range)
   end
   if nc > 0 then
      local head = {string.format('%-5s %-20s', 'label', 'class')}
      for _, split in ipairs(splits) do head[#head + 1] = string.format('%10s', split) end
      p('%s', table.concat(head, ' '))
      for c = 1, nc do
         local row = {string.format('%-5d %-20s', c, tostring(names[c] or c))}
         for _, split in ipairs(splits) do row[#row + 1] = string.format('%10d', counts[split][c] or 0) end
         p('%s', table.concat(row, ' '))
      end
   end
   print(table.concat(out, '\n'))
end

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function base64(s)
   local out, bit = {}, require 'bit'
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      local q = {bit.rshift(n, 18), bit.band(bit.rshift(n, 12), 63), bit.band(bit.rshift(n, 6), 63), bit.band(n, 63)}
      out[#out + 1] = B64:sub(q[1] + 1, q[1] + 1) .. B64:sub(q[2] + 1, q[2] + 1)
         .. (b and B64:sub(q[3] + 1, q[3] + 1) or '=') .. (c and B64:sub(q[4] + 1, q[4] + 1) or '=')
   end
   return table.concat(out)
end

local function escape(s)
   return (tostring(s):gsub('[&<>"]', {['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;'}))
end

-- A sample x [C, H, W] (or [H, W], [D]) as uint8 [1 or 3, H, W]: uint8 and
-- values in [0, 1] as they are, others stretched from their min to their max.
local function u8_of(x)
   if x:dim() == 1 then x = x:view(1, 1, x:size(1)) end
   if x:dim() == 2 then x = x:view(1, x:size(1), x:size(2)) end
   if x:dim() > 3 then x = x:contiguous():view(x:size(1), x:size(x:dim() - 1), x:size(x:dim())) end
   if x:size(1) ~= 1 and x:size(1) ~= 3 then x = x:narrow(1, 1, 1) end
   local u8
   if x.dtype == 'uint8' then
      u8 = x:contiguous()
   else
      x = x:to('float32')
      local lo, hi = x:min():item(), x:max():item()
      if lo < 0 or hi > 1 then x = (x - lo) / math.max(hi - lo, 1e-12) end
      u8 = (x * 255 + 0.5):clamp(0, 255):to('uint8'):contiguous()
   end
   return u8
end

-- A sample as PNG bytes (see u8_of).
local function png_of(x)
   local u8 = u8_of(x)
   local n = C.kbl_data_image_png(T.live(u8), nil, 0)
   if n < 0 then error(ffi.string(C.kbl_last_error()), 0) end
   local buf = ffi.new('uint8_t[?]', n)
   C.kbl_data_image_png(T.live(u8), buf, n)
   return ffi.string(buf, n)
end

function M.show(args, resolve)
   local r = resolve(args.source, args)
   local src = r.source
   local n = args.n or 64
   if n < 1 then error('kbl data show: -n must be at least 1', 0) end
   local pipe
   if args.augmented then
      if not r.config then error('kbl data show --augmented needs an experiment config (its augment steps)', 0) end
      -- the trainer's training pipeline: shuffled, batched, transforms, then augmentations
      local parts = r.config
      local sh = type(parts.shuffle) == 'table' and parts.shuffle or {}
      pipe = src:split(args.split)
      if parts.shuffle ~= false then pipe = pipe:shuffle{seed = sh.seed or parts.seed or 1, buffer = sh.buffer} end
      pipe = pipe:batch(n)
      for _, steps in ipairs{parts.transforms or {}, parts.augment or {}} do
         for i, st in ipairs(steps) do
            if type(st) == 'function' then
               pipe = pipe:map(st, {batched = true})
            else
               local name = type(st) == 'table' and (st[1] or st.op)
               if type(name) ~= 'string' or not pipe[name] then
                  error(string.format("kbl data show: step %d names '%s', which a pipeline does not have", i,
                     tostring(name)), 0)
               end
               pipe = pipe[name](pipe, unpack(st, 2, table.maxn(st)))
            end
         end
      end
   else
      pipe = src:split(args.split):shuffle{seed = 1}:batch(n)
   end
   local batch = pipe:iter()()
   pipe:close()
   if not batch then error("kbl data show: the '" .. args.split .. "' split is empty", 0) end
   local names = src.meta.class_names or {}
   local ys = batch.y and batch.y:dim() == 1 and batch.y:tolist() or {}
   local function label_of(i)
      local y = ys[i]
      return y and (names[y] and (names[y] .. ' (' .. y .. ')') or tostring(y)) or ''
   end
   if args.output:lower():match('%.png$') then
      return M.show_png(args, batch, math.min(n, batch.x:size(1)), label_of)
   end
   local cells = {}
   local shape = batch.x:size()
   local k = math.min(n, batch.x:size(1))
   for i = 1, k do
      local png = kbl.scope(function() return png_of(batch.x:select(1, i)) end)
      local label = label_of(i)
      cells[#cells + 1] = string.format('<figure><img alt="%s" src="data:image/png;base64,%s">'
         .. '<figcaption>%s</figcaption></figure>', escape(label), base64(png), escape(label))
   end
   table.remove(shape, 1)
   local title = string.format('%s / %s: %d samples%s', args.source, args.split, k,
      args.augmented and ', augmented' or '')
   local html = table.concat({
      '<!DOCTYPE html><html><head><meta charset="utf-8"><title>', escape(title), '</title><style>',
      'body{font-family:sans-serif;margin:1em;background:#fafafa}',
      '.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(112px,1fr));gap:8px}',
      'figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px;text-align:center}',
      'img{width:96px;height:96px;image-rendering:pixelated;object-fit:contain}',
      'figcaption{font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}',
      '</style></head><body><h1>', escape(title), '</h1><p class="shape">x ', escape(batch.x.dtype), ' [',
      table.concat(shape, ', '), ']</p><div class="grid">', table.concat(cells), '</div></body></html>\n'})
   local f, err = io.open(args.output, 'wb')
   if not f then error('kbl data show: cannot write ' .. args.output .. ': ' .. tostring(err), 0) end
   f:write(html)
   f:close()
   print(string.format('wrote %d samples to %s', k, args.output))
end

-- show -o grid.png: the k samples tiled in one image, row by row on a white
-- ground 2 pixels apart; a PNG holds no text, so the class names are printed,
-- a line per row of the grid.
function M.show_png(args, batch, k, label_of)
   local cells = {}
   for i = 1, k do cells[i] = u8_of(batch.x:select(1, i)) end
   local c, h, w = cells[1]:size(1), cells[1]:size(2), cells[1]:size(3)
   local cols = math.ceil(math.sqrt(k))
   local rows = math.ceil(k / cols)
   local gap = 2
   local grid = kbl.full({c, rows * (h + gap) + gap, cols * (w + gap) + gap}, 255, {dtype = 'uint8'})
   local lines = {}
   for i = 1, k do
      local r, q = math.floor((i - 1) / cols), (i - 1) % cols
      grid:narrow(2, gap + r * (h + gap) + 1, h):narrow(3, gap + q * (w + gap) + 1, w):copy_(cells[i])
      lines[r + 1] = (lines[r + 1] and (lines[r + 1] .. ', ') or ('row ' .. (r + 1) .. ': ')) .. label_of(i)
   end
   if C.kbl_data_image_write(args.output, T.live(grid:contiguous())) ~= 0 then
      error('kbl data show: ' .. ffi.string(C.kbl_last_error()), 0)
   end
   print(string.format('wrote %d samples to %s (%d x %d grid)', k, args.output, rows, cols))
   for _, l in ipairs(lines) do print(l) end
end

return M
