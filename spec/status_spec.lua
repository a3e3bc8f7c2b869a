-- status: status.json moves through not_started, running (with pid),
-- interrupted, failed (with the message) and finished, and a run refuses a
-- directory whose recorded process is still alive; a running status whose run
-- is gone (process dead, or its pid reused while the run lock is free) reads
-- as stopped, saying how to resume.
local json = require 'dkjson'
local H = require 'helper'
local status = require 'kbl.records.status'

local tmp = H.tmpdir()

local slurp = H.read

local function write_status(dir, t)
   local f = assert(io.open(dir .. '/status.json', 'w'))
   f:write(json.encode(t))
   f:close()
end

describe('status', function()
   teardown(function() os.execute('rm -rf ' .. tmp) end)

   it('goes through the states a run takes, as JSON', function()
      local dir = tmp .. '/a'
      os.execute('mkdir -p ' .. dir)
      assert.is_nil(status.read(dir))
      status.init(dir)
      assert.are.equal('not_started', status.read(dir).state)
      status.start(dir, {step = 0, epoch = 1})
      local s = json.decode(slurp(dir .. '/status.json'))
      assert.are.equal('running', s.state)
      assert.are.equal(status.pid(), s.pid)
      assert.is_string(s.started)
      local started = s.started
      status.interrupted(dir, {message = 'interrupted by SIGINT; resume with kbl run ... --resume ' .. dir,
         checkpoint = dir .. '/step-000000000010.ckpt', step = 10})
      s = status.read(dir)
      assert.are.equal('interrupted', s.state)
      assert.are.equal(10, s.step)
      assert.matches('--resume', s.message)
      assert.are.equal(started, s.started)
      status.start(dir)
      status.failed(dir, 'kbl: loss is nan at step 12')
      s = status.read(dir)
      assert.are.equal('failed', s.state)
      assert.are.equal('kbl: loss is nan at step 12', s.message)
      status.start(dir)
      status.finished(dir, {step = 20})
      assert.are.equal('finished', status.read(dir).state)
      assert.is_nil(status.read(dir).pid)
   end)

   it('refuses a directory whose recorded process is alive, naming the pid', function()
      local dir = tmp .. '/b'
      os.execute('mkdir -p ' .. dir)
      local rc, out = H.run('sleep 30 >/dev/null 2>&1 & echo $!')
      assert.are.equal(0, rc)
      local pid = assert(tonumber(out:match('%d+')))
      finally(function() os.execute('kill ' .. pid .. ' 2>/dev/null') end)
      assert.is_true(status.is_alive(pid))
      write_status(dir, {state = 'running', pid = pid})
      local ok, err = pcall(status.start, dir)
      assert.is_false(ok)
      assert.matches('another run (pid ' .. pid .. ') is still running in ' .. dir, err, nil, true)
      assert.are.equal(pid, status.read(dir).pid)   -- untouched
      -- once that process is gone, the directory is free again
      os.execute('kill ' .. pid .. '; sleep 0.2')
      assert.is_false(status.is_alive(pid))
      status.start(dir)
      assert.are.equal(status.pid(), status.read(dir).pid)
   end)

   it('takes over a running status left by a dead process or by itself', function()
      local dir = tmp .. '/c'
      os.execute('mkdir -p ' .. dir)
      local _, out = H.run('sh -c "echo \\$\\$"')
      local dead = assert(tonumber(out:match('%d+')))
      assert.is_false(status.is_alive(dead))
      write_status(dir, {state = 'running', pid = dead})
      local _, old = status.start(dir)
      assert.are.equal(dead, old.pid)
      status.start(dir)   -- the same process again
      assert.are.equal('running', status.read(dir).state)
   end)

   it('reads a running status whose run is gone as stopped, saying how to resume', function()
      local dir = tmp .. '/e'
      os.execute('mkdir -p ' .. dir)
      local _, out = H.run('sh -c "echo \\$\\$"')
      local dead = assert(tonumber(out:match('%d+')))
      write_status(dir, {state = 'running', pid = dead, step = 7})
      local s = status.read(dir)
      assert.are.equal('stopped', s.state)
      assert.are.equal('running', s.recorded_state)
      assert.are.equal(7, s.step)
      assert.are.equal('the run stopped without recording why (its process, pid ' .. dead .. ', is gone); '
         .. 'continue it with: kbl run --resume ' .. dir, s.message)
      assert.are.equal('running', status.read(dir, {raw = true}).state)   -- the file is untouched
   end)

   it('reads a running status by the run lock when there is one, else by the pid', function()
      if H.run('command -v flock') ~= 0 then
         pending('flock(1) from util-linux is not installed')
         return
      end
      local dir = tmp .. '/f'
      os.execute('mkdir -p ' .. dir)
      local _, out = H.run('sh -c "echo \\$\\$"')
      local dead = assert(tonumber(out:match('%d+')))
      -- a live process that holds the run lock: running; once it is gone, stopped
      local lock = dir .. '/run.lock'
      local rc, o = H.run("sh -c 'exec 9<>" .. lock .. " && flock -n 9 && exec sleep 30' >/dev/null 2>&1 & echo $!")
      assert.are.equal(0, rc)
      local holder = assert(tonumber(o:match('%d+')))
      finally(function() os.execute('kill -9 ' .. holder .. ' 2>/dev/null') end)
      local held = false
      for _ = 1, 500 do
         held = require('kbl.records.lock').state(dir) == 'held'
         if held then break end
         os.execute('sleep 0.01')
      end
      assert.is_true(held)
      write_status(dir, {state = 'running', pid = holder, host = status.host()})
      assert.are.equal('running', status.read(dir).state)
      os.execute('kill -9 ' .. holder .. '; sleep 0.2')
      assert.are.equal('stopped', status.read(dir).state)
      -- the pid alive (1, init) but the lock free: the pid is another process's by now
      write_status(dir, {state = 'running', pid = 1, host = status.host()})
      assert.are.equal('stopped', status.read(dir).state)
      -- without a lock file (an older kbl) the pid decides; another host is not judged
      os.remove(lock)
      write_status(dir, {state = 'running', pid = 1, host = status.host()})
      assert.are.equal('running', status.read(dir).state)
      write_status(dir, {state = 'running', pid = dead, host = 'elsewhere.example'})
      assert.are.equal('running', status.read(dir).state)
   end)

   it('reports a status file that is not JSON and an unknown state', function()
      local dir = tmp .. '/d'
      os.execute('mkdir -p ' .. dir)
      local f = assert(io.open(dir .. '/status.json', 'w'))
      f:write('{not json')
      f:close()
      local ok, err = pcall(status.read, dir)
      assert.is_false(ok)
      assert.matches('status.json is not valid JSON', err, nil, true)
      ok, err = pcall(status.write, dir, {state = 'paused'})
      assert.is_false(ok)
      assert.matches('unknown state paused', err, nil, true)
   end)
end)
