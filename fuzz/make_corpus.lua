-- fuzz/make_corpus.lua: writes the seed corpora of the fuzz harnesses into
-- fuzz/corpus/<harness>/ with kbl's own writers: small valid files of every
-- kind the readers take (and, for the checkpoint, bare payloads too).
-- Run from the repository root: luajit fuzz/make_corpus.lua (KBL_BUILD_DIR
-- picks the build; the files are committed, so this runs only to remake them).
package.path = 'spec/?.lua;lua/?.lua;lua/?/init.lua;' .. package.path
require 'helper' -- points kbl at the build tree
local ffi = require 'ffi'
local kbl = require 'kbl'
local data = require 'kbl.data'
local checkpoint = require 'kbl.records.checkpoint'
local C = kbl.lib.C

local root = 'fuzz/corpus/'
for _, h in ipairs{'idx', 'idx_gz', 'csv', 'checkpoint', 'cache'} do os.execute('mkdir -p ' .. root .. h) end
local function write(path, bytes)
   local f = assert(io.open(path, 'wb'))
   f:write(bytes)
   f:close()
end
local function read(path)
   local f = assert(io.open(path, 'rb'))
   local s = f:read('*a')
   f:close()
   return s
end

-- IDX: every type, 1 to 3 dims, plain (both harnesses) and gzip (the plain one
-- detects gzip by its magic)
local tensors = {
   u8 = kbl.tensor({{0, 7, 255}, {1, 2, 3}}, {dtype = 'uint8'}),
   i32 = kbl.tensor({-5, 70000, 3}, {dtype = 'int32'}),
   f32 = kbl.tensor({{{0.5, -2}, {1e3, 3}}}, {dtype = 'float32'}),
   f64 = kbl.tensor({0.1, -1e-300}, {dtype = 'float64'}),
   labels = kbl.tensor({0, 9, 3, 1}, {dtype = 'uint8'}),
}
for name, t in pairs(tensors) do
   data.idx.write(root .. 'idx/' .. name .. '.idx', t, {gzip = false})
   data.idx.write(root .. 'idx_gz/' .. name .. '.idx', t, {gzip = false})
end
data.idx.write(root .. 'idx/u8.idx.gz', tensors.u8, {gzip = true})
write(root .. 'idx/short.idx', '\0\0\11\1\0\0\0\2\255\254\1\0')
write(root .. 'idx/sbyte.idx', '\0\0\9\1\0\0\0\2\255\5')
write(root .. 'idx_gz/short.idx', '\0\0\11\1\0\0\0\2\255\254\1\0')

-- CSV: the first byte is the harness's choice of delimiter (bits 0-1) and header (bit 2)
write(root .. 'csv/header.csv', '\4' .. 'a,b,label\n1,2.5,0\n3,-4e2,1\n"5", 6 ,2\n')
write(root .. 'csv/plain.csv', '\1' .. '1;2;3\r\n4;5;6\r\n\n7;8;9')
write(root .. 'csv/bom.csv', '\0' .. '\239\187\191' .. '1,2\n3,4\n')
write(root .. 'csv/tab.csv', '\6' .. 'x\ty\n0.5\tnan\ninf\t-0\n')

-- checkpoints: whole files, and the payload of one (the harness wraps a payload
-- in a frame and checksums)
local ck = root .. 'checkpoint/'
checkpoint.save(ck .. 'small.ckpt', {meta = {step = 3, lr = 0.1, name = 'x', list = {1, 2, {a = true}}},
   tensors = {w = tensors.f32, b = tensors.i32, y = tensors.labels}})
checkpoint.save(ck .. 'empty.ckpt', {meta = {}, tensors = {}})
pcall(ffi.cdef, [[
unsigned long long ZSTD_getFrameContentSize(const void *src, size_t n);
size_t ZSTD_decompress(void *dst, size_t cap, const void *src, size_t n);
]])
local zstd = ffi.load('zstd')
for _, name in ipairs{'small', 'empty'} do
   local s = read(ck .. name .. '.ckpt')
   local frame = s:sub(41)
   local n = tonumber(zstd.ZSTD_getFrameContentSize(frame, #frame))
   local buf = ffi.new('char[?]', n + 1)
   assert(tonumber(zstd.ZSTD_decompress(buf, n + 1, frame, #frame)) == n)
   write(ck .. name .. '.payload', ffi.string(buf, n))
end

-- cache files for the key "fuzz"
local function cache(name, list)
   local arr = ffi.new('kbl_tensor *[?]', #list)
   for i, t in ipairs(list) do arr[i - 1] = require('kbl.tensor').live(t) end
   assert(C.kbl_data_cache_write(root .. 'cache/' .. name, 'fuzz', #list, arr, 1) == 0)
end
cache('two.cache', {kbl.tensor({0, 1}, {dtype = 'int64'}), tensors.f32})
cache('three.cache', {tensors.u8, tensors.f64, kbl.zeros({0, 3})})
print('wrote the seed corpora under ' .. root)
