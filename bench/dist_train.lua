-- bench/dist_train.lua: training throughput of a config on the processes of
-- the mpirun job that runs it (1 without mpirun): two epochs of STEPS steps
-- each (the first warms up), one validation step; rank 0 prints one line of
-- key=value: samples/s of the second epoch (global batch), the time per step
-- of backward (with the wait for gradients) and of the wait alone after
-- backward, and the buckets that started while backward ran.
--   mpirun -n 2 bin/kbl bench/dist_train.lua examples/fashion_mnist_mlp.lua 60
local kbl = require 'kbl'
local run = require 'kbl.commands.run'
local cfg, steps = arg[1], tonumber(arg[2] or '60')
local trainer = run.build_trainer({cfg}, {set = {'epochs=2', 'steps_per_epoch=' .. steps, 'validation_steps=1',
   'threads=' .. (os.getenv('OMP_NUM_THREADS') or '1')}, quiet = true, progress = 'none'})
trainer:build()
local history = trainer:fit()
local e = history[2]
local d = trainer.dist and trainer.dist:summary()
if kbl.dist.rank() == 0 then
   print(string.format('procs=%d samples_per_sec=%.1f backward_ms=%.3f wait_ms=%.3f early=%.2f buckets=%.1f '
      .. 'mbytes=%.3f',
      kbl.dist.world_size(), e.samples_per_sec, 1e3 * e.time_backward / steps, d and 1e3 * d.wait_per_step or 0,
      d and d.early_fraction or 0, d and d.buckets_per_step or 0, d and d.bytes_per_step / 1e6 or 0))
end
