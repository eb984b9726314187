// SPDX-License-Identifier: Apache-2.0
/*
 * AF_PACKET capture for the TypeScript receiver: one TPACKET_V3 ring per handle, opened in
 * any network namespace, with a classic-BPF filter compiled by libpcap. kl_capture_drain
 * copies the frames of every retired block of several handles into one caller buffer
 * (records laid out by packet_record.h), so JavaScript is never called per packet.
 * Stages: open (setns -> socket -> filter -> ring/mmap -> bind) -> drain/stats -> close.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>

#include "packet_record.h"
#include "kalman_shim.h"

#ifndef ARPHRD_RAWIP
#define ARPHRD_RAWIP 519
#endif
#define VLAN_TAG_LEN 4
#define MAC_ADDRS_LEN 12
#define FRAME_SIZE_HINT 2048 /* TPACKET_V3 frames are variable; the kernel only checks the arithmetic */

struct kl_capture {
	int fd;
	uint8_t *ring;
	size_t ring_len;
	uint32_t block_bytes;
	uint32_t block_count;
	uint32_t snaplen;
	uint16_t capture_id;
	/* drain position: the block being copied and the next frame in it (left < 0: block not started) */
	uint32_t block;
	int32_t left;
	uint8_t *next;
	uint64_t counters[KL_CAP__MAX];
};

static void set_err(char *err, int errlen, const char *fmt, ...)
{
	if (!err || errlen <= 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- netns: run a job on a short-lived thread that joined the namespace ------------ */

struct ns_job {
	const char *netns_path;
	int (*fn)(struct ns_job *job);
	void *arg;
	char *err;
	int errlen;
	int rc;
};

static void *ns_thread(void *p)
{
	struct ns_job *job = p;
	int nsfd = open(job->netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		job->rc = -errno;
		set_err(job->err, job->errlen, "setns: cannot open network namespace %s: %s", job->netns_path,
			strerror(errno));
		return NULL;
	}
	/* setns(CLONE_NEWNET) changes only this thread; sockets it creates stay in that namespace. */
	if (setns(nsfd, CLONE_NEWNET) != 0) {
		job->rc = -errno;
		set_err(job->err, job->errlen, "setns: cannot enter network namespace %s: %s", job->netns_path,
			strerror(errno));
		close(nsfd);
		return NULL;
	}
	close(nsfd);
	job->rc = job->fn(job);
	return NULL;
}

static int run_in_netns(struct ns_job *job)
{
	if (!job->netns_path || !job->netns_path[0])
		return job->fn(job);
	pthread_t th;
	int e = pthread_create(&th, NULL, ns_thread, job);
	if (e != 0) {
		set_err(job->err, job->errlen, "setns: cannot start the namespace thread: %s", strerror(e));
		return -e;
	}
	pthread_join(th, NULL);
	return job->rc;
}

/* ---- filter: libpcap compiles per link type; a prologue picks the program by ARPHRD --- */

static int compile_filter(const char *expr, int dlt, uint32_t snaplen, struct bpf_program *prog, char *err,
			  int errlen)
{
	/* pcap_compile_nopcap reports no message; a dead handle keeps libpcap's error text. */
	pcap_t *dead = pcap_open_dead(dlt, (int)snaplen);
	if (!dead) {
		set_err(err, errlen, "filter: libpcap cannot create a compiler handle");
		return -ENOMEM;
	}
	int rc = pcap_compile(dead, prog, expr, 1, PCAP_NETMASK_UNKNOWN);
	if (rc != 0) {
		set_err(err, errlen, "filter: %s", pcap_geterr(dead));
		pcap_close(dead);
		return -EINVAL;
	}
	pcap_close(dead);
	return 0;
}

static struct sock_filter insn(uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	struct sock_filter f = { code, jt, jf, k };
	return f;
}

/*
 * Builds:  ld hatype; Ethernet-like -> ETH; raw-IP types -> RAW; other -> ret other;
 *          ja RAW; ETH: <eth program>; RAW: <raw program>
 * With no expression both programs are "ret #snaplen" (the kernel then copies at most snaplen).
 */
static int build_filter(const char *expr, uint32_t snaplen, struct sock_fprog *out, char *err, int errlen)
{
	static const uint32_t eth_types[] = { ARPHRD_ETHER, ARPHRD_LOOPBACK };
	static const uint32_t raw_types[] = { ARPHRD_NONE, ARPHRD_RAWIP, ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT };
	const int n_eth = sizeof(eth_types) / sizeof(eth_types[0]);
	const int n_raw = sizeof(raw_types) / sizeof(raw_types[0]);
	struct bpf_program eth = { 0 }, raw = { 0 };
	struct sock_filter accept = insn(BPF_RET | BPF_K, 0, 0, snaplen);
	const int has_expr = expr && expr[0];
	if (has_expr) {
		int rc = compile_filter(expr, DLT_EN10MB, snaplen, &eth, err, errlen);
		if (rc)
			return rc;
		rc = compile_filter(expr, DLT_RAW, snaplen, &raw, err, errlen);
		if (rc) {
			pcap_freecode(&eth);
			return rc;
		}
	}
	const uint32_t eth_len = has_expr ? eth.bf_len : 1;
	const uint32_t raw_len = has_expr ? raw.bf_len : 1;
	const int head = 1 + n_eth + n_raw + 2; /* ld, the jeqs, ret other, ja RAW */
	const uint32_t total = head + eth_len + raw_len;
	if (total > BPF_MAXINSNS) {
		set_err(err, errlen, "filter: the compiled filter has %u instructions, more than the kernel's %d",
			total, BPF_MAXINSNS);
		if (has_expr) {
			pcap_freecode(&eth);
			pcap_freecode(&raw);
		}
		return -E2BIG;
	}
	struct sock_filter *p = calloc(total, sizeof(*p));
	if (!p) {
		if (has_expr) {
			pcap_freecode(&eth);
			pcap_freecode(&raw);
		}
		set_err(err, errlen, "filter: out of memory");
		return -ENOMEM;
	}
	int i = 0;
	p[i++] = insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)(SKF_AD_OFF + SKF_AD_HATYPE));
	const int ret_other = 1 + n_eth + n_raw, ja_raw = ret_other + 1, eth_at = ja_raw + 1;
	for (int t = 0; t < n_eth; t++, i++)
		p[i] = insn(BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(eth_at - i - 1), 0, eth_types[t]);
	for (int t = 0; t < n_raw; t++, i++)
		p[i] = insn(BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(ja_raw - i - 1), 0, raw_types[t]);
	/* Devices we do not decode: delivered as-is without a filter, rejected with one (it cannot apply). */
	p[i++] = insn(BPF_RET | BPF_K, 0, 0, has_expr ? 0 : snaplen);
	p[i++] = insn(BPF_JMP | BPF_JA, 0, 0, eth_len);
	if (has_expr) {
		memcpy(p + i, eth.bf_insns, eth_len * sizeof(*p));
		i += eth_len;
		memcpy(p + i, raw.bf_insns, raw_len * sizeof(*p));
		pcap_freecode(&eth);
		pcap_freecode(&raw);
	} else {
		p[i++] = accept;
		p[i] = accept;
	}
	out->len = (unsigned short)total;
	out->filter = p;
	return 0;
}

/* ---- open ---------------------------------------------------------------------------- */

struct open_args {
	const char *ifname;
	uint32_t snaplen, block_bytes, block_count, retire_ms;
	struct sock_fprog *filter;
	struct kl_capture *cap;
};

static int open_in_ns(struct ns_job *job)
{
	struct open_args *a = job->arg;
	struct kl_capture *c = a->cap;
	char *err = job->err;
	int errlen = job->errlen;
	int ifindex = 0;
	if (a->ifname && a->ifname[0]) {
		ifindex = (int)if_nametoindex(a->ifname);
		if (ifindex == 0) {
			int e = errno ? errno : ENODEV;
			set_err(err, errlen, "open: no interface named \"%s\" in this network namespace (%s)",
				a->ifname, strerror(e));
			return -ENODEV;
		}
	}
	/* protocol 0: the socket receives nothing until bind, so no frame skips the filter */
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		set_err(err, errlen, "open: socket(AF_PACKET, SOCK_RAW): %s%s", strerror(e),
			e == EPERM ? " (needs CAP_NET_RAW)" : "");
		return -e;
	}
	int version = TPACKET_V3;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0) {
		int e = errno;
		set_err(err, errlen, "open: PACKET_VERSION TPACKET_V3: %s", strerror(e));
		close(fd);
		return -e;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, a->filter, sizeof(*a->filter)) != 0) {
		int e = errno;
		set_err(err, errlen, "filter: SO_ATTACH_FILTER: %s", strerror(e));
		close(fd);
		return -e;
	}
	struct tpacket_req3 req = {
		.tp_block_size = a->block_bytes,
		.tp_block_nr = a->block_count,
		.tp_frame_size = FRAME_SIZE_HINT,
		.tp_frame_nr = (a->block_bytes / FRAME_SIZE_HINT) * a->block_count,
		.tp_retire_blk_tov = a->retire_ms,
		.tp_sizeof_priv = 0,
		.tp_feature_req_word = 0,
	};
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) {
		int e = errno;
		set_err(err, errlen, "mmap: PACKET_RX_RING (%u blocks of %u bytes): %s", a->block_count,
			a->block_bytes, strerror(e));
		close(fd);
		return -e;
	}
	size_t len = (size_t)a->block_bytes * a->block_count;
	void *ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0);
	if (ring == MAP_FAILED) /* MAP_LOCKED counts against RLIMIT_MEMLOCK; retry without it */
		ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (ring == MAP_FAILED) {
		int e = errno;
		set_err(err, errlen, "mmap: ring of %zu bytes: %s", len, strerror(e));
		close(fd);
		return -e;
	}
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) != 0) {
		int e = errno;
		set_err(err, errlen, "open: bind to %s: %s", ifindex ? a->ifname : "all interfaces", strerror(e));
		munmap(ring, len);
		close(fd);
		return -e;
	}
	c->fd = fd;
	c->ring = ring;
	c->ring_len = len;
	return 0;
}

kl_capture *kl_capture_open(const char *netns_path, const char *ifname, uint32_t snaplen, uint32_t block_bytes,
			    uint32_t block_count, uint32_t retire_ms, const char *filter, uint16_t capture_id,
			    char *err, int errlen)
{
	long page = sysconf(_SC_PAGESIZE);
	if (snaplen == 0 || snaplen > KL_SNAPLEN_MAX) {
		set_err(err, errlen, "open: snaplen %u is out of range 1..%d", snaplen, KL_SNAPLEN_MAX);
		return NULL;
	}
	if (block_bytes < (uint32_t)FRAME_SIZE_HINT || block_bytes % (uint32_t)page || block_count == 0 ||
	    (uint64_t)block_bytes * block_count > (1ull << 31)) {
		set_err(err, errlen, "mmap: ring of %u blocks of %u bytes: blocks must be page multiples, at most 2 GiB",
			block_count, block_bytes);
		return NULL;
	}
	if (ifname && strlen(ifname) >= IFNAMSIZ) {
		set_err(err, errlen, "open: interface name \"%s\" is longer than %d bytes", ifname, IFNAMSIZ - 1);
		return NULL;
	}
	struct sock_fprog prog = { 0 };
	if (build_filter(filter, snaplen, &prog, err, errlen) != 0)
		return NULL;
	struct kl_capture *c = calloc(1, sizeof(*c));
	if (!c) {
		free(prog.filter);
		set_err(err, errlen, "open: out of memory");
		return NULL;
	}
	c->fd = -1;
	c->block_bytes = block_bytes;
	c->block_count = block_count;
	c->snaplen = snaplen;
	c->capture_id = capture_id;
	c->left = -1;
	struct open_args args = { ifname, snaplen, block_bytes, block_count, retire_ms, &prog, c };
	struct ns_job job = { netns_path, open_in_ns, &args, err, errlen, 0 };
	int rc = run_in_netns(&job);
	free(prog.filter);
	if (rc != 0) {
		free(c);
		return NULL;
	}
	return c;
}

/* ---- drain ----------------------------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t link_type_of(uint16_t hatype)
{
	switch (hatype) {
	case ARPHRD_ETHER:
	case ARPHRD_LOOPBACK:
		return KL_LINKTYPE_ETHERNET;
	case ARPHRD_NONE:
	case ARPHRD_RAWIP:
	case ARPHRD_TUNNEL:
	case ARPHRD_TUNNEL6:
	case ARPHRD_SIT:
		return KL_LINKTYPE_RAW;
	default:
		return KL_LINKTYPE_OTHER;
	}
}

static inline struct tpacket_block_desc *block_at(struct kl_capture *c, uint32_t i)
{
	return (struct tpacket_block_desc *)(c->ring + (size_t)i * c->block_bytes);
}

/*
 * Copies one frame as a record at buf+off. Returns the record length, 0 when the frame is
 * skipped (a loopback PACKET_OUTGOING copy), or -1 when it does not fit in cap.
 */
static int64_t copy_frame(struct kl_capture *c, struct tpacket3_hdr *h, uint8_t *buf, uint32_t off, uint32_t cap,
			  uint64_t real_minus_mono)
{
	const struct sockaddr_ll *sll = (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
	if (sll->sll_hatype == ARPHRD_LOOPBACK && sll->sll_pkttype == PACKET_OUTGOING) {
		c->counters[KL_CAP_LO_SKIPPED]++;
		return 0;
	}
	const uint16_t link = link_type_of(sll->sll_hatype);
	const uint8_t *frame = (const uint8_t *)h + h->tp_mac;
	uint32_t snap = h->tp_snaplen, wire = h->tp_len;
	const int vlan = (h->tp_status & TP_STATUS_VLAN_VALID) && link == KL_LINKTYPE_ETHERNET && snap >= MAC_ADDRS_LEN;
	uint32_t cap_len = snap;
	if (vlan) {
		wire += VLAN_TAG_LEN;
		cap_len = snap + VLAN_TAG_LEN;
		if (cap_len > c->snaplen)
			cap_len = c->snaplen > snap ? c->snaplen : snap;
	}
	const uint32_t rec_len = (uint32_t)((sizeof(struct kl_packet) + cap_len + 7) & ~7u);
	if ((uint64_t)off + rec_len > cap)
		return -1;
	struct kl_packet *r = (struct kl_packet *)(buf + off);
	const uint64_t real = (uint64_t)h->tp_sec * 1000000000ull + h->tp_nsec;
	r->mono_ns = real - real_minus_mono;
	r->real_sec = h->tp_sec;
	r->real_nsec = h->tp_nsec;
	r->rec_len = rec_len;
	r->wire_len = wire;
	r->cap_len = cap_len;
	r->ifindex = (uint32_t)sll->sll_ifindex;
	r->link_type = link;
	r->pkt_type = sll->sll_pkttype;
	r->flags = (vlan ? KL_PKT_F_VLAN : 0) | (cap_len < wire ? KL_PKT_F_TRUNCATED : 0);
	r->capture_id = c->capture_id;
	r->pad = 0;
	uint8_t *data = (uint8_t *)(r + 1);
	if (vlan) {
		/* the frame as on the wire: MACs, then the tag (TPID, TCI), then the original EtherType */
		uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
		uint16_t tci = h->hv1.tp_vlan_tci;
		uint8_t tag[VLAN_TAG_LEN] = { tpid >> 8, tpid & 0xff, tci >> 8, tci & 0xff };
		memcpy(data, frame, MAC_ADDRS_LEN);
		uint32_t rest = cap_len - MAC_ADDRS_LEN;
		memcpy(data + MAC_ADDRS_LEN, tag, rest < VLAN_TAG_LEN ? rest : VLAN_TAG_LEN);
		if (rest > VLAN_TAG_LEN)
			memcpy(data + MAC_ADDRS_LEN + VLAN_TAG_LEN, frame + MAC_ADDRS_LEN, rest - VLAN_TAG_LEN);
	} else {
		memcpy(data, frame, cap_len);
	}
	if (rec_len > sizeof(*r) + cap_len)
		memset(data + cap_len, 0, rec_len - sizeof(*r) - cap_len);
	c->counters[KL_CAP_DELIVERED]++;
	if (cap_len < wire)
		c->counters[KL_CAP_TRUNCATED]++;
	return rec_len;
}

int kl_capture_drain(kl_capture **caps, int n, uint8_t *buf, uint32_t cap, uint32_t *out_packets)
{
	/* realtime - monotonic, sampled once per call: tpacket stamps are CLOCK_REALTIME */
	const uint64_t r1 = clock_ns(CLOCK_REALTIME), m = clock_ns(CLOCK_MONOTONIC), r2 = clock_ns(CLOCK_REALTIME);
	const uint64_t real_minus_mono = r1 / 2 + r2 / 2 + ((r1 & 1) + (r2 & 1)) / 2 - m;
	uint32_t off = 0, packets = 0;
	for (int i = 0; i < n; i++) {
		struct kl_capture *c = caps[i];
		if (!c || !c->ring)
			continue;
		for (;;) {
			struct tpacket_block_desc *bd = block_at(c, c->block);
			if (c->left < 0) {
				if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
					break; /* the kernel still fills it */
				c->left = (int32_t)bd->hdr.bh1.num_pkts;
				c->next = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
			}
			while (c->left > 0) {
				struct tpacket3_hdr *h = (struct tpacket3_hdr *)c->next;
				int64_t len = copy_frame(c, h, buf, off, cap, real_minus_mono);
				if (len < 0) {
					*out_packets = packets;
					/* a record larger than an empty buffer would never fit */
					return off == 0 ? -EMSGSIZE : (int)off;
				}
				if (len > 0) {
					off += (uint32_t)len;
					packets++;
				}
				c->left--;
				c->next += h->tp_next_offset;
			}
			/* whole block copied: hand it back to the kernel */
			__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			c->block = (c->block + 1) % c->block_count;
			c->left = -1;
		}
	}
	*out_packets = packets;
	return (int)off;
}

/* ---- stats, names, close ------------------------------------------------------------------ */

int kl_capture_stats(kl_capture *c, uint64_t *out, int n)
{
	if (!c)
		return -EINVAL;
	struct tpacket_stats_v3 st = { 0 };
	socklen_t len = sizeof(st);
	if (c->fd >= 0 && getsockopt(c->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
		/* the kernel resets these on every read: keep the running totals here */
		c->counters[KL_CAP_KERNEL_PACKETS] += st.tp_packets;
		c->counters[KL_CAP_KERNEL_DROPS] += st.tp_drops;
		c->counters[KL_CAP_FREEZE_Q] += st.tp_freeze_q_cnt;
	}
	int k = n < KL_CAP__MAX ? n : KL_CAP__MAX;
	for (int i = 0; i < k; i++)
		out[i] = c->counters[i];
	return k;
}

int kl_capture_ifname(kl_capture *c, uint32_t ifindex, char *out, int outlen)
{
	if (!c || c->fd < 0 || outlen <= 0)
		return -EINVAL;
	/* ioctls on a socket resolve in the socket's namespace, not the calling thread's */
	struct ifreq ifr = { 0 };
	ifr.ifr_ifindex = (int)ifindex;
	if (ioctl(c->fd, SIOCGIFNAME, &ifr) != 0)
		return -errno;
	snprintf(out, (size_t)outlen, "%s", ifr.ifr_name);
	return 0;
}

struct list_args {
	char *out;
	int outlen;
};

static int list_in_ns(struct ns_job *job)
{
	struct list_args *a = job->arg;
	struct if_nameindex *all = if_nameindex();
	if (!all) {
		int e = errno;
		set_err(job->err, job->errlen, "open: cannot list interfaces: %s", strerror(e));
		return -e;
	}
	int used = 0, rc = 0;
	a->out[0] = 0;
	for (struct if_nameindex *it = all; it->if_index != 0 && it->if_name; it++) {
		int w = snprintf(a->out + used, (size_t)(a->outlen - used), "%u %s\n", it->if_index, it->if_name);
		if (w < 0 || w >= a->outlen - used) {
			a->out[used] = 0;
			rc = -ENOSPC;
			break;
		}
		used += w;
	}
	if_freenameindex(all);
	return rc ? rc : used;
}

int kl_netns_interfaces(const char *netns_path, char *out, int outlen)
{
	if (!out || outlen <= 0)
		return -EINVAL;
	char err[256] = "";
	struct list_args args = { out, outlen };
	struct ns_job job = { netns_path, list_in_ns, &args, err, sizeof(err), 0 };
	int rc = run_in_netns(&job);
	if (rc < 0 && err[0])
		snprintf(out, (size_t)outlen, "%s", err); /* the reason, for the caller's message */
	return rc;
}

void kl_capture_close(kl_capture *c)
{
	if (!c)
		return;
	if (c->ring)
		munmap(c->ring, c->ring_len);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
