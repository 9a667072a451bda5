/*
 * The service's fan-out without the load generator's reading cost: opens N ops streams on a
 * running server with a minimal reader (two epoll threads, no HTTP or SSE parsing beyond looking
 * for text), raises one alert the way `paynotify-loadgen fanout` does (a sandbox webhook with a
 * bad signature), and reports when the first and the last stream had it.
 *
 *   fanout-reader N PORT ADMIN_TOKEN [WHEN]
 *
 * WHEN: `now` (default), `stats` (just as a `stats` broadcast reaches a stream: the alert comes
 * behind it) or `between` (half a second after one). The server must listen on 127.0.0.1:PORT
 * and admit N ops streams from 127.0.0.1-16 (PAYNOTIFY_MAX_STREAMS, PAYNOTIFY_MAX_STREAMS_PER_IP),
 * and a bad-signature alert must not have been raised in the last minute (alerts are throttled).
 * Prints one JSON line: {"benchmark":"fanout_reader","streams":N,"first_ms":…,"last_ms":…}.
 * Loopback only; bounded (alarm after 60 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

enum { MAXIMUM_DESCRIPTOR = 1 << 16 };
enum Stage { CONNECTING = 0, READY = 1, ALERTED = 2 };

static int count;
static int pollers[2];
static unsigned char stage[MAXIMUM_DESCRIPTOR];
static atomic_int ready, alerted;
static atomic_bool armed;
static _Atomic double statsSeen;
static double firstAlert, lastAlert;

/* Reads its half of the streams: `retry:` makes one ready, the alert's kind marks it alerted. */
static void *reader(void *which) {
    struct epoll_event events[256];
    char buffer[8192];
    while (atomic_load(&alerted) < count) {
        int ready_count = epoll_wait(pollers[(long)which], events, 256, 2000);
        if (ready_count < 0 && errno != EINTR) fail("epoll_wait");
        if (ready_count == 0 && atomic_load(&armed)) break; /* two silent seconds after the alert */
        for (int index = 0; index < ready_count; index++) {
            int fd = events[index].data.fd;
            ssize_t bytes = read(fd, buffer, sizeof buffer - 1);
            if (bytes <= 0) continue;
            buffer[bytes] = 0;
            if (stage[fd] == CONNECTING && strstr(buffer, "retry:")) {
                stage[fd] = READY;
                atomic_fetch_add(&ready, 1);
            }
            if (!atomic_load(&armed) && strstr(buffer, "event: stats")) atomic_store(&statsSeen, now());
            if (stage[fd] == READY && atomic_load(&armed) && strstr(buffer, "bad_signature")) {
                stage[fd] = ALERTED;
                double at = now();
                int alertedNow = atomic_fetch_add(&alerted, 1) + 1;
                if (alertedNow == 1) firstAlert = at;
                if (alertedNow == count) lastAlert = at;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    count = argc > 3 ? atoi(argv[1]) : 0;
    int port = argc > 3 ? atoi(argv[2]) : 0;
    const char *when = argc > 4 ? argv[4] : "now";
    if (count < 1 || count > 19000 || port < 1 || port > 65535) {
        fprintf(stderr, "usage: fanout-reader N PORT ADMIN_TOKEN [now|stats|between] (N 1-19000)\n");
        return 2;
    }
    alarm(60);
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
    char request[512];
    int requestLength = snprintf(request, sizeof request,
                                 "GET /v1/ops/events?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Accept: text/event-stream\r\n\r\n",
                                 argv[3]);
    pollers[0] = epoll_create1(0);
    pollers[1] = epoll_create1(0);
    pthread_t threads[2];
    for (long which = 0; which < 2; which++) pthread_create(&threads[which], NULL, reader, (void *)which);

    for (int index = 0; index < count; index++) {
        int fd = connectFromLoopback(index, &server);
        if (fd >= MAXIMUM_DESCRIPTOR) {
            errno = EMFILE;
            fail("socket");
        }
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(pollers[index % 2], EPOLL_CTL_ADD, fd, &event) != 0) fail("epoll_ctl");
        if (write(fd, request, (size_t)requestLength) != requestLength) fail("write the request");
        while (index - atomic_load(&ready) > 200) usleep(1000); /* at most 200 opening at once */
    }
    while (atomic_load(&ready) < count) usleep(10000);
    usleep(500000);
    if (strcmp(when, "now") != 0) {
        double seen = atomic_load(&statsSeen);
        while (atomic_load(&statsSeen) == seen) usleep(100);
        if (strcmp(when, "between") == 0) usleep(500000);
    }

    const char *body = "{\"id\":\"fanout-reader\"}";
    char webhook[512];
    int webhookLength = snprintf(webhook, sizeof webhook,
                                 "POST /v1/webhooks/sandbox HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Sandbox-Signature: t=1,v1=00\r\nContent-Type: application/json\r\n"
                                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                 strlen(body), body);
    int hook = socket(AF_INET, SOCK_STREAM, 0);
    if (hook < 0 || connect(hook, (struct sockaddr *)&server, sizeof server) != 0) fail("connect the webhook");
    double start = now();
    atomic_store(&armed, true);
    if (write(hook, webhook, (size_t)webhookLength) != webhookLength) fail("write the webhook");
    for (int which = 0; which < 2; which++) pthread_join(threads[which], NULL);
    int got = atomic_load(&alerted);
    if (got < count) {
        fprintf(stderr, "fanout-reader: only %d of %d streams had the alert\n", got, count);
        return 1;
    }
    printf("{\"benchmark\":\"fanout_reader\",\"streams\":%d,\"when\":\"%s\",\"first_ms\":%.3f,\"last_ms\":%.3f}\n",
           count, when, (firstAlert - start) * 1000, (lastAlert - start) * 1000);
    return 0;
}
