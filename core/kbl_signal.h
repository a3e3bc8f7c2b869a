/* kbl_signal.h — SIGINT/SIGTERM handling for training loops (checkpoint.c).
 *
 * kbl.h includes this header, so a C user of kbl.h sees it; the region between
 * KBL_CDEF_BEGIN and KBL_CDEF_END is plain C that the build appends to the
 * Lua binding's ffi.cdef text after kbl.h's own (cmake/gen_cdef.cmake).
 */
#ifndef KBL_SIGNAL_H
#define KBL_SIGNAL_H

#include "kbl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KBL_CDEF_BEGIN */

/* SIGINT/SIGTERM during fit: the handler records the signal, the loop polls
 * kbl_interrupt_pending() (the signal number, or 0) and checkpoints. */
int kbl_interrupt_install(void);
int kbl_interrupt_pending(void);
void kbl_interrupt_clear(void);
void kbl_interrupt_restore(void);

/* KBL_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* KBL_SIGNAL_H */
