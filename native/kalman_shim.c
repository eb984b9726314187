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
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "socket_trace.h"
#include "kalman_shim.h"

#define KL_MAX_PROGS 64
#define KL_LOG_KEEP 16384
#define KL_MAX_TLS_TARGETS 256
#define KL_MAX_GO_RETS 64

/* Uprobe links of one attached binary (a libssl, a node, a Go program). */
struct kl_tls_target {
	struct bpf_link **links;
	int nlinks;
	int used;
};

struct kl_tracer {
	struct bpf_object *obj;
	struct ring_buffer *rb;
	struct bpf_link *links[KL_MAX_PROGS];
	int nlinks;
	char skipped[1024]; /* programs not loaded: their hook is missing on this kernel */
	int tls_on;
	struct ring_buffer *exec_rb;
	uint32_t *exec_pids;
	int exec_cap;
	int exec_n;
	struct kl_tls_target targets[KL_MAX_TLS_TARGETS];
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
static int on_exec_sample(void *ctx, void *data, size_t size);

static int is_uprobe(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);
	return strncmp(sec, "uprobe", 6) == 0 || strncmp(sec, "uretprobe", 9) == 0;
}

static int is_tls_prog(const struct bpf_program *prog)
{
	return is_uprobe(prog) || strcmp(bpf_program__section_name(prog), "tracepoint/sched/sched_process_exec") == 0;
}

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
	if (t->tls_on) {
		int efd = bpf_object__find_map_fd_by_name(t->obj, "exec_events");
		t->exec_rb = efd >= 0 ? ring_buffer__new(efd, on_exec_sample, t, NULL) : NULL;
		if (!t->exec_rb) {
			rc = efd < 0 ? efd : -errno;
			set_err(err, errlen, 4, "cannot map the exec ring buffer (%s)", strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int kl_tracer_attach(kl_tracer *t, char *err, int errlen)
{
	log_reset();
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, t->obj)
	{
		if (!bpf_program__autoload(prog) || is_uprobe(prog))
			continue; /* uprobes attach per target binary (kl_tls_attach_*) */
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
	const char *name = kind == KL_ALLOW_PID	      ? "pid_allow"
			   : kind == KL_ALLOW_PORT    ? "port_allow"
			   : kind == KL_ALLOW_TLS_PID ? "tls_pid_allow"
						      : NULL;
	if (!name)
		return -EINVAL;
	int fd = bpf_object__find_map_fd_by_name(t->obj, name);
	if (fd < 0)
		return fd;
	uint8_t one = 1;
	uint32_t pid = value;
	uint16_t port = (uint16_t)value;
	void *key = kind == KL_ALLOW_PORT ? (void *)&port : (void *)&pid;
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

/* Sums the first min(n, max) slots of a per-CPU u64 counter array map into out; returns how many. */
static int sum_percpu_counters(kl_tracer *t, const char *map, int max, uint64_t *out, int n)
{
	int fd = bpf_object__find_map_fd_by_name(t->obj, map);
	int ncpu = libbpf_num_possible_cpus();
	if (fd < 0 || ncpu <= 0)
		return -ENOENT;
	uint64_t *vals = calloc((size_t)ncpu, sizeof(uint64_t));
	if (!vals)
		return -ENOMEM;
	int m = n < max ? n : max;
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

int kl_tracer_stats(kl_tracer *t, uint64_t *out, int n)
{
	return sum_percpu_counters(t, "counters", KL_CNT__MAX, out, n);
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

static void *destroy_link(void *link);

/* Destroys links from parallel threads (each detach waits for an RCU grace period), 128 at a time. */
static void destroy_parallel(struct bpf_link **links, int n)
{
	enum { CHUNK = 128 };
	for (int base = 0; base < n; base += CHUNK) {
		int m = n - base < CHUNK ? n - base : CHUNK;
		pthread_t threads[CHUNK];
		int started[CHUNK] = {0};
		for (int i = 0; i < m; i++)
			started[i] = pthread_create(&threads[i], NULL, destroy_link, links[base + i]) == 0;
		for (int i = 0; i < m; i++) {
			if (started[i])
				pthread_join(threads[i], NULL);
			else
				bpf_link__destroy(links[base + i]);
		}
	}
}

/* ---- TLS targets ---------------------------------------------------------------------- */

int kl_tracer_set_tls(kl_tracer *t, int on)
{
	t->tls_on = on != 0;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, t->obj)
	{
		if (is_tls_prog(prog) && !t->tls_on)
			bpf_program__set_autoload(prog, false);
	}
	return 0;
}

static struct bpf_program *prog_named(kl_tracer *t, const char *name)
{
	return bpf_object__find_program_by_name(t->obj, name);
}

static int target_alloc(kl_tracer *t, int nlinks)
{
	for (int i = 0; i < KL_MAX_TLS_TARGETS; i++) {
		if (t->targets[i].used)
			continue;
		t->targets[i].links = calloc((size_t)nlinks, sizeof(struct bpf_link *));
		if (!t->targets[i].links)
			return -ENOMEM;
		t->targets[i].used = 1;
		t->targets[i].nlinks = 0;
		return i;
	}
	return -ENOSPC;
}

/* Attaches one probe of a target; the symbol may be optional (absent -> 0, nothing attached). */
static int probe(kl_tracer *t, int target, const char *prog_name, const char *path, const char *func, size_t offset,
		 int retprobe, int optional, char *err, int errlen)
{
	struct bpf_program *prog = prog_named(t, prog_name);
	if (!prog || bpf_program__fd(prog) < 0) {
		set_err(err, errlen, 0, "program %s is not loaded (TLS off?)", prog_name);
		return -ENOENT;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .func_name = func);
	struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, path, offset, &opts);
	if (!link) {
		int rc = -errno;
		if (optional && rc == -ENOENT)
			return 0;
		set_err(err, errlen, 2, "%s %s+%zu in %s: %s", retprobe ? "uretprobe" : "uprobe", func ? func : "file offset",
			offset, path,
			strerror(-rc));
		return rc;
	}
	struct kl_tls_target *tg = &t->targets[target];
	tg->links[tg->nlinks++] = link;
	return 0;
}

int kl_tls_detach(kl_tracer *t, int target)
{
	if (target < 0 || target >= KL_MAX_TLS_TARGETS || !t->targets[target].used)
		return -EINVAL;
	struct kl_tls_target *tg = &t->targets[target];
	destroy_parallel(tg->links, tg->nlinks);
	free(tg->links);
	memset(tg, 0, sizeof(*tg));
	return 0;
}

/* ---- where the OpenSSL probes go ----------------------------------------------------------
 * A breakpoint's cost depends on the instruction under it. x86 emulates a few (push reg,
 * call/jmp, 5-byte nop) and single-steps the others out of line: a second trap (#DB), which
 * under KVM is a VM exit. Measured here (native/bench/uprobe_cost.c): ~0.65 µs against ~9 µs.
 * A uretprobe breaks at the function entry too. Debian's OpenSSL 3 starts SSL_read/SSL_write
 * with `sub $N,%rsp` (single-stepped), but SSL_read_ex only passes its arguments on to an
 * internal function (ssl_read_internal) that starts with `push`, and SSL_read calls it too:
 * probing that one function catches both calls, with the _ex arguments and return.
 */

struct code {
	uint64_t vaddr; /* of b[0] */
	uint64_t file_off;
	size_t n;
	uint8_t b[4096];
};

static int find_sym(Elf *elf, const char *name, GElf_Sym *out)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t count = d ? sh.sh_size / sh.sh_entsize : 0;
		for (size_t i = 0; i < count; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value)
				continue;
			const char *sname = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (sname && strcmp(sname, name) == 0) {
				*out = sym;
				return 1;
			}
		}
	}
	return 0;
}

/*
 * Up to `len` bytes of code at a virtual address (within one executable section), read from the
 * file: a read-only mapping of it would show the int3 of uprobes already attached (the kernel
 * puts them in every private file mapping that may execute, libelf's own included).
 */
static int code_at(Elf *elf, int fd, uint64_t vaddr, size_t len, struct code *c)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		if (vaddr < sh.sh_addr || vaddr >= sh.sh_addr + sh.sh_size)
			continue;
		uint64_t at = vaddr - sh.sh_addr;
		size_t n = len < sizeof(c->b) ? len : sizeof(c->b);
		if (n > sh.sh_size - at)
			n = sh.sh_size - at;
		ssize_t got = pread(fd, c->b, n, (off_t)(sh.sh_offset + at));
		if (got <= 0)
			return 0;
		c->vaddr = vaddr;
		c->file_off = sh.sh_offset + at;
		c->n = (size_t)got;
		return 1;
	}
	return 0;
}

static int code_of(Elf *elf, int fd, const char *name, struct code *c)
{
	GElf_Sym sym;
	return find_sym(elf, name, &sym) && code_at(elf, fd, sym.st_value, sym.st_size ? sym.st_size : 64, c);
}

/* The first instruction is one x86 uprobes emulate (no single step). */
static int cheap_entry(const struct code *c)
{
	const uint8_t *b = c->b;
	if (c->n >= 1 && b[0] >= 0x50 && b[0] <= 0x57)
		return 1; /* push %rax..%rdi */
	if (c->n >= 2 && b[0] == 0x41 && b[1] >= 0x50 && b[1] <= 0x57)
		return 1; /* push %r8..%r15 */
	if (c->n >= 5 && (b[0] == 0xe8 || b[0] == 0xe9))
		return 1; /* call / jmp rel32 */
	if (c->n >= 5 && b[0] == 0x0f && b[1] == 0x1f && b[2] == 0x44 && b[3] == 0 && b[4] == 0)
		return 1; /* nop5 */
	return 0;
}

static int32_t rel32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/*
 * The function only adjusts its stack and calls another with its own arguments: the callee's
 * address, or 0. Accepted before the call: endbr64, sub $imm,%rsp, push reg (none writes
 * rdi/rsi/rdx/rcx); anything else is not understood.
 */
static uint64_t passthrough_callee(const struct code *c)
{
	const uint8_t *b = c->b;
	size_t i = 0;
	for (int insns = 0; insns < 8 && i < c->n; insns++) {
		size_t left = c->n - i;
		if (left >= 5 && b[i] == 0xe8)
			return c->vaddr + i + 5 + (uint64_t)(int64_t)rel32(b + i + 1);
		if (left >= 4 && b[i] == 0xf3 && b[i + 1] == 0x0f && b[i + 2] == 0x1e && b[i + 3] == 0xfa)
			i += 4;
		else if (left >= 4 && b[i] == 0x48 && b[i + 1] == 0x83 && b[i + 2] == 0xec)
			i += 4;
		else if (left >= 7 && b[i] == 0x48 && b[i + 1] == 0x81 && b[i + 2] == 0xec)
			i += 7;
		else if (b[i] >= 0x50 && b[i] <= 0x57)
			i += 1;
		else if (left >= 2 && b[i] == 0x41 && b[i + 1] >= 0x50 && b[i + 1] <= 0x57)
			i += 2;
		else
			return 0;
	}
	return 0;
}

/* The function calls (or jumps to) `target` directly somewhere in its body. */
static int reaches(const struct code *c, uint64_t target)
{
	for (size_t i = 0; i + 5 <= c->n; i++)
		if ((c->b[i] == 0xe8 || c->b[i] == 0xe9) && c->vaddr + i + 5 + (uint64_t)(int64_t)rel32(c->b + i + 1) == target)
			return 1;
	return 0;
}

struct tls_probe_point {
	const char *func; /* symbol, or NULL: file_off */
	uint64_t file_off;
	const char *entry; /* program at the entry (a uretprobe ssl_exit goes with it) */
};

/* One direction (read or write): the plain and _ex functions, or their shared internal callee. */
static int plan_direction(Elf *elf, int fd, int entries, const char *plain, const char *ex, const char *plain_prog,
			  const char *ex_prog, struct tls_probe_point *out, char *desc, size_t desclen)
{
	struct code *codes = calloc(3, sizeof(struct code)); /* 4 KiB each */
	if (!codes)
		return -ENOMEM;
	struct code *cp = &codes[0], *ce = &codes[1], *ci = &codes[2];
	int have_plain = code_of(elf, fd, plain, cp);
	int have_ex = code_of(elf, fd, ex, ce);
	int n = 0;
	uint64_t callee = !entries && have_ex && !cheap_entry(ce) ? passthrough_callee(ce) : 0;
	if (callee && code_at(elf, fd, callee, 16, ci) && cheap_entry(ci)) {
		out[n++] = (struct tls_probe_point){.file_off = ci->file_off, .entry = ex_prog};
		if (have_plain && !reaches(cp, callee)) {
			out[n++] = (struct tls_probe_point){.func = plain, .entry = plain_prog};
			snprintf(desc, desclen, "%s via 0x%llx, %s%s", ex, (unsigned long long)callee, plain,
				 cheap_entry(cp) ? "" : " (single-stepped)");
		} else {
			snprintf(desc, desclen, "%s%s%s via 0x%llx", have_plain ? plain : "", have_plain ? "+" : "", ex,
				 (unsigned long long)callee);
		}
	} else {
		if (have_plain)
			out[n++] = (struct tls_probe_point){.func = plain, .entry = plain_prog};
		if (have_ex)
			out[n++] = (struct tls_probe_point){.func = ex, .entry = ex_prog};
		int slow = (have_plain && !cheap_entry(cp)) || (have_ex && !cheap_entry(ce));
		snprintf(desc, desclen, "%s%s%s%s", have_plain ? plain : "", have_plain && have_ex ? "+" : "",
			 have_ex ? ex : (have_plain ? "" : "none"), slow ? " (single-stepped)" : "");
	}
	free(codes);
	return n;
}

/* Probe points of an OpenSSL binary: 1 to 4, or -errno. `desc` says which (for the log). */
static int plan_openssl(const char *path, int entries, struct tls_probe_point *out, char *desc, size_t desclen)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		close(fd);
		return -ENOEXEC;
	}
	char rd[160], wr[160];
	int nr = plan_direction(elf, fd, entries, "SSL_read", "SSL_read_ex", "ssl_read_enter", "ssl_read_ex_enter", out, rd,
				sizeof(rd));
	int nw = nr < 0 ? nr
			: plan_direction(elf, fd, entries, "SSL_write", "SSL_write_ex", "ssl_write_enter",
					 "ssl_write_ex_enter", out + nr, wr, sizeof(wr));
	int n = nr < 0 ? nr : nw < 0 ? nw : nr + nw;
	if (n >= 0)
		snprintf(desc, desclen, "%s; %s", rd, wr);
	elf_end(elf);
	close(fd);
	return n;
}

int kl_tls_attach_openssl(kl_tracer *t, const char *path, int entries, char *msg, int msglen)
{
	log_reset();
	struct tls_probe_point pts[4];
	char desc[400];
	int n = plan_openssl(path, entries, pts, desc, sizeof(desc));
	if (n < 0) {
		set_err(msg, msglen, 0, "%s: %s", path, strerror(-n));
		return n;
	}
	int has_read = 0, has_write = 0;
	for (int i = 0; i < n; i++) {
		has_read |= strstr(pts[i].entry, "read") != NULL;
		has_write |= strstr(pts[i].entry, "write") != NULL;
	}
	if (!has_read || !has_write) {
		set_err(msg, msglen, 0, "no SSL_read/SSL_write in %s", path);
		return -ENOENT;
	}
	int target = target_alloc(t, 2 * n);
	if (target < 0) {
		set_err(msg, msglen, 0, "too many TLS targets (%d)", KL_MAX_TLS_TARGETS);
		return target;
	}
	for (int i = 0; i < n; i++) {
		int rc = probe(t, target, pts[i].entry, path, pts[i].func, pts[i].file_off, 0, 0, msg, msglen);
		if (rc == 0)
			rc = probe(t, target, "ssl_exit", path, pts[i].func, pts[i].file_off, 1, 0, msg, msglen);
		if (rc < 0) {
			kl_tls_detach(t, target);
			return rc;
		}
	}
	snprintf(msg, (size_t)msglen, "%s", desc);
	return target;
}

/*
 * Where a Go function's entry probe goes: on the jbe of its stack check (emulated; the registers
 * still hold the arguments), else at offset 0 (single-stepped). Go functions begin with
 * `cmp 0x10(%r14),%rsp` or `lea -N(%rsp),%r12; cmp 0x10(%r14),%r12`, then jbe to morestack.
 */
static size_t go_entry_offset(const char *path, const char *func)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	struct code *c = calloc(1, sizeof(*c));
	size_t off = 0;
	if (elf && c && code_of(elf, fd, func, c) && c->n >= 16) {
		const uint8_t *b = c->b;
		size_t cmp = 0;
		if (b[0] == 0x49 && b[1] == 0x3b && b[2] == 0x66 && b[3] == 0x10)
			cmp = 4; /* cmp 0x10(%r14),%rsp */
		else if (b[0] == 0x4c && b[1] == 0x8d && b[2] == 0x64 && b[3] == 0x24 && b[5] == 0x4d && b[6] == 0x3b &&
			 b[7] == 0x66 && b[8] == 0x10)
			cmp = 9; /* lea disp8(%rsp),%r12; cmp 0x10(%r14),%r12 */
		else if (b[0] == 0x4c && b[1] == 0x8d && b[2] == 0xa4 && b[3] == 0x24 && b[8] == 0x4d && b[9] == 0x3b &&
			 b[10] == 0x66 && b[11] == 0x10)
			cmp = 12; /* lea disp32(%rsp),%r12; cmp 0x10(%r14),%r12 */
		if (cmp && (b[cmp] == 0x76 || (b[cmp] == 0x0f && b[cmp + 1] == 0x86)))
			off = cmp;
	}
	free(c);
	if (elf)
		elf_end(elf);
	close(fd);
	return off;
}

int kl_tls_attach_go(kl_tracer *t, const char *path, const uint32_t *write_rets, int nwrite, const uint32_t *read_rets,
		     int nread, char *err, int errlen)
{
	log_reset();
	if (nwrite <= 0 || nread <= 0 || nwrite > KL_MAX_GO_RETS || nread > KL_MAX_GO_RETS) {
		set_err(err, errlen, 0, "Go TLS: %d/%d return points (1 to %d each)", nwrite, nread, KL_MAX_GO_RETS);
		return -EINVAL;
	}
	int target = target_alloc(t, 2 + nwrite + nread);
	if (target < 0) {
		set_err(err, errlen, 0, "too many TLS targets (%d)", KL_MAX_TLS_TARGETS);
		return target;
	}
	const char *wfn = "crypto/tls.(*Conn).Write", *rfn = "crypto/tls.(*Conn).Read";
	int rc = probe(t, target, "go_tls_write_enter", path, wfn, go_entry_offset(path, wfn), 0, 0, err, errlen);
	if (rc == 0)
		rc = probe(t, target, "go_tls_read_enter", path, rfn, go_entry_offset(path, rfn), 0, 0, err, errlen);
	for (int i = 0; rc == 0 && i < nwrite; i++)
		rc = probe(t, target, "go_tls_return", path, wfn, write_rets[i], 0, 0, err, errlen);
	for (int i = 0; rc == 0 && i < nread; i++)
		rc = probe(t, target, "go_tls_return", path, rfn, read_rets[i], 0, 0, err, errlen);
	if (rc < 0) {
		kl_tls_detach(t, target);
		return rc;
	}
	return target;
}

static int on_exec_sample(void *ctx, void *data, size_t size)
{
	kl_tracer *t = ctx;
	if (size < sizeof(struct kl_exec_event))
		return 0;
	if (t->exec_n >= t->exec_cap)
		return -ENOSPC;
	t->exec_pids[t->exec_n++] = ((struct kl_exec_event *)data)->tgid;
	return 0;
}

int kl_tracer_drain_execs(kl_tracer *t, uint32_t *pids, int cap)
{
	if (!t->exec_rb)
		return 0;
	t->exec_pids = pids;
	t->exec_cap = cap;
	t->exec_n = 0;
	int rc = ring_buffer__consume(t->exec_rb);
	t->exec_pids = NULL;
	if (rc < 0 && rc != -ENOSPC)
		return rc;
	return t->exec_n;
}

int kl_tracer_tls_stats(kl_tracer *t, uint64_t *out, int n)
{
	return sum_percpu_counters(t, "tls_counters", KL_TLS_CNT__MAX, out, n);
}

int kl_elf_symbol(const char *path, const char *name, uint64_t *addr, uint64_t *size)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	GElf_Sym sym;
	int found = !elf ? -ENOEXEC : find_sym(elf, name, &sym);
	if (found == 1) {
		*addr = sym.st_value;
		*size = sym.st_size;
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return found;
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
	/* every link at once: each detach waits ~1 s (RCU), in parallel they take that once */
	int total = t->nlinks;
	for (int i = 0; i < KL_MAX_TLS_TARGETS; i++)
		total += t->targets[i].used ? t->targets[i].nlinks : 0;
	struct bpf_link **all = total ? calloc((size_t)total, sizeof(*all)) : NULL;
	int n = 0;
	if (all) {
		memcpy(all, t->links, (size_t)t->nlinks * sizeof(*all));
		n = t->nlinks;
		t->nlinks = 0;
	} else {
		destroy_links(t);
	}
	for (int i = 0; i < KL_MAX_TLS_TARGETS; i++) {
		struct kl_tls_target *tg = &t->targets[i];
		if (!tg->used)
			continue;
		for (int j = 0; j < tg->nlinks; j++) {
			if (all)
				all[n++] = tg->links[j];
			else
				bpf_link__destroy(tg->links[j]);
		}
		free(tg->links);
		memset(tg, 0, sizeof(*tg));
	}
	destroy_parallel(all, n);
	free(all);
	if (t->exec_rb)
		ring_buffer__free(t->exec_rb);
	if (t->rb)
		ring_buffer__free(t->rb);
	if (t->obj)
		bpf_object__close(t->obj);
	free(t);
}
