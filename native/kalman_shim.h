/* SPDX-License-Identifier: Apache-2.0 */
/* C API of libkalman.so, bound from TypeScript by packages/ebpf-receiver/src/native.ts. */
#ifndef KALMAN_SHIM_H
#define KALMAN_SHIM_H
#include <stdint.h>

typedef struct kl_tracer kl_tracer;

enum kl_allow_kind {
	KL_ALLOW_PID = 0,
	KL_ALLOW_PORT = 1,
	KL_ALLOW_TLS_PID = 2,
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

/* ---- AF_PACKET capture (packet_capture.c; records in packet_record.h) ---- */

typedef struct kl_capture kl_capture;

/*
 * Opens a TPACKET_V3 ring on ifname ("" = every interface) inside the network namespace at
 * netns_path (NULL or "" = this thread's), with filter (tcpdump syntax, "" = none) applied in the
 * kernel before the socket is bound. The ring is block_count blocks of block_bytes (page multiples);
 * a block is handed over when full or after retire_ms. On failure returns NULL and a message in err
 * that starts with the stage: "open:", "filter:", "setns:" or "mmap:".
 */
kl_capture *kl_capture_open(const char *netns_path, const char *ifname, uint32_t snaplen, uint32_t block_bytes,
			    uint32_t block_count, uint32_t retire_ms, const char *filter, uint16_t capture_id,
			    char *err, int errlen);
/*
 * Copies the frames of every handle's retired blocks into buf as struct kl_packet records; stops
 * when buf is full and resumes there on the next call. Returns bytes written or -errno.
 */
int kl_capture_drain(kl_capture **caps, int n, uint8_t *buf, uint32_t cap, uint32_t *out_packets);
/* Fills out[0..n) with the kl_capture_counter slots; returns how many were written. */
int kl_capture_stats(kl_capture *c, uint64_t *out, int n);
/* Name of ifindex in the handle's network namespace. 0 or -errno. */
int kl_capture_ifname(kl_capture *c, uint32_t ifindex, char *out, int outlen);
/* "ifindex name\n" lines of a namespace's interfaces; returns bytes written or -errno (message in out). */
int kl_netns_interfaces(const char *netns_path, char *out, int outlen);
void kl_capture_close(kl_capture *c);

/* ---- TLS plaintext (uprobes) ---- */
/* Before load: on = 0 leaves the TLS programs unloaded (no uprobes, no exec notifications). */
int kl_tracer_set_tls(kl_tracer *t, int on);
/*
 * Attaches the OpenSSL probes to a library or executable; returns a target id >= 0 or -errno.
 * `msg` gets the error, or on success where the probes went (entries, or the internal function
 * SSL_x and SSL_x_ex share when its first instruction is cheaper to break on). entries = 1: the
 * exported functions' entries whatever they cost (for comparisons).
 */
int kl_tls_attach_openssl(kl_tracer *t, const char *path, int entries, char *msg, int msglen);
/* Attaches Go crypto/tls probes: entries by symbol, returns at the given offsets from each function's start. */
int kl_tls_attach_go(kl_tracer *t, const char *path, const uint32_t *write_rets, int nwrite, const uint32_t *read_rets,
		     int nread, char *err, int errlen);
int kl_tls_detach(kl_tracer *t, int target);
/* Copies pids of processes that called exec since the last call; returns how many. */
int kl_tracer_drain_execs(kl_tracer *t, uint32_t *pids, int cap);
int kl_tracer_tls_stats(kl_tracer *t, uint64_t *out, int n);
/* A function symbol's address and size in an ELF file: 1 found, 0 absent, -errno unreadable. */
int kl_elf_symbol(const char *path, const char *name, uint64_t *addr, uint64_t *size);

#endif
