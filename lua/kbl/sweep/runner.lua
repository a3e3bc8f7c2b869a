--- kbl.sweep.runner: runs a sweep's runs as child `kbl run` processes, `jobs`
-- at a time, each into its own run directory with its output in kbl.log
-- there. A run that finished is skipped; one with a checkpoint continues with
-- `kbl run --resume` (exactly, as single runs do); any other starts afresh
-- (a failed run is tried again when the sweep is, then reported as failed).
--
-- Successive halving (halving = {rungs = {1, 2}, eta = 2}) is synchronous:
-- every live run trains to the first rung (`--set epochs=<rung>`, which a
-- resume later extends), then the best 1/eta of them by the monitored metric
-- at that epoch go on to the next rung and the rest stop; after the last rung
-- the survivors train to the end. Deciding when all runs have reached a rung,
-- rather than as each arrives (ASHA), makes the decisions a function of the
-- metrics alone: the same whatever the job count, the timing or a resume.
--
-- SIGINT or SIGTERM: the runs under way are sent SIGTERM (they checkpoint and
-- stop), and the sweep stops saying how to resume it.
local fs = require 'kbl.io.fs'
local proc = require 'kbl.sweep.proc'
local results = require 'kbl.sweep.results'

local M = {}

-- The interpreter and kbl/cli.lua this process runs, for the children (the
-- environment bin/kbl set, LUA_PATH and KBL_LIB, passes on to them).
local function kbl_argv()
   local lowest = 0
   while arg and arg[lowest - 1] do lowest = lowest - 1 end
   local interp = arg and arg[lowest] or 'luajit'
   if lowest == 0 then interp = 'luajit' end
   local cli = package.searchpath('kbl.cli', package.path)
   if not cli then error('sweep: cannot find kbl/cli.lua on the Lua path', 0) end
   return {interp, cli}
end

local function status_of(dir)
   local ok, s = pcall(require('kbl.records.status').read, dir)
   return ok and s or nil
end

-- Whether a run has finished at least `need` epochs.
function M.done(run, need)
   local s = status_of(run.dir)
   if not s or s.state ~= 'finished' then return false end
   return (tonumber(s.epoch) or #results.history(run.dir)) >= need
end

local function has_checkpoint(dir)
   local ok, list = pcall(require('kbl.records.checkpoint').list, dir .. '/checkpoints')
   return ok and list and #list > 0
end

-- The command line of a child that takes run to `target` epochs (nil: the
-- config's own).
function M.command(run, opts, target)
   local argv = kbl_argv()
   local function add(...) for _, a in ipairs{...} do argv[#argv + 1] = a end end
   add('run')
   if has_checkpoint(run.dir) then
      run.how = 'resumed'
      add('--resume', run.dir)
      if target then add('--set', 'epochs=' .. target) end
   else
      run.how = 'started'
      for _, f in ipairs(opts.files) do add(f) end
      for _, s in ipairs(opts.sets) do add('--set', s) end
      for _, s in ipairs(run.sets) do add('--set', s) end
      if target then add('--set', 'epochs=' .. target) end
      add('--run-dir', run.dir)
      if #require('kbl.records.run').existing(run.dir) > 0 then add('--overwrite') end
   end
   return argv
end

-- The last line a child wrote that says what went wrong.
local function last_error(log)
   local f = io.open(log, 'r')
   if not f then return nil end
   local last, any
   for line in f:lines() do
      if line:match('^kbl: ') then last = line:sub(6) end
      if line:match('%S') then any = line end
   end
   f:close()
   return last or any
end

-- Runs each run in queue to its target, opts.jobs at a time. Returns false
-- when interrupted.
local function execute(queue, opts, target)
   local C = require('kbl.lib').C
   local live, n_live, next_i = {}, 0, 1
   local say = opts.say or function() end
   if C.kbl_interrupt_install() ~= 0 then error(require('ffi').string(C.kbl_last_error()), 0) end
   local interrupted = false
   local ok, err = pcall(function()
      while (not interrupted and next_i <= #queue) or n_live > 0 do
         while not interrupted and n_live < opts.jobs and next_i <= #queue do
            local run = queue[next_i]
            next_i = next_i + 1
            fs.mkdir_p(run.dir)
            -- with halving every segment names its epochs, the last the config's own
            local epochs = target or (opts.halving and run.epochs) or nil
            local argv = M.command(run, opts, epochs)
            local pid = proc.spawn(argv, run.dir .. '/kbl.log')
            live[pid], n_live = run, n_live + 1
            say(string.format('%s %s%s', run.how, run.name, target and (' to epoch ' .. target) or ''))
         end
         local pid, code = proc.reap(false)
         if pid and live[pid] then
            local run = live[pid]
            live[pid], n_live = nil, n_live - 1
            local s = status_of(run.dir)
            if code == 0 and s and s.state == 'finished' then
               opts.on_done(run)
            elseif not interrupted then
               run.failed = last_error(run.dir .. '/kbl.log') or ('exit status ' .. code)
               say(string.format('%s failed: %s (log: %s/kbl.log)', run.name, run.failed, run.dir))
            end
         elseif not pid then
            proc.sleep(0.02)
         end
         if not interrupted and C.kbl_interrupt_pending() ~= 0 then
            interrupted = true
            for p in pairs(live) do proc.kill(p, 15) end
         end
      end
   end)
   C.kbl_interrupt_clear()
   C.kbl_interrupt_restore()
   if not ok then
      for p in pairs(live) do proc.kill(p, 15) end
      error(err, 0)
   end
   return not interrupted
end

-- The message for a monitored metric that no run logged (at the epoch).
function M.missing_monitor(runs, monitor, epoch)
   local names, seen = {}, {}
   for _, run in ipairs(runs) do
      for _, h in ipairs(results.history(run.dir)) do
         for k, v in pairs(h) do
            if results.is_metric(k, v) and not seen[k] then seen[k] = true; names[#names + 1] = k end
         end
      end
   end
   table.sort(names)
   local hint
   for _, n in ipairs(names) do   -- a name it begins (val_acc: val_accuracy), else the closest
      if n:sub(1, #monitor) == monitor and (not hint or #n < #hint) then hint = n end
   end
   hint = hint or require('kbl.config.schema').closest(monitor, names)
   return string.format("sweep: no run logged the monitored metric '%s'%s%s (they log %s)", monitor,
      epoch and (' at epoch ' .. epoch) or '', hint and string.format(" (did you mean '%s'?)", hint) or '',
      #names > 0 and table.concat(names, ', ') or 'nothing yet')
end

-- Ranks the runs that reached the rung by the monitored metric there and
-- stops all but the best max(1, floor(n / eta)); records why in run.stop.
function M.decide(runs, rung, opts)
   local cands = {}
   for _, run in ipairs(runs) do
      if not run.stop and not run.failed then
         local v
         for _, h in ipairs(results.history(run.dir)) do
            if h.epoch == rung then v = h[opts.monitor] end
         end
         if type(v) == 'number' and v == v then cands[#cands + 1] = {run = run, value = v} end
      end
   end
   table.sort(cands, function(a, b)
      if a.value ~= b.value then
         if opts.mode == 'max' then return a.value > b.value end
         return a.value < b.value
      end
      return a.run.index < b.run.index
   end)
   if #cands == 0 then error(M.missing_monitor(runs, opts.monitor, rung), 0) end
   local keep = math.max(1, math.floor(#cands / opts.halving.eta))
   local stopped = {}
   for rank, c in ipairs(cands) do
      if rank > keep then
         c.run.stop = {rung = rung, value = c.value, rank = rank, of = #cands, keep = keep,
            reason = string.format('stopped by successive halving at epoch %d: %s %.6g ranked %d of %d, '
               .. 'eta %d keeps the best %d', rung, opts.monitor, c.value, rank, #cands, opts.halving.eta, keep)}
         stopped[#stopped + 1] = c.run
      end
   end
   return stopped
end

-- Runs the sweep. runs: {index, name, dir, sets, values, epochs, stop}.
-- opts: files, sets (fixed --set values, threads included), jobs, monitor,
-- mode, halving (or nil), decided (rung -> true: stops already made, kept in
-- run.stop), say(line), save() (persist the stops). Returns false when
-- interrupted.
function M.run(runs, opts)
   local say = opts.say or function() end
   opts.decided = opts.decided or {}
   local levels = {}
   for _, r in ipairs(opts.halving and opts.halving.rungs or {}) do levels[#levels + 1] = r end
   levels[#levels + 1] = false
   for _, rung in ipairs(levels) do
      local queue, alive = {}, 0
      for _, run in ipairs(runs) do
         if not run.stop and not run.failed then
            alive = alive + 1
            if not M.done(run, rung or run.epochs) then queue[#queue + 1] = run end
         end
      end
      local finished = alive - #queue
      opts.on_done = function(run)
         if rung then return end
         finished = finished + 1
         local row = results.row(run, opts.monitor, opts.mode)
         say(string.format('[%d/%d] %s finished: %s %s', finished, alive, run.name, opts.monitor,
            row.final and string.format('%.6g', row.final) or '-'))
      end
      if not execute(queue, opts, rung or nil) then return false end
      if rung and not opts.decided[rung] then
         for _, run in ipairs(M.decide(runs, rung, opts)) do say(run.name .. ': ' .. run.stop.reason) end
         opts.decided[rung] = true
         if opts.save then opts.save() end
      end
   end
   return true
end

return M
