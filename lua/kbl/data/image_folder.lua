--- kbl.data.image_folder: a source over a folder of images, one subfolder per
-- class. Memory holds the file names; PNG, JPEG and BMP files are decoded by
-- stb_image in C when a batch is made (on the prefetch threads with
-- :prefetch(n, {threads = k})), after shuffling.
--
--   local src = data.image_folder{root = 'pets', channels = 3, size = {64, 64}, crop = 56,
--      validation = 0.1, seed = 1}
--   src.meta.class_names     -- the sorted subfolder names; labels 1..C in that order
--
-- Options: channels 1 (grey) or 3 (RGB, default); size = n or {h, w} resizes
-- every image bilinearly (default: every image must have the first one's size);
-- crop = n or {h, w} center-crops after resizing (random crops: the pipeline's
-- random_crop); validation / test = a fraction of each class, drawn from seed,
-- or splits = {validation = 'val.txt', test = 'test.txt'}: files listing the
-- paths (relative to root, as cat/001.png) of those splits, the rest is train;
-- skip_bad = true leaves a corrupt or unreadable file out of its batch and
-- reports the count at the end of the epoch instead of stopping.
local ffi = require 'ffi'
local kbl = require 'kbl'
local lib = require 'kbl.lib'
local B = require 'kbl.data.base'
local Source = require 'kbl.data.source'
local fs = require 'kbl.io.fs'
local check_options = require 'kbl.options'
local C = lib.C

local EXTENSIONS = {png = true, jpg = true, jpeg = true, bmp = true}

local function fail(msg) error('data.image_folder: ' .. msg, 0) end
local function raise() error(ffi.string(C.kbl_last_error()), 0) end

-- The entries of a directory: dirs, files (sorted lists of names).
local function list(path)
   local need = C.kbl_data_list_dir(path, nil, 0)
   if need < 0 then raise() end
   local buf = ffi.new('char[?]', need + 1)
   local got = C.kbl_data_list_dir(path, buf, need + 1)
   if got < 0 then raise() end
   local dirs, files = {}, {}
   for line in ffi.string(buf, math.min(tonumber(got), tonumber(need))):gmatch('[^\n]+') do
      local t = line:sub(1, 1) == 'd' and dirs or files
      t[#t + 1] = line:sub(2)
   end
   table.sort(dirs)
   table.sort(files)
   return dirs, files
end
local function pair(v, what)
   if v == nil then return nil end
   if type(v) == 'number' and v >= 1 and v % 1 == 0 then return v, v end
   if type(v) == 'table' and #v == 2 and type(v[1]) == 'number' and type(v[2]) == 'number' and v[1] >= 1
      and v[2] >= 1 and v[1] % 1 == 0 and v[2] % 1 == 0 then
      return v[1], v[2]
   end
   fail(what .. ' must be a positive integer or a list {h, w} of two, got ' .. tostring(v))
end

local function fraction(v, what)
   if v == nil then return 0 end
   if type(v) ~= 'number' or v < 0 or v >= 1 then fail(what .. ' must be a fraction in [0, 1), got ' .. tostring(v)) end
   return v
end

-- The relative paths a split list file names (one a line; blank lines and # comments skipped).
local function read_list(root, name, file)
   local path = file:sub(1, 1) == '/' and file or (fs.exists(file) and file or root .. '/' .. file)
   local f, err = io.open(path, 'r')
   if not f then fail("splits." .. name .. ": cannot read " .. file .. ' (' .. tostring(err) .. ')') end
   local set, n = {}, 0
   for line in f:lines() do
      line = line:gsub('^%s+', ''):gsub('%s+$', '')
      if line ~= '' and not line:match('^#') then
         set[line:gsub('^%./', '')] = true
         n = n + 1
      end
   end
   f:close()
   return set, n, path
end

local function make_base(name, paths, labels, o)
   local n = #paths
   local cpaths = ffi.new('const char *[?]', math.max(n, 1))
   for i = 1, n do cpaths[i - 1] = paths[i] end
   local im = C.kbl_data_images_new(n, cpaths, o.channels, o.h, o.w, o.resize and 1 or 0, o.crop_h, o.crop_w,
      o.skip_bad and 1 or 0)
   if im == nil then raise() end
   ffi.gc(im, C.kbl_data_images_free)
   local y = kbl.keep(kbl.tensor(n > 0 and labels or {0}, {dtype = 'int64'}))
   if n == 0 then y = kbl.keep(y:narrow(1, 1, 0)) end
   local base = {n = n, images = im, y = y, name = name, paths = paths, x_dtype = lib.dtype_id('float32'), x_scale = 1}
   base.fp = 'images:' .. B.hash_string(table.concat(paths, '\n') .. '|' .. table.concat({o.channels, o.h, o.w,
      tostring(o.resize), o.crop_h, o.crop_w, tostring(o.skip_bad)}, ','))
   -- one row, decoded now (map or filter before batch())
   base.element = function(b, id, epoch)
      local ids, eps = B.i64arr(1), B.i64arr(1)
      ids[0], eps[0] = id, epoch or 0
      local r = B.run{batch = true, lazy = true, base = b, n = 1, ids = ids, epochs = eps, ops = {}}
      if r.x:size(1) == 0 then fail(b.paths[id + 1] .. ' was skipped (skip_bad): map and filter need batch() first') end
      return {x = r.x:select(1, 1), y = tonumber(labels[id + 1]), id = id, epoch = epoch}
   end
   base.on_epoch_end = function(b, epoch, pipe)
      local msg = ffi.new('char[1200]')
      local k = tonumber(C.kbl_data_images_take_skipped(b.images, msg, 1200))
      pipe.skipped = k
      if k > 0 then
         io.stderr:write(string.format('data.image_folder: %s: skipped %d unreadable image%s in epoch %d (skip_bad); '
            .. 'the first: %s\n', b.name, k, k == 1 and '' or 's', epoch, ffi.string(msg)))
      end
   end
   return base
end

--- A source over a folder of images, one subfolder per class (PNG, JPEG, BMP decoded in C when batched).
-- @tparam table o {root, channels = 3, size = n or {h, w} (resize), crop = n or {h, w} (center crop),
-- validation = a fraction, test = a fraction, seed, splits = {validation = 'val.txt', test = ...},
-- skip_bad = false}
-- @treturn table a source; meta.class_names the sorted subfolder names, labels 1..C in that order
-- @usage local src = data.image_folder{root = 'pets', size = {64, 64}, validation = 0.1}
return function(o)
   if type(o) ~= 'table' then fail('expects a table of options {root = DIR, ...}') end
   check_options('data.image_folder', o, {'root', 'channels', 'size', 'crop', 'validation', 'test', 'seed',
      'splits', 'skip_bad', 'name'})
   local root = o.root
   if type(root) ~= 'string' or root == '' then fail('root must be a directory name, got ' .. tostring(root)) end
   root = root:gsub('/+$', '')
   if not fs.is_dir(root) then fail(root .. ' is not a directory') end
   local channels = o.channels or 3
   if channels ~= 1 and channels ~= 3 then fail('channels must be 1 (grey) or 3 (RGB), got ' .. tostring(channels)) end
   if o.seed ~= nil and (type(o.seed) ~= 'number' or o.seed % 1 ~= 0 or o.seed < 0) then
      fail('seed must be a non-negative integer, got ' .. tostring(o.seed))
   end
   local vfrac, tfrac = fraction(o.validation, 'validation'), fraction(o.test, 'test')
   if vfrac + tfrac >= 1 then fail('validation + test must leave some training images') end
   if o.splits ~= nil and (vfrac > 0 or tfrac > 0) then
      fail('give splits = {...} or validation/test fractions, not both')
   end

   -- classes and files
   local classes = list(root)
   if #classes == 0 then fail(root .. ' has no subfolders: put each class in a folder of its own') end
   local files, labels, ignored = {}, {}, 0
   local per_class = {}
   for c, name in ipairs(classes) do
      local _, names = list(root .. '/' .. name)
      per_class[c] = {}
      for _, f in ipairs(names) do
         local ext = (f:match('%.([^.]+)$') or ''):lower()
         if EXTENSIONS[ext] then
            per_class[c][#per_class[c] + 1] = #files + 1
            files[#files + 1] = name .. '/' .. f
            labels[#labels + 1] = c
         else
            ignored = ignored + 1
         end
      end
   end
   if #files == 0 then fail(root .. ' holds no .png, .jpg, .jpeg or .bmp files in its class folders') end

   -- the size every image becomes
   local h, w = pair(o.size, 'size')
   local resize = h ~= nil
   if not resize then
      local info = ffi.new('int64_t[3]')
      if C.kbl_data_image_info(root .. '/' .. files[1], info) ~= 0 then raise() end
      h, w = tonumber(info[1]), tonumber(info[2])
   end
   local ch, cw = pair(o.crop, 'crop')
   if ch and (ch > h or cw > w) then
      fail(string.format('crop %dx%d is larger than the images (%dx%d)', ch, cw, h, w))
   end
   local opts = {channels = channels, h = h, w = w, resize = resize, crop_h = ch or 0, crop_w = cw or 0,
      skip_bad = o.skip_bad and true or false}

   -- splits: listed in files, or fractions of each class
   local split_of = {}
   if o.splits ~= nil then
      if type(o.splits) ~= 'table' then fail('splits must be a table {validation = FILE, test = FILE}') end
      check_options('data.image_folder: splits', o.splits, {'validation', 'test'})
      local known = {}
      for _, f in ipairs(files) do known[f] = true end
      for _, sname in ipairs{'validation', 'test'} do
         if o.splits[sname] then
            local set, _, path = read_list(root, sname, o.splits[sname])
            for rel in pairs(set) do
               if not known[rel] then fail(path .. ' lists ' .. rel .. ', which is not an image under ' .. root) end
            end
            for i, f in ipairs(files) do if set[f] then split_of[i] = sname end end
         end
      end
   elseif vfrac > 0 or tfrac > 0 then
      local seed = o.seed or 0
      for c, idxs in ipairs(per_class) do
         local n = #idxs
         local nv, nt = math.floor(n * vfrac + 0.5), math.floor(n * tfrac + 0.5)
         if n > 0 then
            local perm = kbl.keep(B.check(C.kbl_data_permutation(n, seed, 7, c)))
            local pp = ffi.cast('int64_t *', C.kbl_data_ptr(require('kbl.tensor').live(perm)))
            for k = 0, n - 1 do
               local i = idxs[tonumber(pp[k]) + 1]
               if k < nv then split_of[i] = 'validation' elseif k < nv + nt then split_of[i] = 'test' end
            end
         end
      end
   end
   local parts = {train = {{}, {}}}
   for i, f in ipairs(files) do
      local s = split_of[i] or 'train'
      parts[s] = parts[s] or {{}, {}}
      local p = parts[s]
      p[1][#p[1] + 1] = root .. '/' .. f
      p[2][#p[2] + 1] = labels[i]
   end
   local name = o.name or 'image_folder'
   local splits = {}
   for s, p in pairs(parts) do splits[s] = make_base(name .. '/' .. s, p[1], p[2], opts) end
   return Source.new{name = name, splits = splits, meta = {
      num_classes = #classes, class_names = classes, root = root, ignored = ignored,
      shapes = {x = {channels, ch or h, cw or w}, y = {}}, dtypes = {x = 'float32', y = 'int64'},
   }}
end
