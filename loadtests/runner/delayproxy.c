/* authscale-delay: a TCP forwarder on loopback that holds every chunk of bytes, in each
 * direction, for half of a fixed round trip before passing it on: Redis "across a
 * network" on a machine whose kernel has no netem (no qdisc at all) and no toxiproxy.
 *
 *   authscale-delay --listen PORT --to PORT --rtt-us MICROSECONDS
 *
 * Every connection accepted on 127.0.0.1:PORT is joined to a new connection to
 * 127.0.0.1:TO; what one side sends reaches the other RTT/2 microseconds after it arrived,
 * in order, so a request and its answer take RTT longer than without it. Written here, in
 * the load generator's style (one thread, epoll, waits to the microsecond), because
 * nothing installable on these machines adds a fixed delay: netem needs a qdisc this
 * kernel lacks, and Debian packages no toxiproxy. Loopback only. It runs until SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define MAX_PIPES 4096

typedef struct chunk {
    double due;
    size_t len, sent;
    struct chunk *next;
    char data[];
} chunk_t;

/* One direction of one joined connection: bytes read from `from`, held, written to `to`. */
typedef struct {
    int from, to;
    chunk_t *head, *tail;
    int closed;  /* `from` reached its end: close `to` once everything held is written */
} pipe_t;

static pipe_t pipes[MAX_PIPES];
static int n_pipes;
static volatile sig_atomic_t stopping;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "authscale-delay: %s\n", what);
    exit(2);
}

static void on_term(int sig) { (void)sig; stopping = 1; }

static int loopback_socket(int port, int listening) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("cannot make a socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (listening) {
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("cannot listen there");
        if (listen(fd, 1024) < 0) die("cannot listen");
    } else if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void watch(int epfd, int fd, int index) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Write what is due; true when the pipe is done (its source ended, nothing held). */
static int flush(pipe_t *p, double t) {
    while (p->head != NULL && p->head->due <= t) {
        chunk_t *c = p->head;
        ssize_t wrote = send(p->to, c->data + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (wrote < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            p->closed = 1;  /* the destination is gone: drop what is held */
            wrote = (ssize_t)(c->len - c->sent);
        }
        c->sent += (size_t)wrote;
        if (c->sent < c->len) return 0;
        p->head = c->next;
        if (p->head == NULL) p->tail = NULL;
        free(c);
    }
    return p->closed && p->head == NULL;
}

int main(int argc, char **argv) {
    int listen_port = 0, to_port = 0;
    double rtt_us = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen")) listen_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--to")) to_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rtt-us")) rtt_us = atof(argv[i + 1]);
        else { fprintf(stderr, "authscale-delay: unknown option %s\n", argv[i]); return 2; }
    }
    if (listen_port <= 0 || to_port <= 0 || rtt_us < 0)
        die("--listen PORT --to PORT --rtt-us MICROSECONDS are required");
    double hold = rtt_us / 2e6;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int listener = loopback_socket(listen_port, 1);
    int epfd = epoll_create1(0);
    watch(epfd, listener, -1);
    static char buffer[CHUNK];
    struct epoll_event events[256];
    while (!stopping) {
        double t = now(), next = t + 0.1;
        for (int i = 0; i < n_pipes; i++) {
            pipe_t *p = &pipes[i];
            if (p->from < 0) continue;
            if (flush(p, t)) {  /* one side ended and all it sent is through: end both */
                pipe_t *a = &pipes[i & ~1], *b = &pipes[i | 1];
                for (pipe_t *q = a; q <= b; q++) {
                    while (q->head != NULL) { chunk_t *c = q->head; q->head = c->next; free(c); }
                    q->tail = NULL;
                }
                close(a->from);
                close(b->from);
                a->from = b->from = -1;
                continue;
            }
            if (p->head != NULL && p->head->due < next) next = p->head->due;
        }
        double wait = next - now();
        if (wait < 0) wait = 0;
        struct timespec timeout = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        int n = epoll_pwait2(epfd, events, 256, &timeout, NULL);
        for (int e = 0; e < n; e++) {
            int index = (int)events[e].data.u32;
            if (index == -1) {
                int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                if (client < 0) continue;
                int one = 1;
                setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                int upstream = loopback_socket(to_port, 0);
                if (upstream < 0 || n_pipes + 2 > MAX_PIPES) {
                    close(client);
                    if (upstream >= 0) close(upstream);
                    continue;
                }
                pipes[n_pipes] = (pipe_t){.from = client, .to = upstream};
                pipes[n_pipes + 1] = (pipe_t){.from = upstream, .to = client};
                watch(epfd, client, n_pipes);
                watch(epfd, upstream, n_pipes + 1);
                n_pipes += 2;
                continue;
            }
            pipe_t *p = &pipes[index];
            if (p->from < 0) continue;
            ssize_t got = recv(p->from, buffer, sizeof buffer, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) {
                p->closed = 1;
                epoll_ctl(epfd, EPOLL_CTL_DEL, p->from, NULL);
                continue;
            }
            chunk_t *c = malloc(sizeof *c + (size_t)got);
            if (c == NULL) die("out of memory");
            c->due = now() + hold;
            c->len = (size_t)got;
            c->sent = 0;
            c->next = NULL;
            memcpy(c->data, buffer, (size_t)got);
            if (p->tail) p->tail->next = c; else p->head = c;
            p->tail = c;
        }
    }
    return 0;
}
