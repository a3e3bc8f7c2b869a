-- scripts/doc_config.lua: the config keys as a Markdown page for the API
-- reference (scripts/doc.sh), written from kbl.config.schema through kbl.doc,
-- the same entries `kbl doc config.KEY` prints.
local doc = require 'kbl.doc'
local keys, sections = doc.config_keys()
print('# Config keys\n')
print('Every key `kbl run` and `kbl check` accept, from lua/kbl/config/schema.lua. '
   .. '`kbl doc config.KEY` prints one.\n')
for _, sec in ipairs(sections) do
   print('## ' .. sec[2] .. '\n')
   print(sec[3] .. '\n')
   print('| key | type | meaning |')
   print('|-----|------|---------|')
   for _, k in ipairs(keys) do
      if k.section == sec[2] then
         local text = (k.text or ''):gsub('|', '\\|')
         print(string.format('| `%s` | %s | %s |', k.key, (k.type_text:gsub('|', '\\|')), text))
      end
   end
   print('')
end
