--- kbl data: looking at and converting data sources. SOURCE is fashion_mnist,
-- an image folder (one subfolder per class), a records directory (kbl data
-- pack), a .csv or .npy file, or a Lua file returning a source or an
-- experiment config (its `data`, and for show --augmented its transforms and
-- augmentations).
--
--   kbl data export fashion_mnist --out fmnist_png [--split train] [--limit n]
--   kbl data pack SOURCE --out DIR [--shard-mb 64] [--level -1]
--   kbl data info SOURCE_OR_CONFIG
--   kbl data show SOURCE_OR_CONFIG [--split train] [-n 64] [--augmented] -o grid.html (or grid.png)
local M = {summary = 'Export, pack, describe and show data sources.'}

function M.describe(cmd)
   cmd:command_target('data_command')
   local ex = cmd:command('export', 'Write a source split as PNG files, one folder per class.')
   ex:argument('source', 'The source (fashion_mnist, a folder, a file, a Lua source or config).')
   ex:option('--out', 'The folder to write.'):count(1)
   ex:option('--format', 'Image format (png).', 'png'):choices{'png'}
   ex:option('--split', 'The split to write.', 'train')
   ex:option('--limit', 'Write only the first n images.'):convert(tonumber)
   ex:option('--channels', 'For image folders: 1 (grey) or 3 (RGB).'):convert(tonumber)
   local pk = cmd:command('pack', 'Write a source as zstd-compressed record shards.')
   pk:argument('source', 'The source (fashion_mnist, a folder, a file, a Lua source or config).')
   pk:option('--out', 'The directory to write.'):count(1)
   pk:option('--shard-mb', 'Shard size in MiB of uncompressed records.', '64'):convert(tonumber)
   pk:option('--level', 'zstd level: -1 (the default, zstd --fast=1) and lower read fastest; 1 to 19 make '
      .. 'smaller shards that are slower to read.', '-1'):convert(function(v)
      local n = tonumber(v)
      if n and n == math.floor(n) then return n end
      return nil, '--level must be a whole number (a zstd level), got ' .. v
   end)
   pk:option('--channels', 'For image folders: 1 (grey) or 3 (RGB).'):convert(tonumber)
   pk:option('--size', 'For image folders: resize to HxW (or N).')
   local inf = cmd:command('info', 'Print splits, counts per class, shapes, dtypes and value ranges.')
   inf:argument('source', 'The source or an experiment config.')
   inf:option('--channels', 'For image folders: 1 (grey) or 3 (RGB).'):convert(tonumber)
   local sh = cmd:command('show', 'Write an HTML page with a grid of samples and their classes.')
   sh:argument('source', 'The source or an experiment config.')
   sh:option('--split', 'The split to show.', 'train')
   sh:option('-n', 'How many samples.', '64'):convert(tonumber)
   sh:flag('--augmented', "After the config's transforms and augmentations (training pipeline).")
   sh:option('-o --output', 'The page to write (.html), or one grid image (.png).'):count(1)
   sh:option('--channels', 'For image folders: 1 (grey) or 3 (RGB).'):convert(tonumber)
end

-- {source =, config = parts or nil} for SOURCE.
local function resolve(name, args)
   local data = require 'kbl.data'
   local fs = require 'kbl.io.fs'
   if name == 'fashion_mnist' or name == 'fashion-mnist' then return {source = data.fashion_mnist{validation = 0}} end
   if fs.is_dir(name) then
      if fs.exists(name .. '/index.json') and data.records then return {source = data.records{dir = name}} end
      local size
      if args.size then
         local h, w = args.size:match('^(%d+)x(%d+)$')
         size = h and {tonumber(h), tonumber(w)} or tonumber(args.size)
         if not size then error('--size must be N or HxW, got ' .. args.size, 0) end
      end
      return {source = data.image_folder{root = name, channels = args.channels, size = size}}
   end
   if not fs.exists(name) then error('kbl data: cannot find the source ' .. name, 0) end
   if name:match('%.csv$') then return {source = data.csv{path = name}} end
   if name:match('%.npy$') then
      local x = data.npy(name)
      return {source = data.tensors{name = name, train = {x = x}}}
   end
   if name:match('%.lua$') then
      local chunk, err = loadfile(name)
      if not chunk then error(err, 0) end
      local ok, v = pcall(chunk)
      if ok and type(v) == 'table' and getmetatable(v) == data.Source then return {source = v} end
      -- an experiment config: build its data (and its steps, for show --augmented)
      local config = require 'kbl.config'
      local cfg, origins = config.load({name})
      local parts, undo = require('kbl.config.experiment').build(cfg, origins)
      undo()
      return {source = parts.source, config = parts}
   end
   error('kbl data: ' .. name .. ' is not a source kbl knows (fashion_mnist, a folder, .csv, .npy or .lua)', 0)
end
M.resolve = resolve

-- Folder-safe class name: 'T-shirt/top' -> 'T-shirt_top'.
local function safe(name) return (tostring(name):gsub('[/\\%z]', '_'):gsub('^%.', '_')) end

local function export(args)
   local kbl = require 'kbl'
   local fs = require 'kbl.io.fs'
   local ffi = require 'ffi'
   local C = require('kbl.lib').C
   local T = require 'kbl.tensor'
   local r = resolve(args.source, args)
   local src = r.source
   local names = src.meta.class_names or {}
   local out = args.out:gsub('/+$', '')
   fs.mkdir_p(out)
   local limit = args.limit or math.huge
   local pipe = src:split(args.split):batch(256)
   local written, made, width = 0, {}, #tostring(math.min(src:size(args.split), limit))
   for b in pipe:iter() do
      if written >= limit then break end
      kbl.scope(function()
         local x = b.x
         if x:dim() == 2 then x = x:view(x:size(1), 1, 1, x:size(2)) end
         if x:dim() == 3 then x = x:view(x:size(1), 1, x:size(2), x:size(3)) end
         -- uint8 (data.fashion_mnist{raw = true}) as it is; floats in [0, 1] rounded (to() truncates)
         local u8 = x.dtype == 'uint8' and x or (x * 255 + 0.5):clamp(0, 255):to('uint8')
         local ys = b.y and b.y:tolist() or {}
         for i = 1, x:size(1) do
            if written >= limit then break end
            local label = ys[i]
            local dir = out .. '/' .. safe(label and (names[label] or label) or 'all')
            if not made[dir] then fs.mkdir_p(dir) made[dir] = true end
            written = written + 1
            local path = string.format('%s/%0' .. width .. 'd.png', dir, written)
            if C.kbl_data_image_write(path, T.live(u8:select(1, i))) ~= 0 then
               error(ffi.string(C.kbl_last_error()), 0)
            end
         end
      end)
   end
   pipe:close()
   print(string.format('wrote %d images of %s/%s to %s', written, args.source, args.split, out))
end

function M.run(args)
   local cmd = args.data_command
   if cmd == 'export' then return export(args) end
   local impl = require('kbl.data.tools')
   return impl[cmd](args, resolve)
end

return M
