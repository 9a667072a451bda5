/*
 * The fan-out's floor on this machine, measured beside the service in `make bench` as pgbench is
 * beside the webhook figures: one small write to each of N loopback TCP connections, read by
 * another process, with nothing else in the way (no HTTP, no framework, no database).
 *
 *   fanout-floor N
 *
 * A writer process with two threads (the server's two event loops) writes a 160-byte message (an
 * alert event's size) to each of N accepted connections, alternating between the threads; a
 * reader process with two epoll threads (the load generator's two event loops) holds the other
 * ends, connected from 127.0.0.1-16 in turn as the load generator's are. The time runs from just
 * before the first write to the read that completes the last connection. Prints one JSON line:
 *
 *   {"benchmark":"fanout_floor","streams":N,"writes_ms":…,"last_ms":…}
 *
 * Loopback only; bounded (alarm after 60 s in both processes; the reader dies with the writer).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

enum { MESSAGE_BYTES = 160 };

static int count;
static int *sockets;
static char message[MESSAGE_BYTES];
static int pollers[2];
static atomic_int completed;
static double lastRead;

/* Writes to every other connection, starting at `first`. */
static void *writer(void *first) {
    for (int index = (int)(long)first; index < count; index += 2) {
        if (write(sockets[index], message, MESSAGE_BYTES) != MESSAGE_BYTES) fail("write");
    }
    return NULL;
}

/* Reads its half of the connections until each has its whole message. */
static void *reader(void *which) {
    struct epoll_event events[256];
    char buffer[4096];
    int *received = calloc((size_t)count * 2 + 64, sizeof(int));
    while (atomic_load(&completed) < count) {
        int ready = epoll_wait(pollers[(long)which], events, 256, 1000);
        if (ready < 0 && errno != EINTR) fail("epoll_wait");
        for (int index = 0; index < ready; index++) {
            int fd = events[index].data.fd;
            ssize_t bytes = read(fd, buffer, sizeof buffer);
            if (bytes <= 0) continue;
            int before = received[fd];
            received[fd] += (int)bytes;
            if (before < MESSAGE_BYTES && received[fd] >= MESSAGE_BYTES) {
                if (atomic_fetch_add(&completed, 1) + 1 == count) lastRead = now();
            }
        }
    }
    free(received);
    return NULL;
}

int main(int argc, char **argv) {
    count = argc > 1 ? atoi(argv[1]) : 0;
    if (count < 2 || count > 19000) {
        fprintf(stderr, "usage: fanout-floor N (2-19000; one process holds N descriptors)\n");
        return 2;
    }
    memset(message, 'x', sizeof message);
    alarm(60);
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0) fail("bind");
    if (listen(listener, 4096) != 0) fail("listen");
    socklen_t length = sizeof address;
    getsockname(listener, (struct sockaddr *)&address, &length);

    int connected[2], finished[2];
    if (pipe(connected) != 0 || pipe(finished) != 0) fail("pipe");
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        /* The reader: connects every socket, says so, then reads. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pollers[0] = epoll_create1(0);
        pollers[1] = epoll_create1(0);
        for (int index = 0; index < count; index++) {
            int fd = connectFromLoopback(index, &address);
            struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
            if (epoll_ctl(pollers[index % 2], EPOLL_CTL_ADD, fd, &event) != 0) fail("epoll_ctl");
        }
        pthread_t threads[2];
        for (long which = 0; which < 2; which++) pthread_create(&threads[which], NULL, reader, (void *)which);
        char byte = 1;
        if (write(connected[1], &byte, 1) != 1) fail("signal");
        for (int which = 0; which < 2; which++) pthread_join(threads[which], NULL);
        if (write(finished[1], &lastRead, sizeof lastRead) != sizeof lastRead) fail("report");
        return 0;
    }

    /* The writer: accepts every connection, waits for the reader to be ready, writes. */
    sockets = calloc((size_t)count, sizeof(int));
    for (int index = 0; index < count; index++) {
        sockets[index] = accept(listener, NULL, NULL);
        if (sockets[index] < 0) fail("accept");
        setsockopt(sockets[index], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char byte;
    if (read(connected[0], &byte, 1) != 1) fail("wait for the reader");
    usleep(300000); /* the reader's threads are in epoll_wait */
    double start = now();
    pthread_t threads[2];
    for (long first = 0; first < 2; first++) pthread_create(&threads[first], NULL, writer, (void *)first);
    for (int first = 0; first < 2; first++) pthread_join(threads[first], NULL);
    double written = now();
    double last = 0;
    if (read(finished[0], &last, sizeof last) != sizeof last) fail("read the reader's report");
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fanout-floor: the reader failed\n");
        return 1;
    }
    printf("{\"benchmark\":\"fanout_floor\",\"streams\":%d,\"writes_ms\":%.3f,\"last_ms\":%.3f}\n", count,
           (written - start) * 1000, (last - start) * 1000);
    return 0;
}
