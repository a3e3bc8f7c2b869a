--- kbl.records.checkpoint: one checkpoint = one file (core/checkpoint.c): a
-- header with magic number, version and CRC-32s, then a zstd frame of the
-- metadata (JSON) and the named tensors. Written atomically (temporary name,
-- fsync, rename, directory fsync).
--
--   checkpoint.save(dir .. '/' .. checkpoint.file_name(step), {
--      meta = {step = step, epoch = epoch, optimizer = opt_state, ...},
--      tensors = {['model.fc.weight'] = w, ['optim.m.fc.weight'] = m, ...}})
--   local meta, tensors = checkpoint.load(path)
--   local path, skipped = checkpoint.latest_valid(dir)  -- skipped: {{path, reason}}
--
-- The metadata is plain data only (never functions or bytecode): tables,
-- strings, booleans and numbers. It comes back exactly: doubles that %.14g
-- would round, -0, inf and nan, and int64/uint64 cdata (generator states) are
-- written as tagged strings; tables with non-string keys as key/value pairs.
local ffi = require 'ffi'
local json = require 'dkjson'
local fs = require 'kbl.io.fs'
local lib = require 'kbl.lib'
local T = require 'kbl.tensor'
local C = lib.C

local M = {}

M.extension = '.ckpt'

-- The file name of the checkpoint at a global step: zero-padded so that names
-- sort by step; latest_valid orders by the number.
function M.file_name(step)
   return string.format('step-%012d%s', step, M.extension)
end

-- ---- exact metadata ---------------------------------------------------------

local TAGS = {__f64 = true, __i64 = true, __u64 = true, __pairs = true}
local i64_ct, u64_ct = ffi.typeof('int64_t'), ffi.typeof('uint64_t')

local function is_array(t)
   local n = 0
   for _ in pairs(t) do n = n + 1 end
   for i = 1, n do if t[i] == nil then return false end end
   return true, n
end

-- Lua value -> JSON-safe plain value; `path` names the value in messages.
local function to_plain(v, path, seen)
   local tv = type(v)
   if tv == 'string' or tv == 'boolean' then return v end
   if tv == 'number' then
      if v ~= v or v == math.huge or v == -math.huge or (v == 0 and 1 / v < 0)
         or tonumber(tostring(v)) ~= v then
         return {__f64 = string.format('%.17g', v)}
      end
      return v
   end
   if tv == 'cdata' then
      if ffi.istype(i64_ct, v) then return {__i64 = tostring(v):gsub('LL$', '')} end
      if ffi.istype(u64_ct, v) then return {__u64 = tostring(v):gsub('ULL$', '')} end
      if T.is_tensor(v) then
         error(string.format('checkpoint meta: %s is a tensor; put tensors in `tensors`', path), 0)
      end
      error(string.format('checkpoint meta: %s is a %s cdata; checkpoints hold plain data only', path,
         tostring(ffi.typeof(v))), 0)
   end
   if tv ~= 'table' then
      error(string.format('checkpoint meta: %s is a %s; checkpoints hold plain data only '
         .. '(tables, strings, numbers, booleans)', path, tv), 0)
   end
   if seen[v] then error('checkpoint meta: ' .. path .. ' is part of a cycle', 0) end
   seen[v] = true
   local out
   local arr, n = is_array(v)
   if arr and n > 0 then
      out = {}
      for i = 1, n do out[i] = to_plain(v[i], path .. '[' .. i .. ']', seen) end
   else
      local strings = true
      for k in pairs(v) do
         if type(k) ~= 'string' or TAGS[k] then strings = false end
      end
      if strings then
         out = {}
         for k, x in pairs(v) do out[k] = to_plain(x, path .. '.' .. k, seen) end
         if next(out) == nil then out = setmetatable(out, {__jsontype = 'object'}) end
      else
         local pairs_list = {}
         for k, x in pairs(v) do
            local ks = type(k) == 'string' and k or tostring(k)
            pairs_list[#pairs_list + 1] = {to_plain(k, path .. '<key ' .. ks .. '>', seen),
               to_plain(x, path .. '[' .. ks .. ']', seen)}
         end
         table.sort(pairs_list, function(a, b) return json.encode(a[1]) < json.encode(b[1]) end)
         out = {__pairs = pairs_list}
      end
   end
   seen[v] = nil
   return out
end

local function parse_int64(s, ct)
   local neg = s:sub(1, 1) == '-'
   local v = ffi.new(ct, 0)
   for d in s:gmatch('%d') do v = v * 10 + tonumber(d) end
   return neg and -v or v
end

local function from_plain(v)
   if type(v) ~= 'table' then return v end
   if v.__f64 then return tonumber(v.__f64) end
   if v.__i64 then return parse_int64(v.__i64, i64_ct) end
   if v.__u64 then return parse_int64(v.__u64, u64_ct) end
   local out = {}
   if v.__pairs then
      for _, kv in ipairs(v.__pairs) do out[from_plain(kv[1])] = from_plain(kv[2]) end
      return out
   end
   for k, x in pairs(v) do out[k] = from_plain(x) end
   return out
end

-- Every string key in v, sorted: dkjson writes keys in this order, so the same
-- metadata always makes the same bytes.
local function key_order(v, keys, seen)
   if type(v) ~= 'table' or seen[v] then return end
   seen[v] = true
   for k, x in pairs(v) do
      if type(k) == 'string' then keys[k] = true end
      key_order(x, keys, seen)
   end
end

-- Metadata nests at most this deep: deeper is a damaged or hostile file, and
-- the JSON decoder would recurse until the stack overflows.
M.max_depth = 200

-- The byte of text (JSON) where its nesting passes `limit`, or nil. Strings are
-- skipped, so brackets inside them do not count.
local function too_deep(text, limit)
   local depth, i, in_string = 0, 1, false
   while true do
      local j = text:find(in_string and '["\\]' or '[%[%]{}"]', i)
      if not j then return nil end
      local ch = text:sub(j, j)
      if in_string then -- a backslash skips the byte after it; a quote ends the string
         i = j + (ch == '\\' and 2 or 1)
         in_string = ch == '\\'
      else
         if ch == '"' then
            in_string = true
         elseif ch == '[' or ch == '{' then
            depth = depth + 1
            if depth > limit then return j end
         else
            depth = depth - 1
         end
         i = j + 1
      end
   end
end

function M.encode_meta(meta)
   local plain = to_plain(meta or {}, 'meta', {})
   local set = {}
   key_order(plain, set, {})
   local text = json.encode(plain, {keyorder = require('kbl.util').sorted_keys(set)})
   if too_deep(text, M.max_depth) then
      error(string.format('checkpoint meta: nests deeper than %d levels', M.max_depth), 0)
   end
   return text
end

function M.decode_meta(text, path)
   local where = 'checkpoint ' .. (path or '?') .. ': metadata'
   local deep = too_deep(text, M.max_depth)
   if deep then
      error(string.format('%s nests deeper than %d levels (at byte %d of the metadata)', where, M.max_depth,
         deep - 1), 0)
   end
   local v, pos, err = json.decode(text, 1, nil)
   if err or type(v) ~= 'table' then
      error(string.format('%s is not valid JSON: %s', where, err or 'not an object'), 0)
   end
   local junk = text:find('%S', pos)
   if junk then
      error(string.format('%s is not valid JSON: junk after the JSON value at byte %d of the metadata',
         where, junk - 1), 0)
   end
   return from_plain(v)
end

-- ---- files ------------------------------------------------------------------

local function last_error() return ffi.string(C.kbl_last_error()) end

-- save(path, {meta = table, tensors = {name = tensor}}, {level = zstd level})
function M.save(path, content, opts)
   if type(path) ~= 'string' then error('checkpoint save: path must be a string', 2) end
   content = content or {}
   local text = M.encode_meta(content.meta)
   local names = {}
   for name, t in pairs(content.tensors or {}) do
      if type(name) ~= 'string' then error('checkpoint save ' .. path .. ': tensor names must be strings', 2) end
      if not T.is_tensor(t) then
         error(string.format("checkpoint save %s: '%s' is not a tensor (%s)", path, name, type(t)), 2)
      end
      names[#names + 1] = name
   end
   table.sort(names)
   local n = #names
   local cnames = ffi.new('const char *[?]', n + 1)
   local ctensors = ffi.new('kbl_tensor *[?]', n + 1)
   for i, name in ipairs(names) do
      cnames[i - 1] = name
      ctensors[i - 1] = T.live(content.tensors[name])
   end
   local level = opts and opts.level or 0
   if C.kbl_checkpoint_save(path, text, #text, n, cnames, ctensors, level) ~= 0 then
      error(last_error(), 0)
   end
   return path
end

-- load(path) -> meta, {name = tensor}. Raises a message naming the file and
-- what is wrong (truncated, bad magic, newer version, checksum mismatch).
function M.load(path)
   local c = C.kbl_checkpoint_open(path)
   if c == nil then error(last_error(), 0) end
   c = ffi.gc(c, C.kbl_checkpoint_close)
   local len = ffi.new('size_t[1]')
   local mp = C.kbl_checkpoint_meta(c, len)
   local ok, meta = pcall(M.decode_meta, ffi.string(mp, len[0]), path)
   if not ok then error(meta, 0) end
   local tensors = {}
   for i = 0, C.kbl_checkpoint_count(c) - 1 do
      tensors[ffi.string(C.kbl_checkpoint_name(c, i))] = T.wrap(C.kbl_checkpoint_tensor(c, i))
   end
   C.kbl_checkpoint_close(ffi.gc(c, nil))
   return meta, tensors
end

-- verify(path) -> true, or false and the reason (header and checksums only).
function M.verify(path)
   if C.kbl_checkpoint_verify(path) ~= 0 then return false, last_error() end
   return true
end

-- The resumable checkpoints of dir (step-<N>.ckpt), newest (largest step) first:
-- {{path = ..., step = N}, ...}. Other .ckpt files (best.ckpt) are not listed.
function M.list(dir)
   local out = {}
   for _, name in ipairs(fs.list_dir(dir)) do
      local step = name:match('^step%-(%d+)%' .. M.extension .. '$')
      if step then out[#out + 1] = {path = dir .. '/' .. name, step = tonumber(step), name = name} end
   end
   table.sort(out, function(a, b)
      if a.step ~= b.step then return a.step > b.step end
      return a.name > b.name
   end)
   return out
end

-- latest_valid(dir) -> path of the newest checkpoint that passes its checks (or
-- nil), and the newer ones skipped: {{path = ..., reason = ...}}.
function M.latest_valid(dir)
   local skipped = {}
   for _, e in ipairs(M.list(dir)) do
      local ok, why = M.verify(e.path)
      if ok then return e.path, skipped, e.step end
      skipped[#skipped + 1] = {path = e.path, reason = why}
   end
   return nil, skipped
end

-- Removes all but the newest `keep` step checkpoints of dir; returns the
-- removed paths. Files in `protect` (a set of paths) are kept.
function M.prune(dir, keep, protect)
   local removed = {}
   for i, e in ipairs(M.list(dir)) do
      if i > keep and not (protect and protect[e.path]) then
         os.remove(e.path)
         removed[#removed + 1] = e.path
      end
   end
   return removed
end

return M
