--- kbl.dist.trainer: what kbl.fit does differently on N processes. One global
-- batch of batch_size rows is split over the ranks (kbl.dist.shard); each rank
-- runs forward and backward on its rows; gradients are summed in buckets that
-- start while backward runs (dist/buckets.c), each rank's weighted by its
-- share of the batch, so every rank holds the gradient of the whole batch's
-- mean loss and the optimizer steps identically everywhere. kbl.fit calls:
--
--   trainer.dist = dist_trainer.new(trainer)   -- in build(): checks the replicas
--   d:begin_step(trainer, n)                   -- before forward
--   d:finish_grads(trainer)                    -- after backward
--   d:end_step(trainer, loss, n, bad)          -- after the step: the global loss, metrics, stop
--   d:agree_logs(logs)                         -- rank 0's epoch logs on every rank
--
-- Step records (loss, row count, metric counts, a pending SIGINT/SIGTERM) are
-- gathered from every rank after each step, so the running loss and metrics are
-- those of the global batches on every rank, a checkpoint (rank 0's) holds no
-- per-rank state, and a signal to any rank stops all at the same step.
-- Metric states must add across ranks (counts and sums: every kbl.metrics one).
-- Validation batches are shared out too (a rank may get no row of a short one)
-- and their sums gathered; rank 0's epoch logs are everyone's.
-- KBL_DIST_BUCKET_BYTES sets the bucket size (1 MiB); KBL_DIST_OVERLAP=0 starts
-- every bucket after backward instead (bench/dist.sh measures the overlap).
local ffi = require 'ffi'
local kbl = require 'kbl'
local dist = require 'kbl.dist'
local lib = require 'kbl.lib'
local C = lib.C

ffi.cdef[[int kbl_dist_raise(int sig) __asm__("raise");
int kbl_dist_memcmp(const void *a, const void *b, size_t n) __asm__("memcmp");]]
local T = require 'kbl.tensor'
local util = require 'kbl.util'

-- Whether two tensors of one shape and dtype hold the same bytes.
local function same_bytes(a, b)
   local ha, pa = T.host(a:contiguous())
   local hb, pb = T.host(b:contiguous())
   local n = a:numel() * tonumber(C.kbl_dtype_size(pa.dtype))
   local same = ffi.C.kbl_dist_memcmp(C.kbl_data_ptr(pa), C.kbl_data_ptr(pb), n) == 0
   return same, ha, hb   -- the handles kept alive until here
end

local M = {}
local Dist = {}
Dist.__index = Dist

-- Lua source of a plain value (numbers, strings, booleans, tables of them).
local function encode(v)
   local t = type(v)
   if t == 'number' then
      if v ~= v then return '0/0' end
      if v == math.huge then return '1/0' end
      if v == -math.huge then return '-1/0' end
      return string.format('%.17g', v)
   elseif t == 'string' then return string.format('%q', v)
   elseif t == 'boolean' or t == 'nil' then return tostring(v)
   elseif t == 'table' then
      local parts = {}
      for _, k in ipairs(util.sorted_keys(v)) do   -- numbers, then strings
         parts[#parts + 1] = '[' .. encode(k) .. ']=' .. encode(v[k])
      end
      return '{' .. table.concat(parts, ',') .. '}'
   end
   error('kbl.dist: cannot send a ' .. t .. ' between ranks', 0)
end

local function decode(s) return assert(loadstring('return ' .. s))() end

-- dst += src, deeply (numbers add, tables merge).
local function add_into(dst, src, what)
   for k, v in pairs(src) do
      if type(v) == 'number' then
         if dst[k] ~= nil and type(dst[k]) ~= 'number' then error('kbl.dist: ' .. what .. ' states do not add', 0) end
         dst[k] = (dst[k] or 0) + v
      elseif type(v) == 'table' then
         dst[k] = type(dst[k]) == 'table' and dst[k] or {}
         add_into(dst[k], v, what)
      elseif dst[k] == nil then
         dst[k] = v
      end
   end
   return dst
end

-- Every rank's record (rec plus this rank's metric states), decoded, in rank
-- order; the metrics are set to the sum of all ranks' states (added to base,
-- the states from before this step, when given).
local function gather_records(trainer, rec, base)
   local ms = {}
   for i, m in ipairs(trainer.metrics) do ms[i] = m:state() end
   rec.metrics = ms
   local all = dist.allgather_string(encode(rec))
   local merged = base or {}
   for r, s in ipairs(all) do
      local x = decode(s)
      all[r] = x
      for i, m in ipairs(trainer.metrics) do
         merged[i] = add_into(merged[i] or {}, x.metrics[i] or {}, m.name or 'metric')
      end
   end
   for i, m in ipairs(trainer.metrics) do m:set_state(merged[i]) end
   return all
end

-- The model's tensors on every rank must be rank 0's: the same seed builds the
-- same weights. A mismatch is an error on every rank, naming the tensor.
local function check_replicas(model)
   if type(model.state_dict) ~= 'function' then return end
   local sd = model:state_dict()
   local names = util.sorted_keys(sd)
   local first_bad
   kbl.no_grad(function()
      for _, name in ipairs(names) do
         local t = sd[name]
         local mine = t:contiguous():clone()
         local theirs = mine:clone()
         dist.broadcast(theirs, 0)
         if first_bad == nil and not same_bytes(mine, theirs) then first_bad = name end
      end
   end)
   local flags = dist.allgather_string(first_bad or '')
   for r, name in ipairs(flags) do
      if name ~= '' then
         error(string.format('kbl.dist: the weights differ between ranks at the start: %s on rank %d is not '
            .. "rank 0's (every rank must build the model from the same seed)", name, r - 1), 0)
      end
   end
end

-- Made in trainer:build() when the run has several processes.
function M.new(trainer)
   local self = setmetatable({rank = dist.rank(), world = dist.world_size(),
      bucket_bytes = tonumber(os.getenv('KBL_DIST_BUCKET_BYTES') or '') or 1048576,
      overlap = os.getenv('KBL_DIST_OVERLAP') ~= '0',
      stats = {steps = 0, wait = 0, early = 0, buckets = 0, bytes = 0}}, Dist)
   check_replicas(trainer.model)
   -- SIGINT/SIGTERM on any rank: noted, then every rank stops at the same step
   if C.kbl_interrupt_install() ~= 0 then error(ffi.string(C.kbl_last_error()), 0) end
   self.stats_buf = ffi.new('double[4]')
   return self
end

function M.enabled() return dist.is_distributed() end

-- The shard step for a training pipeline (the pipeline itself with one process);
-- for an evaluation one (eval), where a rank may get no row of a short batch.
function M.shard(pipe, eval)
   if not dist.is_distributed() then return pipe end
   return require('kbl.dist.shard').shard(pipe, dist.rank(), dist.world_size(), {allow_empty = eval})
end

local function buckets_for(self, params)
   if self.bucket_params == params then return self.buckets end
   if self.buckets then   -- the trainable list changed (a stage froze or thawed parts)
      dist.lib().kbl_dist_buckets_free(ffi.gc(self.buckets, nil))
      self.buckets = nil
   end
   local n = #params
   local arr = ffi.new('kbl_tensor *[?]', n)
   for i, p in ipairs(params) do arr[i - 1] = T.live(p) end
   local b = dist.lib().kbl_dist_buckets_new(n, arr, self.bucket_bytes)
   if b == nil then error(ffi.string(dist.lib().kbl_dist_last_error()), 0) end
   self.buckets = ffi.gc(b, dist.lib().kbl_dist_buckets_free)
   self.bucket_params = params
   return self.buckets
end

-- Before forward: every rank's row count (a short last batch splits too), the
-- dropout shard, the buckets armed with this rank's share, metrics emptied to
-- count this step alone.
function Dist:begin_step(trainer, n)
   local counts = dist.allgather_string(tostring(n))
   local offset, total = 0, 0
   for r, c in ipairs(counts) do
      c = tonumber(c)
      if r - 1 < self.rank then offset = offset + c end
      total = total + c
   end
   C.kbl_set_batch_shard(offset, n, total)
   local params = trainer:parameters()
   if #params > 0 then
      local b = buckets_for(self, params)
      if dist.lib().kbl_dist_buckets_begin(b, n / total, self.overlap and 1 or 0) ~= 0 then
         dist.abort(ffi.string(dist.lib().kbl_dist_last_error()))
      end
      self.armed = true
   end
   self.metric_states = {}
   for i, m in ipairs(trainer.metrics) do
      self.metric_states[i] = m:state()
      m:reset()
   end
end

-- After backward: waits for the buckets; the params' grads now hold the sum.
function Dist:finish_grads()
   C.kbl_set_batch_shard(0, 0, 0)
   if not self.armed then return end
   self.armed = false
   local s = self.stats_buf
   if dist.lib().kbl_dist_buckets_finish(self.buckets, s) ~= 0 then
      dist.abort(ffi.string(dist.lib().kbl_dist_last_error()))
   end
   local st = self.stats
   st.steps, st.wait, st.early = st.steps + 1, st.wait + s[0], st.early + s[1]
   st.buckets, st.bytes = st.buckets + s[2], st.bytes + s[3]
end

-- After the step: every rank's record. Returns the loss of the global batch,
-- its row count and a failure message from any rank.
function Dist:end_step(trainer, lv, n, bad)
   if self.armed then   -- the step ended before backward (a NaN loss): join the others' all-reduce
      self:finish_grads()   -- also ends the dropout shard
   else
      C.kbl_set_batch_shard(0, 0, 0)
   end
   local all = gather_records(trainer, {sig = C.kbl_interrupt_pending(), n = n, loss = lv * n,
      bad = bad or false}, self.metric_states)
   local loss, rows, sig, failure = 0, 0, 0, nil
   for r, x in ipairs(all) do
      loss, rows = loss + x.loss, rows + x.n
      if x.sig ~= 0 and sig == 0 then sig = x.sig end
      if x.bad and not failure then failure = x.bad .. (r > 1 and (' (on rank ' .. (r - 1) .. ')') or '') end
   end
   self.metric_states = nil
   if sig ~= 0 then
      dist.stopping = true
      self.stop_signal = sig
      -- rank 0's run records checkpoint on a pending signal; the others stop after this step
      if self.rank == 0 then
         if C.kbl_interrupt_pending() == 0 then ffi.C.kbl_dist_raise(sig) end
      else
         trainer.decision = 'stop_now'
      end
   end
   return rows > 0 and loss / rows or 0 / 0, rows, failure
end

-- After evaluating the sharded validation pipeline: every rank's loss sum,
-- row count and metric counts, summed (in rank order, the same everywhere).
-- Other pipelines (a test split on rank 0 alone) are left as they are.
function Dist.merge_eval(_, trainer, pipe, loss_sum, count)
   -- trainer.val_pipe is sharded by trainer:pipeline when made from a split
   if pipe ~= trainer.val_pipe or not trainer.val_pipe then return loss_sum, count end
   local total, rows = 0, 0
   for _, x in ipairs(gather_records(trainer, {loss = loss_sum, n = count})) do
      total, rows = total + x.loss, rows + x.n
   end
   return total, rows
end

-- Rank 0's logs on every rank (callbacks decide alike).
function Dist.agree_logs(_, logs)
   local out = {}
   for k, v in pairs(logs) do
      if type(v) == 'number' or type(v) == 'string' or type(v) == 'boolean' then out[k] = v end
   end
   local s = dist.broadcast_string(encode(out), 0)
   local theirs = decode(s)
   for k, v in pairs(theirs) do logs[k] = v end
   return logs
end

-- The time spent waiting for gradients after backward, per step, and how
-- many buckets started while backward ran.
function Dist:summary()
   local st = self.stats
   if st.steps == 0 then return nil end
   return {steps = st.steps, wait_per_step = st.wait / st.steps, buckets_per_step = st.buckets / st.steps,
      early_fraction = st.buckets > 0 and st.early / st.buckets or 0, bytes_per_step = st.bytes / st.steps}
end

return M
