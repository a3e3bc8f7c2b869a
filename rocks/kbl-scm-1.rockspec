-- kbl: the LuaRocks rockspec. `luarocks make rocks/kbl-scm-1.rockspec` (from the
-- checkout's root) builds libkbl with CMake and installs the library, the Lua
-- modules (kbl, blocks, configs) and the `kbl` command into the tree; `kbl`
-- then works from any directory. Add `--tree DIR` for a tree of your own.
--
-- Run-time needs outside the rock: LuaJIT, and the Debian packages lua-argparse
-- and lua-dkjson, libdnnl2, libzstd1 and zlib1g (DESIGN.md). They
-- are not listed as rock dependencies, since Debian's Lua packages are not
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
   "lua >= 5.1",
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
