-- kbl bench NAME: runs bench/NAME.lua from the source checkout, which times kbl
-- against PyTorch on one workload family and prints the ratios.
local M = {summary = 'Run a benchmark from bench/ (kbl against PyTorch).'}

function M.describe(cmd)
   cmd:argument('name', 'Benchmark name (a file bench/NAME.lua), or "list".')
end

local function bench_dir()
   local src = debug.getinfo(1, 'S').source:sub(2)
   local root = src:match('^(.*)/lua/kbl/commands/[^/]*$')
   return root and (root .. '/bench') or 'bench'
end

function M.run(args)
   local dir = bench_dir()
   if args.name == 'list' then
      local p = io.popen('ls ' .. dir .. '/*.lua 2>/dev/null')
      for line in p:lines() do print((line:match('([^/]+)%.lua$'))) end
      p:close()
      return
   end
   local path = dir .. '/' .. args.name .. '.lua'
   local chunk, err = loadfile(path)
   if not chunk then error('no benchmark ' .. args.name .. ' (' .. tostring(err) .. ')', 0) end
   chunk()
end

return M
