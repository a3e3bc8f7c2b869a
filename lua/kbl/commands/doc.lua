--- kbl doc NAME: prints the documentation of a function, block, class, module
-- or config key (kbl.doc): `kbl doc kbl.conv2d`, `kbl doc blocks.Conv2D`,
-- `kbl doc config.stages`. `kbl doc --missing` lists what has no documentation yet.
local M = {summary = 'Print the documentation of a function, block or config key.'}

function M.describe(cmd)
   cmd:argument('name', 'kbl.conv2d, blocks.Conv2D, data.csv, optim.Adam, Tensor:size, config.stages, ...')
      :args('?')
   cmd:flag('--missing', 'List the public names, block options and config keys without documentation.')
end

function M.run(args)
   local doc = require 'kbl.doc'
   if args.missing then
      local missing = doc.undocumented()
      for _, name in ipairs(missing) do print(name) end
      io.stderr:write(#missing .. ' undocumented\n')
      return
   end
   if not args.name then
      error('kbl doc: give a name, such as kbl.conv2d, blocks.Conv2D or config.stages', 0)
   end
   local e, err = doc.lookup(args.name)
   if not e then error('kbl doc: ' .. err, 0) end
   print(doc.format(e))
end

return M
