# Extracts the region between KBL_CDEF_BEGIN and KBL_CDEF_END of kbl.h, then that
# of each public header kbl.h includes (#include "kbl_x.h", in kbl.h's order), into
# a Lua module returning them as one string for ffi.cdef: the binding never copies
# a header. An op table a region includes (#include "ops_unary.def" inside an enum)
# is expanded to its enum lines (KBL_NAME,), and the X-macro's #define/#undef
# lines dropped, so the FFI's enum is the table's.
get_filename_component(dir ${HEADER} DIRECTORY)

function(cdef_region path out)
  file(READ ${path} text)
  string(FIND "${text}" "/* KBL_CDEF_BEGIN */" b)
  string(FIND "${text}" "/* KBL_CDEF_END */" e)
  if(b EQUAL -1 OR e EQUAL -1)
    message(FATAL_ERROR "${path} lacks the KBL_CDEF_BEGIN/END markers")
  endif()
  math(EXPR b "${b} + 20")
  math(EXPR len "${e} - ${b}")
  string(SUBSTRING "${text}" ${b} ${len} decls)
  set(${out} "${decls}" PARENT_SCOPE)
endfunction()

cdef_region(${HEADER} decls)
file(READ ${HEADER} text)
string(REGEX MATCHALL "\n#include \"kbl_[a-z_]+\\.h\"" parts "${text}")
foreach(part IN LISTS parts)
  string(REGEX REPLACE "\n#include \"(kbl_[a-z_]+\\.h)\"" "\\1" h "${part}")
  cdef_region(${dir}/${h} more)
  string(APPEND decls "${more}")
endforeach()

string(REGEX MATCHALL "#include \"[a-z_]+\\.def\"" includes "${decls}")
foreach(inc IN LISTS includes)
  string(REGEX REPLACE "#include \"([a-z_]+\\.def)\"" "\\1" def "${inc}")
  file(STRINGS ${dir}/${def} rows REGEX "^KBL_[A-Z]+\\([A-Z0-9_]+,")
  set(lines "")
  foreach(row IN LISTS rows)
    string(REGEX REPLACE "^KBL_[A-Z]+\\(([A-Z0-9_]+),.*" "    KBL_\\1," name "${row}")
    string(APPEND lines "${name}\n")
  endforeach()
  string(REPLACE "${inc}\n" "${lines}" decls "${decls}")
endforeach()
string(REGEX REPLACE "\n#(define|undef) KBL_[A-Z]+[^\n]*" "" decls "${decls}")
file(WRITE ${OUT} "-- Generated from core/kbl.h and the kbl_*.h it includes by cmake/gen_cdef.cmake; do not edit.\nreturn [==[\n${decls}]==]\n")
