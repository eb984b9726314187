// SPDX-License-Identifier: Apache-2.0
/*
 * UDP packet flood for `pnpm bench:capture`.
 *
 *   kl_udpflood <dst_ipv4> <port> <seconds> <payload_bytes> <rate_per_sec|0>
 *
 * Sends datagrams with sendmmsg (64 per call) on a connected socket, paced when rate > 0,
 * then prints "sent <n> seconds <s>". Only meant for addresses inside test namespaces or loopback.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s <dst_ipv4> <port> <seconds> <payload_bytes> <rate_per_sec|0>\n", argv[0]);
		return 2;
	}
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	double seconds = atof(argv[3]);
	size_t size = (size_t)atoi(argv[4]);
	double rate = atof(argv[5]);
	if (size > 1400)
		size = 1400;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
		perror("socket/connect");
		return 1;
	}
	static char payload[1400];
	memset(payload, 'k', sizeof(payload));
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = payload;
		iov[i].iov_len = size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	long sent = 0;
	double t0 = now(), end = t0 + seconds;
	for (;;) {
		double t = now();
		if (t >= end)
			break;
		if (rate > 0 && sent >= (t - t0) * rate) {
			usleep(200);
			continue;
		}
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += n; /* ECONNREFUSED from an ICMP unreachable: just send again */
	}
	printf("sent %ld seconds %.3f\n", sent, now() - t0);
	return 0;
}
