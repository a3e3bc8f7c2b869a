-- lock: the run directory's lock (flock on RUN_DIR/run.lock) is exclusive
-- between processes, counted within one, names its holder's pid in the
-- message of the one refused, and is free again once the holder is killed.
local H = require 'helper'
local lock = require 'kbl.records.lock'
local status = require 'kbl.records.status'

local tmp = H.tmpdir()

-- Starts a shell that locks path and sleeps holding it; returns its pid once
-- the lock is held.
local function hold(dir)
   local rc, out = H.run("sh -c 'exec 9<>" .. lock.path(dir) .. " && flock -n 9 && exec sleep 30' "
      .. '>/dev/null 2>&1 & echo $!')
   assert.are.equal(0, rc)
   local pid = assert(tonumber(out:match('%d+')))
   for _ = 1, 500 do
      if lock.state(dir) == 'held' then return pid end
      os.execute('sleep 0.01')
   end
   error('the holder did not take the lock')
end

describe('run directory lock', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('is taken, counted and given back within one process', function()
      local dir = tmp .. '/a'
      os.execute('mkdir -p ' .. dir)
      assert.is_nil(lock.state(dir))   -- no lock file yet
      lock.acquire(dir)
      assert.are.equal(status.pid() .. ' ' .. status.host() .. '\n', H.read(lock.path(dir)))
      assert.are.equal('here', lock.state(dir))
      lock.acquire(dir .. '/.')         -- the same directory by another name: counted
      lock.release(dir)
      assert.are.equal('here', lock.state(dir))
      lock.release(dir)
      assert.are.equal('free', lock.state(dir))
   end)

   it('refuses a directory another process holds, naming the pid, until that process is killed', function()
      if H.run('command -v flock') ~= 0 then
         pending('flock(1) from util-linux is not installed')
         return
      end
      local dir = tmp .. '/b'
      os.execute('mkdir -p ' .. dir)
      H.write(lock.path(dir), '4242 otherhost\n')
      local pid = hold(dir)
      finally(function() os.execute('kill -9 ' .. pid .. ' 2>/dev/null') end)
      local ok, err = pcall(lock.acquire, dir)
      assert.is_false(ok)
      assert.are.equal('the run directory ' .. dir .. ' is in use by another run (pid 4242 on otherhost, holding '
         .. dir .. '/run.lock); wait for it to end or use another run directory', err)
      H.write(lock.path(dir), '')   -- a holder that has not written its pid yet
      ok, err = pcall(lock.acquire, dir)
      assert.is_false(ok)
      assert.matches('in use by another run (a process whose pid is not recorded', err, nil, true)
      os.execute('kill -9 ' .. pid .. '; sleep 0.2')
      assert.are.equal('free', lock.state(dir))
      lock.acquire(dir)
      lock.release(dir)
   end)

   it('names a directory it cannot lock and why', function()
      local ok, err = pcall(lock.acquire, tmp .. '/missing')
      assert.is_false(ok)
      assert.are.equal('cannot open the run directory ' .. tmp .. '/missing: No such file or directory (errno 2)', err)
   end)
end)
