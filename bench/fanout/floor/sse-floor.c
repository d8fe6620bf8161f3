// The floor of SSE fan-out on this host: the least a push server can do per delivery, which is one write()
// of a pre-framed buffer per subscriber. Single-threaded, epoll, non-blocking, libc only. Not a server to
// use: it exists so bench/fanout can show what the syscalls alone cost (README.md, "Floor peers").
//
//   gcc -O2 -o sse-floor sse-floor.c && ./sse-floor PORT
//
// One port, told apart by the request line:
// - `GET <anything>`: a subscriber. The head is read up to CRLFCRLF (its content is ignored), the answer is
//   `200`, `Content-Type: text/event-stream` and chunked framing, as Holdfast and nchan send it, and the
//   socket is kept. Anything it sends later is read and discarded; EOF, EPOLLHUP or EPOLLERR drop it.
// - `POST <anything>` with a Content-Length body: a publish. The body (one or more `data: ...\n\n` events) is
//   framed once as one HTTP/1.1 chunk, written to every subscriber with one write() each, and only then
//   answered `200` with `X-Delivered: <count>` (as nchan answers after its fan-out). Keep-alive, so the
//   bench's pooled publisher can reuse the connection.
//
// No per-subscriber queue: a write that would block (EAGAIN, nothing written) skips that subscriber for this
// message and is counted as a drop; a short write (part of the chunk written) leaves the stream broken, so
// that subscriber is closed and counted too. Both counts are printed on SIGTERM. On loopback with events of
// a few dozen bytes and subscribers that read, neither should happen.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define BODY_MAX (1 << 20)

enum kind { PENDING, SUBSCRIBER, PUBLISHER };

// Per fd. A subscriber keeps only its index in `subs`; the buffer exists while a head or body is read.
struct conn {
  enum kind kind;
  int sub_index;
  char *buf;
  size_t len;
  size_t need; // publisher: head + body bytes of the request being read, 0 while the head is incomplete
  uint32_t gen; // bumped on close: an event still queued for a closed (maybe reused) fd is recognised as stale
};

static struct conn *conns;
static int max_fds;
static int *subs;
static int sub_count;
static int ep;
static volatile sig_atomic_t stopping;
static unsigned long long delivered, drops_would_block, drops_short, drops_error, publishes;

static const char SUB_HEAD[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n";

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/** utime + stime of this process: Linux accounts them from the scheduler's runtime, not in whole ticks. */
static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void close_conn(int fd) {
  struct conn *c = &conns[fd];
  if (c->kind == SUBSCRIBER) {
    // Swap-remove: the last subscriber takes this one's slot.
    int last = subs[--sub_count];
    subs[c->sub_index] = last;
    conns[last].sub_index = c->sub_index;
  }
  free(c->buf);
  uint32_t gen = c->gen + 1;
  memset(c, 0, sizeof *c);
  c->gen = gen;
  close(fd); // also removes it from the epoll set
}

static void add_subscriber(int fd) {
  struct conn *c = &conns[fd];
  free(c->buf);
  c->buf = NULL;
  c->len = 0;
  c->kind = SUBSCRIBER;
  c->sub_index = sub_count;
  subs[sub_count++] = fd;
  // The answer head is ~100 bytes on a fresh socket: it fits the send buffer.
  if (write(fd, SUB_HEAD, sizeof SUB_HEAD - 1) != (ssize_t)(sizeof SUB_HEAD - 1)) close_conn(fd);
}

/** One chunk `<hex>\r\n<body>\r\n`, built once, one write() per subscriber. */
static size_t fan_out(const char *body, size_t body_len) {
  if (body_len == 0) return 0; // a zero-size chunk would end every stream
  static char *frame;
  static size_t frame_cap;
  if (frame_cap < body_len + 32) {
    frame_cap = body_len + 32;
    frame = realloc(frame, frame_cap);
    if (frame == NULL) abort();
  }
  size_t len = (size_t)sprintf(frame, "%zx\r\n", body_len);
  memcpy(frame + len, body, body_len);
  len += body_len;
  frame[len++] = '\r';
  frame[len++] = '\n';
  size_t ok = 0;
  int attempted = sub_count;
  double wall0 = now_us(), cpu0 = cpu_us();
  for (int i = 0; i < sub_count;) {
    int fd = subs[i];
    ssize_t n = write(fd, frame, len);
    if (n == (ssize_t)len) {
      ok++;
      i++;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      drops_would_block++;
      i++;
    } else {
      if (n < 0) drops_error++;
      else drops_short++;
      close_conn(fd); // swap-remove: slot i now holds the former last subscriber
    }
  }
  double wall = now_us() - wall0, cpu = cpu_us() - cpu0;
  delivered += ok;
  publishes++;
  // The write loop alone, with microsecond clocks: the bench's CPU column has 10 ms ticks and includes the
  // publish request. On an idle host wall ~= CPU; more wall than CPU means the server was preempted.
  if (attempted > 0)
    fprintf(stderr, "sse-floor: publish %llu: %d writes in %.0f us wall, %.0f us CPU (%.2f / %.2f us per write)\n", publishes,
            attempted, wall, cpu, wall / attempted, cpu / attempted);
  return ok;
}

static const char *find_head_end(const char *buf, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') return buf + i + 1;
  return NULL;
}

static long content_length(const char *head, size_t head_len) {
  static const char name[] = "\r\ncontent-length:";
  for (size_t i = 0; i + sizeof name - 1 < head_len; i++) {
    if (strncasecmp(head + i, name, sizeof name - 1) == 0) return strtol(head + i + sizeof name - 1, NULL, 10);
  }
  return 0;
}

/** Handles every complete request in a publisher's buffer; returns -1 when the connection must close. */
static int serve_publisher(int fd) {
  struct conn *c = &conns[fd];
  for (;;) {
    if (c->need == 0) {
      const char *end = find_head_end(c->buf, c->len);
      if (end == NULL) return c->len < HEAD_MAX ? 0 : -1;
      size_t head_len = (size_t)(end - c->buf);
      long body = content_length(c->buf, head_len);
      if (body < 0 || body > BODY_MAX) return -1;
      c->need = head_len + (size_t)body;
    }
    if (c->len < c->need) return 0;
    const char *end = find_head_end(c->buf, c->len);
    size_t head_len = (size_t)(end - c->buf);
    size_t ok = fan_out(c->buf + head_len, c->need - head_len);
    char answer[128];
    int n = snprintf(answer, sizeof answer, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Delivered: %zu\r\n\r\n", ok);
    if (write(fd, answer, (size_t)n) != n) return -1;
    memmove(c->buf, c->buf + c->need, c->len - c->need);
    c->len -= c->need;
    c->need = 0;
  }
}

static void on_readable(int fd) {
  struct conn *c = &conns[fd];
  if (c->kind == SUBSCRIBER) {
    char sink[512];
    ssize_t n = read(fd, sink, sizeof sink);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_conn(fd);
    return;
  }
  size_t cap = c->kind == PUBLISHER ? HEAD_MAX + BODY_MAX : HEAD_MAX;
  if (c->buf == NULL) {
    c->buf = malloc(cap);
    if (c->buf == NULL) abort();
  }
  for (;;) {
    if (c->len == cap) {
      close_conn(fd);
      return;
    }
    ssize_t n = read(fd, c->buf + c->len, cap - c->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      close_conn(fd);
      return;
    }
    c->len += (size_t)n;
    if (c->kind == PENDING) {
      if (c->len >= 5 && memcmp(c->buf, "POST ", 5) == 0) {
        // Room for a body: a publisher's buffer is its head plus up to BODY_MAX.
        c->kind = PUBLISHER;
        cap = HEAD_MAX + BODY_MAX;
        char *bigger = realloc(c->buf, cap);
        if (bigger == NULL) abort();
        c->buf = bigger;
      } else if (find_head_end(c->buf, c->len) != NULL) {
        add_subscriber(fd); // whatever followed the head is ignored
        return;
      } else if (c->len >= HEAD_MAX) {
        close_conn(fd);
        return;
      }
    }
    if (c->kind == PUBLISHER && serve_publisher(fd) < 0) {
      close_conn(fd);
      return;
    }
  }
}

static void on_accept(int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) fprintf(stderr, "sse-floor: accept: %s\n", strerror(errno));
      return;
    }
    if (fd >= max_fds) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)conns[fd].gen << 32 | (uint32_t)fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      continue;
    }
    conns[fd].kind = PENDING;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: sse-floor PORT\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  max_fds = (int)rl.rlim_cur;
  conns = calloc((size_t)max_fds, sizeof *conns);
  subs = calloc((size_t)max_fds, sizeof *subs);
  if (conns == NULL || subs == NULL) abort();

  signal(SIGPIPE, SIG_IGN);
  // No SA_RESTART: SIGTERM interrupts epoll_wait, and the loop prints its counts and exits.
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0) {
    perror("sse-floor: listen");
    return 1;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.u64 = (uint32_t)listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &lev);
  fprintf(stderr, "sse-floor: listening on 127.0.0.1:%s, at most %d fds\n", argv[1], max_fds);

  struct epoll_event events[256];
  while (!stopping) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("sse-floor: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = (int)(uint32_t)events[i].data.u64;
      if (fd == listener) {
        on_accept(listener);
        continue;
      }
      // Closed earlier in this batch (a failed write during a fan-out), perhaps reused by accept since.
      if ((uint32_t)(events[i].data.u64 >> 32) != conns[fd].gen) continue;
      if (events[i].events & (EPOLLHUP | EPOLLERR)) close_conn(fd);
      else on_readable(fd);
    }
  }
  fprintf(stderr,
          "sse-floor: %llu publishes, %llu deliveries; dropped: %llu would block, %llu short writes, %llu write errors; %d subscribers held\n",
          publishes, delivered, drops_would_block, drops_short, drops_error, sub_count);
  return 0;
}
