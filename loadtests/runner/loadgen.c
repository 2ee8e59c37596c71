/* authscale-loadgen: an HTTP/1.1 load generator fast enough to saturate one aiohttp core
 * from one core, with every request carrying one of many real credentials.
 *
 * Written here because none of the generators installable on these machines does all of:
 * a fixed request rate measured from each request's intended send time (no coordinated
 * omission; wrk is closed-loop, h2load times from the actual send), a different request
 * header per request (h2load sends one fixed set), and the rate this needs from one core
 * (autocannon, in Node, does not reach it).
 *
 *   authscale-loadgen --port P [--host 127.0.0.1] [--path /items] [--rate R]
 *                     [--connections C] [--duration S] [--warmup W]
 *                     (--credentials FILE | --template T --first F --last L [--zipf S]
 *                      | --mint-hs256 KEYFILE --first F --last L [--zipf S]
 *                      | --mint-fernet KEYFILE --cookie NAME --first F --last L [--zipf S])
 *                     [--per-connection 1] [--login-every K --login-users U]
 *                     [--start-at UNIX_SECONDS] --out FILE
 *
 * SIGUSR1 ends the measured window at once, its results written as at its planned end.
 *
 * Before the warm-up every connection is opened and answers one read (prime(): at most 256
 * opening at a time, so the server's accept queue never overflows), so the warm-up and the
 * window run on connections established and used, however many there are.
 *
 * --rate 0 is closed loop: every connection sends its next request as soon as the last is
 * answered (a saturation test). With a rate, request k is due at start + k / rate; it goes
 * out on the first idle connection, and its latency is counted from when it was due, so a
 * stalled server is charged for the requests it kept waiting.
 *
 * FILE holds one request header line per credential ("Cookie: ..." or "Authorization:
 * ..."; an empty line for none); requests take them in turn. The output holds one line per
 * request due in the measured window (after the warm-up): "<due, ms since the end of the
 * warm-up> <latency in us> <HTTP status> <the server's auth time in us, from its
 * Server-Timing header; -1 without one> <0 for a read, 1 for a login>". A request still
 * unanswered when the window ends
 * gets status 0 and the latency it had reached by then (a lower bound), so an overloaded
 * server's queue is counted, not dropped. Two lines come first: "# sent answered errors
 * late unanswered seconds cpu_seconds measure_from_epoch" and their values (cpu_seconds:
 * this process's own CPU time, user and system; measure_from_epoch: when the window began,
 * in Unix seconds, to line it up with the runner's samples). "served" counts the answers
 * that arrived inside the window, whenever they were due: the throughput, which "answered"
 * (requests due in the window and answered by its end) undercounts when answers lag.
 * Loopback only: the host must be 127.0.0.1 or ::1 (IPv4 here).
 *
 * --mint-hs256 KEYFILE: each request a JWT minted here for the user drawn (as --template
 * draws them), signed HS256 with the secret in KEYFILE (surrounding whitespace stripped, as
 * the servers read it): claims sub "user<id>", jti the id in 32 hex digits, iss "authscale",
 * aud "authscale-api", iat a second before the start, exp an hour after. So a stateless
 * variant is measured with millions of distinct issued tokens, which no file could carry.
 *
 * --mint-fernet KEYFILE --cookie NAME: each request the cookie NAME holding a session
 * encrypted here for the user drawn, as aiohttp-session's EncryptedCookieStorage writes it:
 * the JSON {"created": <a second before the start>, "session": {"user": "user<id>"}} in a
 * Fernet token (version 0x80, the time, a random IV, AES-128-CBC, HMAC-SHA256; url-safe
 * base64) under the Fernet key in KEYFILE (44 characters, surrounding whitespace stripped).
 *
 * --start-at T: connect, then wait until the wall clock reads T (Unix seconds) before the
 * warm-up begins, so that generators started apart measure the same stretch of time (two
 * servers sharing one core at once: loadtests/runner/duet.py).
 *
 * --login-every K: every K-th request sent is a login instead of a read (POST /login as
 * user<k> with password pw-<k>, k = 1..U in turn: the servers' user table), so the server's
 * credential store grows while it serves, as in service. The credential it issues is not
 * used: logins go at a fixed share of the requests, whoever the readers are.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define MAX_CONN 20000

typedef struct {
    int index;           /* its place among the connections: its user with --per-connection */
    int fd;
    int busy;            /* a request is in flight */
    int login;           /* ... and it is a login */
    double due;          /* when the request in flight was due (s, monotonic) */
    char in[BUF];
    size_t have;
} conn_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SIGUSR1 ends the measured window now: what was due until then is written as usual, and
 * the window's length is what it ran (the runner ends a login storm once it has seen what
 * it waited for). */
static volatile sig_atomic_t end_now;
static void on_end_now(int sig) { (void)sig; end_now = 1; }

static void die(const char *what) {
    fprintf(stderr, "authscale-loadgen: %s\n", what);
    exit(2);
}

static char **requests;
static size_t *request_len;
static size_t n_requests, next_request;
static struct sockaddr_in target;
static int epfd;

/* --template: one credential per request, derived rather than read: the template's "{id}"
 * becomes a user's index in 16 hex digits (the seeded session ids' form: a salt, then the
 * index), the index drawn from --first..--last uniformly or, with --zipf S > 0, from a
 * bounded power law over the ranks (rank r drawn with weight about r^-S; rank 1 is
 * --first), so a hot set of users gets most requests. A fixed seed: every run draws the
 * same sequence. --per-connection 1: connection i always sends user i instead (the i-th
 * line of --credentials, or --first + i), so that each connection is its own user. */
static const char *template_head, *template_tail, *request_path, *request_host;
static int request_port;
static long first_id, last_id;
static double zipf_s;
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static char template_buf[8192];

static double uniform01(void) {  /* xorshift64*: fast, and plenty for picking users */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static int per_connection;  /* --per-connection: connection i is always user i */

static long draw_id(int connection) {
    if (per_connection) return first_id + connection % (last_id - first_id + 1);
    double n = (double)(last_id - first_id + 1), u = uniform01();
    double rank;
    if (zipf_s <= 0) rank = 1 + u * n;
    else if (zipf_s == 1) rank = exp(u * log(n + 1));
    else rank = pow((pow(n + 1, 1 - zipf_s) - 1) * u + 1, 1 / (1 - zipf_s));
    long r = (long)rank;
    if (r < 1) r = 1;
    if (r > (long)n) r = (long)n;
    return first_id + r - 1;
}

static size_t templated_request(int connection) {
    int n = snprintf(template_buf, sizeof template_buf,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%016lx%s\r\n\r\n", request_path,
                     request_host, request_port, template_head,
                     (unsigned long)draw_id(connection),
                     template_tail);
    return n > 0 && (size_t)n < sizeof template_buf ? (size_t)n : 0;
}

static long login_every, login_users, logins_sent, reads_sent;
static char login_buf[512];

/* Whether the nth request sent (counting from 1) is a login. */
static int nth_is_login(long nth) {
    return login_every > 0 && nth % login_every == 0;
}

static size_t login_request(void) {
    long k = logins_sent % login_users + 1;
    char body[128];
    int b = snprintf(body, sizeof body, "{\"username\": \"user%ld\", \"password\": \"pw-%ld\"}",
                     k, k);
    int n = snprintf(login_buf, sizeof login_buf,
                     "POST /login HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s", request_host, request_port, b, body);
    return n > 0 && (size_t)n < sizeof login_buf ? (size_t)n : 0;
}

/* --mint-hs256: the secret, the encoded header, the claims' times. */
static unsigned char *mint_key;
static size_t mint_key_len;
static long mint_iat, mint_exp;
static const char *JWT_HEADER_B64 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";  /* {"alg":"HS256","typ":"JWT"} */

/* base64url (RFC 4648), without padding for a JWT (RFC 7515), with it for Fernet:
 * OpenSSL's encoder writes the standard alphabet, turned into this one in place. Returns
 * the length written. */
static size_t base64url(char *out, const unsigned char *in, size_t n, int padded) {
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (!padded && len > 0 && out[len - 1] == '=') len--;
    for (int i = 0; i < len; i++) {
        if (out[i] == '+') out[i] = '-';
        else if (out[i] == '/') out[i] = '_';
    }
    out[len] = 0;
    return (size_t)len;
}

static size_t minted_request(int connection) {
    long id = draw_id(connection);
    char claims[256], token[1024];
    int c = snprintf(claims, sizeof claims,
                     "{\"sub\":\"user%ld\",\"iat\":%ld,\"exp\":%ld,\"jti\":\"%032lx\","
                     "\"iss\":\"authscale\",\"aud\":\"authscale-api\"}",
                     id, mint_iat, mint_exp, (unsigned long)id);
    size_t t = (size_t)sprintf(token, "%s.", JWT_HEADER_B64);
    t += base64url(token + t, (unsigned char *)claims, (size_t)c, 0);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), mint_key, (int)mint_key_len, (unsigned char *)token, t, mac, &mac_len);
    token[t++] = '.';
    t += base64url(token + t, mac, mac_len, 0);
    int n = snprintf(template_buf, sizeof template_buf,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n\r\n",
                     request_path, request_host, request_port, token);
    return n > 0 && (size_t)n < sizeof template_buf ? (size_t)n : 0;
}

/* --mint-fernet: the key (16 bytes to sign, then 16 to encrypt), the cookie's name. */
static unsigned char fernet_key[32];
static const char *fernet_cookie;
static EVP_CIPHER_CTX *fernet_ctx;

static size_t fernet_request(int connection) {
    long id = draw_id(connection);
    char session[128];
    int p = snprintf(session, sizeof session,
                     "{\"created\":%ld,\"session\":{\"user\":\"user%ld\"}}", mint_iat, id);
    /* version, time (8 bytes big-endian), IV, ciphertext (the session padded to 16), MAC */
    unsigned char token[1 + 8 + 16 + sizeof session + 16 + 32];
    token[0] = 0x80;
    for (int i = 0; i < 8; i++) token[1 + i] = (unsigned char)((uint64_t)mint_iat >> (56 - 8 * i));
    int sealed = 0, last = 0;
    if (RAND_bytes(token + 9, 16) != 1
        || !EVP_EncryptInit_ex(fernet_ctx, EVP_aes_128_cbc(), NULL, fernet_key + 16, token + 9)
        || !EVP_EncryptUpdate(fernet_ctx, token + 25, &sealed, (unsigned char *)session, p)
        || !EVP_EncryptFinal_ex(fernet_ctx, token + 25 + sealed, &last))
        die("--mint-fernet: OpenSSL could not encrypt");
    size_t t = 25 + (size_t)(sealed + last);
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), fernet_key, 16, token, t, token + t, &mac_len);
    char encoded[2 * sizeof token];
    base64url(encoded, token, t + mac_len, 1);
    int n = snprintf(template_buf, sizeof template_buf,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nCookie: %s=%s\r\n\r\n",
                     request_path, request_host, request_port, fernet_cookie, encoded);
    return n > 0 && (size_t)n < sizeof template_buf ? (size_t)n : 0;
}

/* Open c towards the server, non-blocking, watched for `events` (EPOLLIN to read answers,
 * EPOLLOUT to learn when it is connected). */
static int connect_one(conn_t *c, uint32_t events) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        return -1;
    }
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->busy = 0;
    c->have = 0;
    return 0;
}

static void reconnect(conn_t *c, uint32_t events) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (connect_one(c, events) < 0) die("cannot reconnect to the server");
}

/* The request c sends next, a login or a read: its bytes in *req, their length returned
 * (0 when it could not be built). */
static size_t compose(conn_t *c, int login, const char **req) {
    if (login) {
        *req = login_buf;
        return login_request();
    } else if (mint_key != NULL) {
        *req = template_buf;
        return minted_request(c->index);
    } else if (fernet_ctx != NULL) {
        *req = template_buf;
        return fernet_request(c->index);
    } else if (template_head != NULL) {
        *req = template_buf;
        return templated_request(c->index);
    } else if (per_connection) {
        *req = requests[(size_t)c->index % n_requests];
        return request_len[(size_t)c->index % n_requests];
    }
    *req = requests[next_request];
    size_t len = request_len[next_request];
    next_request = (next_request + 1) % n_requests;
    return len;
}

/* Send the next request on c; 0 on success. A short write on a fresh loopback socket
 * would be a surprise: treat it as an error and reconnect. */
static int send_one(conn_t *c, double due) {
    const char *req;
    int login = nth_is_login(logins_sent + reads_sent + 1);
    size_t len = compose(c, login, &req);
    ssize_t put = send(c->fd, req, len, MSG_NOSIGNAL);
    if (put != (ssize_t)len) return -1;
    if (login) logins_sent++;
    else reads_sent++;
    c->login = login;
    c->busy = 1;
    c->due = due;
    return 0;
}

/* A complete response in c->in: its total length, or 0 when more bytes are needed; its
 * status, and the "auth;dur=<ms>" of its Server-Timing header in us (-1 without one). */
static size_t response_length(conn_t *c, int *status, long *auth_us) {
    char *end = memmem(c->in, c->have, "\r\n\r\n", 4);
    if (end == NULL) return 0;
    size_t head = (size_t)(end - c->in) + 4;
    size_t body = 0;
    *status = atoi(c->in + 9);
    *auth_us = -1;
    for (char *p = c->in; p < end; p++) {
        if (*p != '\n') continue;
        if (strncasecmp(p + 1, "content-length:", 15) == 0) {
            body = strtoul(p + 16, NULL, 10);
        } else if (strncasecmp(p + 1, "server-timing:", 14) == 0) {
            char *dur = memmem(p, (size_t)(end - p), "auth;dur=", 9);
            if (dur != NULL) *auth_us = (long)(strtod(dur + 9, NULL) * 1000 + 0.5);
        }
    }
    return c->have >= head + body ? head + body : 0;
}

/* Every connection opened and used once, before the warm-up: at most OPENING of them are
 * being opened or waiting for their first answer at a time, each sending one read as soon
 * as it is connected. All at once, 10,000 connections overflow the server's accept queue
 * (aiohttp's backlog, 1,024 here): the kernel drops the handshakes past it, those
 * connections try again a second or more later, and a request sent on one still
 * connecting fails. So the warm-up and the window run on connections that are established
 * and have each served a request, however many: the server's memory per connection is a
 * used one's, whatever the window's length, and no request fails for a connection not yet
 * open. The answers are not judged (statuses other than 2xx/3xx are counted on stderr). */
#define OPENING 256
#define PRIME_TIMEOUT_S 120.0

static void prime(conn_t *conns, int connections) {
    double began = now();
    int next = 0, waiting = 0, primed = 0, refused = 0, reopened = 0;
    struct epoll_event events[1024];
    while (primed < connections) {
        for (; waiting < OPENING && next < connections; next++, waiting++)
            if (connect_one(&conns[next], EPOLLOUT) < 0) die("cannot connect to the server");
        if (now() - began > PRIME_TIMEOUT_S) {
            fprintf(stderr, "authscale-loadgen: only %d of %d connections opened and answered "
                    "a first read within %.0f s\n", primed, connections, PRIME_TIMEOUT_S);
            exit(2);
        }
        int n = epoll_wait(epfd, events, 1024, 100);
        for (int e = 0; e < n; e++) {
            conn_t *c = events[e].data.ptr;
            if (!c->busy) {  /* connecting: connected now, or refused */
                int err = 0;
                socklen_t err_len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
                const char *req;
                size_t len = compose(c, 0, &req);
                if (err != 0 || (events[e].events & (EPOLLERR | EPOLLHUP)) ||
                    send(c->fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
                    reopened++;
                    reconnect(c, EPOLLOUT);
                    continue;
                }
                c->busy = 1;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            ssize_t got = recv(c->fd, c->in + c->have, BUF - c->have, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got > 0) c->have += (size_t)got;
            int status = 0;
            long auth_us;
            size_t length = got > 0 ? response_length(c, &status, &auth_us) : 0;
            if (length == 0) {
                if (got > 0 && c->have < BUF) continue;  /* more of the answer to come */
                reopened++;  /* closed, or an answer longer than the buffer */
                reconnect(c, EPOLLOUT);
                continue;
            }
            if (status < 200 || status >= 400) refused++;
            c->have = 0;
            c->busy = 0;
            primed++;
            waiting--;
        }
    }
    fprintf(stderr, "authscale-loadgen: %d connections opened and used once in %.2f s "
            "(%d answered other than 2xx/3xx, %d opened again)\n", connections,
            now() - began, refused, reopened);
}

static char *load_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(data); return NULL; }
    data[n] = 0;
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* A key file's contents without surrounding whitespace, as the servers' str.strip() reads
 * it; dies naming `option` when it cannot be read or is empty. */
static unsigned char *key_from(const char *path, const char *option, size_t *len) {
    size_t n = 0;
    char *key = load_file(path, &n);
    if (key == NULL) {
        fprintf(stderr, "authscale-loadgen: cannot read %s %s\n", option, path);
        exit(2);
    }
    while (n > 0 && isspace((unsigned char)key[n - 1])) n--;
    size_t skip = 0;
    while (skip < n && isspace((unsigned char)key[skip])) skip++;
    if (n <= skip) {
        fprintf(stderr, "authscale-loadgen: %s: the key file is empty\n", option);
        exit(2);
    }
    *len = n - skip;
    return (unsigned char *)key + skip;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = "/items", *cred_path = NULL, *out_path = NULL;
    const char *template = NULL, *mint_path = NULL, *fernet_path = NULL;
    int port = 0, connections = 32;
    double rate = 0, duration = 10, warmup = 1, start_at = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--path")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections")) connections = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--start-at")) start_at = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--credentials")) cred_path = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out_path = argv[i + 1];
        else if (!strcmp(argv[i], "--template")) template = argv[i + 1];
        else if (!strcmp(argv[i], "--mint-hs256")) mint_path = argv[i + 1];
        else if (!strcmp(argv[i], "--mint-fernet")) fernet_path = argv[i + 1];
        else if (!strcmp(argv[i], "--cookie")) fernet_cookie = argv[i + 1];
        else if (!strcmp(argv[i], "--first")) first_id = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--last")) last_id = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--zipf")) zipf_s = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--per-connection")) per_connection = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--login-every")) login_every = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--login-users")) login_users = atol(argv[i + 1]);
        else { fprintf(stderr, "authscale-loadgen: unknown option %s\n", argv[i]); return 2; }
    }
    if (port <= 0 || out_path == NULL ||
        (cred_path != NULL) + (template != NULL) + (mint_path != NULL) + (fernet_path != NULL)
        != 1)
        die("--port, --out and one of --credentials, --template, --mint-hs256 or "
            "--mint-fernet are required");
    if ((fernet_path != NULL) != (fernet_cookie != NULL))
        die("--mint-fernet and --cookie go together");
    if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0)
        die("load goes to loopback only: --host 127.0.0.1");
    if (connections < 1 || connections > MAX_CONN) die("--connections: 1 to 20000");
    if (duration <= 0 || warmup < 0 || rate < 0 || start_at < 0)
        die("--duration > 0, --warmup >= 0, --rate >= 0, --start-at >= 0");
    if (login_every < 0 || login_every == 1 || (login_every > 0 && login_users < 1))
        die("--login-every: 0 (no logins) or at least 2, with --login-users >= 1");

    request_path = path;
    request_host = host;
    request_port = port;
    if (template != NULL || mint_path != NULL || fernet_path != NULL) {
        if (first_id < 1 || last_id < first_id) die("derived users need 1 <= --first <= --last");
        if (zipf_s < 0) die("--zipf >= 0");
    }
    if (mint_path != NULL || fernet_path != NULL) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        mint_iat = (long)wall.tv_sec - 1;
        mint_exp = mint_iat + 3600;
    }
    if (mint_path != NULL) mint_key = key_from(mint_path, "--mint-hs256", &mint_key_len);
    if (fernet_path != NULL) {
        size_t n = 0;
        unsigned char *key = key_from(fernet_path, "--mint-fernet", &n);
        /* url-safe base64 of 32 bytes: 44 characters, the last a pad */
        unsigned char standard[45], raw[33];
        for (size_t i = 0; i < n && i < 44; i++)
            standard[i] = key[i] == '-' ? '+' : key[i] == '_' ? '/' : key[i];
        if (n != 44 || EVP_DecodeBlock(raw, standard, 44) != 33)
            die("--mint-fernet: not a Fernet key (44 url-safe base64 characters)");
        memcpy(fernet_key, raw, 32);
        fernet_ctx = EVP_CIPHER_CTX_new();
        if (fernet_ctx == NULL) die("--mint-fernet: OpenSSL could not make a cipher context");
    }
    if (template != NULL) {
        const char *slot = strstr(template, "{id}");
        if (slot == NULL) die("--template must hold {id}");
        char *head = strndup(template, (size_t)(slot - template));
        template_head = head;
        template_tail = slot + 4;
    }
    /* One prepared request per credential. */
    size_t size = 0;
    char *creds = cred_path == NULL ? strdup("") : load_file(cred_path, &size);
    if (creds == NULL) die("cannot read --credentials");
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += creds[i] == '\n';
    requests = calloc(lines, sizeof *requests);
    request_len = calloc(lines, sizeof *request_len);
    /* Every line, empty ones included: the control's credential is no header at all. */
    for (char *line = creds; line < creds + size;) {
        char *end = memchr(line, '\n', (size_t)(creds + size - line));
        if (end == NULL) end = creds + size;
        *end = 0;
        char *req = malloc(strlen(line) + strlen(path) + 128);
        int n = sprintf(req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s\r\n", path, host, port,
                        line, *line ? "\r\n" : "");
        requests[n_requests] = req;
        request_len[n_requests++] = (size_t)n;
        line = end + 1;
    }
    if (n_requests == 0 && cred_path != NULL) die("--credentials holds no line");

    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &target.sin_addr);
    /* Wake when a request is due, not up to 50 us later (the default timer slack). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    struct sigaction ending = {.sa_handler = on_end_now};  /* no SA_RESTART: wakes epoll */
    sigemptyset(&ending.sa_mask);
    sigaction(SIGUSR1, &ending, NULL);
    epfd = epoll_create1(0);
    conn_t *conns = calloc((size_t)connections, sizeof *conns);
    for (int i = 0; i < connections; i++) conns[i].index = i;
    prime(conns, connections);

    FILE *out = fopen(out_path, "w");
    if (out == NULL) die("cannot write --out");
    fprintf(out, "# sent answered errors late unanswered seconds cpu_seconds measure_from_epoch served\n");
    long header_at = ftell(out);
    fprintf(out, "%-120s\n", "");  /* the counts, written at the end */

    /* --start-at: connected and ready, wait for the wall-clock moment another generator
     * starts at too, so that two windows (the duet's) cover the same time. */
    if (start_at > 0) {
        struct timespec wall_now;
        clock_gettime(CLOCK_REALTIME, &wall_now);
        double ahead = start_at - (wall_now.tv_sec + wall_now.tv_nsec / 1e9);
        if (ahead > 60) die("--start-at is more than a minute away");
        if (ahead > 0) {
            struct timespec pause = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
            nanosleep(&pause, NULL);
        }
    }

    /* Requests due but not yet sent: their due times, in order. */
    size_t queue_cap = 1 << 20, q_head = 0, q_len = 0;
    double *queue = malloc(queue_cap * sizeof *queue);
    long sent = 0, answered = 0, errors = 0, late = 0, unanswered = 0, served = 0;
    double start = now(), measure_from = start + warmup, stop = measure_from + duration;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    double epoch_offset = wall.tv_sec + wall.tv_nsec / 1e9 - now();
    double next_due = start;
    long k = 0;
    struct epoll_event events[1024];
    int idle_scan = 0;

    if (rate == 0)
        for (int i = 0; i < connections; i++)
            if (send_one(&conns[i], now()) == 0) sent++;

    for (;;) {
        double t = now();
        if (end_now && t < stop) {
            stop = t > measure_from ? t : measure_from;
            duration = stop - measure_from;
        }
        if (t >= stop) break;
        if (rate > 0) {
            while (next_due <= t) {  /* every request due by now joins the queue */
                if (q_len == queue_cap) die("more than a million requests overdue: the server is far too slow for --rate");
                queue[(q_head + q_len++) % queue_cap] = next_due;
                k++;
                next_due = start + k / rate;
            }
            /* The queue goes out on idle connections, oldest first. */
            for (int scanned = 0; q_len > 0 && scanned < connections; scanned++) {
                conn_t *c = &conns[idle_scan];
                idle_scan = (idle_scan + 1) % connections;
                if (c->busy) continue;
                double due = queue[q_head];
                if (send_one(c, due) != 0) { errors++; reconnect(c, EPOLLIN); continue; }
                if (t - due > 0.001) late++;
                q_head = (q_head + 1) % queue_cap;
                q_len--;
                sent++;
            }
        }
        /* Sleep until the next request is due (or an answer comes), to the microsecond:
         * spinning would make this core look busy when it is not, and the CPU figures
         * would blame the generator for the server's limit. */
        double wait = (rate > 0 ? next_due : stop) - now();
        if (wait > 0.1) wait = 0.1;
        if (wait < 0) wait = 0;
        struct timespec timeout = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        int n = epoll_pwait2(epfd, events, 1024, &timeout, NULL);
        for (int e = 0; e < n; e++) {
            conn_t *c = events[e].data.ptr;
            ssize_t got = recv(c->fd, c->in + c->have, BUF - c->have, 0);
            if (got <= 0) {
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (c->busy) errors++;
                reconnect(c, EPOLLIN);
                if (rate == 0 && send_one(c, now()) == 0) sent++;
                continue;
            }
            c->have += (size_t)got;
            int status = 0;
            long auth_us = -1;
            size_t length;
            while (c->busy && (length = response_length(c, &status, &auth_us)) > 0) {
                double done = now();
                if (done >= measure_from) served++;
                if (c->due >= measure_from && c->due < stop) {
                    fprintf(out, "%.3f %ld %d %ld %d\n", (c->due - measure_from) * 1000,
                            (long)((done - c->due) * 1e6 + 0.5), status, auth_us, c->login);
                    answered++;
                    if (status < 200 || status >= 400) errors++;
                }
                memmove(c->in, c->in + length, c->have - length);
                c->have -= length;
                c->busy = 0;
                if (rate == 0 && send_one(c, done) == 0) sent++;
            }
            if (c->have == BUF) { errors++; reconnect(c, EPOLLIN); }
        }
    }
    /* What the window left unanswered, in flight or never sent: counted at the latency it
     * had reached, a lower bound. */
    for (int i = 0; i < connections; i++)
        if (conns[i].busy && conns[i].due >= measure_from && conns[i].due < stop) {
            fprintf(out, "%.3f %ld 0 -1 %d\n", (conns[i].due - measure_from) * 1000,
                    (long)((stop - conns[i].due) * 1e6 + 0.5), conns[i].login);
            unanswered++;
        }
    for (size_t i = 0; i < q_len; i++) {
        double due = queue[(q_head + i) % queue_cap];
        if (due < measure_from || due >= stop) continue;
        /* What it would have been when sent: the same count decides. */
        int login = nth_is_login(logins_sent + reads_sent + (long)i + 1);
        fprintf(out, "%.3f %ld 0 -1 %d\n", (due - measure_from) * 1000,
                (long)((stop - due) * 1e6 + 0.5), login);
        unanswered++;
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
                 usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
    fseek(out, header_at, SEEK_SET);
    fprintf(out, "# %ld %ld %ld %ld %ld %.6f %.6f %.6f %ld", sent, answered, errors, late,
            unanswered, duration, cpu, measure_from + epoch_offset, served);
    fclose(out);
    return 0;
}
