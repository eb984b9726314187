// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
/*
 * Socket tracer: payload and lifecycle of TCP/UDP sockets, from syscall
 * tracepoints plus sock/tcp tracepoints. Record layouts: include/socket_trace.h.
 *
 * Data syscalls stash their arguments per thread at enter (and the TCP seq of
 * the first byte, which must be read before the kernel moves it) and emit one
 * record at exit, when the byte count is known.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "socket_trace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define TCP_CLOSE 7
#define KL_FD_NONE 0xffffffffu

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* user space may resize before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_config);
} kl_config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} pid_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} port_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KL_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KL_TLS_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_counters SEC(".maps");

/* Room for a data event plus a payload written at offset < MAX with length <= MAX. */
struct scratch_buf {
	union {
		struct kl_data_event ev;
		__u8 raw[sizeof(struct kl_data_event) + 2 * KL_CAPTURE_MAX];
	};
};

/* One slot per CPU (a per-CPU map caps values at 32 KiB). User space sizes it to the CPU count. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct scratch_buf);
} scratch SEC(".maps");

/* A data syscall in flight, stashed at enter. */
struct data_args {
	__u64 enter_ns;
	__u64 sk;
	__u64 buf;   /* buffer, iovec array, msghdr or mmsghdr array (by syscall) */
	__u64 addr;  /* user sockaddr for sendto/recvfrom */
	__u32 fd;
	__u32 tcp_seq;
	__u32 vlen;
	__u16 syscall;
	__u8 direction;
	__u8 seq_valid;
	__u8 tls_socket; /* ciphertext of a TLS socket: not emitted (a read still updates last_read) */
};

/* Per-thread storage: one syscall in flight per thread, freed with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct data_args);
} data_args_map SEC(".maps");

/* connect/accept in flight. */
struct conn_args {
	__u64 enter_ns;
	__u32 fd;
	__u16 syscall;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn_args);
} conn_args_map SEC(".maps");

/*
 * Sockets Kalman tracks: kernel sock pointer -> id, role and the cached tuple, so that
 * each event copies the tuple from here instead of reading it from the sock again.
 */
struct sock_info {
	__u64 id;
	__u8 role;
	__u8 tuple_cached; /* the fields below are valid */
	__u8 family;
	__u8 l4proto;
	__u16 sport;
	__u16 dport;
	__u32 netns;
	__u8 saddr[KL_ADDR_LEN];
	__u8 daddr[KL_ADDR_LEN];
	__u8 tls; /* carries TLS: its syscall payloads are ciphertext, plaintext comes from uprobes */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct sock_info);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sock_id_seq SEC(".maps");

/* Keeps every record type in the object's BTF: user space checks its offsets against it. */
struct kl_sock_event *kl_btf_anchor_sock_event __attribute__((unused));

/* ---- helpers --------------------------------------------------------------- */

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

static __always_inline void count_tls(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&tls_counters, &which);
	if (v)
		*v += 1;
}

static __always_inline struct kl_config *get_config(void)
{
	__u32 zero = 0;
	struct kl_config *cfg = bpf_map_lookup_elem(&kl_config_map, &zero);
	if (!cfg || !cfg->enabled)
		return NULL;
	return cfg;
}

/* The calling process passes the pid filter and is not the agent. */
static __always_inline bool task_wanted(struct kl_config *cfg, __u32 tgid)
{
	if (tgid == cfg->self_tgid)
		return false;
	if (cfg->flags & KL_CFG_FILTER_PID)
		return bpf_map_lookup_elem(&pid_allow, &tgid) != NULL;
	return true;
}

static __always_inline bool ports_wanted(struct kl_config *cfg, __u16 sport, __u16 dport)
{
	if (!(cfg->flags & KL_CFG_FILTER_PORT))
		return true;
	return bpf_map_lookup_elem(&port_allow, &sport) || bpf_map_lookup_elem(&port_allow, &dport);
}

/* fd -> struct sock, if the fd is a socket (any family). */
static __always_inline struct sock *fd_to_any_sock(__u32 fd)
{
	/* BTF pointers: the loads below are plain fault-safe loads, not helper calls */
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *raw = NULL;
	if (bpf_probe_read_kernel(&raw, sizeof(raw), &fds[fd]) || !raw)
		return NULL;
	struct file *file = bpf_rdonly_cast(raw, bpf_core_type_id_kernel(struct file));
	/* Only a socket's private_data is a struct socket; pipes and files give garbage. */
	if ((file->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = bpf_rdonly_cast(file->private_data, bpf_core_type_id_kernel(struct socket));
	return sock->sk;
}
static __always_inline struct sock *btf_sock(const void *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock));
}

static __always_inline bool is_inet_tcp_udp(struct sock *sk)
{
	struct sock *s = btf_sock(sk);
	__u16 family = s->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return false;
	__u16 proto = s->sk_protocol;
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

/* fd -> struct sock of a TCP or UDP inet socket, else NULL. */
static __always_inline struct sock *fd_to_sock(__u32 fd)
{
	struct sock *sk = fd_to_any_sock(fd);
	if (!sk || !is_inet_tcp_udp(sk))
		return NULL;
	return sk;
}

static __always_inline void sock_ports(struct sock *sk, __u16 *sport, __u16 *dport)
{
	struct sock *s = btf_sock(sk);
	*sport = s->__sk_common.skc_num;
	*dport = bpf_ntohs(s->__sk_common.skc_dport);
}

/*
 * Ports of a tracked socket: the cached ones when filled (the kernel zeroes a closing socket's
 * ports), else live. The barriers keep clang from merging the two loads into one instruction
 * over two pointer types, which the verifier rejects.
 */
static __always_inline void tracked_ports(struct sock *sk, struct sock_info *info, __u16 *sport, __u16 *dport)
{
	if (info->tuple_cached) {
		__u16 s = info->sport, d = info->dport;
		barrier_var(s);
		barrier_var(d);
		*sport = s;
		*dport = d;
		return;
	}
	__u16 s, d;
	sock_ports(sk, &s, &d);
	barrier_var(s);
	barrier_var(d);
	*sport = s;
	*dport = d;
}

static __always_inline struct sock_info *sock_lookup_or_create(__u64 sk, __u8 role)
{
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &sk);
	if (info) {
		if (role != KL_ROLE_UNKNOWN)
			info->role = role;
		return info;
	}
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&sock_id_seq, &zero);
	if (!seq)
		return NULL;
	struct sock_info fresh = {.id = __sync_fetch_and_add(seq, 1) + 1, .role = role};
	if (bpf_map_update_elem(&sockets, &sk, &fresh, BPF_NOEXIST) && bpf_map_lookup_elem(&sockets, &sk) == NULL) {
		count(KL_CNT_SOCK_MAP_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&sockets, &sk);
}

/* Identity of a socket and of the current task; the tuple comes from the cache when filled. */
static __always_inline void fill_ident(struct kl_sock_ident *id, struct sock *sk, struct sock_info *info, __u32 fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	id->tgid = pid_tgid >> 32;
	id->tid = (__u32)pid_tgid;
	id->fd = fd;
	id->cgroup_id = bpf_get_current_cgroup_id();
	id->sock_id = info ? info->id : 0;
	id->role = info ? info->role : KL_ROLE_UNKNOWN;
	id->pad0 = 0;
	bpf_get_current_comm(id->comm, sizeof(id->comm));
	if (info && info->tuple_cached) {
		id->netns = info->netns;
		id->family = info->family;
		id->l4proto = info->l4proto;
		id->sport = info->sport;
		id->dport = info->dport;
		__builtin_memcpy(id->saddr, info->saddr, KL_ADDR_LEN);
		__builtin_memcpy(id->daddr, info->daddr, KL_ADDR_LEN);
		return;
	}
	id->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	id->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	id->l4proto = BPF_CORE_READ(sk, sk_protocol);
	id->pad0 = 0;
	sock_ports(sk, &id->sport, &id->dport);
	__builtin_memset(id->saddr, 0, KL_ADDR_LEN);
	__builtin_memset(id->daddr, 0, KL_ADDR_LEN);
	if (id->family == AF_INET) {
		bpf_core_read(id->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(id->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(id->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(id->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	/* Cache once bound (and, for TCP, connected); connect() clears the cache. */
	if (info && id->sport != 0 && (id->dport != 0 || id->l4proto == IPPROTO_UDP)) {
		info->netns = id->netns;
		info->family = id->family;
		info->l4proto = id->l4proto;
		info->sport = id->sport;
		info->dport = id->dport;
		__builtin_memcpy(info->saddr, id->saddr, KL_ADDR_LEN);
		__builtin_memcpy(info->daddr, id->daddr, KL_ADDR_LEN);
		info->tuple_cached = 1;
	}
}

/* Peer address from a user sockaddr (unconnected UDP). Returns true if used. */
static __always_inline bool peer_from_sockaddr(struct kl_sock_ident *id, __u64 uaddr)
{
	if (!uaddr)
		return false;
	struct sockaddr_in6 sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr)) {
		count(KL_CNT_READ_ERROR);
		return false;
	}
	if (sa.sin6_family == AF_INET && id->family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
		id->dport = bpf_ntohs(in4->sin_port);
		__builtin_memcpy(id->daddr, &in4->sin_addr, 4);
		return true;
	}
	if (sa.sin6_family == AF_INET6 && id->family == AF_INET6) {
		id->dport = bpf_ntohs(sa.sin6_port);
		__builtin_memcpy(id->daddr, &sa.sin6_addr, 16);
		return true;
	}
	return false;
}

static __always_inline struct scratch_buf *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch, &cpu);
}

/* Copy `want` bytes (<= KL_CAPTURE_MAX) from a user buffer to payload[off]. */
static __always_inline __u32 copy_user(struct scratch_buf *s, __u32 off, __u64 src, __u64 want)
{
	if (off >= KL_CAPTURE_MAX)
		return 0;
	barrier_var(off); /* keep clang from dropping the mask the verifier needs */
	off &= KL_CAPTURE_MAX - 1;
	if (want > KL_CAPTURE_MAX)
		want = KL_CAPTURE_MAX;
	barrier_var(want);
	if (want > KL_CAPTURE_MAX)
		return 0;
	if (bpf_probe_read_user(&s->ev.payload[off], want, (void *)src)) {
		count(KL_CNT_READ_ERROR);
		return 0;
	}
	return want;
}

/* Gather up to `limit` bytes from an iovec array, one bpf_loop step per iovec
 * (verified once, unlike an unrolled loop). */
struct iov_walk {
	__u64 iov;
	__u64 iovlen;
	__u32 limit;
	__u32 off;
};

static long iov_step(__u32 i, void *ctx)
{
	struct iov_walk *w = ctx;
	struct scratch_buf *s = get_scratch();
	if (!s || i >= w->iovlen || w->off >= w->limit)
		return 1;
	struct iovec v = {};
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(w->iov + (__u64)i * sizeof(struct iovec)))) {
		count(KL_CNT_READ_ERROR);
		return 1;
	}
	__u64 want = v.iov_len;
	if (want > w->limit - w->off)
		want = w->limit - w->off;
	__u32 got = copy_user(s, w->off, (__u64)v.iov_base, want);
	w->off += got;
	return got == want ? 0 : 1;
}

static __always_inline __u32 copy_iov(struct scratch_buf *s, __u64 iov_ptr, __u64 iovlen, __u32 limit)
{
	struct iov_walk w = {.iov = iov_ptr, .iovlen = iovlen, .limit = limit};
	bpf_loop(KL_MAX_IOV, iov_step, &w, 0);
	return w.off;
}

/* ---- TLS state (programs in the TLS section below) ------------------------------ */

/* An OpenSSL SSL_read/SSL_write in flight on this thread (entry -> return). */
struct tls_call {
	__u64 enter_ns;
	__u64 ssl;
	__u64 buf;
	__u64 len_ptr; /* size_t *written / *readbytes of the _ex calls, else 0 */
	__u64 sk;      /* socket of the first syscall the call made, 0 if none */
	__u32 fd;
	__u32 tcp_seq;
	__u16 kind;
	__u8 direction;
	__u8 active;
	__u8 seq_valid;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* The last TCP read of this thread: for TLS libraries that decrypt from memory (Node), after the read. */
struct last_read {
	__u64 sk;
	__u32 fd;
	__u32 tcp_seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct last_read);
} last_reads SEC(".maps");

/* SSL object -> socket, learnt from the syscalls of earlier calls. */
struct ssl_key {
	__u32 tgid;
	__u32 pad0;
	__u64 ssl;
};

struct ssl_sock {
	__u64 sk;
	__u32 fd;
	__u32 pad0;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, struct ssl_sock);
} ssl_socks SEC(".maps");

/*
 * Plaintext of an SSL_write that made no syscall and whose SSL object has no socket yet (memory BIO,
 * first write of a connection): held per thread until the thread's next TCP write, which carries it.
 * The SSL pointer waits in ev.id.sock_id until the socket is known.
 */
struct tls_pending_buf {
	union {
		struct kl_data_event ev;
		__u8 raw[sizeof(struct kl_data_event) + KL_CAPTURE_MAX];
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct tls_pending_buf);
} tls_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} tls_pid_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} exec_events SEC(".maps");

/* The socket behind an fd of this process is still `sk` (a learnt binding may be stale). */
static __always_inline bool fd_still(__u32 fd, __u64 sk)
{
	return (__u64)fd_to_any_sock(fd) == sk;
}

static __always_inline void tls_bind(__u64 ssl, __u64 sk, __u32 fd)
{
	struct ssl_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ssl = ssl};
	struct ssl_sock *known = bpf_map_lookup_elem(&ssl_socks, &key);
	if (known && known->sk == sk && known->fd == fd)
		return; /* the usual case: an update per call would cost an LRU update per call */
	struct ssl_sock val = {.sk = sk, .fd = fd};
	bpf_map_update_elem(&ssl_socks, &key, &val, BPF_ANY);
}

static __always_inline bool is_tls_sock(__u64 sk)
{
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &sk);
	return info && info->tls;
}

/* The first bytes a write is about to send are a TLS record header (content type 20-23, version 3.x). */
static __always_inline bool starts_tls_record(__u64 buf, __u16 syscall)
{
	__u64 base = buf;
	if (syscall == KL_SYS_WRITEV || syscall == KL_SYS_SENDMSG) {
		__u64 iov = buf;
		if (syscall == KL_SYS_SENDMSG) {
			struct user_msghdr msg = {};
			if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf))
				return false;
			iov = (__u64)msg.msg_iov;
		}
		struct iovec v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (void *)iov))
			return false;
		base = (__u64)v.iov_base;
	} else if (syscall != KL_SYS_WRITE && syscall != KL_SYS_SENDTO) {
		return false;
	}
	__u8 h[3] = {};
	if (bpf_probe_read_user(h, sizeof(h), (void *)base))
		return false;
	return h[0] >= 0x14 && h[0] <= 0x17 && h[1] == 0x03 && h[2] <= 0x04;
}

static __always_inline void mark_tls(__u64 sk)
{
	struct sock_info *info = sock_lookup_or_create(sk, KL_ROLE_UNKNOWN);
	if (info)
		info->tls = 1;
}

static __always_inline void note_last_read(struct data_args *a)
{
	struct last_read *lr =
		bpf_task_storage_get(&last_reads, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!lr)
		return;
	lr->sk = a->sk;
	lr->fd = a->fd;
	lr->tcp_seq = a->tcp_seq;
}

/* Sends the thread's held plaintext (if any) with the socket of the write that is starting now. */
static __always_inline void flush_pending(struct kl_config *cfg, struct sock *sk, __u32 fd, __u32 tid, __u64 buf,
					  __u16 syscall)
{
	struct tls_pending_buf *p = bpf_map_lookup_elem(&tls_pending, &tid);
	if (!p)
		return;
	/* only a write of TLS: a plaintext socket the thread writes to in between keeps its bytes */
	if (!is_tls_sock((__u64)sk) && !starts_tls_record(buf, syscall))
		return;
	struct ssl_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ssl = p->ev.id.sock_id};
	struct ssl_sock *bound = bpf_map_lookup_elem(&ssl_socks, &key);
	if (bound && bound->sk != (__u64)sk && fd_still(bound->fd, bound->sk)) {
		/* this write is another connection's: the SSL object's own socket, without a seq */
		sk = (struct sock *)bound->sk;
		fd = bound->fd;
		p->ev.tcp_seq = 0;
	} else {
		struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
		p->ev.tcp_seq = tp->write_seq;
		p->ev.hdr.flags |= KL_F_SEQ_VALID;
		tls_bind(key.ssl, (__u64)sk, fd);
	}
	struct sock_info *info = sock_lookup_or_create((__u64)sk, KL_ROLE_UNKNOWN);
	if (info)
		info->tls = 1;
	fill_ident(&p->ev.id, sk, info, fd);
	__u64 size = sizeof(struct kl_data_event) + p->ev.cap_len;
	if (ports_wanted(cfg, p->ev.id.sport, p->ev.id.dport) && size <= sizeof(struct tls_pending_buf)) {
		barrier_var(size);
		if (size <= sizeof(struct tls_pending_buf)) {
			p->ev.hdr.size = (__u32)size;
			if (bpf_ringbuf_output(&events, p, size, BPF_RB_NO_WAKEUP))
				count(KL_CNT_RINGBUF_FULL);
			else {
				count(KL_CNT_EVENTS);
				count_tls(KL_TLS_CNT_PLAINTEXT);
			}
		}
	}
	bpf_map_delete_elem(&tls_pending, &tid);
}

/*
 * A TCP data syscall is starting. Inside an SSL call it identifies the call's socket (and TCP seq);
 * returns true then: its bytes are ciphertext, not emitted. Otherwise a write carries the thread's
 * held plaintext.
 */
static __always_inline bool tls_on_syscall(struct kl_config *cfg, struct sock *sk, __u32 fd, __u8 direction,
					   __u32 tid, __u64 buf, __u16 syscall)
{
	struct tls_call *call = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (call && call->active) {
		if (!call->sk) {
			call->sk = (__u64)sk;
			call->fd = fd;
			mark_tls((__u64)sk);
		}
		if (call->sk == (__u64)sk && !call->seq_valid && direction == call->direction) {
			struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
			call->tcp_seq = direction == KL_DIR_EGRESS ? tp->write_seq : tp->copied_seq;
			call->seq_valid = 1;
		}
		if (direction == KL_DIR_INGRESS) {
			/* the library reads for itself: an older read of the thread must not date later calls */
			struct last_read *lr = bpf_task_storage_get(&last_reads, bpf_get_current_task_btf(), 0, 0);
			if (lr && lr->sk == (__u64)sk)
				lr->sk = 0;
		}
		count_tls(KL_TLS_CNT_CIPHERTEXT);
		return true;
	}
	if (direction == KL_DIR_EGRESS)
		flush_pending(cfg, sk, fd, tid, buf, syscall);
	return false;
}

/* ---- data syscalls ----------------------------------------------------------- */

static __always_inline int data_enter(__u32 fd, __u64 buf, __u64 vlen, __u64 addr, __u16 syscall, __u8 direction)
{
	struct kl_config *cfg = get_config();
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!task_wanted(cfg, pid_tgid >> 32))
		return 0;
	struct sock *sk = fd_to_any_sock(fd);
	if (!sk)
		return 0;
	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &key);
	__u16 sport, dport;
	__u8 l4proto;
	if (info && info->tuple_cached) {
		sport = info->sport;
		dport = info->dport;
		l4proto = info->l4proto;
	} else {
		if (!is_inet_tcp_udp(sk))
			return 0;
		sock_ports(sk, &sport, &dport);
		l4proto = BPF_CORE_READ(sk, sk_protocol);
	}
	/* An unconnected UDP socket's peer is only known from the arguments; decide at exit. */
	if (dport != 0 && !ports_wanted(cfg, sport, dport))
		return 0;
	__u8 tls_socket = 0;
	if ((cfg->flags & KL_CFG_TLS) && l4proto == IPPROTO_TCP) {
		if (tls_on_syscall(cfg, sk, fd, direction, (__u32)pid_tgid, buf, syscall))
			return 0; /* ciphertext made inside a TLS call */
		struct sock_info *now = bpf_map_lookup_elem(&sockets, &key); /* the call may have marked it */
		tls_socket = now && now->tls;
	}

	struct data_args args = {
		.enter_ns = bpf_ktime_get_ns(),
		.sk = (__u64)sk,
		.buf = buf,
		.addr = addr,
		.fd = fd,
		.vlen = (__u32)vlen,
		.syscall = syscall,
		.direction = direction,
		.tls_socket = tls_socket,
	};
	if (l4proto == IPPROTO_TCP) {
		struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
		args.tcp_seq = direction == KL_DIR_EGRESS ? tp->write_seq : tp->copied_seq;
		args.seq_valid = 1;
	}
	struct data_args *slot =
		bpf_task_storage_get(&data_args_map, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (slot)
		*slot = args;
	else
		count(KL_CNT_STASH_FULL);
	return 0;
}

/* Fill and emit one data record. `bytes` is what the syscall moved for this message. */
static __always_inline void emit_data(struct kl_config *cfg, struct scratch_buf *s, struct data_args *a, __u64 bytes,
				      __u32 cap_len, __u64 addr, __u32 seq_delta, __u8 msg_index, __u16 flags)
{
	struct kl_data_event *ev = &s->ev;
	struct sock *sk = (struct sock *)a->sk;
	struct sock_info *info = sock_lookup_or_create(a->sk, KL_ROLE_UNKNOWN);

	/* A TLS handshake record on a TCP socket: the stream is ciphertext from here on. */
	if ((cfg->flags & KL_CFG_TLS) && !(flags & KL_F_TLS) && info && cap_len >= 3 && a->seq_valid &&
	    s->ev.payload[0] == 0x16 && s->ev.payload[1] == 0x03 && s->ev.payload[2] <= 0x04) {
		info->tls = 1;
		count_tls(KL_TLS_CNT_CIPHERTEXT);
		return;
	}

	fill_ident(&ev->id, sk, info, a->fd);
	if (ev->id.dport == 0 && peer_from_sockaddr(&ev->id, addr))
		flags |= KL_F_ADDR_FROM_ARG;
	if (!ports_wanted(cfg, ev->id.sport, ev->id.dport))
		return;
	if (a->seq_valid)
		flags |= KL_F_SEQ_VALID;
	if (cap_len < bytes) {
		flags |= KL_F_TRUNCATED;
		count(KL_CNT_TRUNCATED);
	}
	ev->hdr.type = KL_REC_DATA;
	ev->hdr.flags = flags;
	ev->enter_ns = a->enter_ns;
	ev->exit_ns = bpf_ktime_get_ns();
	ev->tcp_seq = a->tcp_seq + seq_delta;
	ev->bytes = bytes > 0xffffffffULL ? 0xffffffffU : (__u32)bytes;
	ev->cap_len = cap_len;
	ev->syscall = a->syscall;
	ev->direction = a->direction;
	ev->msg_index = msg_index;

	__u64 size = sizeof(struct kl_data_event) + cap_len;
	if (size > sizeof(struct kl_data_event) + KL_CAPTURE_MAX)
		return;
	barrier_var(size);
	if (size > sizeof(struct kl_data_event) + KL_CAPTURE_MAX)
		return;
	ev->hdr.size = (__u32)size;
	if (bpf_ringbuf_output(&events, ev, size, BPF_RB_NO_WAKEUP))
		count(KL_CNT_RINGBUF_FULL);
	else
		count(KL_CNT_EVENTS);
}

static __always_inline __u32 capture_limit(struct kl_config *cfg, __u64 bytes)
{
	__u32 limit = cfg->capture_len;
	if (limit > KL_CAPTURE_MAX)
		limit = KL_CAPTURE_MAX;
	if (bytes < limit)
		limit = (__u32)bytes;
	return limit;
}

/* One sendmmsg/recvmmsg message per bpf_loop step. */
struct mmsg_walk {
	struct data_args args;
	__u64 vec;
	long count;
	__u32 seq_delta;
};

static long mmsg_step(__u32 i, void *ctx)
{
	struct mmsg_walk *w = ctx;
	struct kl_config *cfg = get_config();
	struct scratch_buf *s = get_scratch();
	if (!cfg || !s || i >= w->count)
		return 1;
	struct mmsghdr m = {};
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(w->vec + (__u64)i * sizeof(struct mmsghdr)))) {
		count(KL_CNT_READ_ERROR);
		return 1;
	}
	__u32 cap = copy_iov(s, (__u64)m.msg_hdr.msg_iov, m.msg_hdr.msg_iovlen, capture_limit(cfg, m.msg_len));
	emit_data(cfg, s, &w->args, m.msg_len, cap, (__u64)m.msg_hdr.msg_name, w->seq_delta, (__u8)i, 0);
	w->seq_delta += m.msg_len;
	return 0;
}

/*
 * A data syscall that was already blocked when the tracer attached has no stashed enter.
 * Rebuild its arguments from the registers saved at syscall entry; the TCP seq of its first
 * byte is the socket's seq now minus the bytes just moved.
 */
static __always_inline bool recover_in_flight(struct data_args *a, long ret, __u16 kind, __u8 direction)
{
	struct kl_config *cfg = get_config();
	if (!cfg || bpf_ktime_get_ns() > cfg->recover_until_ns)
		return false;
	if (!task_wanted(cfg, bpf_get_current_pid_tgid() >> 32))
		return false;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u32 fd = (__u32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	struct sock *sk = fd_to_sock(fd);
	if (!sk)
		return false;
	__builtin_memset(a, 0, sizeof(*a));
	a->sk = (__u64)sk;
	a->fd = fd;
	a->buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
	a->vlen = (__u32)PT_REGS_PARM3_CORE_SYSCALL(regs);
	if (kind == KL_SYS_SENDTO || kind == KL_SYS_RECVFROM)
		a->addr = PT_REGS_PARM5_CORE_SYSCALL(regs);
	a->syscall = kind;
	a->direction = direction;
	a->enter_ns = bpf_ktime_get_ns();
	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP && kind != KL_SYS_SENDMMSG && kind != KL_SYS_RECVMMSG) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		__u32 now = direction == KL_DIR_EGRESS ? BPF_CORE_READ(tp, write_seq) : BPF_CORE_READ(tp, copied_seq);
		a->tcp_seq = now - (__u32)ret;
		a->seq_valid = 1;
	}
	return true;
}

/* A rebuilt (in flight at attach) syscall that carries TLS ciphertext. */
static __always_inline bool tls_recovered(struct data_args *a)
{
	struct kl_config *cfg = get_config();
	if (!cfg || !(cfg->flags & KL_CFG_TLS))
		return false;
	struct tls_call *call = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (call && call->active)
		return true;
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &a->sk);
	return info && info->tls;
}

/* `kind` is a compile-time constant per program, so each program keeps only its own case. */
static __always_inline int data_exit(long ret, const __u16 kind, const __u8 direction)
{
	struct data_args *ap = bpf_task_storage_get(&data_args_map, bpf_get_current_task_btf(), 0, 0);
	struct data_args a;
	if (ap && ap->enter_ns) {
		a = *ap;
		ap->enter_ns = 0; /* consumed */
		if (ret <= 0)
			return 0;
	} else if (ret <= 0 || !recover_in_flight(&a, ret, kind, direction)) {
		return 0;
	} else if (tls_recovered(&a)) {
		return 0; /* ciphertext: inside a TLS call, or of a TLS socket */
	}
	struct kl_config *cfg = get_config();
	struct scratch_buf *s = get_scratch();
	if (!cfg || !s)
		return 0;
	if (cfg->flags & KL_CFG_TLS) {
		if (direction == KL_DIR_INGRESS && a.seq_valid)
			note_last_read(&a);
		if (a.tls_socket) {
			count_tls(KL_TLS_CNT_CIPHERTEXT);
			return 0;
		}
	}

	switch (kind) {
	case KL_SYS_READ:
	case KL_SYS_WRITE:
	case KL_SYS_SENDTO:
	case KL_SYS_RECVFROM: {
		__u32 cap = copy_user(s, 0, a.buf, capture_limit(cfg, ret));
		emit_data(cfg, s, &a, ret, cap, a.addr, 0, 0, 0);
		break;
	}
	case KL_SYS_READV:
	case KL_SYS_WRITEV: {
		__u32 cap = copy_iov(s, a.buf, a.vlen, capture_limit(cfg, ret));
		emit_data(cfg, s, &a, ret, cap, 0, 0, 0, 0);
		break;
	}
	case KL_SYS_SENDMSG:
	case KL_SYS_RECVMSG: {
		struct user_msghdr msg = {};
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a.buf)) {
			count(KL_CNT_READ_ERROR);
			break;
		}
		__u32 cap = copy_iov(s, (__u64)msg.msg_iov, msg.msg_iovlen, capture_limit(cfg, ret));
		emit_data(cfg, s, &a, ret, cap, (__u64)msg.msg_name, 0, 0, 0);
		break;
	}
	case KL_SYS_SENDMMSG:
	case KL_SYS_RECVMMSG: {
		/* ret is the number of messages; emit one record per message. */
		struct mmsg_walk w = {.args = a, .vec = a.buf, .count = ret};
		bpf_loop(KL_MAX_MMSG, mmsg_step, &w, 0);
		if (ret > KL_MAX_MMSG) {
			__u32 which = KL_CNT_MMSG_SKIPPED;
			__u64 *v = bpf_map_lookup_elem(&counters, &which);
			if (v)
				*v += ret - KL_MAX_MMSG;
		}
		break;
	}
	}
	return 0;
}

#define DATA_TP(name, sys, dir, BUF, VLEN, ADDR)                                         \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                      \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                          \
	{                                                                                \
		return data_enter((__u32)ctx->args[0], BUF, VLEN, ADDR, sys, dir);       \
	}                                                                                \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                       \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                            \
	{                                                                                \
		return data_exit(ctx->ret, sys, dir);                                    \
	}

DATA_TP(read, KL_SYS_READ, KL_DIR_INGRESS, ctx->args[1], 0, 0)
DATA_TP(write, KL_SYS_WRITE, KL_DIR_EGRESS, ctx->args[1], 0, 0)
DATA_TP(readv, KL_SYS_READV, KL_DIR_INGRESS, ctx->args[1], ctx->args[2], 0)
DATA_TP(writev, KL_SYS_WRITEV, KL_DIR_EGRESS, ctx->args[1], ctx->args[2], 0)
DATA_TP(sendto, KL_SYS_SENDTO, KL_DIR_EGRESS, ctx->args[1], 0, ctx->args[4])
DATA_TP(recvfrom, KL_SYS_RECVFROM, KL_DIR_INGRESS, ctx->args[1], 0, ctx->args[4])
DATA_TP(sendmsg, KL_SYS_SENDMSG, KL_DIR_EGRESS, ctx->args[1], 0, 0)
DATA_TP(recvmsg, KL_SYS_RECVMSG, KL_DIR_INGRESS, ctx->args[1], 0, 0)
DATA_TP(sendmmsg, KL_SYS_SENDMMSG, KL_DIR_EGRESS, ctx->args[1], ctx->args[2], 0)
DATA_TP(recvmmsg, KL_SYS_RECVMMSG, KL_DIR_INGRESS, ctx->args[1], ctx->args[2], 0)

/* ---- socket lifecycle --------------------------------------------------------- */

static __always_inline void emit_sock(struct sock *sk, struct sock_info *info, __u32 fd, __u16 type, __u16 flags,
				      __u16 syscall, __s32 ret, __u64 enter_ns, __u8 old_state, __u8 new_state)
{
	struct scratch_buf *s = get_scratch();
	if (!s)
		return;
	struct kl_sock_event *ev = (struct kl_sock_event *)&s->ev;
	__u64 now = bpf_ktime_get_ns();
	fill_ident(&ev->id, sk, info, fd);
	ev->hdr.type = type;
	ev->hdr.flags = flags;
	ev->hdr.size = sizeof(*ev);
	ev->ts_ns = now;
	ev->duration_ns = enter_ns ? now - enter_ns : 0;
	ev->ret = ret;
	ev->syscall = syscall;
	ev->old_state = old_state;
	ev->new_state = new_state;
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), BPF_RB_NO_WAKEUP))
		count(KL_CNT_RINGBUF_FULL);
	else
		count(KL_CNT_EVENTS);
}

static __always_inline int conn_enter(__u32 fd, __u16 syscall, __u64 uaddr)
{
	struct kl_config *cfg = get_config();
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!task_wanted(cfg, pid_tgid >> 32))
		return 0;
	if (syscall == KL_SYS_CONNECT) {
		/* Track now, so the handshake's state changes inside connect() are seen. */
		struct sock *sk = fd_to_sock(fd);
		if (!sk)
			return 0;
		if (cfg->flags & KL_CFG_FILTER_PORT) {
			struct kl_sock_ident peer = {.family = BPF_CORE_READ(sk, __sk_common.skc_family)};
			__u16 sport, dport;
			sock_ports(sk, &sport, &dport);
			peer_from_sockaddr(&peer, uaddr);
			if (!ports_wanted(cfg, sport, peer.dport))
				return 0;
		}
		sock_lookup_or_create((__u64)sk, KL_ROLE_CLIENT);
	}
	struct conn_args args = {.enter_ns = bpf_ktime_get_ns(), .fd = fd, .syscall = syscall};
	if (bpf_map_update_elem(&conn_args_map, &pid_tgid, &args, BPF_ANY))
		count(KL_CNT_STASH_FULL);
	return 0;
}

static __always_inline int conn_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_args *ap = bpf_map_lookup_elem(&conn_args_map, &pid_tgid);
	if (!ap)
		return 0;
	struct conn_args a = *ap;
	bpf_map_delete_elem(&conn_args_map, &pid_tgid);
	struct kl_config *cfg = get_config();
	if (!cfg)
		return 0;

	__u32 fd = a.fd;
	__u8 role = KL_ROLE_CLIENT;
	if (a.syscall != KL_SYS_CONNECT) {
		if (ret < 0)
			return 0;
		fd = (__u32)ret;
		role = KL_ROLE_SERVER;
	}
	struct sock *sk = fd_to_sock(fd);
	if (!sk)
		return 0;
	__u16 sport, dport;
	sock_ports(sk, &sport, &dport);
	if (!ports_wanted(cfg, sport, dport))
		return 0;
	struct sock_info *info = sock_lookup_or_create((__u64)sk, role);
	if (info)
		info->tuple_cached = 0; /* connect() may have changed the peer (UDP) or the local port */
	emit_sock(sk, info, fd, KL_REC_SOCK, 0, a.syscall, (__s32)ret, a.enter_ns, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx) { return conn_enter((__u32)ctx->args[0], KL_SYS_CONNECT, ctx->args[1]); }
SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx) { return conn_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct trace_event_raw_sys_enter *ctx) { return conn_enter((__u32)ctx->args[0], KL_SYS_ACCEPT, 0); }
SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) { return conn_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct trace_event_raw_sys_enter *ctx) { return conn_enter((__u32)ctx->args[0], KL_SYS_ACCEPT4, 0); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return conn_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct kl_config *cfg = get_config();
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!task_wanted(cfg, pid_tgid >> 32))
		return 0;
	__u32 fd = (__u32)ctx->args[0];
	struct sock *sk = fd_to_any_sock(fd);
	if (!sk)
		return 0;
	__u64 key = (__u64)sk;
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &key);
	if (!info)
		return 0; /* never seen: nothing to close */
	__u16 sport, dport;
	tracked_ports(sk, info, &sport, &dport);
	if (ports_wanted(cfg, sport, dport))
		emit_sock(sk, info, fd, KL_REC_SOCK, 0, KL_SYS_CLOSE, 0, 0, 0, 0);
	/* A UDP socket has no TCP_CLOSE transition: forget it here. TCP waits for the state change. */
	__u8 proto = info->tuple_cached ? info->l4proto : BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_TCP)
		bpf_map_delete_elem(&sockets, &key);
	return 0;
}

/* Stable prefixes of the tracepoint records (see events/<cat>/<name>/format). */
struct tp_inet_sock_set_state {
	__u64 common;
	const void *skaddr;
	int oldstate;
	int newstate;
};

struct tp_tcp_retransmit_skb {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
	int state;
};

/* State changes of tracked TCP sockets (softirq context: task fields may be anyone's). */
SEC("tracepoint/sock/inet_sock_set_state")
int on_inet_sock_set_state(struct tp_inet_sock_set_state *ctx)
{
	struct kl_config *cfg = get_config();
	if (!cfg)
		return 0;
	__u64 key = (__u64)ctx->skaddr;
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &key);
	if (!info)
		return 0;
	struct sock *sk = (struct sock *)ctx->skaddr;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	/* The kernel zeroes a closing socket's ports: filter on the cached tuple when there is one. */
	__u16 sport, dport;
	tracked_ports(sk, info, &sport, &dport);
	struct sock_info copy = *info;
	if (ports_wanted(cfg, sport, dport))
		emit_sock(sk, &copy, KL_FD_NONE, KL_REC_TCP_STATE, KL_F_TASK_UNRELIABLE, 0, 0, 0, (__u8)ctx->oldstate,
			  (__u8)ctx->newstate);
	if (ctx->newstate == TCP_CLOSE)
		bpf_map_delete_elem(&sockets, &key); /* forget it whatever the filter said: the pointer will be reused */
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int on_tcp_retransmit_skb(struct tp_tcp_retransmit_skb *ctx)
{
	struct kl_config *cfg = get_config();
	if (!cfg)
		return 0;
	__u64 key = (__u64)ctx->skaddr;
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &key);
	if (!info)
		return 0;
	__u16 sport, dport;
	tracked_ports((struct sock *)ctx->skaddr, info, &sport, &dport);
	if (!ports_wanted(cfg, sport, dport))
		return 0;
	emit_sock((struct sock *)ctx->skaddr, info, KL_FD_NONE, KL_REC_TCP_RETRANS, KL_F_TASK_UNRELIABLE, 0, 0, 0,
		  (__u8)ctx->state, (__u8)ctx->state);
	return 0;
}

/* ---- TLS plaintext (uprobes, attached per target binary by user space) -------------------------- */

static __always_inline bool tls_wanted(struct kl_config *cfg, __u32 tgid)
{
	if (!(cfg->flags & KL_CFG_TLS) || !task_wanted(cfg, tgid))
		return false;
	if (cfg->flags & KL_CFG_TLS_FILTER_PID)
		return bpf_map_lookup_elem(&tls_pid_allow, &tgid) != NULL;
	return true;
}

static __always_inline int tls_enter(__u64 ssl, __u64 buf, __u64 len_ptr, __u16 kind, __u8 direction)
{
	struct kl_config *cfg = get_config();
	if (!cfg || !tls_wanted(cfg, bpf_get_current_pid_tgid() >> 32))
		return 0;
	struct tls_call *call =
		bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call) {
		count(KL_CNT_STASH_FULL);
		return 0;
	}
	call->enter_ns = bpf_ktime_get_ns();
	call->ssl = ssl;
	call->buf = buf;
	call->len_ptr = len_ptr;
	call->sk = 0;
	call->fd = 0;
	call->tcp_seq = 0;
	call->kind = kind;
	call->direction = direction;
	call->seq_valid = 0;
	call->active = 1;
	return 0;
}

static __always_inline int tls_exit(long ret)
{
	struct tls_call *cp = bpf_task_storage_get(&tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (!cp || !cp->active)
		return 0;
	struct tls_call c = *cp;
	cp->active = 0;
	__u64 bytes;
	if (c.len_ptr) {
		/* SSL_read_ex / SSL_write_ex (or the internal function behind them): > 0 on success,
		 * the count in *readbytes / *written */
		if (ret <= 0 || bpf_probe_read_user(&bytes, sizeof(bytes), (void *)c.len_ptr))
			return 0;
	} else {
		if (ret <= 0)
			return 0;
		bytes = (__u64)ret;
	}
	if (bytes == 0)
		return 0;
	struct kl_config *cfg = get_config();
	struct scratch_buf *s = get_scratch();
	if (!cfg || !s)
		return 0;

	struct data_args a = {
		.enter_ns = c.enter_ns,
		.sk = c.sk,
		.fd = c.fd,
		.tcp_seq = c.tcp_seq,
		.seq_valid = c.seq_valid,
		.syscall = c.kind,
		.direction = c.direction,
	};
	if (!a.sk && c.direction == KL_DIR_INGRESS) {
		/* No syscall inside the call: the SSL object's known socket, or this thread's last read. */
		struct ssl_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .ssl = c.ssl};
		struct ssl_sock *bound = bpf_map_lookup_elem(&ssl_socks, &key);
		struct last_read *lr = bpf_task_storage_get(&last_reads, bpf_get_current_task_btf(), 0, 0);
		if (bound && fd_still(bound->fd, bound->sk)) {
			a.sk = bound->sk;
			a.fd = bound->fd;
		} else if (lr && lr->sk && is_tls_sock(lr->sk)) {
			/* only a socket already known to carry TLS (its handshake was seen) */
			a.sk = lr->sk;
			a.fd = lr->fd;
		}
		if (a.sk && lr && lr->sk == a.sk) {
			a.tcp_seq = lr->tcp_seq;
			a.seq_valid = 1;
			lr->sk = 0; /* one read, one TLS read */
		}
	}
	__u32 cap = copy_user(s, 0, c.buf, capture_limit(cfg, bytes));
	if (!a.sk) {
		if (c.direction != KL_DIR_EGRESS) {
			count_tls(KL_TLS_CNT_NO_SOCKET);
			return 0;
		}
		/* A write without a syscall (memory BIO): held for the thread's next TCP write, which the
		 * library's caller makes right after, and which gives the TCP seq. */
		struct kl_data_event *ev = &s->ev;
		ev->hdr.type = KL_REC_DATA;
		ev->hdr.flags = KL_F_TLS | (cap < bytes ? KL_F_TRUNCATED : 0);
		ev->enter_ns = c.enter_ns;
		ev->exit_ns = bpf_ktime_get_ns();
		ev->id.sock_id = c.ssl;
		ev->bytes = bytes > 0xffffffffULL ? 0xffffffffU : (__u32)bytes;
		ev->cap_len = cap;
		ev->syscall = c.kind;
		ev->direction = c.direction;
		ev->msg_index = 0;
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		if (bpf_map_update_elem(&tls_pending, &tid, s, BPF_NOEXIST)) {
			count_tls(KL_TLS_CNT_UNBOUND_REPLACED);
			bpf_map_update_elem(&tls_pending, &tid, s, BPF_ANY);
		}
		return 0;
	}
	tls_bind(c.ssl, a.sk, a.fd); /* (a syscall inside the call marked its socket TLS already) */
	count_tls(KL_TLS_CNT_PLAINTEXT);
	emit_data(cfg, s, &a, bytes, cap, 0, 0, 0, KL_F_TLS);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, const void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, 0, KL_SYS_SSL_WRITE, KL_DIR_EGRESS);
}
SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, 0, KL_SYS_SSL_READ, KL_DIR_INGRESS);
}
SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_enter((__u64)ssl, (__u64)buf, (__u64)written, KL_SYS_SSL_WRITE, KL_DIR_EGRESS);
}
SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, KL_SYS_SSL_READ, KL_DIR_INGRESS);
}
SEC("uretprobe")
int BPF_KRETPROBE(ssl_exit, long ret)
{
	return tls_exit((int)ret); /* SSL_* return int */
}

/*
 * Go crypto/tls.(*Conn).Write / Read (register ABI: RAX receiver, RBX buffer, RCX length; R14 the
 * goroutine). Return values are read at each RET (user space finds them; uretprobes break Go stacks).
 * The goroutine may change threads inside the call, so calls are keyed by goroutine.
 */
struct go_call_key {
	__u32 tgid;
	__u32 pad0;
	__u64 g;
};

struct go_call {
	__u64 enter_ns;
	__u64 buf;
	__u64 sk;
	__u32 fd;
	__u32 tcp_seq;
	__u16 kind;
	__u8 direction;
	__u8 pad0;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* tls.Conn{conn net.Conn (itab, data)} -> *net.TCPConn{conn{fd *netFD}} -> netFD{pfd poll.FD{fdmu 16 bytes, Sysfd}} */
#define GO_CONN_DATA_OFF 8
#define GO_NETFD_SYSFD_OFF 16

static __always_inline int go_tls_enter(struct pt_regs *ctx, __u16 kind, __u8 direction)
{
	struct kl_config *cfg = get_config();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!cfg || !tls_wanted(cfg, pid_tgid >> 32))
		return 0;
	__u64 conn = ctx->ax, tcpconn = 0, netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&tcpconn, 8, (void *)(conn + GO_CONN_DATA_OFF)) || !tcpconn ||
	    bpf_probe_read_user(&netfd, 8, (void *)tcpconn) || !netfd ||
	    bpf_probe_read_user(&sysfd, 8, (void *)(netfd + GO_NETFD_SYSFD_OFF)) || sysfd < 0 || sysfd > 0xffffff) {
		count_tls(KL_TLS_CNT_NO_SOCKET);
		return 0;
	}
	struct sock *sk = fd_to_sock((__u32)sysfd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP) {
		count_tls(KL_TLS_CNT_NO_SOCKET);
		return 0;
	}
	struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	struct go_call call = {
		.enter_ns = bpf_ktime_get_ns(),
		.buf = ctx->bx,
		.sk = (__u64)sk,
		.fd = (__u32)sysfd,
		.tcp_seq = direction == KL_DIR_EGRESS ? tp->write_seq : tp->copied_seq,
		.kind = kind,
		.direction = direction,
	};
	struct go_call_key key = {.tgid = pid_tgid >> 32, .g = ctx->r14};
	mark_tls((__u64)sk);
	if (direction == KL_DIR_INGRESS) {
		/* a read made before this call (the handshake's) must not date what the call returns */
		struct last_read *lr = bpf_task_storage_get(&last_reads, bpf_get_current_task_btf(), 0, 0);
		if (lr && lr->sk == (__u64)sk)
			lr->sk = 0;
	}
	if (bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY))
		count(KL_CNT_STASH_FULL);
	return 0;
}

SEC("uprobe")
int go_tls_write_enter(struct pt_regs *ctx) { return go_tls_enter(ctx, KL_SYS_GO_TLS_WRITE, KL_DIR_EGRESS); }
SEC("uprobe")
int go_tls_read_enter(struct pt_regs *ctx) { return go_tls_enter(ctx, KL_SYS_GO_TLS_READ, KL_DIR_INGRESS); }

/* At a RET of Write or Read: RAX holds n. */
SEC("uprobe")
int go_tls_return(struct pt_regs *ctx)
{
	struct go_call_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .g = ctx->r14};
	struct go_call *cp = bpf_map_lookup_elem(&go_calls, &key);
	if (!cp)
		return 0;
	struct go_call c = *cp;
	bpf_map_delete_elem(&go_calls, &key);
	__s64 n = (__s64)ctx->ax;
	struct kl_config *cfg = get_config();
	struct scratch_buf *s = get_scratch();
	if (n <= 0 || !cfg || !s)
		return 0;
	struct data_args a = {
		.enter_ns = c.enter_ns,
		.sk = c.sk,
		.fd = c.fd,
		.tcp_seq = c.tcp_seq,
		.seq_valid = 1,
		.syscall = c.kind,
		.direction = c.direction,
	};
	if (c.direction == KL_DIR_INGRESS) {
		/* Read may return bytes tls.Conn buffered earlier: the seq is that of the read the call made
		 * (on this thread, just before returning), else unknown */
		struct last_read *lr = bpf_task_storage_get(&last_reads, bpf_get_current_task_btf(), 0, 0);
		if (lr && lr->sk == c.sk) {
			a.tcp_seq = lr->tcp_seq;
			lr->sk = 0;
		} else {
			a.seq_valid = 0;
		}
	}
	__u32 cap = copy_user(s, 0, c.buf, capture_limit(cfg, (__u64)n));
	count_tls(KL_TLS_CNT_PLAINTEXT);
	emit_data(cfg, s, &a, (__u64)n, cap, 0, 0, 0, KL_F_TLS);
	return 0;
}

/* A process replaced its image: user space looks for TLS libraries in it. */
SEC("tracepoint/sched/sched_process_exec")
int on_process_exec(void *ctx)
{
	struct kl_config *cfg = get_config();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!cfg || !tls_wanted(cfg, tgid))
		return 0;
	struct kl_exec_event ev = {
		.hdr = {.type = KL_REC_EXEC, .size = sizeof(ev)},
		.ts_ns = bpf_ktime_get_ns(),
		.tgid = tgid,
	};
	if (bpf_ringbuf_output(&exec_events, &ev, sizeof(ev), 0))
		count_tls(KL_TLS_CNT_EXEC_LOST);
	return 0;
}
