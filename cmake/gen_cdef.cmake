# Extracts the region between KBL_CDEF_BEGIN and KBL_CDEF_END of kbl.h into a Lua
# module returning it as a string for ffi.cdef: the binding never copies the header.
file(READ ${HEADER} text)
string(FIND "${text}" "/* KBL_CDEF_BEGIN */" b)
string(FIND "${text}" "/* KBL_CDEF_END */" e)
if(b EQUAL -1 OR e EQUAL -1)
  message(FATAL_ERROR "kbl.h lacks the KBL_CDEF_BEGIN/END markers")
endif()
math(EXPR b "${b} + 20")
math(EXPR len "${e} - ${b}")
string(SUBSTRING "${text}" ${b} ${len} decls)
file(WRITE ${OUT} "-- Generated from core/kbl.h by cmake/gen_cdef.cmake; do not edit.\nreturn [==[\n${decls}]==]\n")
