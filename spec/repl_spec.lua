-- spec/repl_spec.lua: `kbl repl` driven through a pseudo-terminal (a small
-- python3 pty driver types the lines): expression values printed without `=`,
-- locals kept between lines, multi-line input, tab completion, and an error
-- that does not end the session; plus the pieces (rewriting locals, spotting
-- incomplete input, printing, completion) tested directly.
local repl = require 'kbl.repl'

local build = os.getenv('KBL_BUILD_DIR') or 'build'

local DRIVER = [[
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b''
def drain(seconds, until=None):
    global out
    end = time.time() + seconds
    while time.time() < end:
        if until is not None and until in out:
            return
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
drain(10, b'> ')
for line in sys.stdin.read().split('\n'):
    if line:
        mark = len(out)
        os.write(fd, line.replace('<TAB>', '\t').encode() + b'\r')
        # wait for the next prompt
        end = time.time() + 5
        while time.time() < end and not out[mark:].rstrip().endswith(b'>'):
            drain(0.1)
os.write(fd, b'\x04')
drain(5)
os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
]]

local tmp = os.tmpname()
os.remove(tmp)
os.execute('mkdir -p ' .. tmp)
local driver = tmp .. '/drive.py'
do
   local f = assert(io.open(driver, 'w'))
   f:write(DRIVER)
   f:close()
end

-- Types `input` into `kbl repl` on a pty; returns what the terminal showed,
-- without escape sequences and carriage returns.
local function session(input)
   local inp = tmp .. '/input'
   local f = assert(io.open(inp, 'w'))
   f:write(input)
   f:close()
   local p = io.popen(string.format('cd %s && HOME=%s KBL_BUILD_DIR=%s python3 %s bin/kbl repl < %s 2>&1',
      os.getenv('PWD') or '.', tmp, build, driver, inp))
   local out = p:read('*a')
   p:close()
   return (out:gsub('\27%[[%d;?]*[%a]', ''):gsub('\r', ''))
end

describe('kbl repl on a terminal', function()
   local out = session(table.concat({
      '1 + 2',
      'local x = 40',
      'x + 2',
      'error("boom")',
      'x * 10',
      'for i = 1, 2 do',
      'print("item " .. i)',
      'end',
      '{a = 1, b = {2, 3}}',
      'kbl.ones(2, 2)',
      'local t = kbl.zeros(3)',
      't:nume<TAB>()',
      'kbl.zeros_l<TAB>',
   }, '\n') .. '\n')

   it('uses readline and names what is preloaded', function()
      assert.matches('%(readline input%)%. Preloaded: kbl, blocks, optim, data, losses, metrics, callbacks%.', out)
   end)

   it('prints an expression\'s value without =', function()
      assert.matches('> 1 %+ 2\n3\n', out)
   end)

   it('keeps locals between lines', function()
      assert.matches('> x %+ 2\n42\n', out)
   end)

   it('prints an error and goes on', function()
      assert.matches('> error%("boom"%)\nerror: boom\n', out)
      assert.matches('> x %* 10\n400\n', out)
   end)

   it('continues an incomplete chunk on the next lines', function()
      assert.matches('>> end\nitem 1\nitem 2\n', out)
   end)

   it('pretty-prints tables and tensors', function()
      assert.matches('{a = 1, b = {2, 3}}\n', out, 1, true)
      assert.matches('[kbl.float32 of size 2x2]', out, 1, true)
   end)

   it('completes methods and fields with tab', function()
      assert.matches('> t:numel%(%)\n3\n', out)
      assert.matches('> kbl.zeros_like\nfunction', out)
   end)
end)

describe('kbl.repl pieces', function()
   it('rewrites a leading local into the session environment', function()
      assert.equal('x = 1', repl.rewrite_locals('local x = 1'))
      assert.equal('a, b = 1, 2', repl.rewrite_locals('  local a, b = 1, 2'))
      assert.equal('function f() end', repl.rewrite_locals('local function f() end'))
      assert.equal('y = nil', repl.rewrite_locals('local y'))
      assert.equal('do local z = 1 end', repl.rewrite_locals('do local z = 1 end'))
   end)

   it('tells incomplete input from errors', function()
      local env = repl.new_env()
      local fn, _, incomplete = repl.compile('for i = 1, 3 do', env)
      assert.is_nil(fn)
      assert.is_true(incomplete)
      local err
      fn, err, incomplete = repl.compile('x = = 2', env)
      assert.is_nil(fn)
      assert.is_false(incomplete)
      assert.matches("unexpected symbol near '='", err)
      assert.is_function(repl.compile('1 + 1', env))
   end)

   it('formats values', function()
      assert.equal('"a\\nb"', repl.format('a\nb'))
      assert.equal('3', repl.format(3))
      assert.equal('0.1', repl.format(0.1))
      assert.equal('{1, 2, x = true}', repl.format({1, 2, x = true}))
      local cyc = {}
      cyc.me = cyc
      assert.equal('{me = <cycle>}', repl.format(cyc))
   end)

   it('completes names, fields and tensor methods', function()
      local env = repl.new_env()
      env.t = env.kbl.zeros(2)
      assert.same({'kbl.zeros', 'kbl.zeros_like'}, repl.complete('kbl.zeros', env))
      assert.same({'t:size'}, repl.complete('t:siz', env))
      assert.same({'t.dtype'}, repl.complete('t.dty', env))
      assert.same({'pairs', 'pcall'}, repl.complete('p', {pairs = pairs, pcall = pcall}))
      assert.same({}, repl.complete('nosuch.x', env))
   end)
end)
