/*
 * The benchmark's load client (bench/load.c).
 *
 * Owns: driving a gopher server on 127.0.0.1 with REQUESTS requests over
 * CONNECTIONS connections at once, each connection doing connect / send the
 * selector / read to EOF / close in a loop; timing every request; checking
 * every reply's length and CRC-32 against what the bench expects.  Bounded:
 * no new request starts after SECONDS, and anything still open SECONDS + 10
 * after the start is abandoned and counted as failed.  Must not touch any
 * address but 127.0.0.1.
 *
 * Usage:  load PORT TARGETS REQUESTS CONNECTIONS SECONDS [THREADS]
 *
 * TARGETS has one line per selector: SELECTOR TAB LENGTH TAB CRC32 (hex) LF.
 * Request i asks for target i mod (number of targets).  The connections are
 * shared out over THREADS epoll loops (default: min(CONNECTIONS, CPUs)).
 *
 * Prints one JSON object on stdout: requests started and done, ok, failed
 * (wrong length, wrong checksum, connection errors, timeouts), bytes,
 * seconds, requests per second, and latency p50/p90/p99/max in
 * milliseconds (connect to EOF, requests that completed).  The first few
 * failures are described on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *sel;
    size_t sel_len;
    uint64_t length;
    uint32_t crc;
} target_t;

typedef struct {
    int fd;
    uint64_t ticket;
    int state;           /* 0 connecting, 1 reading */
    uint64_t got;
    uint32_t crc;
    uint64_t started_ns;
} slot_t;

static target_t *targets;
static size_t n_targets;
static uint64_t n_requests;
static int port;
static double limit_seconds;
static uint64_t t0_ns;
static uint64_t next_ticket;      /* atomic */
static uint64_t *latency_ns;      /* by ticket; 0 = failed or not done */
static uint64_t n_ok, n_failed, n_bytes, n_started, n_reported;  /* atomic */
static uint32_t crc_table[256];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* zlib's crc32 (the same figure as Python's zlib.crc32), updated in place. */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void failure(uint64_t ticket, const char *what, uint64_t got) {
    __atomic_fetch_add(&n_failed, 1, __ATOMIC_RELAXED);
    if (__atomic_fetch_add(&n_reported, 1, __ATOMIC_RELAXED) < 10) {
        const target_t *t = &targets[ticket % n_targets];
        fprintf(stderr, "load: request %llu (%.*s): %s after %llu bytes (expected %llu)\n",
                (unsigned long long)ticket, (int)t->sel_len, t->sel, what,
                (unsigned long long)got, (unsigned long long)t->length);
    }
}

static void load_targets(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 1024;
    targets = malloc(cap * sizeof *targets);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        char *tab1 = memchr(line, '\t', (size_t)len);
        if (!tab1) continue;
        char *tab2 = strchr(tab1 + 1, '\t');
        if (!tab2) continue;
        if (n_targets == cap) { cap *= 2; targets = realloc(targets, cap * sizeof *targets); }
        target_t *t = &targets[n_targets++];
        t->sel_len = (size_t)(tab1 - line);
        t->sel = malloc(t->sel_len + 2);
        memcpy(t->sel, line, t->sel_len);
        t->sel[t->sel_len] = '\r';
        t->sel[t->sel_len + 1] = '\n';
        t->length = strtoull(tab1 + 1, NULL, 10);
        t->crc = (uint32_t)strtoul(tab2 + 1, NULL, 16);
    }
    free(line);
    fclose(f);
    if (n_targets == 0) { fprintf(stderr, "load: no targets in %s\n", path); exit(2); }
}

/* Start the next request in this slot; 0 when there is none to start. */
static int start(int ep, slot_t *s) {
    for (;;) {
        if ((double)(now_ns() - t0_ns) / 1e9 >= limit_seconds) return 0;
        uint64_t ticket = __atomic_fetch_add(&next_ticket, 1, __ATOMIC_RELAXED);
        if (ticket >= n_requests) return 0;
        __atomic_fetch_add(&n_started, 1, __ATOMIC_RELAXED);
        s->ticket = ticket;
        s->got = 0;
        s->crc = 0;
        s->state = 0;
        s->started_ns = now_ns();
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) { failure(ticket, strerror(errno), 0); continue; }
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
            failure(ticket, strerror(errno), 0);
            close(s->fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
        return 1;
    }
}

static void done(int ep, slot_t *s, const char *error) {
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    const target_t *t = &targets[s->ticket % n_targets];
    if (error) {
        failure(s->ticket, error, s->got);
    } else if (s->got != t->length) {
        failure(s->ticket, "wrong length", s->got);
    } else if (s->crc != t->crc) {
        failure(s->ticket, "wrong checksum", s->got);
    } else {
        latency_ns[s->ticket] = now_ns() - s->started_ns;
        __atomic_fetch_add(&n_ok, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&n_bytes, s->got, __ATOMIC_RELAXED);
    }
}

typedef struct {
    int slots;
} worker_arg_t;

static void *worker(void *arg) {
    int n_slots = ((worker_arg_t *)arg)->slots;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    slot_t *slots = calloc((size_t)n_slots, sizeof *slots);
    int active = 0;
    for (int i = 0; i < n_slots; i++) {
        slots[i].fd = -1;
        if (start(ep, &slots[i])) active++;
    }
    static __thread unsigned char buf[65536];
    struct epoll_event events[256];
    uint64_t hard_ns = (uint64_t)((limit_seconds + 10.0) * 1e9);
    while (active > 0) {
        int n = epoll_wait(ep, events, 256, 200);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            exit(2);
        }
        if (now_ns() - t0_ns > hard_ns) {
            for (int i = 0; i < n_slots; i++)
                if (slots[i].fd >= 0) done(ep, &slots[i], "abandoned at the time limit");
            break;
        }
        for (int i = 0; i < n; i++) {
            slot_t *s = events[i].data.ptr;
            if (s->fd < 0) continue;
            int finished = 0;
            if (s->state == 0) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    done(ep, s, strerror(err));
                    finished = 1;
                } else {
                    const target_t *t = &targets[s->ticket % n_targets];
                    ssize_t w = send(s->fd, t->sel, t->sel_len + 2, MSG_NOSIGNAL);
                    if (w != (ssize_t)(t->sel_len + 2)) {
                        done(ep, s, "short send");
                        finished = 1;
                    } else {
                        s->state = 1;
                        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                    }
                }
            } else {
                for (;;) {
                    ssize_t r = recv(s->fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        s->crc = crc_update(s->crc, buf, (size_t)r);
                        s->got += (uint64_t)r;
                        continue;
                    }
                    if (r == 0) { done(ep, s, NULL); finished = 1; }
                    else if (errno == EINTR) continue;
                    else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        done(ep, s, strerror(errno));
                        finished = 1;
                    }
                    break;
                }
            }
            if (finished && !start(ep, s)) active--;
        }
    }
    close(ep);
    free(slots);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *sorted, size_t n, double p) {
    if (n == 0) return 0.0;
    size_t idx = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)sorted[idx] / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PORT TARGETS REQUESTS CONNECTIONS SECONDS [THREADS]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    load_targets(argv[2]);
    n_requests = strtoull(argv[3], NULL, 10);
    int connections = atoi(argv[4]);
    limit_seconds = atof(argv[5]);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 6 ? atoi(argv[6]) : (int)(connections < cpus ? connections : cpus);
    if (connections < 1 || threads < 1 || n_requests < 1) { fprintf(stderr, "load: bad arguments\n"); return 2; }
    if (threads > connections) threads = connections;
    crc_init();
    latency_ns = calloc(n_requests, sizeof *latency_ns);
    if (!latency_ns) { perror("calloc"); return 2; }

    t0_ns = now_ns();
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    worker_arg_t *args = calloc((size_t)threads, sizeof *args);
    for (int i = 0; i < threads; i++) {
        args[i].slots = connections / threads + (i < connections % threads);
        pthread_create(&tids[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(tids[i], NULL);
    double seconds = (double)(now_ns() - t0_ns) / 1e9;

    size_t n_lat = 0;
    for (uint64_t i = 0; i < n_requests; i++)
        if (latency_ns[i]) latency_ns[n_lat++] = latency_ns[i];
    qsort(latency_ns, n_lat, sizeof *latency_ns, cmp_u64);
    printf("{\"started\": %llu, \"ok\": %llu, \"failed\": %llu, \"bytes\": %llu, "
           "\"seconds\": %.6f, \"rps\": %.1f, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
           "\"p99_ms\": %.4f, \"max_ms\": %.4f, \"connections\": %d, \"threads\": %d}\n",
           (unsigned long long)n_started, (unsigned long long)n_ok, (unsigned long long)n_failed,
           (unsigned long long)n_bytes, seconds, (double)n_ok / seconds, pct(latency_ns, n_lat, 0.50),
           pct(latency_ns, n_lat, 0.90), pct(latency_ns, n_lat, 0.99),
           n_lat ? (double)latency_ns[n_lat - 1] / 1e6 : 0.0, connections, threads);
    return n_failed ? 1 : 0;
}
