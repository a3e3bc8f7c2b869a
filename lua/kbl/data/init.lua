--- kbl.data: data sources and pipelines. `local data = require 'kbl.data'`.
--
--   local src = data.fashion_mnist{validation = 5000}  -- src.meta, src:size('train')
--   local train = src:split('train'):shuffle{seed = 1}:batch(128)
--      :random_crop{size = 28, padding = 2}:random_flip{}:prefetch(2)
--   for batch in train:iter() do ... end    -- batch.x float32 [128, 1, 28, 28], batch.y int64 1..10
--
-- Sources: fashion_mnist, csv, tensors (tables or tensors in memory), generated,
-- image_folder (image files decoded on the prefetch threads) and records
-- (sharded record files streamed from disk, written by `kbl data pack`);
-- readers: idx (gzip or plain), npy. Pipelines (kbl.data.pipeline): shuffle,
-- map, filter, batch, repeat_, take, skip, cache (kbl.data.cache), prefetch
-- (kbl.data.prefetch) and the batched augmentations (kbl.data.augment).
-- Labels are 1..C everywhere; readers convert the 0-based labels of files.
local Pipeline = require 'kbl.data.pipeline'
require 'kbl.data.augment'
require 'kbl.data.prefetch'
require 'kbl.data.cache'

local data = {}

data.Pipeline = Pipeline
data.Source = require 'kbl.data.source'
data.idx = require 'kbl.data.idx'
data.csv = require 'kbl.data.csv'
data.npy = require 'kbl.data.npy'
data.tensors = require 'kbl.data.tensors'
data.tables = data.tensors
data.generated = require 'kbl.data.generated'
data.fashion_mnist = require 'kbl.data.fashion_mnist'
data.image_folder = require 'kbl.data.image_folder'
data.records = require 'kbl.data.records'

return data
