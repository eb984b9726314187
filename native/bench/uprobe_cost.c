/*
 * kl_uprobe_cost: what one uprobe / uretprobe hit costs on this kernel and machine.
 *
 * Calls small functions of its own in a loop, with a do-nothing BPF program attached (perf uprobe
 * PMU + PERF_EVENT_IOC_SET_BPF, as libbpf does) at different instructions, and prints ns per call
 * minus the loop without probes. The instruction under the breakpoint decides the path the kernel
 * takes: x86 emulates some (call, jmp/jcc, push, nop) and single-steps the others out of line,
 * which costs a second trap (#DB; under KVM a VM exit). A 5-byte nop may be rewritten into a call
 * to a trampoline that makes the `uprobe` syscall (Linux 6.18+), with no trap at all.
 *
 * Usage: kl_uprobe_cost [iterations]   (needs CAP_BPF + CAP_PERFMON, or root)
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int leaf(long x);
__attribute__((noinline, used)) int leaf(long x)
{
	__asm__ volatile("" ::: "memory");
	return (int)x + 1;
}

/* Probed functions with known first instructions (the shape of OpenSSL 3's SSL_read/SSL_write:
 * `sub $N,%rsp` then a call of the internal function). */
__asm__(".text\n"
	".globl f_sub, f_sub_call, f_sub_after, f_push, f_push_ret, f_push13, f_nop5, f_endbr\n"
	".p2align 4\n"
	"f_sub:\n"
	"	sub $0x18, %rsp\n"
	"f_sub_call:\n"
	"	call leaf\n"
	"f_sub_after:\n"
	"	test %eax, %eax\n"
	"	add $0x18, %rsp\n"
	"	ret\n"
	".p2align 4\n"
	"f_push:\n"
	"	push %rbp\n"
	"	mov %rsp, %rbp\n"
	"	call leaf\n"
	"	pop %rbp\n"
	"f_push_ret:\n"
	"	ret\n"
	".p2align 4\n"
	"f_push13:\n"
	"	push %r13\n"
	"	call leaf\n"
	"	pop %r13\n"
	"	ret\n"
	".p2align 4\n"
	"f_nop5:\n"
	"	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n"
	"	sub $0x18, %rsp\n"
	"	call leaf\n"
	"	add $0x18, %rsp\n"
	"	ret\n"
	".p2align 4\n"
	"f_endbr:\n"
	"	endbr64\n"
	"	sub $0x18, %rsp\n"
	"	call leaf\n"
	"	add $0x18, %rsp\n"
	"	ret\n");

extern char f_sub[], f_sub_call[], f_sub_after[], f_push[], f_push_ret[], f_push13[], f_nop5[], f_endbr[];

typedef int (*fn_t)(long);

static int prog_fd = -1;

static int load_noop(void)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	return bpf_prog_load(BPF_PROG_TYPE_KPROBE, "kl_noop", "GPL", insns, 2, NULL);
}

/* File offset of a code address of this program, from /proc/self/maps. */
static long file_offset(const void *addr, char *path, size_t pathlen)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	long off = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, pgoff;
		char perms[8], file[400] = "";
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %399s", &lo, &hi, perms, &pgoff, file) < 4)
			continue;
		if ((unsigned long)addr >= lo && (unsigned long)addr < hi) {
			off = (long)((unsigned long)addr - lo + pgoff);
			snprintf(path, pathlen, "%s", file);
			break;
		}
	}
	fclose(f);
	return off;
}

static int uprobe_pmu_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;
	if (f) {
		if (fscanf(f, "%d", &type) != 1)
			type = -1;
		fclose(f);
	}
	return type;
}

/* A system-wide uprobe (pid -1, cpu 0, as libbpf attaches) running the no-op program. */
static int attach(const void *addr, int retprobe)
{
	char path[400];
	long off = file_offset(addr, path, sizeof(path));
	if (off < 0)
		return -1;
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = (unsigned)uprobe_pmu_type(),
		.config = retprobe ? 1 : 0,
		.config1 = (uint64_t)(uintptr_t)path,
		.config2 = (uint64_t)off,
	};
	int fd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile fn_t target;

/* ns per call: the best of a few runs (the machine is shared; the minimum is the cost). */
static double per_call(fn_t fn, long iters)
{
	target = fn;
	double best = 1e18;
	for (int run = 0; run < 5; run++) {
		long sum = 0;
		double t0 = now_ns();
		for (long i = 0; i < iters; i++)
			sum += target(i);
		double t = (now_ns() - t0) / (double)iters;
		if (sum == 42)
			puts("");
		if (t < best)
			best = t;
	}
	return best;
}

struct probe_case {
	const char *name;
	fn_t fn;
	const void *at[2];
	int ret[2];
	int n;
};

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 100000;
	prog_fd = load_noop();
	if (prog_fd < 0 || uprobe_pmu_type() < 0) {
		fprintf(stderr, "kl_uprobe_cost: cannot load a BPF program or find the uprobe PMU (%s); run as root\n",
			strerror(errno));
		return 2;
	}
	const struct probe_case cases[] = {
		{"uprobe on `sub $0x18,%rsp` (single-stepped)", (fn_t)f_sub, {f_sub}, {0}, 1},
		{"uprobe on `call` (emulated)", (fn_t)f_sub, {f_sub_call}, {0}, 1},
		{"uprobe on `push %rbp` (emulated)", (fn_t)f_push, {f_push}, {0}, 1},
		{"uprobe on `push %r13` (emulated)", (fn_t)f_push13, {f_push13}, {0}, 1},
		{"uprobe on `ret`", (fn_t)f_push, {f_push_ret}, {0}, 1},
		{"uretprobe on `push %rbp`", (fn_t)f_push, {f_push}, {1}, 1},
		{"uprobe + uretprobe on `push %rbp`", (fn_t)f_push, {f_push, f_push}, {0, 1}, 2},
		{"uprobe on `endbr64`", (fn_t)f_endbr, {f_endbr}, {0}, 1},
		{"uprobe on a 5-byte nop (optimizable)", (fn_t)f_nop5, {f_nop5}, {0}, 1},
		{"uretprobe alone", (fn_t)f_sub, {f_sub}, {1}, 1},
		{"uprobe + uretprobe on `sub` (as SSL_read today)", (fn_t)f_sub, {f_sub, f_sub}, {0, 1}, 2},
		{"uprobe on `call` + uprobe on the insn after it", (fn_t)f_sub, {f_sub_call, f_sub_after}, {0, 0}, 2},
	};
	double base = per_call((fn_t)f_sub, iters);
	printf("uprobe cost (no-op BPF program, %ld calls, best of 5): no probe %.1f ns/call\n", iters, base);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int fds[2] = {-1, -1};
		int ok = 1;
		for (int i = 0; i < cases[c].n; i++) {
			fds[i] = attach(cases[c].at[i], cases[c].ret[i]);
			if (fds[i] < 0)
				ok = 0;
		}
		if (ok) {
			double t = per_call(cases[c].fn, iters);
			printf("  %-50s %8.0f ns per call (+%.0f)\n", cases[c].name, t, t - base);
		} else {
			printf("  %-50s cannot attach: %s\n", cases[c].name, strerror(errno));
		}
		for (int i = 0; i < cases[c].n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return 0;
}
