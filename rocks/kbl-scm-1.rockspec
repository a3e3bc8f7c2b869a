-- kbl: the LuaRocks rockspec. `luarocks make rocks/kbl-scm-1.rockspec` (from the
-- checkout's root) builds libkbl with CMake and installs the library (into
-- lib/lua/5.1/, where `luarocks path` makes LuaJIT look), the Lua modules (kbl,
-- blocks, configs), the `kbl` command, and bench/ and examples/ under
-- share/kbl/; `kbl` then works from any directory, and so does `require 'kbl'`
-- from plain LuaJIT after `eval "$(luarocks path)"`. Add `--tree DIR` for a
-- tree of your own.
--
-- kbl needs LuaJIT (its FFI), so the rock depends on luajit: LuaRocks must run
-- for LuaJIT, once per user: `luarocks config lua_interpreter luajit` and
-- `luarocks config variables.LUA_INCDIR /usr/include/luajit-2.1` (Debian's
-- luarocks is set up for Lua 5.1 otherwise). Run-time needs outside the rock:
-- the Debian packages lua-argparse, lua-dkjson and lua-posix, lua-readline (for
-- line editing in `kbl repl`), libdnnl2 (oneDNN), libzstd1 and zlib1g. They are
-- not listed as rock dependencies, since Debian's Lua packages are not
-- registered with LuaRocks and a listed dependency would be fetched again.
rockspec_format = "3.0"
package = "kbl"
version = "scm-1"
source = {
   url = "git+file://.",
}
description = {
   summary = "A deep learning toolkit: a C11 core of tensors and autodiff under LuaJIT.",
   detailed = [[
kbl: tensors, CPU kernels and reverse-mode autodiff in C11, reached from LuaJIT
through the FFI; a block library, data pipelines, a trainer, experiment configs
as Lua tables and the `kbl` command.]],
   license = "MIT",
}
dependencies = {
   "luajit >= 2.0",
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      LUADIR = "$(LUADIR)",
      LIBDIR = "$(LIBDIR)",
      BINDIR = "$(BINDIR)",
      LUA_INCDIR = "$(LUA_INCDIR)",
   },
}
