// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sltest.c - the test and benchmark peer of the end-to-end tests.
 *
 * Contract:
 *   sltest serve --name NAME [--tcp PORT] [--udp PORT] [--bind ADDR]
 *                [--ready FILE]
 *	A backend. TCP: write "NAME\n" on accept, then echo every byte until
 *	the peer closes. UDP: answer each datagram, to its source, with
 *	"NAME " followed by the payload. Binds to :: with IPV6_V6ONLY=0 unless
 *	--bind gives an IPv4 or IPv6 literal. One thread, epoll, nonblocking
 *	sockets, a fixed buffer per connection: a connection is not read while
 *	its echo is blocked. Creates FILE once listening; exits 0 on SIGTERM
 *	or SIGINT. Prints nothing on stdout, errors on stderr.
 *   sltest connect|spread|loop|hold|crr --to ADDR ...
 *	Clients. Each prints exactly one JSON object on one line on stdout;
 *	see usage() for the modes and their output.
 *
 * ADDR is IP:PORT or [IPv6]:PORT. The socket has the family of the address,
 * so [::ffff:a.b.c.d]:PORT is the dual-stack case: IPv4 through an AF_INET6
 * socket. Errors are errno names ("ECONNREFUSED", or "E<n>" when the name is
 * not in the table). The protocol's own failures are also errno names: the
 * peer closing early is EPIPE, a malformed name line is EPROTO and a wrong
 * echo or UDP payload is EBADMSG. UDP client sockets set IP_RECVERR, so a
 * port unreachable reply is ECONNREFUSED rather than ETIMEDOUT.
 *
 * Every client step (connect, each read, each echo) has a deadline of
 * --timeout ms (default 2000) and every client mode has a bound on its
 * total run time, so no client blocks forever.
 *
 * Exit status: 0 success, 1 failure (as defined per mode), 2 usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NAME_LEN	128	/* longest backend name, without "\n" */
#define ADDR_STRLEN	(INET6_ADDRSTRLEN + 16)
#define CONN_BUF	2048	/* echo buffer of one served connection */
#define LISTEN_BACKLOG	4096
#define EPOLL_BATCH	64
#define ACCEPT_BATCH	64	/* accepts per wakeup, for fairness */
#define UDP_BATCH	64	/* datagrams per wakeup */
#define PUMP_ROUNDS	16	/* reads per connection per wakeup */
#define TALLY_MAX	64	/* distinct keys in a JSON count object */
#define HOLD_LINE	16
#define CRR_REQ		64
#define MAX_PARALLEL	1024

/* -------------------------------------------------------------------------
 * Helpers shared by all modes.
 */

static const char *errname(int err)
{
#define E(x) { x, #x }
	static const struct {
		int err;
		const char *name;
	} tab[] = {
		E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(EBADF), E(EAGAIN),
		E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST),
		E(EINVAL), E(ENFILE), E(EMFILE), E(ENOSPC), E(EPIPE),
		E(ENODATA), E(ETIME), E(EPROTO), E(EBADMSG), E(ENOTSOCK),
		E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
		E(EPROTONOSUPPORT), E(EOPNOTSUPP), E(EAFNOSUPPORT),
		E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH),
		E(ENETRESET), E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS),
		E(EISCONN), E(ENOTCONN), E(ETIMEDOUT), E(ECONNREFUSED),
		E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS),
	};
#undef E
	static __thread char buf[16];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].err == err)
			return tab[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
	if (ms > 0)
		poll(NULL, 0, ms > INT_MAX ? INT_MAX : (int)ms);
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Fills ss from an address literal (IPv6 if it has a ':') and a port. */
static int make_addr(const char *host, int port, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!strchr(host, ':')) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -EINVAL;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*len = sizeof(*sin6);
	return inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
}

static int parse_num(const char *s, long long min, long long max,
		     long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Seconds, possibly fractional, to milliseconds. */
static int parse_secs(const char *s, long long *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0 && v <= 86400))
		return -EINVAL;
	*ms = (long long)(v * 1000 + 0.5);
	return 0;
}

/* "IP:PORT" or "[IPv6]:PORT". */
static int parse_addr(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *h = s, *colon;
	long long port;
	size_t hlen;

	if (*s == '[') {
		colon = strchr(s, ']');
		if (!colon || colon[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = colon - h;
		colon++;
		if (!memchr(h, ':', hlen))
			return -EINVAL;
	} else {
		colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return -EINVAL;
		hlen = colon - s;
	}
	if (hlen >= sizeof(host) || parse_num(colon + 1, 1, 65535, &port))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return make_addr(host, port, ss, len);
}

static char *fmt_addr(const struct sockaddr_storage *ss, char *buf,
		      size_t size)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "family-%u", ss->ss_family);
	}
	return buf;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Counts per name, printed as a JSON object; overflow goes to "(other)". */
struct tally {
	int n;
	struct {
		char key[NAME_LEN + 1];
		unsigned long count;
	} e[TALLY_MAX];
};

static int tally_find(const struct tally *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].key, key))
			return i;
	return -1;
}

static void tally_add(struct tally *t, const char *key, unsigned long n)
{
	int i = tally_find(t, key);

	if (i < 0 && t->n == TALLY_MAX - 1) {
		key = "(other)";
		i = tally_find(t, key);
	}
	if (i < 0) {
		i = t->n++;
		snprintf(t->e[i].key, sizeof(t->e[i].key), "%s", key);
		t->e[i].count = 0;
	}
	t->e[i].count += n;
}

static void tally_print(const char *field, const struct tally *t)
{
	int i;

	printf(",\"%s\":{", field);
	for (i = 0; i < t->n; i++) {
		printf("%s", i ? "," : "");
		json_str(t->e[i].key);
		printf(":%lu", t->e[i].count);
	}
	printf("}");
}

/* -------------------------------------------------------------------------
 * Client I/O: nonblocking sockets, every wait bounded by a deadline.
 */

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int timeout_ms;
};

static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static ssize_t recv_some(int fd, void *buf, size_t len, long long deadline)
{
	ssize_t n;
	int err;

	for (;;) {
		n = recv(fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			return err;
	}
}

static int recv_exact(int fd, char *buf, size_t len, long long deadline)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv_some(fd, buf + got, len - got, deadline);
		if (n <= 0)
			return n ? (int)n : -EPIPE;
		got += n;
	}
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, long long deadline)
{
	size_t sent = 0;
	ssize_t n;
	int err;

	while (sent < len) {
		n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
		if (n >= 0) {
			sent += n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_fd(fd, POLLOUT, deadline);
		if (err)
			return err;
	}
	return 0;
}

static int tcp_connect(int fd, const struct target *t, long long deadline)
{
	socklen_t len = sizeof(int);
	int err, soerr = 0;

	if (!connect(fd, (const struct sockaddr *)&t->ss, t->len))
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	err = wait_fd(fd, POLLOUT, deadline);
	if (err)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
		return -errno;
	return -soerr;
}

/* Reads the "NAME\n" line, which is all the server sends before we talk. */
static int read_name(int fd, char *name, long long deadline)
{
	char buf[NAME_LEN + 2], *nl;
	size_t len = 0;
	ssize_t n;

	while (!(nl = memchr(buf, '\n', len))) {
		if (len == sizeof(buf))
			return -EPROTO;
		n = recv_some(fd, buf + len, sizeof(buf) - len, deadline);
		if (n <= 0)
			return n ? (int)n : -EPIPE;
		len += n;
	}
	if (nl == buf || nl + 1 != buf + len)
		return -EPROTO;
	memcpy(name, buf, nl - buf);
	name[nl - buf] = '\0';
	return 0;
}

/* Connects and reads the backend's name: returns the socket or -errno. */
static int tcp_open(const struct target *t, char *name)
{
	int fd, err;

	fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = tcp_connect(fd, t, now_ms() + t->timeout_ms);
	if (err)
		goto err_close;
	err = read_name(fd, name, now_ms() + t->timeout_ms);
	if (err)
		goto err_close;
	return fd;

err_close:
	close(fd);
	return err;
}

/* Sends msg and checks that exactly msg comes back. */
static int echo_check(int fd, const char *msg, size_t len, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char buf[CRR_REQ];
	int err;

	if (len > sizeof(buf))
		return -EINVAL;
	err = send_all(fd, msg, len, deadline);
	if (err)
		return err;
	err = recv_exact(fd, buf, len, deadline);
	if (err)
		return err;
	return memcmp(buf, msg, len) ? -EBADMSG : 0;
}

/* One connection: name, getpeername(), "ping\n" echoed. */
static int tcp_ping(const struct target *t, char *name,
		    struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*peer);
	int fd, err;

	fd = tcp_open(t, name);
	if (fd < 0)
		return fd;
	if (getpeername(fd, (struct sockaddr *)peer, &len)) {
		err = -errno;
		peer->ss_family = AF_UNSPEC;
		goto out;
	}
	err = echo_check(fd, "ping\n", 5, t->timeout_ms);
out:
	close(fd);
	return err;
}

static int tcp_name(const struct target *t, char *name)
{
	int fd = tcp_open(t, name);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static void copy_name(char *name, const char *s, size_t len)
{
	if (len > NAME_LEN)
		len = NAME_LEN;
	memcpy(name, s, len);
	name[len] = '\0';
}

/* "NAME ping" -> NAME; anything else is EBADMSG, with a best-guess name. */
static int parse_udp_reply(const char *buf, size_t len, char *name)
{
	static const char tail[] = " ping";
	const size_t tlen = sizeof(tail) - 1;
	const char *sp;

	if (len > tlen && !memcmp(buf + len - tlen, tail, tlen)) {
		copy_name(name, buf, len - tlen);
		return 0;
	}
	sp = memchr(buf, ' ', len);
	copy_name(name, buf, sp ? (size_t)(sp - buf) : len);
	return -EBADMSG;
}

/* Report ICMP errors on this unconnected socket instead of timing out. */
static void udp_recverr(int fd, int family)
{
	int one = 1;

	setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one));
}

/* sendto() "ping" from a fresh unconnected socket, recvfrom() the reply. */
static int udp_exchange(const struct target *t, char *name,
			struct sockaddr_storage *from)
{
	long long deadline = now_ms() + t->timeout_ms;
	char buf[NAME_LEN + 64];
	socklen_t flen;
	ssize_t n;
	int fd, err;

	fd = socket(t->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	udp_recverr(fd, t->ss.ss_family);
	if (sendto(fd, "ping", 4, 0, (const struct sockaddr *)&t->ss, t->len) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		flen = sizeof(*from);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &flen);
		if (n >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR) {
			err = -errno;
			goto out;
		}
		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			goto out;
	}
	err = parse_udp_reply(buf, n, name);
out:
	if (err && err != -EBADMSG)
		from->ss_family = AF_UNSPEC;
	close(fd);
	return err;
}

/* -------------------------------------------------------------------------
 * Client modes.
 */

struct opts {
	struct target t;
	bool udp;
	long long count;
	long long duration_ms;
	long long max_ms;
	long long interval_ms;
	long long parallel;
	const char *until;
};

static int run_connect(const struct opts *o)
{
	char name[NAME_LEN + 1] = "", addr[ADDR_STRLEN];
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	int err;

	if (o->udp)
		err = udp_exchange(&o->t, name, &ss);
	else
		err = tcp_ping(&o->t, name, &ss);

	printf("{\"ok\":%s", err ? "false" : "true");
	if (err)
		printf(",\"error\":\"%s\"", errname(-err));
	if (ss.ss_family != AF_UNSPEC) {
		printf(",\"backend\":");
		json_str(name);
		printf(",\"%s\":", o->udp ? "from" : "peer");
		json_str(fmt_addr(&ss, addr, sizeof(addr)));
		printf(",\"%s\":%s", o->udp ? "payload_ok" : "echo",
		       err ? "false" : "true");
	}
	printf("}\n");
	return err ? 1 : 0;
}

static int run_spread(const struct opts *o)
{
	static struct tally backends, errors;
	long long end = now_ms() + o->max_ms, i, ok = 0;
	struct sockaddr_storage from;
	char name[NAME_LEN + 1];
	int err;

	for (i = 0; i < o->count; i++) {
		if (now_ms() >= end) {
			/* Out of time: the attempts not made count as ETIME. */
			tally_add(&errors, errname(ETIME), o->count - i);
			break;
		}
		if (o->udp)
			err = udp_exchange(&o->t, name, &from);
		else
			err = tcp_name(&o->t, name);
		if (err) {
			tally_add(&errors, errname(-err), 1);
			continue;
		}
		ok++;
		tally_add(&backends, name, 1);
	}
	printf("{\"total\":%lld,\"ok\":%lld", o->count, ok);
	tally_print("backends", &backends);
	tally_print("errors", &errors);
	printf("}\n");
	return ok == o->count ? 0 : 1;
}

static int run_loop(const struct opts *o)
{
	static struct tally backends, errors;
	long long end = now_ms() + (o->until ? o->max_ms : o->duration_ms);
	const char *stopped = o->until ? "max-seconds" : "duration";
	unsigned long ok = 0, failed = 0;
	char name[NAME_LEN + 1];
	int err;

	while (now_ms() < end) {
		if (o->until && file_exists(o->until)) {
			stopped = "file";
			break;
		}
		err = tcp_name(&o->t, name);
		if (err) {
			failed++;
			tally_add(&errors, errname(-err), 1);
			continue;
		}
		ok++;
		tally_add(&backends, name, 1);
	}
	printf("{\"ok\":%lu,\"failed\":%lu", ok, failed);
	tally_print("errors", &errors);
	tally_print("backends", &backends);
	printf(",\"stopped\":\"%s\"}\n", stopped);
	return failed ? 1 : 0;
}

/*
 * One connection, one 16-byte exchange per interval. The first failure ends
 * the run: a stream that lost or reordered bytes cannot be trusted after.
 */
static int run_hold(const struct opts *o)
{
	long long end = now_ms() + o->max_ms, left;
	const char *stopped = "max-seconds";
	unsigned long exchanges = 0;
	char name[NAME_LEN + 1] = "", line[HOLD_LINE + 1];
	int fd, err;

	fd = tcp_open(&o->t, name);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	for (;;) {
		snprintf(line, sizeof(line), "hold %010u\n",
			 (unsigned int)(exchanges % 1000000000));
		err = echo_check(fd, line, HOLD_LINE, o->t.timeout_ms);
		if (err)
			break;
		exchanges++;
		if (file_exists(o->until)) {
			stopped = "file";
			break;
		}
		left = end - now_ms();
		if (left <= 0)
			break;
		sleep_ms(o->interval_ms < left ? o->interval_ms : left);
	}
	close(fd);
out:
	printf("{\"backend\":");
	if (name[0])
		json_str(name);
	else
		printf("null");
	printf(",\"exchanges\":%lu,\"failed\":%d", exchanges, err ? 1 : 0);
	if (err)
		printf(",\"error\":\"%s\"", errname(-err));
	else
		printf(",\"stopped\":\"%s\"", stopped);
	printf("}\n");
	return !err && exchanges ? 0 : 1;
}

struct crr_worker {
	pthread_t tid;
	const struct target *t;
	long long end;
	unsigned long conns;
	unsigned long errs;
	int first_err;
};

static const char crr_req[CRR_REQ + 1] =
	"crr 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW\n";
_Static_assert(sizeof(crr_req) == CRR_REQ + 1, "request is 64 bytes");

static int crr_once(const struct target *t)
{
	char name[NAME_LEN + 1];
	int fd, err;

	fd = tcp_open(t, name);
	if (fd < 0)
		return fd;
	err = echo_check(fd, crr_req, CRR_REQ, t->timeout_ms);
	close(fd);
	return err;
}

static void *crr_run(void *arg)
{
	struct crr_worker *w = arg;
	int err;

	while (now_ms() < w->end) {
		err = crr_once(w->t);
		if (!err) {
			w->conns++;
			continue;
		}
		w->errs++;
		if (!w->first_err)
			w->first_err = err;
	}
	return NULL;
}

static int run_crr(const struct opts *o)
{
	unsigned long conns = 0, errs = 0;
	struct crr_worker *w;
	long long start, i, started;
	int err = 0, first_err = 0;
	double secs;

	w = calloc(o->parallel, sizeof(*w));
	if (!w) {
		fprintf(stderr, "sltest: crr: %s\n", errname(ENOMEM));
		return 1;
	}
	start = now_ms();
	for (started = 0; started < o->parallel; started++) {
		w[started].t = &o->t;
		w[started].end = start + o->duration_ms;
		err = pthread_create(&w[started].tid, NULL, crr_run, &w[started]);
		if (err) {
			fprintf(stderr, "sltest: crr: pthread_create: %s\n",
				errname(err));
			break;
		}
	}
	for (i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		conns += w[i].conns;
		errs += w[i].errs;
		if (!first_err)
			first_err = w[i].first_err;
	}
	secs = (now_ms() - start) / 1000.0;
	free(w);
	if (err)
		return 1;

	printf("{\"connections\":%lu,\"errors\":%lu,\"seconds\":%.3f,\"rate\":%.1f",
	       conns, errs, secs, secs > 0 ? conns / secs : 0.0);
	if (first_err)
		printf(",\"first_error\":\"%s\"", errname(-first_err));
	printf("}\n");
	return !errs && conns ? 0 : 1;
}

/* -------------------------------------------------------------------------
 * serve: one thread, level-triggered epoll.
 */

enum src_type { SRC_SIG, SRC_TCP, SRC_UDP, SRC_CONN };

/* What an epoll event points at; first member of struct conn. */
struct src {
	enum src_type type;
	int fd;
};

struct conn {
	struct src src;
	struct conn *prev, *next;
	uint32_t events;	/* registered interest, 0 before EPOLL_CTL_ADD */
	size_t off, len;	/* pending output is buf[off, len) */
	char buf[CONN_BUF];
};

struct server {
	char line[NAME_LEN + 2];	/* "NAME\n" */
	char prefix[NAME_LEN + 2];	/* "NAME " */
	size_t name_len;
	int epfd;
	struct src sig, tcp, udp;
	struct conn *conns;
	bool stop;
};

struct serve_opts {
	const char *name;
	const char *bind;
	const char *ready;
	long long tcp_port;
	long long udp_port;
};

/* Errors of the serving loop, at most one line a second. */
static void serve_warn(const char *what, int err)
{
	static long long last;
	static unsigned long quiet;
	long long now = now_ms();

	if (last && now - last < 1000) {
		quiet++;
		return;
	}
	last = now;
	fprintf(stderr, "sltest: serve: %s: %s", what, errname(err));
	if (quiet)
		fprintf(stderr, " (%lu more errors suppressed)", quiet);
	fputc('\n', stderr);
	quiet = 0;
}

static int ep_ctl(struct server *s, int op, struct src *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(s->epfd, op, src->fd, &ev) ? -errno : 0;
}

static void conn_close(struct server *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->src.fd);
	free(c);
}

/*
 * Echoes until a read or a write would block. Returns the epoll interest to
 * wait for (EPOLLIN, or EPOLLOUT while output is pending and reading is
 * paused), 0 at end of stream, or -errno.
 */
static int conn_pump(struct conn *c)
{
	ssize_t n;
	int i;

	for (i = 0; i < PUMP_ROUNDS; i++) {
		if (c->off < c->len) {
			n = send(c->src.fd, c->buf + c->off, c->len - c->off,
				 MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN || errno == EINTR ?
					EPOLLOUT : -errno;
			c->off += n;
			continue;
		}
		n = recv(c->src.fd, c->buf, sizeof(c->buf), 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ?
				EPOLLIN : -errno;
		c->off = 0;
		c->len = n;
	}
	return c->off < c->len ? EPOLLOUT : EPOLLIN;
}

static void conn_event(struct server *s, struct conn *c)
{
	int want, err;

	want = conn_pump(c);
	if (want <= 0)
		goto err_close;
	if ((uint32_t)want == c->events)
		return;
	err = ep_ctl(s, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, &c->src, want);
	if (err) {
		serve_warn("epoll_ctl", -err);
		goto err_close;
	}
	c->events = want;
	return;

err_close:
	conn_close(s, c);
}

static void conn_open(struct server *s, int fd)
{
	struct conn *c;

	c = malloc(sizeof(*c));
	if (!c) {
		serve_warn("accept", ENOMEM);
		close(fd);
		return;
	}
	c->src.type = SRC_CONN;
	c->src.fd = fd;
	c->events = 0;
	c->off = 0;
	c->len = s->name_len + 1;
	memcpy(c->buf, s->line, c->len);
	c->prev = NULL;
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
	conn_event(s, c);
}

static void tcp_accept(struct server *s)
{
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(s->tcp.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				serve_warn("accept", errno);
			return;
		}
		conn_open(s, fd);
	}
}

static void udp_echo(struct server *s)
{
	static char buf[65536];
	struct sockaddr_storage from;
	struct iovec iov[2] = {
		{ .iov_base = s->prefix, .iov_len = s->name_len + 1 },
		{ .iov_base = buf },
	};
	struct msghdr mh = { .msg_name = &from, .msg_iov = iov, .msg_iovlen = 2 };
	socklen_t flen;
	ssize_t n;
	int i;

	for (i = 0; i < UDP_BATCH; i++) {
		flen = sizeof(from);
		n = recvfrom(s->udp.fd, buf, sizeof(buf), 0,
			     (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				serve_warn("udp recvfrom", errno);
			return;
		}
		iov[1].iov_len = n;
		mh.msg_namelen = flen;
		if (sendmsg(s->udp.fd, &mh, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			serve_warn("udp sendmsg", errno);
	}
}

static void serve_event(struct server *s, struct src *src)
{
	struct signalfd_siginfo si;

	switch (src->type) {
	case SRC_SIG:
		if (read(src->fd, &si, sizeof(si)) == sizeof(si))
			s->stop = true;
		break;
	case SRC_TCP:
		tcp_accept(s);
		break;
	case SRC_UDP:
		udp_echo(s);
		break;
	case SRC_CONN:
		conn_event(s, (struct conn *)src);
		break;
	}
}

static int serve_loop(struct server *s)
{
	struct epoll_event evs[EPOLL_BATCH];
	int i, n, err;

	while (!s->stop) {
		n = epoll_wait(s->epfd, evs, EPOLL_BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			fprintf(stderr, "sltest: serve: epoll_wait: %s\n",
				errname(-err));
			return err;
		}
		for (i = 0; i < n; i++)
			serve_event(s, evs[i].data.ptr);
	}
	return 0;
}

static int open_socket(struct server *s, struct src *src, int type,
		       const char *host, int port)
{
	struct sockaddr_storage ss;
	char addr[ADDR_STRLEN];
	int one = 1, zero = 0, err;
	socklen_t len;

	if (make_addr(host, port, &ss, &len)) {
		fprintf(stderr, "sltest: serve: bad --bind address '%s'\n", host);
		return -EINVAL;
	}
	src->fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (src->fd < 0 ||
	    setsockopt(src->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(src->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(src->fd, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(src->fd, LISTEN_BACKLOG)))
		err = -errno;
	else
		err = ep_ctl(s, EPOLL_CTL_ADD, src, EPOLLIN);
	if (err)
		fprintf(stderr, "sltest: serve: %s %s: %s\n",
			type == SOCK_STREAM ? "tcp" : "udp",
			fmt_addr(&ss, addr, sizeof(addr)), errname(-err));
	return err;
}

static int open_signals(struct server *s)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	s->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sig.fd < 0)
		return -errno;
	return ep_ctl(s, EPOLL_CTL_ADD, &s->sig, EPOLLIN);
}

static int touch(const char *path)
{
	int fd, err;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "sltest: serve: %s: %s\n", path, errname(-err));
		return err;
	}
	close(fd);
	return 0;
}

/* Up to the hard limit, for hundreds of concurrent connections. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run_serve(const struct serve_opts *o)
{
	struct server s = {
		.sig = { SRC_SIG, -1 },
		.tcp = { SRC_TCP, -1 },
		.udp = { SRC_UDP, -1 },
	};
	struct conn *c;
	int err;

	raise_nofile();
	s.name_len = strlen(o->name);
	snprintf(s.line, sizeof(s.line), "%s\n", o->name);
	snprintf(s.prefix, sizeof(s.prefix), "%s ", o->name);

	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epfd < 0) {
		fprintf(stderr, "sltest: serve: epoll_create1: %s\n",
			errname(errno));
		return 1;
	}
	err = open_signals(&s);
	if (err) {
		fprintf(stderr, "sltest: serve: signalfd: %s\n", errname(-err));
		goto out;
	}
	if (o->tcp_port) {
		err = open_socket(&s, &s.tcp, SOCK_STREAM, o->bind, o->tcp_port);
		if (err)
			goto out;
	}
	if (o->udp_port) {
		err = open_socket(&s, &s.udp, SOCK_DGRAM, o->bind, o->udp_port);
		if (err)
			goto out;
	}
	if (o->ready) {
		err = touch(o->ready);
		if (err)
			goto out;
	}
	err = serve_loop(&s);
out:
	while ((c = s.conns))
		conn_close(&s, c);
	if (s.udp.fd >= 0)
		close(s.udp.fd);
	if (s.tcp.fd >= 0)
		close(s.tcp.fd);
	if (s.sig.fd >= 0)
		close(s.sig.fd);
	close(s.epfd);
	return err ? 1 : 0;
}

/* -------------------------------------------------------------------------
 * Command line.
 */

static void usage(FILE *f)
{
	fprintf(f,
"usage: sltest MODE [OPTIONS]\n"
"\n"
"  serve   --name NAME [--tcp PORT] [--udp PORT] [--bind ADDR] [--ready FILE]\n"
"          Backend. TCP: send \"NAME\\n\", then echo until the peer closes.\n"
"          UDP: reply \"NAME <payload>\" to each datagram's source. Binds ::\n"
"          dual-stack unless --bind gives an IP literal. Creates FILE once\n"
"          listening; runs until SIGTERM/SIGINT, then exits 0.\n"
"  connect --to ADDR [--udp] [--timeout MS]\n"
"          One exchange: {\"ok\":true,\"backend\":N,\"peer\":A,\"echo\":true}\n"
"          (TCP: name line, getpeername(), \"ping\\n\" echoed) or\n"
"          {\"ok\":true,\"backend\":N,\"from\":A,\"payload_ok\":true} (UDP:\n"
"          unconnected socket, sendto(), recvfrom()), or\n"
"          {\"ok\":false,\"error\":\"ECONNREFUSED\"}.\n"
"  spread  --to ADDR -n N [--udp] [--timeout MS] [--max-seconds S]\n"
"          N sequential exchanges, each on a fresh socket:\n"
"          {\"total\":N,\"ok\":K,\"backends\":{..},\"errors\":{..}}.\n"
"          Attempts not made within S seconds (default 60) count as ETIME.\n"
"  loop    --to ADDR (--duration SEC | --until FILE) [--max-seconds S]\n"
"          [--timeout MS]\n"
"          Back-to-back connections (connect, name line, close) until SEC\n"
"          passed or FILE exists (at most S seconds, default 60):\n"
"          {\"ok\":K,\"failed\":F,\"errors\":{..},\"backends\":{..},\"stopped\":..}\n"
"  hold    --to ADDR --until FILE [--interval-ms MS] [--max-seconds S]\n"
"          [--timeout MS]\n"
"          One connection; a checked 16-byte echo every MS (default 50)\n"
"          until FILE exists (at most S seconds, default 60); stops at the\n"
"          first failure: {\"backend\":N,\"exchanges\":X,\"failed\":F,..}\n"
"  crr     --to ADDR --duration SEC [--parallel P] [--timeout MS]\n"
"          P threads (default 1) of connect, name line, 64-byte echo, close:\n"
"          {\"connections\":N,\"errors\":E,\"seconds\":S,\"rate\":R}\n"
"\n"
"ADDR is IP:PORT or [IPv6]:PORT; [::ffff:a.b.c.d]:PORT uses an AF_INET6\n"
"socket. Client steps time out after --timeout ms (default 2000). Errors are\n"
"errno names; EPIPE: peer closed early, EPROTO: bad name line, EBADMSG: bad\n"
"echo or payload. Client modes print one JSON line on stdout.\n"
"Exit status: 0 success (crr: no errors), 1 failure, 2 usage error.\n");
}

static const struct option serve_options[] = {
	{ "name", required_argument, NULL, 'N' },
	{ "tcp", required_argument, NULL, 'c' },
	{ "udp", required_argument, NULL, 'u' },
	{ "bind", required_argument, NULL, 'b' },
	{ "ready", required_argument, NULL, 'r' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct option client_options[] = {
	{ "to", required_argument, NULL, 't' },
	{ "udp", no_argument, NULL, 'u' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "duration", required_argument, NULL, 'd' },
	{ "until", required_argument, NULL, 'U' },
	{ "max-seconds", required_argument, NULL, 'M' },
	{ "interval-ms", required_argument, NULL, 'i' },
	{ "parallel", required_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct mode {
	const char *name;
	const char *opts;	/* the client options it takes, by val */
	const char *need;	/* and those it requires */
	int (*run)(const struct opts *o);
};

static const struct mode modes[] = {
	{ "connect", "tuT", "t", run_connect },
	{ "spread", "tuTnM", "tn", run_spread },
	{ "loop", "tTdUM", "t", run_loop },
	{ "hold", "tTUMi", "tU", run_hold },
	{ "crr", "tTdP", "td", run_crr },
};

/* "--to", or "-n" for the one short option; in a static buffer. */
static const char *opt_flag(int val)
{
	static char buf[32];
	const struct option *p;

	if (val == 'n')
		return "-n";
	for (p = client_options; p->name && p->val != val; p++)
		;
	snprintf(buf, sizeof(buf), "--%.24s", p->name ? p->name : "?");
	return buf;
}

static int bad_value(const char *flag, const char *arg)
{
	fprintf(stderr, "sltest: invalid value '%s' for %s\n", arg, flag);
	return 2;
}

static int set_client_opt(struct opts *o, int c, const char *arg)
{
	int err = 0;

	switch (c) {
	case 't':
		err = parse_addr(arg, &o->t.ss, &o->t.len);
		break;
	case 'u':
		o->udp = true;
		break;
	case 'T': {
		long long ms;

		err = parse_num(arg, 1, 600000, &ms);
		o->t.timeout_ms = ms;
		break;
	}
	case 'n':
		err = parse_num(arg, 1, 100000000, &o->count);
		break;
	case 'd':
		err = parse_secs(arg, &o->duration_ms);
		break;
	case 'U':
		o->until = arg;
		break;
	case 'M':
		err = parse_secs(arg, &o->max_ms);
		break;
	case 'i':
		err = parse_num(arg, 1, 60000, &o->interval_ms);
		break;
	case 'P':
		err = parse_num(arg, 1, MAX_PARALLEL, &o->parallel);
		break;
	}
	return err;
}

static int client_main(const struct mode *m, int argc, char **argv)
{
	struct opts o = {
		.t.timeout_ms = 2000,
		.max_ms = 60000,
		.interval_ms = 50,
		.parallel = 1,
	};
	bool seen[128] = { false };
	const char *p;
	int c;

	while ((c = getopt_long(argc, argv, "n:h", client_options, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?')
			return 2;
		if (!strchr(m->opts, c)) {
			fprintf(stderr, "sltest: %s: %s does not apply\n",
				m->name, opt_flag(c));
			return 2;
		}
		if (set_client_opt(&o, c, optarg))
			return bad_value(opt_flag(c), optarg);
		seen[c] = true;
	}
	if (optind < argc) {
		fprintf(stderr, "sltest: %s: unexpected '%s'\n", m->name,
			argv[optind]);
		return 2;
	}
	for (p = m->need; *p; p++) {
		if (!seen[(int)*p]) {
			fprintf(stderr, "sltest: %s: %s is required\n", m->name,
				opt_flag(*p));
			return 2;
		}
	}
	if (m->run == run_loop && seen['d'] == seen['U']) {
		fprintf(stderr, "sltest: loop: give one of --duration, --until\n");
		return 2;
	}
	return m->run(&o);
}

static int serve_main(int argc, char **argv)
{
	struct serve_opts o = { .bind = "::" };
	long long *port;
	int c;

	while ((c = getopt_long(argc, argv, "h", serve_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'N':
			o.name = optarg;
			break;
		case 'c':
		case 'u':
			port = c == 'c' ? &o.tcp_port : &o.udp_port;
			if (parse_num(optarg, 1, 65535, port))
				return bad_value(c == 'c' ? "--tcp" : "--udp",
						 optarg);
			break;
		case 'b':
			o.bind = optarg;
			break;
		case 'r':
			o.ready = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sltest: serve: unexpected '%s'\n", argv[optind]);
		return 2;
	}
	if (!o.name || !*o.name || strlen(o.name) > NAME_LEN ||
	    strpbrk(o.name, "\n\r\t ")) {
		fprintf(stderr, "sltest: serve: --name: 1 to %d characters, no whitespace\n",
			NAME_LEN);
		return 2;
	}
	if (!o.tcp_port && !o.udp_port) {
		fprintf(stderr, "sltest: serve: give --tcp PORT and/or --udp PORT\n");
		return 2;
	}
	return run_serve(&o);
}

int main(int argc, char **argv)
{
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "serve"))
		return serve_main(argc - 1, argv + 1);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			return client_main(&modes[i], argc - 1, argv + 1);
	fprintf(stderr, "sltest: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
