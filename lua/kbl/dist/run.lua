--- kbl.dist.run: `kbl run` on the ranks other than 0 of an mpirun job. Rank 0
-- is the ordinary run (run directory, records, checkpoints, the test split);
-- the others train the same replica with no files: the same config (from
-- --resume's config.lua too), the callbacks that write (checkpoints, loggers)
-- left out, and the state of the checkpoint rank 0 resumes from.
local M = {}

-- Callbacks that write into the run directory: rank 0's alone.
local WRITERS = {ModelCheckpoint = true, CSVLogger = true, JSONLinesLogger = true}

function M.worker(files, sets, resume_dir)
   local run = require 'kbl.commands.run'
   local trainer = run.build_trainer(files, {set = sets, quiet = true, progress = 'none'})
   local ok, err = pcall(function()
      trainer:build()
      local kept = {}
      for _, cb in ipairs(trainer.callbacks) do
         if not WRITERS[cb.name] then kept[#kept + 1] = cb end
      end
      trainer.callbacks = kept
      if resume_dir then require('kbl.records.run').resume(trainer, resume_dir, {quiet = true}) end
      trainer:fit()
   end)
   if trainer.restore_defaults then trainer.restore_defaults() end
   if not ok then error(err, 0) end
   local d = trainer.dist
   if d and d.stop_signal then
      error(string.format('rank %d stopped with the others on signal %d; rank 0 wrote the checkpoint',
         d.rank, d.stop_signal), 0)
   end
   return trainer
end

return M
