-- spec/mutate.lua: seeded mutation of byte strings for the *_mutation_spec.lua
-- files, and the check that a reader's error is clean. Case i of seed s is a
-- pure function of (s, i, the seeds), so any case can be made again alone.
local bit = require 'bit'

local M = {}

-- A xorshift32 generator; r(n) is an integer in 1..n.
function M.rng(seed)
   local s = bit.tobit(seed)
   if s == 0 then s = 0x2545f491 end
   return function(n)
      s = bit.bxor(s, bit.lshift(s, 13))
      s = bit.bxor(s, bit.rshift(s, 17))
      s = bit.bxor(s, bit.lshift(s, 5))
      return s % n + 1
   end
end

-- Bytes and tokens that parsers trip on: delimiters, signs, huge and odd numbers.
local BYTES = {0, 1, 9, 10, 13, 32, 34, 39, 40, 41, 44, 45, 46, 48, 49, 57, 58, 91, 92, 93, 101, 123, 125,
   127, 128, 254, 255}
local TOKENS = {'0', '-1', '1e308', '-0', '2147483648', '4294967296', '9007199254740993', '18446744073709551616',
   '99999999999999999999', ',', ',,', '()', '(,)', '[]', '{}', '((((((((', '[[[[[[[[', '{{{{{{{{', '"', "'", ':',
   'True', 'None', 'nan', 'inf', '\\u0000', '\\', '\0\0\0\0', '\255\255\255\255\255\255\255\127', ' ', '\n'}

-- A position in s, biased to the first `head` bytes (where headers are).
local function pos(r, n, head)
   if n == 0 then return 1 end
   if head and r(4) > 1 then return r(math.min(n, head)) end
   return r(n)
end

local function token(r)
   if r(3) == 1 then
      local t = {}
      for i = 1, r(8) do t[i] = string.char(r(256) - 1) end
      return table.concat(t)
   end
   return TOKENS[r(#TOKENS)]
end

-- One to four random edits of s: bit flips, byte and token writes, inserts,
-- deletes, truncation, a duplicated chunk, or a splice with another seed.
function M.mutate(r, s, seeds, head)
   for _ = 1, r(4) do
      local n = #s
      local op = r(9)
      local p = pos(r, n, head)
      if op == 1 and n > 0 then
         s = s:sub(1, p - 1) .. string.char(bit.bxor(s:byte(p), bit.lshift(1, r(8) - 1))) .. s:sub(p + 1)
      elseif op == 2 and n > 0 then
         s = s:sub(1, p - 1) .. string.char(BYTES[r(#BYTES)]) .. s:sub(p + 1)
      elseif op == 3 then
         s = s:sub(1, p - 1) .. token(r) .. s:sub(p)
      elseif op == 4 then
         local t = token(r)
         s = s:sub(1, p - 1) .. t .. s:sub(p + #t)
      elseif op == 5 then
         s = s:sub(1, p - 1) .. s:sub(p + r(16))
      elseif op == 6 then
         s = s:sub(1, r(n + 1) - 1)
      elseif op == 7 and n > 0 then
         local a = r(n)
         s = s:sub(1, p - 1) .. s:sub(a, a + r(32) - 1) .. s:sub(p)
      elseif op == 8 and #seeds > 1 then
         local o = seeds[r(#seeds)]
         s = s:sub(1, p - 1) .. o:sub(r(#o + 1))
      else
         s = s:sub(1, p - 1) .. string.char(r(256) - 1) .. s:sub(p + 1)
      end
   end
   return s
end

-- Case i from seed: the mutated bytes. With split (s -> header, rebuild), half
-- the cases mutate only the header text and rebuild the file around it, so
-- that its length fields stay right and the parser behind them is reached.
function M.case(seed, i, seeds, head, split)
   local r = M.rng(seed * 7919 + i * 104729)
   local s = seeds[r(#seeds)]
   if split and r(2) == 1 then
      local text, rebuild = split(s)
      return rebuild(M.mutate(r, text, {text}))
   end
   return M.mutate(r, s, seeds, head)
end

-- Internal errors that a user must never see from a reader.
local INTERNAL = {'attempt to ', 'bad argument', 'stack overflow', 'table index is', 'nil value',
   'string length overflow', 'not enough memory', 'invalid key to', 'error in error handling',
   'kbl/[%w_/]+%.lua:%d+:', 'spec/[%w_/]+%.lua:%d+:'}

-- nil when err is a clean error string that contains `name`, else what is wrong.
function M.unclean(err, name)
   if type(err) ~= 'string' then return 'the error is a ' .. type(err) .. ', not a message' end
   for _, p in ipairs(INTERNAL) do
      if err:find(p) then return 'an internal error (' .. p .. '): ' .. err end
   end
   if not err:find(name, 1, true) then return "the error does not name '" .. name .. "': " .. err end
   return nil
end

-- A string as a Lua literal with every unprintable byte escaped, to keep a case in a spec.
function M.quote(s)
   return '"' .. s:gsub('[%c"\\\128-\255]', function(c) return string.format('\\%03d', c:byte()) end) .. '"'
end

-- A .npy file of the given version around a header dict, padded as numpy pads it.
function M.npy_file(major, dict, data)
   local lenbytes = major == 1 and 2 or 4
   local pad = (64 - (6 + 2 + lenbytes + #dict + 1) % 64) % 64
   local h = dict .. string.rep(' ', pad) .. '\n'
   local len = string.char(#h % 256, math.floor(#h / 256) % 256)
   if lenbytes == 4 then len = len .. string.char(math.floor(#h / 65536) % 256, 0) end
   return '\147NUMPY' .. string.char(major, 0) .. len .. h .. (data or '')
end

-- Fails the running spec unless res (from M.run) is clean.
function M.assert_clean(res)
   if res.crash then error(res.crash, 2) end
   if #res.bad > 0 then error(#res.bad .. ' cases failed:\n' .. table.concat(res.bad, '\n'), 2) end
end

-- Runs `count` cases of a target of spec/fixtures/mutation_runner.lua in a child
-- process with a time limit. Returns {loaded, refused, slowest, bad = {lines}},
-- or, when the child crashed or hung, {crash = message} naming the case and its bytes.
function M.run(target, seed, count, limit)
   local H = require 'helper'
   local dir = H.tmpdir()
   -- a case is a file written and read at once: on tmpfs where there is one
   if os.execute('test -d /dev/shm -a -w /dev/shm') == 0 then
      os.execute('rm -rf ' .. dir)
      dir = '/dev/shm/kbl-mutation-' .. dir:match('[^/]+$')
      os.execute('mkdir -p ' .. dir)
   end
   local build = os.getenv('KBL_BUILD_DIR') or 'build'
   local function runner(extra)
      return H.run(string.format('KBL_BUILD_DIR=%s timeout %d bin/kbl spec/fixtures/mutation_runner.lua %s %d %d %s %s',
         build, limit or 120, target, seed, count, dir, extra or ''))
   end
   local rc, out = runner()
   local res = {bad = {}, out = out}
   local done = out:match('done %d+ loaded (%d+ refused %d+ slowest [%d.]+)')
   for line in out:gmatch('[^\n]+') do
      if line:match('^bad ') then res.bad[#res.bad + 1] = line end
   end
   if rc ~= 0 or not done then
      local case = tonumber((H.read(dir .. '/progress') or ''):match('%d+'))
      local bytes = '?'
      if case and runner(case) == 0 then bytes = M.quote(H.read(dir .. '/case') or '') end
      res.crash = string.format('%s seed %d case %s: the runner exited with %s%s; the input was %s\n%s', target,
         seed, tostring(case), tostring(rc), rc == 124 and ' (a hang: killed by timeout)' or '', bytes,
         out:sub(-2000))
   else
      res.loaded, res.refused, res.slowest = done:match('(%d+) refused (%d+) slowest ([%d.]+)')
      res.loaded, res.refused, res.slowest = tonumber(res.loaded), tonumber(res.refused), tonumber(res.slowest)
   end
   os.execute('rm -rf ' .. dir)
   return res
end

return M
