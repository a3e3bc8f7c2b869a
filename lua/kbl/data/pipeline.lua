--- kbl.data.pipeline: a chain of steps read from a split. Each step returns a new
-- pipeline; nothing runs until iter().
--
--   local p = src:split('train'):shuffle{seed = 1}:batch(128):random_flip{}:prefetch(2)
--   for batch in p:iter() do ... end      -- batch.x float32, batch.y int64 labels 1..C
--   local s = p:state()                   -- {epoch =, position =, records = ...}
--   p:set_state(s)                        -- the next iter() resumes the exact remaining batches
--
-- Epochs count from 1. Each iter() starts a new pass, the next epoch, as a
-- Python loader does; set_epoch(e) or set_state(s) say where the next iter()
-- starts. position is how many items (batches after batch()) of the epoch were
-- already handed out. Random choices are functions of
-- (seed, step, epoch, element), never of call order: the same seed gives the
-- same batches whatever the prefetch depth, and set_state resumes exactly.
-- A step reading records adds where its read stands (kbl.data.records), so a
-- resume starts there instead of passing over the epoch's first items.
--
-- A step is a node with _open(epoch) -> stream, _count() -> items or nil, and
-- _fingerprint() -> text naming its data (for cache keys). A stream has
-- next() -> item or nil, skip(n) -> how many it skipped, and for lazy elements
-- `base` and the current `epoch` (see kbl.data.base).
local B = require 'kbl.data.base'

local Pipeline = {}
Pipeline.__index = Pipeline

local function default_skip(s, n)
   local k = 0
   while k < n and s:next() ~= nil do k = k + 1 end
   return k
end

-- A stream over up, starting with up's base and epoch; a next_fn yielding lazy
-- elements keeps s.epoch at the epoch of the element it returns.
local function stream(up, next_fn, skip_fn)
   local s = {base = up and up.base, epoch = up and up.epoch, up = up}
   s.next = next_fn
   s.skip = skip_fn or default_skip
   s.close = function(self) if self.up and self.up.close then self.up:close() end end
   return s
end
--- A pipeline node from next and skip functions (for step implementations).
-- @local
Pipeline.stream = stream
--- Skips n items by reading them (for step implementations).
-- @local
Pipeline.default_skip = default_skip

--- A node of the chain (for step implementations).
-- @local
function Pipeline.derive(parent, fields)
   local p = setmetatable(fields, getmetatable(parent) or Pipeline)
   p.parent = parent
   p.source = parent.source
   p.meta = parent.meta
   p.depth = parent.depth + 1
   if p.batched == nil then p.batched = parent.batched end
   if p.seed == nil then p.seed = parent.seed end
   p._epoch, p._position, p._pending = 1, 0, true
   return p
end

--- The salt of a random step (for step implementations).
-- @local
function Pipeline.salt(node, kind, number)
   node.salt_kind = kind
   local count, p = 0, node.parent
   while p do
      if p.salt_kind == kind then count = count + 1 end
      p = p.parent
   end
   return number * 64 + count
end

--- The first node: every row of a base, in order.
-- @local
function Pipeline.from_base(source, name, base)
   local p = setmetatable({source = source, meta = source and source.meta or {}, base = base, depth = 0,
      batched = false, seed = 0, name = name or base.name, _epoch = 1, _position = 0, _pending = true}, Pipeline)
   p._open = function(_, epoch)
      local n, i = base.n, 0
      return stream({base = base, epoch = epoch},
         function() if i >= n then return nil end i = i + 1 return i - 1 end,
         function(_, k) local m = math.min(k, n - i) i = i + m return m end)
   end
   p._count = function() return base.n end
   p._fingerprint = function() return B.fingerprint(base) end
   p._describe = function() return p.name end
   return p
end

local function check_count(v, what, allow_zero)
   if type(v) ~= 'number' or v % 1 ~= 0 or v < (allow_zero and 0 or 1) then
      error(string.format('data: %s must be a %s integer, got %s', what, allow_zero and 'non-negative' or 'positive',
         tostring(v)), 3)
   end
end
--- Checks a count argument (for step implementations).
-- @local
Pipeline.check_count = check_count

-- ---- shuffle -----------------------------------------------------------------------

--- A new order each epoch: of the whole stream, or with buffer = n a streaming shuffle
-- drawing at random from n items held back. Random choices depend on (seed, epoch).
-- @param prev the pipeline
-- @tparam[opt] table o {seed, buffer = nil}
-- @treturn table the pipeline
-- @usage local p = src:split('train'):shuffle{seed = 1}
function Pipeline.shuffle(prev, o)
   o = o or {}
   if o.seed ~= nil then check_count(o.seed, 'shuffle seed', true) end
   if o.buffer ~= nil then check_count(o.buffer, 'shuffle buffer') end
   local node = Pipeline.derive(prev, {seed = o.seed, buffer = o.buffer})
   node.salt = Pipeline.salt(node, 'shuffle', 1)
   local ffi, C = require 'ffi', require('kbl.lib').C
   local T = require 'kbl.tensor'
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local seed, salt = self.seed, self.salt
      if self.buffer then
         local buf, bep, t, done = {}, {}, 0, false
         return stream(up, function(s)
            while not done and #buf < self.buffer do
               local item = up:next()
               if item == nil then done = true break end
               buf[#buf + 1], bep[#buf + 1] = item, up.epoch
            end
            if #buf == 0 then return nil end
            local r = B.randint(seed, salt, epoch, t, 0, #buf) + 1
            t = t + 1
            local item = buf[r]
            s.epoch = bep[r]
            buf[r], bep[r] = buf[#buf], bep[#buf]
            buf[#buf], bep[#buf] = nil, nil
            return item
         end)
      end
      -- whole stream: take it all, then hand it out in a permuted order
      local items, eps = {}, {}
      while true do
         local item = up:next()
         if item == nil then break end
         items[#items + 1], eps[#items + 1] = item, up.epoch
      end
      local n = #items
      local perm = require('kbl').keep(T.wrap(C.kbl_data_permutation(n, seed, salt, epoch)))
      local pp = ffi.cast('int64_t *', C.kbl_data_ptr(T.live(perm)))
      local k = 0
      return stream(up, function(s)
         if k >= n then return nil end
         local _ = perm -- keeps the permutation's memory alive while pp points into it
         local j = tonumber(pp[k]) + 1
         k = k + 1
         s.epoch = eps[j]
         return items[j]
      end, function(_, m) local d = math.min(m, n - k) k = k + d return d end)
   end
   function node:_count() return self.parent:_count() end
   function node:_fingerprint()
      return self.parent:_fingerprint() .. ';shuffle(' .. self.seed .. ',' .. tostring(self.buffer) .. ')'
   end
   function node:_describe()
      return 'shuffle{seed = ' .. self.seed .. (self.buffer and ', buffer = ' .. self.buffer or '') .. '}'
   end
   return node
end

-- ---- map and filter --------------------------------------------------------------

--- fn(element), or fn(batch) with batched = true, returns the new one, a table {x =, y =}.
-- Lua functions run on the calling thread.
-- @param prev the pipeline
-- @tparam function fn
-- @tparam[opt] table o {batched = false}
-- @treturn table the pipeline
-- @usage p = p:map(function(e) return {x = e.x * 2, y = e.y} end)
function Pipeline.map(prev, fn, o)
   if type(fn) ~= 'function' then error('data: map expects a function, got ' .. type(fn), 2) end
   o = o or {}
   if o.batched and not prev.batched then error('data: map{batched = true} needs batch() before it', 2) end
   -- the function's fingerprint is taken now: what it captures when the step is built
   local node = Pipeline.derive(prev, {fn = fn, map_batched = o.batched and true or false,
      fn_fp = B.function_fingerprint(fn), same_count = true})
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local f = self.fn
      local s = stream(up, function()
         local item = up:next()
         if item == nil then return nil end
         local old
         if type(item) == 'number' then old = B.element(up.base, item, up.epoch)
         elseif item.lazy then old = B.run(item)
         else old = item end
         local res = f({x = old.x, y = old.y})
         if type(res) ~= 'table' then
            error('data: a map function must return a table {x =, y =}, got ' .. type(res), 0)
         end
         if old.batch then
            local n = res.x and res.x:size(1)
            local keep = n == old.n
            return {batch = true, x = res.x, y = res.y, n = n, ids = keep and old.ids or nil,
               epochs = keep and old.epochs or nil}
         end
         res.id, res.epoch = old.id, old.epoch
         return res
      end, function(_, n) return up:skip(n) end)
      s.base = nil
      return s
   end
   function node:_count() return self.parent:_count() end
   function node:_fingerprint()
      return self.parent:_fingerprint() .. ';map(' .. self.fn_fp .. ',' .. tostring(self.map_batched) .. ')'
   end
   function node:_describe() return self.map_batched and 'map{batched}' or 'map' end
   return node
end

--- Keeps the items for which fn(item) is true.
-- @param prev the pipeline
-- @tparam function fn
-- @treturn table the pipeline
-- @usage p = p:filter(function(e) return e.y:item() ~= 3 end)
function Pipeline.filter(prev, fn)
   if type(fn) ~= 'function' then error('data: filter expects a function, got ' .. type(fn), 2) end
   local node = Pipeline.derive(prev, {fn = fn, fn_fp = B.function_fingerprint(fn)})
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local f = self.fn
      return stream(up, function(s)
         while true do
            local item = up:next()
            if item == nil then return nil end
            local seen = item
            if type(item) == 'number' then seen = B.element(up.base, item, up.epoch)
            elseif item.lazy then item = B.run(item) seen = item end
            if f({x = seen.x, y = seen.y}) then
               s.epoch = up.epoch
               return item
            end
         end
      end)
   end
   function node._count() return nil end
   function node:_fingerprint()
      return self.parent:_fingerprint() .. ';filter(' .. self.fn_fp .. ')'
   end
   function node._describe() return 'filter' end
   return node
end

-- ---- batch ---------------------------------------------------------------------------

--- n elements become one batch, assembled in C: x [n, ...], y [n].
-- @param prev the pipeline
-- @tparam number n
-- @tparam[opt] table o {drop_remainder = false}
-- @treturn table the pipeline
-- @usage p = p:batch(128)
function Pipeline.batch(prev, n, o)
   check_count(n, 'batch size')
   o = o or {}
   if prev.batched then error('data: this pipeline is already batched', 2) end
   local node = Pipeline.derive(prev, {size = n, drop = o.drop_remainder and true or false, batched = true,
      count_factor = n})
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      local size, drop = self.size, self.drop
      local ydtype = self.meta.dtypes and self.meta.dtypes.y
      local s = stream(up, function()
         local first = up:next()
         if first == nil then return nil end
         if type(first) == 'number' then
            local ids, eps = B.i64arr(size), B.i64arr(size)
            ids[0], eps[0] = first, up.epoch
            local k = 1
            while k < size do
               local id = up:next()
               if id == nil then break end
               ids[k], eps[k] = id, up.epoch
               k = k + 1
            end
            if k < size and drop then return nil end
            return {batch = true, lazy = true, base = up.base, n = k, ids = ids, epochs = eps, ops = {}}
         end
         local els = {first}
         while #els < size do
            local el = up:next()
            if el == nil then break end
            els[#els + 1] = el
         end
         if #els < size and drop then return nil end
         return B.stack(els, ydtype)
      end, function(_, k)
         local m = up:skip(k * size)
         return drop and math.floor(m / size) or math.ceil(m / size)
      end)
      s.base = nil
      return s
   end
   function node:_count()
      local c = self.parent:_count()
      if not c then return nil end
      return self.drop and math.floor(c / self.size) or math.ceil(c / self.size)
   end
   function node:_fingerprint()
      return self.parent:_fingerprint() .. ';batch(' .. self.size .. ',' .. tostring(self.drop) .. ')'
   end
   function node:_describe()
      return 'batch(' .. self.size .. (self.drop and ', {drop_remainder = true}' or '') .. ')'
   end
   return node
end

-- ---- repeat, take, skip ----------------------------------------------------------------

-- The epoch pass r of a repeat runs at: a hash of (epoch, r), so passes of
-- different epochs never share their random choices.
local function pass_epoch(epoch, r) return B.randint(epoch, -1, r, 0, 0, 2 ^ 53) end

--- The stream n times over (nil: forever), each pass its own epoch.
-- @param prev the pipeline
-- @tparam[opt] number n
-- @treturn table the pipeline
-- @usage p = p:repeat_(2)
function Pipeline.repeat_(prev, n)
   if n ~= nil then check_count(n, 'repeat count') end
   local node = Pipeline.derive(prev, {times = n})
   function node:_open(epoch)
      local parent, times, r = self.parent, self.times, 0
      local inner = parent:_open(pass_epoch(epoch, 0))
      local yielded = false -- whether this pass gave an item: an empty pass ends it all
      local function advance()
         if inner.close then inner:close() end
         r = r + 1
         if not yielded or (times and r >= times) then inner = nil return false end
         inner, yielded = parent:_open(pass_epoch(epoch, r)), false
         return true
      end
      local s = stream(inner, function(self_)
         while inner do
            local item = inner:next()
            if item ~= nil then
               yielded = true
               self_.epoch, self_.base = inner.epoch, inner.base
               return item
            end
            if not advance() then return nil end
         end
         return nil
      end, function(_, k)
         local done = 0
         while inner and done < k do
            local m = inner:skip(k - done)
            if m > 0 then yielded = true end
            done = done + m
            if done < k and not advance() then break end
         end
         return done
      end)
      s.close = function() if inner and inner.close then inner:close() end end
      return s
   end
   function node:_count()
      local c = self.parent:_count()
      if not c or not self.times then return nil end
      return c * self.times
   end
   function node:_fingerprint() return self.parent:_fingerprint() .. ';repeat(' .. tostring(self.times) .. ')' end
   function node:_describe() return 'repeat_(' .. (self.times or '') .. ')' end
   return node
end

--- The first n items.
-- @param prev the pipeline
-- @tparam number n
-- @treturn table the pipeline
-- @usage p = p:take(10)
function Pipeline.take(prev, n)
   check_count(n, 'take count', true)
   local node = Pipeline.derive(prev, {count = n})
   function node:_open(epoch)
      local up, left = self.parent:_open(epoch), self.count
      return stream(up, function(s)
         if left <= 0 then return nil end
         local item = up:next()
         if item == nil then return nil end
         left = left - 1
         s.epoch = up.epoch
         return item
      end, function(_, k)
         local m = up:skip(math.min(k, left))
         left = left - m
         return m
      end)
   end
   function node:_count()
      local c = self.parent:_count()
      return c and math.min(c, self.count) or nil
   end
   function node:_fingerprint() return self.parent:_fingerprint() .. ';take(' .. self.count .. ')' end
   function node:_describe() return 'take(' .. self.count .. ')' end
   return node
end

--- All but the first n items.
-- @param prev the pipeline
-- @tparam number n
-- @treturn table the pipeline
-- @usage p = p:skip(10)
function Pipeline.skip(prev, n)
   check_count(n, 'skip count', true)
   local node = Pipeline.derive(prev, {count = n})
   function node:_open(epoch)
      local up = self.parent:_open(epoch)
      up:skip(self.count)
      return stream(up, function(s)
         local item = up:next()
         s.epoch = up.epoch
         return item
      end, function(_, k) return up:skip(k) end)
   end
   function node:_count()
      local c = self.parent:_count()
      return c and math.max(0, c - self.count) or nil
   end
   function node:_fingerprint() return self.parent:_fingerprint() .. ';skip(' .. self.count .. ')' end
   function node:_describe() return 'skip(' .. self.count .. ')' end
   return node
end

-- ---- running ------------------------------------------------------------------------------

--- Ends the live iteration, if any (stopping prefetch threads now). state() still tells where it stopped.
-- @usage p:close()
function Pipeline:close()
   local live = self._live
   if live then
      live.closed = true
      if live.s.close then live.s:close() end
      self._live = nil
   end
end

--- A Lua iterator over one epoch; batches come as {x =, y =}. Each call starts a new pass:
-- the next epoch from its start; after set_state or set_epoch, exactly where they say.
-- @treturn function the iterator
-- @usage for batch in p:iter() do step(batch.x, batch.y) end
function Pipeline:iter()
   self:close()
   if not self._pending then self._epoch, self._position = self._epoch + 1, 0 end
   self._pending = false
   local epoch = self._epoch
   local s = self:_open(epoch)
   if self._position > 0 then
      local k = s:skip(self._position)
      if k < self._position then
         if s.close then s:close() end
         error(string.format('data: cannot resume at position %d of epoch %d: the epoch has only %d items',
            self._position, epoch, k), 2)
      end
   end
   local live = {s = s}
   self._live = live
   return function()
      if live.closed then return nil end
      local item = s:next()
      if item == nil then
         live.closed = true
         if s.close then s:close() end
         if self._live == live then
            self._live = nil
            self._epoch, self._position, self._pending = epoch + 1, 0, true
         end
         local root = self
         while root.parent do root = root.parent end
         if root.base and root.base.on_epoch_end then root.base.on_epoch_end(root.base, epoch, self) end
         return nil
      end
      if self._live == live then self._position = self._position + 1 end
      return B.materialize(item, s.base, s.epoch)
   end
end

-- The step under node that keeps a read position of its own (records), when
-- every step between hands out a fixed number of its items per item (map,
-- augmentations and prefetch one, batch n): it and that number.
local function resumable(node)
   local factor = 1
   while node do
      if node._resume_state then return node, factor end
      if node.count_factor then factor = factor * node.count_factor
      elseif not node.same_count then return nil end
      node = node.parent
   end
   return nil
end

--- Where the pipeline is: {epoch =, position =} (and the records reader's position mid-epoch).
-- @treturn table plain numbers, for a checkpoint
-- @usage local s = p:state()
function Pipeline:state()
   local st = {epoch = self._epoch, position = self._position}
   local node, factor = resumable(self)
   if node and st.position > 0 then st.records = node:_resume_state(st.epoch, st.position * factor) end
   return st
end

--- The next iter() resumes exactly there: the remaining batches of that epoch.
-- @tparam table st from state()
-- @usage p:set_state(s)
function Pipeline:set_state(st)
   if type(st) ~= 'table' then error('data: set_state expects {epoch =, position =}', 2) end
   check_count(st.epoch, 'state epoch', true)
   check_count(st.position or 0, 'state position', true)
   self:close()
   self._epoch, self._position, self._pending = st.epoch, st.position or 0, true
   if st.records ~= nil then
      local node, factor = resumable(self)
      if not node then error('data: set_state: the state has a records part, and this pipeline reads no records', 2) end
      node:_set_resume_state(st.epoch, self._position * factor, st.records)
   end
end

--- The next iter() starts this epoch (from 1) from its start.
-- @tparam number e
-- @usage p:set_epoch(3)
function Pipeline:set_epoch(e)
   check_count(e, 'epoch', true)
   self:set_state{epoch = e, position = 0}
end

--- Items per epoch (batches after batch()), or nil when unknown (filter, forever).
-- @treturn number or nil
-- @usage print(p:num_batches())
function Pipeline:num_batches() return self:_count() end

function Pipeline:__tostring()
   local parts, p = {}, self
   while p do
      table.insert(parts, 1, p:_describe())
      p = p.parent
   end
   return 'Pipeline: ' .. table.concat(parts, ' -> ')
end

return Pipeline
