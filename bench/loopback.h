/*
 * What bench/fanout-floor.c and bench/fanout-reader.c share: a monotonic clock, failing with the
 * reason, and client connections made the way the load generator makes its streams' (from
 * 127.0.0.1-16 in turn, the port chosen at connect: BENCHMARKS.md, item 15).
 */
#ifndef PAYNOTIFY_BENCH_LOOPBACK_H
#define PAYNOTIFY_BENCH_LOOPBACK_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum { LOOPBACK_SOURCES = 16 };

static double now(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return time.tv_sec + time.tv_nsec / 1e9;
}

/* Prints the program's name, `what` and errno's reason, and exits with status 1. */
static void fail(const char *what) {
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
    exit(1);
}

/* The `index`th client connection to `server`, from 127.0.0.(1 + index % 16). */
static int connectFromLoopback(int index, const struct sockaddr_in *server) {
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail("socket");
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in source = {.sin_family = AF_INET};
    source.sin_addr.s_addr = htonl(0x7f000001 + index % LOOPBACK_SOURCES);
    if (bind(fd, (struct sockaddr *)&source, sizeof source) != 0) fail("bind source");
    if (connect(fd, (const struct sockaddr *)server, sizeof *server) != 0) fail("connect");
    return fd;
}

#endif
