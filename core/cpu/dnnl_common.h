/* dnnl_common.h — what the oneDNN kernels share (dnnl_common.c): the one CPU
 * engine and stream, made on first use with float32 math held strict, and
 * status names for messages. */
#ifndef KBL_CPU_DNNL_COMMON_H
#define KBL_CPU_DNNL_COMMON_H

#include <oneapi/dnnl/dnnl.h>

/* Makes the engine and stream once; 0, or -1 with a message. */
int kbl_dnnl_init(void);
dnnl_engine_t kbl_dnnl_engine(void);
dnnl_stream_t kbl_dnnl_stream(void);
const char *kbl_dnnl_status(dnnl_status_t st);

#endif /* KBL_CPU_DNNL_COMMON_H */
