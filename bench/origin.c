/*
 * The benchmark's in-memory gopher origin (bench/origin.c).
 *
 * Owns: answering gopher requests on 127.0.0.1 from a hole held in memory,
 * fast enough that it is never what a benchmark measures, and counting the
 * requests it answered (per selector) so the bench can check what a client
 * asked for.  Must not touch: any address but 127.0.0.1, any file but the
 * hole it loads.
 *
 * Usage:  origin HOLE PORT [THREADS]
 *
 * HOLE is the file the bench writes: selector NUL reply NUL, repeated.  One
 * thread per core (THREADS, default: the online CPUs), each with its own
 * SO_REUSEPORT listener and epoll loop.  A connection is read up to its
 * first LF; the selector is the bytes before the first TAB, CR or LF; the
 * reply is written in full and the connection closed.  An unknown selector
 * gets a type-3 error line and a lone-dot terminator.
 *
 * Two control selectors are not counted:
 *   /.bench/stats   "requests N\nmissing N\nbytes N\n" then one
 *                   "hit COUNT\tSELECTOR\n" line per selector asked for
 *   /.bench/reset   zero every counter; replies "reset\n"
 * SIGUSR1 prints the totals on stderr; SIGTERM or SIGINT prints them and exits.
 * "ready PORT" is printed on stdout once every listener is bound.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define REQ_MAX 4096
#define MAX_EVENTS 256

typedef struct {
    const char *sel;
    size_t sel_len;
    const char *reply;
    size_t reply_len;
    uint64_t hits;
} entry_t;

typedef struct {
    int fd;
    size_t got;          /* request bytes read */
    const char *out;     /* reply being written */
    size_t out_len;
    size_t out_off;
    char *owned;         /* malloc'ed reply to free (stats, errors) */
    char req[REQ_MAX];
} conn_t;

static entry_t *entries;
static size_t n_entries;
static uint32_t *table;  /* open addressing: entry index + 1, 0 = empty */
static size_t table_mask;
static uint64_t total_requests, total_missing, total_bytes;
static int listen_port;
static volatile sig_atomic_t got_usr1, got_term;

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void load_hole(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat");
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) die("malloc");
    size_t off = 0;
    while (off < size) {
        ssize_t r = read(fd, buf + off, size - off);
        if (r < 0) { if (errno == EINTR) continue; die("read"); }
        if (r == 0) break;
        off += (size_t)r;
    }
    close(fd);
    buf[off] = 0;
    size_t cap = 1024;
    entries = malloc(cap * sizeof *entries);
    char *p = buf, *end = buf + off;
    while (p < end) {
        char *z1 = memchr(p, 0, (size_t)(end - p));
        if (!z1) break;
        char *r = z1 + 1;
        char *z2 = r < end ? memchr(r, 0, (size_t)(end - r)) : NULL;
        if (!z2) { fprintf(stderr, "origin: hole file truncated\n"); exit(2); }
        if (n_entries == cap) {
            cap *= 2;
            entries = realloc(entries, cap * sizeof *entries);
            if (!entries) die("realloc");
        }
        entries[n_entries++] = (entry_t){p, (size_t)(z1 - p), r, (size_t)(z2 - r), 0};
        p = z2 + 1;
    }
    size_t tsize = 16;
    while (tsize < n_entries * 2) tsize <<= 1;
    table = calloc(tsize, sizeof *table);
    table_mask = tsize - 1;
    for (size_t i = 0; i < n_entries; i++) {
        size_t h = (size_t)fnv1a(entries[i].sel, entries[i].sel_len) & table_mask;
        while (table[h]) h = (h + 1) & table_mask;
        table[h] = (uint32_t)(i + 1);
    }
}

static entry_t *lookup(const char *sel, size_t len) {
    size_t h = (size_t)fnv1a(sel, len) & table_mask;
    while (table[h]) {
        entry_t *e = &entries[table[h] - 1];
        if (e->sel_len == len && memcmp(e->sel, sel, len) == 0) return e;
        h = (h + 1) & table_mask;
    }
    return NULL;
}

static char *stats_text(size_t *len) {
    size_t cap = 256, used = 0;
    for (size_t i = 0; i < n_entries; i++)
        if (__atomic_load_n(&entries[i].hits, __ATOMIC_RELAXED)) cap += entries[i].sel_len + 32;
    char *out = malloc(cap);
    used += (size_t)snprintf(out + used, cap - used, "requests %llu\nmissing %llu\nbytes %llu\n",
                             (unsigned long long)__atomic_load_n(&total_requests, __ATOMIC_RELAXED),
                             (unsigned long long)__atomic_load_n(&total_missing, __ATOMIC_RELAXED),
                             (unsigned long long)__atomic_load_n(&total_bytes, __ATOMIC_RELAXED));
    for (size_t i = 0; i < n_entries; i++) {
        uint64_t hits = __atomic_load_n(&entries[i].hits, __ATOMIC_RELAXED);
        if (!hits || used + entries[i].sel_len + 32 > cap) continue;
        used += (size_t)snprintf(out + used, cap - used, "hit %llu\t", (unsigned long long)hits);
        memcpy(out + used, entries[i].sel, entries[i].sel_len);
        used += entries[i].sel_len;
        out[used++] = '\n';
    }
    *len = used;
    return out;
}

static void reset_stats(void) {
    for (size_t i = 0; i < n_entries; i++) __atomic_store_n(&entries[i].hits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&total_requests, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&total_missing, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&total_bytes, 0, __ATOMIC_RELAXED);
}

static void print_totals(void) {
    fprintf(stderr, "origin: requests %llu missing %llu bytes %llu\n",
            (unsigned long long)__atomic_load_n(&total_requests, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&total_missing, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&total_bytes, __ATOMIC_RELAXED));
}

/* Decide the reply once the request line is complete. */
static void choose_reply(conn_t *c, size_t line_len) {
    size_t n = 0;
    while (n < line_len && c->req[n] != '\t' && c->req[n] != '\r' && c->req[n] != '\n') n++;
    static const char stats_sel[] = "/.bench/stats", reset_sel[] = "/.bench/reset";
    if (n == sizeof stats_sel - 1 && memcmp(c->req, stats_sel, n) == 0) {
        c->owned = stats_text(&c->out_len);
        c->out = c->owned;
        return;
    }
    if (n == sizeof reset_sel - 1 && memcmp(c->req, reset_sel, n) == 0) {
        reset_stats();
        c->out = "reset\n";
        c->out_len = 6;
        return;
    }
    __atomic_fetch_add(&total_requests, 1, __ATOMIC_RELAXED);
    entry_t *e = lookup(c->req, n);
    if (e) {
        __atomic_fetch_add(&e->hits, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&total_bytes, e->reply_len, __ATOMIC_RELAXED);
        c->out = e->reply;
        c->out_len = e->reply_len;
        return;
    }
    __atomic_fetch_add(&total_missing, 1, __ATOMIC_RELAXED);
    size_t cap = n + 64;
    c->owned = malloc(cap);
    int w = snprintf(c->owned, cap, "3'%.*s' does not exist\t\terror.host\t1\r\n.\r\n", (int)n, c->req);
    c->out = c->owned;
    c->out_len = (size_t)w;
}

static void finish(int ep, conn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->owned);
    free(c);
}

/* Write what is left; 1 when done (or failed), 0 when the socket is full. */
static int pump(conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return 1;
        }
        c->out_off += (size_t)w;
    }
    return 1;
}

static void on_readable(int ep, conn_t *c) {
    for (;;) {
        ssize_t r = recv(c->fd, c->req + c->got, REQ_MAX - c->got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            finish(ep, c);
            return;
        }
        if (r == 0) { finish(ep, c); return; }
        size_t before = c->got;
        c->got += (size_t)r;
        char *nl = memchr(c->req + before, '\n', (size_t)r);
        if (nl || c->got == REQ_MAX) {
            choose_reply(c, nl ? (size_t)(nl - c->req) : c->got);
            if (pump(c)) { finish(ep, c); return; }
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
    }
}

static int make_listener(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(fd, 4096) < 0) die("listen");
    return fd;
}

static void *worker(void *arg) {
    int lfd = (int)(intptr_t)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    conn_t *nc = malloc(sizeof *nc);
                    nc->fd = fd;
                    nc->got = 0;
                    nc->out = NULL;
                    nc->out_len = nc->out_off = 0;
                    nc->owned = NULL;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
            } else if (c->out) {
                if (pump(c)) finish(ep, c);
            } else {
                on_readable(ep, c);
            }
        }
    }
    return NULL;
}

static void on_signal(int sig) {
    if (sig == SIGUSR1) got_usr1 = 1;
    else got_term = 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOLE PORT [THREADS]\n", argv[0]);
        return 2;
    }
    load_hole(argv[1]);
    listen_port = atoi(argv[2]);
    long threads = argc > 3 ? atol(argv[3]) : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;

    /* Workers must not take the signals: block them, then wait in main. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (long t = 0; t < threads; t++) {
        int lfd = make_listener();
        pthread_t tid;
        if (pthread_create(&tid, NULL, worker, (void *)(intptr_t)lfd) != 0) die("pthread_create");
        pthread_detach(tid);
    }
    printf("ready %d entries %zu threads %ld\n", listen_port, n_entries, threads);
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (!got_term) {
        pause();
        if (got_usr1) {
            got_usr1 = 0;
            print_totals();
        }
    }
    print_totals();
    return 0;
}
