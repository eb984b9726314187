// SPDX-License-Identifier: Apache-2.0
/*
 * Socket syscall load generator for `pnpm bench:receiver`.
 *
 *   kl_loadgen <mode> <seconds> <rate_per_sec|0> <threads>
 *     mode write: 1-byte write()s on a loopback TCP connection (a reader thread drains it)
 *     mode peek:  recv(MSG_PEEK) of 1 byte on a TCP socket holding data: the cheapest
 *                 syscall that moves bytes, so each call is one traced event
 *
 *   kl_loadgen mmsg: one sendmmsg() of 3 UDP datagrams ("mmsg-0".."mmsg-2") over loopback and
 *     one recvmmsg() of them; prints "port <receiver port>" first and waits for a stdin line.
 *
 * Prints "port <n>" once listening, waits for a line on stdin, runs, then prints
 * "calls <n> seconds <s>".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;
static double seconds;
static double rate; /* per thread */
static int peek;
static atomic_long total;
static atomic_int stop_reader;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_loopback(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static void *reader(void *arg)
{
	int fd = (int)(long)arg;
	static char buf[1 << 16];
	while (!atomic_load(&stop_reader)) {
		if (read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	return NULL;
}

static void *worker(void *arg)
{
	int port = (int)(long)arg;
	int fd = connect_loopback(port);
	int peer = accept(listener, NULL, NULL);
	pthread_t r;
	char c = 'x';
	if (peek) {
		/* the peer sends one byte that stays queued: every MSG_PEEK returns it */
		if (write(peer, &c, 1) != 1)
			exit(1);
		usleep(10000);
	} else {
		pthread_create(&r, NULL, reader, (void *)(long)peer);
	}
	long n = 0;
	double start = now(), end = start + seconds;
	for (;;) {
		for (int i = 0; i < 256; i++) {
			long rc = peek ? recv(fd, &c, 1, MSG_PEEK) : write(fd, &c, 1);
			if (rc != 1) {
				perror(peek ? "recv" : "write");
				exit(1);
			}
		}
		n += 256;
		double t = now();
		if (t >= end)
			break;
		if (rate > 0) {
			double due = start + n / rate; /* pace to the target rate */
			if (due > t)
				usleep((useconds_t)((due - t) * 1e6));
		}
	}
	atomic_fetch_add(&total, n);
	close(fd);
	close(peer);
	return NULL;
}

static int mmsg_once(void)
{
	int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (bind(rx, (struct sockaddr *)&a, sizeof(a)) || getsockname(rx, (struct sockaddr *)&a, &len) ||
	    connect(tx, (struct sockaddr *)&a, sizeof(a))) {
		perror("udp");
		return 1;
	}
	printf("port %d\n", ntohs(a.sin_port));
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	char out[3][8], in[3][64];
	struct iovec oiov[3], iiov[3];
	struct mmsghdr omsg[3], imsg[3];
	memset(omsg, 0, sizeof(omsg));
	memset(imsg, 0, sizeof(imsg));
	for (int i = 0; i < 3; i++) {
		snprintf(out[i], sizeof(out[i]), "mmsg-%d", i);
		oiov[i] = (struct iovec){out[i], 6};
		iiov[i] = (struct iovec){in[i], sizeof(in[i])};
		omsg[i].msg_hdr.msg_iov = &oiov[i];
		omsg[i].msg_hdr.msg_iovlen = 1;
		imsg[i].msg_hdr.msg_iov = &iiov[i];
		imsg[i].msg_hdr.msg_iovlen = 1;
	}
	int sent = sendmmsg(tx, omsg, 3, 0);
	int got = 0;
	while (got < 3) {
		int n = recvmmsg(rx, imsg + got, 3 - got, 0, NULL);
		if (n <= 0)
			break;
		got += n;
	}
	printf("sent %d received %d\n", sent, got);
	return sent == 3 && got == 3 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "mmsg") == 0)
		return mmsg_once();
	if (argc < 5) {
		fprintf(stderr, "usage: %s write|peek <seconds> <rate_per_sec|0> <threads>\n", argv[0]);
		return 2;
	}
	peek = strcmp(argv[1], "peek") == 0;
	seconds = atof(argv[2]);
	int threads = atoi(argv[4]);
	rate = atof(argv[3]) / (threads > 0 ? threads : 1);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (bind(listener, (struct sockaddr *)&a, sizeof(a)) || listen(listener, 64) ||
	    getsockname(listener, (struct sockaddr *)&a, &len)) {
		perror("listen");
		return 1;
	}
	int port = ntohs(a.sin_port);
	printf("port %d\n", port);
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	pthread_t t[64];
	double start = now();
	for (int i = 0; i < threads && i < 64; i++)
		pthread_create(&t[i], NULL, worker, (void *)(long)port);
	for (int i = 0; i < threads && i < 64; i++)
		pthread_join(t[i], NULL);
	atomic_store(&stop_reader, 1);
	printf("calls %ld seconds %.3f\n", atomic_load(&total), now() - start);
	fflush(stdout);
	return 0;
}
