--- kbl.data.fashion_mnist: Zalando's Fashion-MNIST from Debian's
-- dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), or another
-- directory holding the four IDX files, gzip-compressed or not.
--
--   local src = data.fashion_mnist{validation = 5000, dir = '/usr/share/datasets/fashion-mnist'}
--   src.meta.class_names[label]     -- labels are int64 1..10 (the files count from 0)
--
-- Images are float32 in [0, 1] shaped [1, 28, 28]: the rows stay bytes in memory
-- and become floats (x / 255) when a batch is gathered. With raw = true they
-- stay uint8 0..255, as the files store them, for a model whose preprocess
-- converts them (blocks.Normalize), so an exported model takes the bytes too.
-- The validation split is the last `validation` images of the training file
-- (default 5000).
local B = require 'kbl.data.base'
local Source = require 'kbl.data.source'
local idx = require 'kbl.data.idx'

local DEFAULT_DIR = '/usr/share/datasets/fashion-mnist'
local FILES = {
   train_x = 'train-images-idx3-ubyte', train_y = 'train-labels-idx1-ubyte',
   test_x = 't10k-images-idx3-ubyte', test_y = 't10k-labels-idx1-ubyte',
}
local ORDER = {'train_x', 'train_y', 'test_x', 'test_y'}
local CLASS_NAMES = {'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
   'Ankle boot'}

local exists = require('kbl.io.fs').exists
local check_options = require 'kbl.options'

-- The path of each file (plain or .gz), or an error listing what was looked for.
local function find(dir)
   local found, looked, missing = {}, {}, false
   for _, k in ipairs(ORDER) do
      for _, suffix in ipairs{'', '.gz'} do
         local p = dir .. '/' .. FILES[k] .. suffix
         looked[#looked + 1] = p
         if not found[k] and exists(p) then found[k] = p end
      end
      missing = missing or not found[k]
   end
   if missing then
      error('data.fashion_mnist: missing files in ' .. dir .. '; looked for:\n  ' .. table.concat(looked, '\n  ')
         .. '\n`apt-get install dataset-fashion-mnist` provides them in ' .. DEFAULT_DIR, 0)
   end
   return found
end

local function read(files)
   local function images(path)
      local t = idx.read(path)
      if t:dim() ~= 3 or t:size(2) ~= 28 or t:size(3) ~= 28 or t.dtype ~= 'uint8' then
         error('data.fashion_mnist: ' .. path .. ': expected uint8 images [N, 28, 28], got '
            .. t.dtype .. ' ' .. table.concat(t:size(), 'x'), 0)
      end
      return t:view(t:size(1), 1, 28, 28)
   end
   local function labels(path, n)
      local t = idx.read(path, {labels = true, num_classes = 10})
      if t:size(1) ~= n then
         error(string.format('data.fashion_mnist: %s holds %d labels for %d images', path, t:size(1), n), 0)
      end
      return t
   end
   local d = {train_x = images(files.train_x), test_x = images(files.test_x)}
   d.train_y = labels(files.train_y, d.train_x:size(1))
   d.test_y = labels(files.test_y, d.test_x:size(1))
   return d
end

--- Fashion-MNIST from Debian's dataset-fashion-mnist (or another directory of the four IDX files).
-- @tparam[opt] table o {validation = 5000 (the last images of the training file), dir =
-- '/usr/share/datasets/fashion-mnist', raw = false (true: uint8 images, as stored)}
-- @treturn table a source: images float32 [1, 28, 28] in [0, 1], labels 1..10, meta.class_names
-- @usage local src = data.fashion_mnist{validation = 5000}
return function(o)
   o = o or {}
   check_options('data.fashion_mnist', o, {'dir', 'validation', 'raw'})
   local dir = o.dir or DEFAULT_DIR
   local files = find(dir)
   local d = read(files)
   local x_dtype = o.raw and 'uint8' or 'float32'
   local function base(x, y, name)
      return B.new{x = x, y = y, x_dtype = x_dtype, x_scale = o.raw and 1 or 1 / 255, name = name}
   end
   local splits = Source.carve({train = base(d.train_x, d.train_y, 'fashion_mnist/train'),
      test = base(d.test_x, d.test_y, 'fashion_mnist/test')}, o.validation or 5000, 'fashion_mnist')
   return Source.new{name = 'fashion_mnist', splits = splits, meta = {
      num_classes = 10, class_names = CLASS_NAMES, shapes = {x = {1, 28, 28}, y = {}},
      dtypes = {x = x_dtype, y = 'int64'}, dir = dir,
   }}
end
