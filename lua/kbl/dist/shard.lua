--- kbl.dist.shard: a pipeline step, right after batch(), that keeps this
-- rank's rows of every global batch: rank r of N takes rows
-- [floor(r B / N), floor((r + 1) B / N)) of a batch of B rows. Every rank
-- reads the same shuffled order, so the samples a step sees do not depend on
-- N; a lazy batch keeps only its rows' element ids, so each rank loads and
-- augments its own rows only (augmentations draw by element id, so they do
-- not depend on N either).
--
--   pipe = shard(src:split('train'):shuffle{seed = 1}:batch(128), rank, world)
local Pipeline = require 'kbl.data.pipeline'
local B = require 'kbl.data.base'

local M = {}

-- The rows [first, first + count) rank takes of a batch of n rows.
function M.rows(n, rank, world)
   local first = math.floor(rank * n / world)
   return first, math.floor((rank + 1) * n / world) - first
end

local function slice_ids(arr, first, count)
   if arr == nil then return nil end
   local out = B.i64arr(count)
   for i = 0, count - 1 do out[i] = arr[first + i] end
   return out
end

local function take(item, rank, world, allow_empty)
   local first, count = M.rows(item.n, rank, world)
   if count == 0 and allow_empty then return nil end
   if count == 0 then
      error(string.format('kbl.dist: a batch of %d rows cannot be split over %d processes (each needs a row); '
         .. 'use drop_remainder = true or a batch_size of at least %d', item.n, world, world), 0)
   end
   if item.lazy then
      return {batch = true, lazy = true, base = item.base, n = count, ids = slice_ids(item.ids, first, count),
         epochs = slice_ids(item.epochs, first, count), ops = item.ops}
   end
   local function rows(t) return t and t:narrow(1, first + 1, count):contiguous() or nil end
   return {batch = true, x = rows(item.x), y = rows(item.y), n = count, ids = slice_ids(item.ids, first, count),
      epochs = slice_ids(item.epochs, first, count)}
end

-- The step: prev must be batched; rank counts from 0. opts.allow_empty: a
-- batch with no row for this rank is left out (evaluation; training needs a
-- row on every rank, as every rank takes every step).
function M.shard(prev, rank, world, opts)
   if not prev.batched then error('kbl.dist: shard needs batch() before it', 2) end
   local allow_empty = opts and opts.allow_empty or false
   local node = Pipeline.derive(prev, {rank = rank, world = world, allow_empty = allow_empty,
      same_count = not allow_empty})
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local s = Pipeline.stream(up, function(st)
         while true do
            local item = up:next()
            if item == nil then return nil end
            st.epoch = up.epoch
            local mine = take(item, self.rank, self.world, self.allow_empty)
            if mine then return mine end
         end
      end, function(_, n) return up:skip(n) end)
      s.base = up.base
      return s
   end
   function node:_count()
      if self.allow_empty then return nil end
      return self.parent:_count()
   end
   function node:_fingerprint()
      return self.parent:_fingerprint() .. ';shard(' .. self.rank .. ',' .. self.world .. ')'
   end
   function node:_describe() return 'shard(' .. self.rank .. ' of ' .. self.world .. ')' end
   return node
end

return M
