// SPDX-License-Identifier: Apache-2.0
/*
 * Small shim over libbpf for the TypeScript receiver (called through koffi).
 * Stages: open -> load -> configure -> attach -> drain/stats -> destroy.
 * Drain copies whole ring buffer records into a caller buffer in one call, so
 * JavaScript is never called per event.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "socket_trace.h"
#include "kalman_shim.h"

#define KL_MAX_PROGS 64
#define KL_LOG_KEEP 16384

struct kl_tracer {
	struct bpf_object *obj;
	struct ring_buffer *rb;
	struct bpf_link *links[KL_MAX_PROGS];
	int nlinks;
	char skipped[1024]; /* programs not loaded: their hook is missing on this kernel */
	/* Current drain target, used by the ring buffer callback. */
	uint8_t *buf;
	uint32_t cap;
	uint32_t off;
	uint32_t records;
};

/* ---- libbpf log capture (its print hook is process-global) ------------------ */

static char log_keep[KL_LOG_KEEP];
static size_t log_len;

static void log_append(const char *text, size_t n)
{
	if (n >= KL_LOG_KEEP / 2) {
		/* a whole verifier log in one print: its end holds the verdict */
		text += n - (KL_LOG_KEEP / 2 - 1);
		n = KL_LOG_KEEP / 2 - 1;
	}
	if (log_len + n >= KL_LOG_KEEP) {
		/* keep the newest half */
		size_t keep = KL_LOG_KEEP / 2;
		memmove(log_keep, log_keep + log_len - keep, keep);
		log_len = keep;
	}
	memcpy(log_keep + log_len, text, n);
	log_len += n;
	log_keep[log_len] = 0;
}

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[1024];
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n <= 0) {
		va_end(again);
		return 0;
	}
	if ((size_t)n < sizeof(line)) {
		log_append(line, (size_t)n);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big) {
			vsnprintf(big, (size_t)n + 1, fmt, again);
			log_append(big, (size_t)n);
			free(big);
		} else {
			log_append(line, sizeof(line) - 1);
		}
	}
	va_end(again);
	return 0;
}

static void log_reset(void)
{
	libbpf_set_print(on_libbpf_print);
	log_len = 0;
	log_keep[0] = 0;
}

/* Message plus the last `lines` lines of libbpf's log (the verifier's verdict is at the end). */
static void set_err(char *err, int errlen, int lines, const char *fmt, ...)
{
	if (!err || errlen <= 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= errlen || lines <= 0 || log_len == 0)
		return;
	const char *start = log_keep + log_len;
	int seen = 0;
	while (start > log_keep) {
		start--;
		if (*start == '\n' && start != log_keep + log_len - 1 && ++seen > lines) {
			start++;
			break;
		}
	}
	snprintf(err + n, errlen - n, "\n%s", start);
}

/* ---- open / load / attach ------------------------------------------------------ */

static int on_sample(void *ctx, void *data, size_t size);

static int tracepoint_exists(const char *sec)
{
	/* "tracepoint/<category>/<name>" or "tp/<category>/<name>" */
	const char *rest = NULL;
	if (strncmp(sec, "tracepoint/", 11) == 0)
		rest = sec + 11;
	else if (strncmp(sec, "tp/", 3) == 0)
		rest = sec + 3;
	if (!rest)
		return 1; /* not a tracepoint: let libbpf decide */
	char path[512];
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s", rest);
	if (access(path, F_OK) == 0)
		return 1;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s", rest);
	return access(path, F_OK) == 0;
}

kl_tracer *kl_tracer_open(const char *obj_path, uint32_t ringbuf_bytes, char *err, int errlen)
{
	log_reset();
	kl_tracer *t = calloc(1, sizeof(*t));
	if (!t) {
		set_err(err, errlen, 0, "out of memory");
		return NULL;
	}
	t->obj = bpf_object__open_file(obj_path, NULL);
	if (!t->obj) {
		set_err(err, errlen, 4, "cannot open BPF object %s: %s", obj_path, strerror(errno));
		free(t);
		return NULL;
	}
	struct bpf_map *events = bpf_object__find_map_by_name(t->obj, "events");
	struct bpf_map *scratch = bpf_object__find_map_by_name(t->obj, "scratch");
	int ncpu = libbpf_num_possible_cpus();
	if (!events || !scratch || ncpu <= 0) {
		set_err(err, errlen, 0, "%s lacks the events/scratch maps", obj_path);
		bpf_object__close(t->obj);
		free(t);
		return NULL;
	}
	if (ringbuf_bytes)
		bpf_map__set_max_entries(events, ringbuf_bytes);
	bpf_map__set_max_entries(scratch, (uint32_t)ncpu);

	struct bpf_program *prog;
	bpf_object__for_each_program(prog, t->obj)
	{
		const char *sec = bpf_program__section_name(prog);
		if (!tracepoint_exists(sec)) {
			bpf_program__set_autoload(prog, false);
			size_t used = strlen(t->skipped);
			snprintf(t->skipped + used, sizeof(t->skipped) - used, "%s%s", used ? "," : "", sec);
		}
	}
	return t;
}

int kl_tracer_load(kl_tracer *t, char *err, int errlen)
{
	log_reset();
	/*
	 * The verifier gives up with EAGAIN when a signal is pending for the loading thread (a profiler's
	 * SIGPROF, a child's SIGCHLD). Block signals on this thread for the load; they are delivered after.
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = bpf_object__load(t->obj);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		set_err(err, errlen, 24, "the kernel refused the BPF object (%s)", strerror(-rc));
		return rc;
	}
	int fd = bpf_object__find_map_fd_by_name(t->obj, "events");
	t->rb = ring_buffer__new(fd, on_sample, t, NULL);
	if (!t->rb) {
		rc = -errno;
		set_err(err, errlen, 4, "cannot map the ring buffer (%s)", strerror(errno));
		return rc;
	}
	return 0;
}

int kl_tracer_attach(kl_tracer *t, char *err, int errlen)
{
	log_reset();
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, t->obj)
	{
		if (!bpf_program__autoload(prog))
			continue;
		if (t->nlinks >= KL_MAX_PROGS) {
			set_err(err, errlen, 0, "more than %d programs", KL_MAX_PROGS);
			return -E2BIG;
		}
		struct bpf_link *link = bpf_program__attach(prog);
		if (!link) {
			int rc = -errno;
			set_err(err, errlen, 4, "%s (%s) failed: %s", bpf_program__name(prog),
				bpf_program__section_name(prog), strerror(errno));
			return rc;
		}
		t->links[t->nlinks++] = link;
	}
	return 0;
}

const char *kl_tracer_skipped(kl_tracer *t) { return t->skipped; }

/* ---- configuration ------------------------------------------------------------------ */

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kl_tracer_configure(kl_tracer *t, uint32_t self_tgid, uint32_t capture_len, uint32_t flags,
			uint32_t recover_window_ms)
{
	struct kl_config cfg = {
		.self_tgid = self_tgid,
		.capture_len = capture_len > KL_CAPTURE_MAX ? KL_CAPTURE_MAX : capture_len,
		.flags = flags,
		.enabled = 1,
		/* bpf_ktime_get_ns() is CLOCK_MONOTONIC */
		.recover_until_ns = monotonic_ns() + (uint64_t)recover_window_ms * 1000000ull,
	};
	uint32_t zero = 0;
	int fd = bpf_object__find_map_fd_by_name(t->obj, "kl_config_map");
	if (fd < 0)
		return fd;
	return bpf_map_update_elem(fd, &zero, &cfg, BPF_ANY) ? -errno : 0;
}

int kl_tracer_allow(kl_tracer *t, int kind, uint32_t value, int on)
{
	const char *name = kind == KL_ALLOW_PID ? "pid_allow" : kind == KL_ALLOW_PORT ? "port_allow" : NULL;
	if (!name)
		return -EINVAL;
	int fd = bpf_object__find_map_fd_by_name(t->obj, name);
	if (fd < 0)
		return fd;
	uint8_t one = 1;
	uint32_t pid = value;
	uint16_t port = (uint16_t)value;
	void *key = kind == KL_ALLOW_PID ? (void *)&pid : (void *)&port;
	if (on)
		return bpf_map_update_elem(fd, key, &one, BPF_ANY) ? -errno : 0;
	return bpf_map_delete_elem(fd, key) && errno != ENOENT ? -errno : 0;
}

/* ---- drain and stats ------------------------------------------------------------------- */

static int on_sample(void *ctx, void *data, size_t size)
{
	kl_tracer *t = ctx;
	size_t padded = (size + 7) & ~(size_t)7;
	if (t->off + padded > t->cap)
		return -ENOSPC; /* stop; this record stays in the ring for the next drain */
	memcpy(t->buf + t->off, data, size);
	t->off += (uint32_t)padded;
	t->records++;
	return 0;
}

int kl_tracer_drain(kl_tracer *t, uint8_t *buf, uint32_t cap, uint32_t *out_records)
{
	t->buf = buf;
	t->cap = cap;
	t->off = 0;
	t->records = 0;
	int rc = ring_buffer__consume(t->rb);
	if (out_records)
		*out_records = t->records;
	t->buf = NULL;
	if (rc < 0 && rc != -ENOSPC)
		return rc;
	return (int)t->off;
}

int kl_tracer_stats(kl_tracer *t, uint64_t *out, int n)
{
	int fd = bpf_object__find_map_fd_by_name(t->obj, "counters");
	int ncpu = libbpf_num_possible_cpus();
	if (fd < 0 || ncpu <= 0)
		return -ENOENT;
	uint64_t *vals = calloc((size_t)ncpu, sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	int m = n < KL_CNT__MAX ? n : KL_CNT__MAX;
	for (int i = 0; i < m; i++) {
		uint32_t key = (uint32_t)i;
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &key, vals) == 0)
			for (int c = 0; c < ncpu; c++)
				out[i] += vals[c];
	}
	free(vals);
	return m;
}

int kl_tracer_prog_ids(kl_tracer *t, uint32_t *out, int n)
{
	int count = 0;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, t->obj)
	{
		int fd = bpf_program__fd(prog);
		if (fd < 0 || count >= n)
			continue;
		struct bpf_prog_info info = {};
		uint32_t len = sizeof(info);
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			out[count++] = info.id;
	}
	return count;
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/*
 * Detaching a tracepoint waits for an RCU grace period (~70 ms here), so detaching
 * 29 links one by one takes seconds. Detach them from parallel threads instead.
 */
static void destroy_links(kl_tracer *t)
{
	pthread_t threads[KL_MAX_PROGS];
	int started[KL_MAX_PROGS] = {0};
	for (int i = 0; i < t->nlinks; i++)
		started[i] = pthread_create(&threads[i], NULL, destroy_link, t->links[i]) == 0;
	for (int i = 0; i < t->nlinks; i++) {
		if (started[i])
			pthread_join(threads[i], NULL);
		else
			bpf_link__destroy(t->links[i]);
	}
	t->nlinks = 0;
}

void kl_tracer_destroy(kl_tracer *t)
{
	if (!t)
		return;
	destroy_links(t);
	if (t->rb)
		ring_buffer__free(t->rb);
	if (t->obj)
		bpf_object__close(t->obj);
	free(t);
}
