/* SPDX-License-Identifier: Apache-2.0 */
/* C API of libkalman.so, bound from TypeScript by packages/ebpf-receiver/src/native.ts. */
#ifndef KALMAN_SHIM_H
#define KALMAN_SHIM_H
#include <stdint.h>

typedef struct kl_tracer kl_tracer;

enum kl_allow_kind {
	KL_ALLOW_PID = 0,
	KL_ALLOW_PORT = 1,
};

/* Each stage returns 0 (or a handle) on success; on failure a negative errno and a message in err. */
kl_tracer *kl_tracer_open(const char *obj_path, uint32_t ringbuf_bytes, char *err, int errlen);
int kl_tracer_load(kl_tracer *t, char *err, int errlen);
int kl_tracer_attach(kl_tracer *t, char *err, int errlen);
const char *kl_tracer_skipped(kl_tracer *t);
/* recover_window_ms: how long after now syscalls in flight at attach are rebuilt at exit. */
int kl_tracer_configure(kl_tracer *t, uint32_t self_tgid, uint32_t capture_len, uint32_t flags,
			uint32_t recover_window_ms);
int kl_tracer_allow(kl_tracer *t, int kind, uint32_t value, int on);
/* Copies whole records (each padded to 8 bytes) into buf; returns bytes written or -errno. */
int kl_tracer_drain(kl_tracer *t, uint8_t *buf, uint32_t cap, uint32_t *out_records);
int kl_tracer_stats(kl_tracer *t, uint64_t *out, int n);
int kl_tracer_prog_ids(kl_tracer *t, uint32_t *out, int n);
void kl_tracer_destroy(kl_tracer *t);

#endif
