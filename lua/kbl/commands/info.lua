--- kbl info: version, devices (and why there is no CUDA device), the CPU kernel
-- library (oneDNN: its version, the instruction set its JIT uses here, its math
-- mode) and thread count, and whether data-parallel training (kbl.dist, MPI) is there.
local M = {summary = 'Print version, devices, CPU kernels and threads.'}

function M.describe(cmd)
   cmd:flag('--json', 'Print one JSON object.')
end

function M.run(args)
   local kbl = require 'kbl'
   local cuda = kbl.cuda.is_available()
   local info = {
      version = kbl.version(),
      cpu_kernels = kbl.blas_info(),
      threads = kbl.get_num_threads(),
      cuda = cuda,
      cuda_devices = kbl.cuda.device_count(),
      cuda_device = cuda and kbl.cuda.device_name() or nil,
      cuda_unavailable = not cuda and kbl.cuda.unavailable_reason() or nil,
      luajit = jit.version,
      dist = kbl.dist.is_available(),
      dist_library = kbl.dist.is_available() and kbl.dist.library_version() or nil,
      dist_unavailable = not kbl.dist.is_available() and kbl.dist.unavailable_reason() or nil,
   }
   if args.json then
      local keyorder = {'version', 'cpu_kernels', 'threads', 'cuda', 'cuda_devices', 'cuda_device', 'cuda_unavailable',
         'luajit', 'dist', 'dist_library', 'dist_unavailable'}
      print(require('dkjson').encode(info, {keyorder = keyorder}))
      return
   end
   print('kbl ' .. info.version)
   print('LuaJIT: ' .. info.luajit)
   print('CPU kernels: ' .. info.cpu_kernels)
   print('threads: ' .. info.threads)
   if cuda then
      print('devices: cpu, cuda x' .. info.cuda_devices .. ' (cuda:0 is ' .. info.cuda_device .. ')')
   else
      print('devices: cpu (no CUDA device: ' .. info.cuda_unavailable .. ')')
   end
   if info.dist then
      print('data parallel: kbl.dist on ' .. info.dist_library .. ' (mpirun -n N bin/kbl run ..., or --nproc N)')
   else
      print('data parallel: none (' .. info.dist_unavailable .. ')')
   end
end

return M
