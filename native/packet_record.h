/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet records written by kl_capture_drain (native/packet_capture.c) and read by
 * packages/ebpf-receiver/src/packets.ts. Single source of truth: the TypeScript offsets
 * are generated from this header (make -C native layout) and a test checks them.
 */
#ifndef KL_PACKET_RECORD_H
#define KL_PACKET_RECORD_H
#include <stdint.h>

/* One captured frame; cap_len bytes of frame data follow the header. Records are padded to 8 bytes. */
struct kl_packet {
	uint64_t mono_ns;    /* CLOCK_MONOTONIC ns: same clock as the socket events (bpf_ktime_get_ns) */
	uint32_t real_sec;   /* CLOCK_REALTIME of the capture (tpacket timestamp), for pcap output */
	uint32_t real_nsec;
	uint32_t rec_len;    /* header + cap_len, padded to 8 */
	uint32_t wire_len;   /* original length on the wire (incl. a reinserted VLAN tag) */
	uint32_t cap_len;    /* bytes that follow */
	uint32_t ifindex;
	uint16_t link_type;  /* pcap LINKTYPE_* below */
	uint8_t pkt_type;    /* sll_pkttype: PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4 */
	uint8_t flags;       /* KL_PKT_F_* */
	uint16_t capture_id; /* which capture handle produced it */
	uint16_t pad;
};

/* kl_packet.flags */
#define KL_PKT_F_VLAN 0x1      /* an 802.1Q/802.1ad tag was reinserted from the ring's metadata */
#define KL_PKT_F_TRUNCATED 0x2 /* cap_len < wire_len */

/* kl_packet.link_type: pcap LINKTYPE values, as written into a pcap file header. */
#define KL_LINKTYPE_ETHERNET 1 /* Ethernet, also loopback (a 14-byte header of zeros) */
#define KL_LINKTYPE_RAW 101    /* raw IPv4/IPv6, no link header (tun, wireguard, ipip, sit) */
#define KL_LINKTYPE_OTHER 0xffff /* a device type Kalman does not decode: bytes as the device delivers them */

#define KL_SNAPLEN_DEFAULT 256
#define KL_SNAPLEN_MAX 65535

/* kl_capture_stats slots (u64 each). Kernel counters are accumulated: the kernel resets them on read. */
enum kl_capture_counter {
	KL_CAP_KERNEL_PACKETS = 0, /* tp_packets: frames that passed the filter (incl. those dropped) */
	KL_CAP_KERNEL_DROPS = 1,   /* tp_drops: ring full */
	KL_CAP_FREEZE_Q = 2,       /* tp_freeze_q_cnt: times the ring froze (no free block) */
	KL_CAP_DELIVERED = 3,      /* records copied out by kl_capture_drain */
	KL_CAP_TRUNCATED = 4,      /* delivered records with cap_len < wire_len */
	KL_CAP_LO_SKIPPED = 5,     /* loopback PACKET_OUTGOING copies skipped (each lo frame is seen twice) */
	KL_CAP__MAX = 6,
};

#endif
