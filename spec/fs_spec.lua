-- spec/fs_spec.lua: kbl.io.fs on lua-posix: exists, is_dir, mkdir, mkdir_p
-- (with the error naming the directory and the reason), strerror.
local fs = require 'kbl.io.fs'
local H = require 'helper'

describe('kbl.io.fs', function()
   local dir = H.tmpdir()
   teardown(function() os.execute('rm -rf ' .. dir) end)

   it('exists and is_dir tell files, directories and nothing apart', function()
      H.write(dir .. '/f', 'x')
      assert.is_true(fs.exists(dir .. '/f'))
      assert.is_false(fs.is_dir(dir .. '/f'))
      assert.is_true(fs.exists(dir))
      assert.is_true(fs.is_dir(dir))
      assert.is_false(fs.exists(dir .. '/none'))
      assert.is_false(fs.is_dir(dir .. '/none'))
   end)

   it('a file that cannot be read still exists', function()
      H.write(dir .. '/secret', 'x')
      os.execute('chmod 000 ' .. dir .. '/secret')
      assert.is_true(fs.exists(dir .. '/secret'))
   end)

   it('mkdir makes one directory and reports EEXIST', function()
      assert.is_true(fs.mkdir(dir .. '/one'))
      local ok, e = fs.mkdir(dir .. '/one')
      assert.is_false(ok)
      assert.equal(17, e)
   end)

   it('mkdir_p makes the parents and is idempotent', function()
      local p = dir .. '/a/b/c'
      assert.equal(p, fs.mkdir_p(p))
      assert.is_true(fs.is_dir(p))
      assert.equal(p, fs.mkdir_p(p))
   end)

   it('mkdir_p names the directory it could not make and why', function()
      H.write(dir .. '/file', 'x')
      local ok, err = pcall(fs.mkdir_p, dir .. '/file/sub')
      assert.is_false(ok)
      assert.equal(string.format('cannot create the directory %s/file/sub: Not a directory (errno 20)', dir), err)
   end)

   it('strerror gives the system\'s words', function()
      assert.equal('No such file or directory', fs.strerror(2))
      assert.equal('Read-only file system', fs.strerror(30))
   end)
end)
