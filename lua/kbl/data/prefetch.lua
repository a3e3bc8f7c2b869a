--- kbl.data.prefetch: prefetch(n, {threads = 1}) keeps the next n items under way.
-- Lazy batches (gather plus augmentation kernels, all C) run on background C
-- threads while the training step runs; results come back in order, so the
-- batches are the same as without prefetch, whatever n or the thread count.
-- Lua functions (map, filter) cannot leave the Lua thread: items they made are
-- only queued.
local ffi = require 'ffi'
local lib = require 'kbl.lib'
local B = require 'kbl.data.base'
local Pipeline = require 'kbl.data.pipeline'
local C = lib.C

local out2 = ffi.typeof('kbl_tensor *[2]')

local function raise() error(ffi.string(C.kbl_last_error()), 0) end

--- Keeps the next n items under way: C batches (gather and augmentation kernels) on
-- background threads; results come back in order, the same batches as without it.
-- @param prev the pipeline
-- @tparam number n items ahead
-- @tparam[opt] table o {threads = 1}
-- @treturn table the pipeline
-- @usage p = p:batch(128):prefetch(2)
function Pipeline.prefetch(prev, n, o)
   n = n or 2
   Pipeline.check_count(n, 'prefetch depth')
   o = o or {}
   local threads = o.threads or 1
   Pipeline.check_count(threads, 'prefetch threads')
   local node = Pipeline.derive(prev, {ahead = n, threads = threads, same_count = true})
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local depth, nthreads = self.ahead, self.threads
      local q, head, tail, done = {}, 1, 1, false
      local pf
      local function fill()
         while not done and tail - head < depth do
            local item = up:next()
            if item == nil then
               done = true
               break
            end
            if type(item) == 'table' and item.lazy then
               if pf == nil then
                  pf = C.kbl_data_prefetcher_new(depth, nthreads)
                  if pf == nil then raise() end
                  ffi.gc(pf, C.kbl_data_prefetcher_free)
               end
               if C.kbl_data_prefetcher_submit(pf, B.job(item)) ~= 0 then raise() end
               q[tail] = {pending = true, n = item.n, ids = item.ids, epochs = item.epochs}
            else
               q[tail] = {item = item, epoch = up.epoch}
            end
            tail = tail + 1
         end
      end
      local s = Pipeline.stream(up, function(s)
         fill()
         if head == tail then return nil end
         local e = q[head]
         q[head] = nil
         head = head + 1
         local item
         if e.pending then
            local out = out2()
            if C.kbl_data_prefetcher_next(pf, out, out + 1) ~= 0 then raise() end
            local x, y = B.take_results(out)
            item = {batch = true, x = x, y = y, n = e.n, ids = e.ids, epochs = e.epochs}
         else
            item, s.epoch = e.item, e.epoch
         end
         fill() -- keep the threads busy while the caller uses this item
         return item
      end, function(s, k)
         if head == tail then return up:skip(k) end
         return Pipeline.default_skip(s, k)
      end)
      s.close = function()
         if pf ~= nil then
            ffi.gc(pf, nil)
            C.kbl_data_prefetcher_free(pf)
            pf = nil
         end
         if up.close then up:close() end
      end
      return s
   end
   function node:_count() return self.parent:_count() end
   function node:_fingerprint() return self.parent:_fingerprint() end
   function node:_describe() return 'prefetch(' .. self.ahead .. ')' end
   return node
end

return Pipeline
