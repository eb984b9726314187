/* SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0) */
/*
 * Kernel -> user record layouts for the socket tracer. Single source of truth:
 * bpf/socket_trace.bpf.c writes these, native/ copies them, and the TypeScript
 * decoder's offsets are generated from this file (native/gen_layout.c).
 *
 * Rules: naturally aligned (no packing), every record starts with
 * struct kl_record_header, records are padded to 8 bytes in the drain buffer.
 */
#ifndef KALMAN_SOCKET_TRACE_H
#define KALMAN_SOCKET_TRACE_H

#define KL_COMM_LEN 16
#define KL_ADDR_LEN 16
#define KL_CAPTURE_DEFAULT 1024
#define KL_CAPTURE_MAX 16384 /* hard cap, power of two */
#define KL_MAX_IOV 12        /* iovecs captured per readv/writev/sendmsg */
#define KL_MAX_MMSG 4        /* messages emitted per sendmmsg/recvmmsg */

/* Record types. */
enum kl_record_type {
	KL_REC_DATA = 1,      /* struct kl_data_event: payload of one read/write-family syscall */
	KL_REC_SOCK = 2,      /* struct kl_sock_event: connect/accept/close */
	KL_REC_TCP_STATE = 3, /* struct kl_sock_event: sock:inet_sock_set_state */
	KL_REC_TCP_RETRANS = 4, /* struct kl_sock_event: tcp:tcp_retransmit_skb */
	KL_REC_EXEC = 5,        /* struct kl_exec_event, on the exec_events ring only */
};

/* Which syscall produced a data or socket event. */
enum kl_syscall {
	KL_SYS_READ = 1,
	KL_SYS_WRITE = 2,
	KL_SYS_READV = 3,
	KL_SYS_WRITEV = 4,
	KL_SYS_SENDTO = 5,
	KL_SYS_RECVFROM = 6,
	KL_SYS_SENDMSG = 7,
	KL_SYS_RECVMSG = 8,
	KL_SYS_SENDMMSG = 9,
	KL_SYS_RECVMMSG = 10,
	KL_SYS_CONNECT = 11,
	KL_SYS_ACCEPT = 12,
	KL_SYS_ACCEPT4 = 13,
	KL_SYS_CLOSE = 14,
	/* TLS plaintext (data records flagged KL_F_TLS) */
	KL_SYS_SSL_WRITE = 15,    /* OpenSSL SSL_write / SSL_write_ex */
	KL_SYS_SSL_READ = 16,     /* OpenSSL SSL_read / SSL_read_ex */
	KL_SYS_GO_TLS_WRITE = 17, /* Go crypto/tls.(*Conn).Write */
	KL_SYS_GO_TLS_READ = 18,  /* Go crypto/tls.(*Conn).Read */
};

enum kl_direction {
	KL_DIR_EGRESS = 1,
	KL_DIR_INGRESS = 2,
};

enum kl_role {
	KL_ROLE_UNKNOWN = 0,
	KL_ROLE_CLIENT = 1, /* socket came from connect() */
	KL_ROLE_SERVER = 2, /* socket came from accept() */
};

/* Record header flags. */
#define KL_F_TRUNCATED (1u << 0)   /* captured fewer payload bytes than the syscall moved */
#define KL_F_SEQ_VALID (1u << 1)   /* tcp_seq holds a real sequence number */
#define KL_F_ADDR_FROM_ARG (1u << 2) /* peer address came from the syscall's sockaddr (unconnected UDP) */
#define KL_F_TASK_UNRELIABLE (1u << 3) /* tgid/tid/comm are whoever was running (softirq), maybe not the owner */
#define KL_F_TLS (1u << 4)  /* plaintext read from a TLS library (uprobe); tcp_seq is the TLS record's */

struct kl_record_header {
	__u16 type;  /* enum kl_record_type */
	__u16 flags; /* KL_F_* */
	__u32 size;  /* bytes of this record, header and payload included (unpadded) */
};

/* Fields shared by every socket record. */
struct kl_sock_ident {
	__u64 sock_id;   /* unique per socket for the agent's lifetime; 0 if unknown */
	__u64 cgroup_id;
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u32 netns;     /* network namespace inode */
	__u16 sport;     /* local port, host order */
	__u16 dport;     /* remote port, host order */
	__u8 family;     /* AF_INET / AF_INET6 */
	__u8 l4proto;    /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 role;       /* enum kl_role */
	__u8 pad0;
	__u8 saddr[KL_ADDR_LEN]; /* local address; IPv4 in the first 4 bytes */
	__u8 daddr[KL_ADDR_LEN]; /* remote address */
	char comm[KL_COMM_LEN];
};

struct kl_data_event {
	struct kl_record_header hdr;
	__u64 enter_ns;
	__u64 exit_ns;
	struct kl_sock_ident id;
	__u32 tcp_seq;   /* write_seq at egress enter, copied_seq at ingress enter */
	__u32 bytes;     /* bytes the syscall moved (this message, for *mmsg) */
	__u32 cap_len;   /* payload bytes that follow */
	__u16 syscall;   /* enum kl_syscall */
	__u8 direction;  /* enum kl_direction */
	__u8 msg_index;  /* message index within sendmmsg/recvmmsg */
	__u8 payload[];  /* cap_len bytes */
};

struct kl_sock_event {
	struct kl_record_header hdr;
	__u64 ts_ns;
	__u64 duration_ns; /* connect/accept: enter -> exit */
	struct kl_sock_ident id;
	__s32 ret;         /* syscall return (connect: 0 or -errno) */
	__u16 syscall;     /* enum kl_syscall, 0 for tracepoint records */
	__u8 old_state;    /* TCP_* for KL_REC_TCP_STATE; state for KL_REC_TCP_RETRANS */
	__u8 new_state;
};

/* Configuration, written by user space into the single-entry config map. */
#define KL_CFG_FILTER_PID (1u << 0)  /* only tgids in pid_allow */
#define KL_CFG_FILTER_PORT (1u << 1) /* only sockets with sport or dport in port_allow */
#define KL_CFG_TLS (1u << 2)            /* TLS uprobes in use: ciphertext sockets are recognised and dropped */
#define KL_CFG_TLS_FILTER_PID (1u << 3) /* TLS plaintext only from tgids in tls_pid_allow */

struct kl_config {
	__u32 self_tgid;   /* the agent; never traced */
	__u32 capture_len; /* payload bytes captured per event, <= KL_CAPTURE_MAX */
	__u32 flags;       /* KL_CFG_* */
	__u32 enabled;     /* 0 until user space has configured the tracer */
	/* Until this ktime, a data syscall exit without a stashed enter (it was in flight at
	 * attach) is rebuilt from the task's saved registers. Bounded so the extra fd lookup
	 * on non-socket exits stops soon after start. */
	__u64 recover_until_ns;
};

/* Kernel-side counters, one per-CPU array slot each. */
enum kl_counter {
	KL_CNT_EVENTS = 0,        /* records written to the ring buffer */
	KL_CNT_RINGBUF_FULL = 1,  /* records lost: ring buffer full */
	KL_CNT_TRUNCATED = 2,     /* data events whose payload was cut to capture_len */
	KL_CNT_READ_ERROR = 3,    /* payload or sockaddr reads that failed */
	KL_CNT_MMSG_SKIPPED = 4,  /* *mmsg messages beyond KL_MAX_MMSG, not emitted */
	KL_CNT_STASH_FULL = 5,    /* syscall enters not recorded: per-thread stash map full */
	KL_CNT_SOCK_MAP_FULL = 6, /* sockets without an id: socket map full */
	KL_CNT__MAX = 8,
};

/* A process called exec (TLS target discovery); written to the exec_events ring. */
struct kl_exec_event {
	struct kl_record_header hdr;
	__u64 ts_ns;
	__u32 tgid;
	__u32 pad0;
};

/* TLS counters, one per-CPU array slot each (map tls_counters). */
enum kl_tls_counter {
	KL_TLS_CNT_PLAINTEXT = 0,   /* plaintext records emitted */
	KL_TLS_CNT_CIPHERTEXT = 1,  /* syscall data events on TLS sockets, not emitted */
	KL_TLS_CNT_NO_SOCKET = 2,   /* plaintext dropped: the socket behind the TLS call was not found */
	KL_TLS_CNT_UNBOUND_REPLACED = 3, /* plaintext waiting for its socket replaced by a newer one (dropped) */
	KL_TLS_CNT_EXEC_LOST = 4,   /* exec notifications lost: ring full */
	KL_TLS_CNT__MAX = 8,
};

#endif /* KALMAN_SOCKET_TRACE_H */
