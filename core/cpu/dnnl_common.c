/* dnnl_common.c — the one oneDNN CPU engine and stream, float32 math held
 * strict, and the library's identity for `kbl info`. */
#include "../internal.h"
#include "dnnl.h"
#include "dnnl_common.h"

#include <stdio.h>

static dnnl_engine_t engine;
static dnnl_stream_t stream;

const char *kbl_dnnl_status(dnnl_status_t st) {
    switch (st) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    }
    return "unknown status";
}

int kbl_dnnl_init(void) {
    if (stream) return 0;
    /* Float32 means float32: oneDNN 2.6's default math mode is strict unless
     * ONEDNN_DEFAULT_FPMATH_MODE says otherwise; pin it (each primitive's
     * attributes pin it again, in dnnl_conv.c). */
    dnnl_status_t st = dnnl_set_default_fpmath_mode(dnnl_fpmath_mode_strict);
    if (st != dnnl_success) return kbl_fail("oneDNN: dnnl_set_default_fpmath_mode failed: %s", kbl_dnnl_status(st));
    if (!engine && (st = dnnl_engine_create(&engine, dnnl_cpu, 0)) != dnnl_success)
        return kbl_fail("oneDNN: dnnl_engine_create(cpu) failed: %s", kbl_dnnl_status(st));
    if ((st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags)) != dnnl_success)
        return kbl_fail("oneDNN: dnnl_stream_create failed: %s", kbl_dnnl_status(st));
    return 0;
}

dnnl_engine_t kbl_dnnl_engine(void) { return engine; }
dnnl_stream_t kbl_dnnl_stream(void) { return stream; }

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch ((int)isa) {
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2 VNNI";
    case dnnl_cpu_isa_avx512_mic: return "AVX-512 MIC";
    case dnnl_cpu_isa_avx512_mic_4ops: return "AVX-512 MIC 4OPS";
    case dnnl_cpu_isa_avx512_core: return "AVX-512";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 AMX";
    }
    return "no JIT (reference kernels)";
}

/* "oneDNN 2.6.3 (ISA: AVX-512 BF16; math: strict float32; threading: OpenMP)" */
const char *kbl_dnnl_info(void) {
    static char buf[192];
    const dnnl_version_t *v = dnnl_version();
    dnnl_fpmath_mode_t mode = dnnl_fpmath_mode_strict;
    kbl_dnnl_init();
    dnnl_get_default_fpmath_mode(&mode);
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d (ISA: %s; math: %s float32; threading: %s)", v->major, v->minor,
             v->patch, isa_name(dnnl_get_effective_cpu_isa()), mode == dnnl_fpmath_mode_strict ? "strict" : "relaxed",
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "openmp" : "not OpenMP");
    return buf;
}
