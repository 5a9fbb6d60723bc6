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
 *   sltest xfer-serve --tcp PORT [--bind ADDR] [--ready FILE]
 *                     [--max-seconds S]
 *   sltest xfer --to ADDR --up BYTES --down BYTES [--msg SPEC] [--seed N]
 *               [--parallel P] [--timeout-s S] [--verbose]
 *	Bulk transfer both ways at once with a half-close, for the socket
 *	fast path (sockmap/sk_msg redirection): every byte must arrive,
 *	intact and in order, and a blocking recv() must return 0 at EOF,
 *	never fail with EAGAIN. Both ends use BLOCKING sockets, plain
 *	blocking send()/recv() (only EINTR is retried), no poll(), no
 *	SO_RCVTIMEO; two threads per connection, one sending, one receiving.
 *	xfer-serve binds like serve, runs until SIGTERM/SIGINT or S seconds
 *	(default 300) and exits 0; it reports bad connections on stderr.
 *	xfer runs P (default 1) connections at once, connection i with seed
 *	N+i (default N 1), and is bounded by alarm(S) (default 120), which
 *	prints a failure line and exits 1. The protocol, per connection:
 *
 *	client -> server, header, 32 bytes, integers big-endian:
 *	   0  4  magic "SLX1"
 *	   4  4  u32 flags: bit 0 NO_HALF_CLOSE (below); others must be 0
 *	   8  8  u64 up: bytes client -> server
 *	  16  8  u64 down: bytes server -> client
 *	  24  4  u32 seed
 *	  28  4  u32 msg: send() size, 1..16777216; 0: random, 1..262144
 *	Then, at once: the client sends up bytes of stream(seed) and shuts
 *	down SHUT_WR; the server sends down bytes of stream(seed ^
 *	0x5a5a5a5a). Each side checks every byte it receives against the
 *	stream as it arrives and hashes it (SHA-256). The server then expects
 *	EOF: its next recv() must return 0. It sends the
 *	server -> client trailer, 64 bytes, big-endian:
 *	   0 32  SHA-256 of the bytes received (at most up)
 *	  32  8  u64 count of bytes received (at most up)
 *	  40  4  u32 status: 0 ok, 1 mismatch (a byte differed), 2 short (EOF
 *	         or an error before up bytes), 3 EOF error (recv() failed
 *	         where EOF was due), 4 extra (bytes where EOF was due); the
 *	         first that applies, in this order
 *	  44 20  zero
 *	then shuts down SHUT_WR, reads until recv() returns 0 (the client's
 *	FIN, already read unless status is 3 or 4: this drains, so that
 *	close() cannot reset the connection under the trailer) and closes. The
 *	client reads down bytes, the trailer, then recv() must return 0;
 *	then it closes. A header with a bad magic, flags or msg gets no
 *	trailer: the server closes the connection.
 *
 *	With NO_HALF_CLOSE (xfer --no-half-close) nobody shuts down a
 *	writing side: the server reads exactly up bytes, sends the trailer
 *	and closes; the client reads down bytes, the trailer and EOF (0).
 *
 *	stream(s) is the bytes of the outputs of xorshift64* (x ^= x >> 12;
 *	x ^= x << 25; x ^= x >> 27; output x * 0x2545f4914f6cdd1d), each
 *	least significant byte first, with x = splitmix64(s) (or 1 if that
 *	is 0). The random message sizes of the side sending stream(s) are
 *	1 + output % 262144 of the same generator started at
 *	splitmix64(1 << 32 | s): independent of the data. The sizes apply to
 *	the send() calls; each message is sent whole before the next (send()
 *	is repeated until it is).
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
 * total run time, so no client blocks forever. xfer alone blocks without
 * a deadline per step, by design, inside its --timeout-s bound.
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
	long long up;		/* xfer */
	long long down;
	long long msg;		/* 0: random */
	long long seed;
	long long timeout_s;
	long long bind_port;	/* xfer: 0 any */
	bool no_half_close;
	bool verbose;
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
	const char *mode;		/* for messages: "serve" */
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
		fprintf(stderr, "sltest: %s: bad --bind address '%s'\n",
			s->mode, host);
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
		fprintf(stderr, "sltest: %s: %s %s: %s\n", s->mode,
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
		.mode = "serve",
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
 * SHA-256 (FIPS 180-4), for the xfer modes.
 */

struct sha256 {
	uint32_t h[8];
	uint64_t len;			/* bytes hashed so far */
	unsigned char buf[64];		/* partial block: len % 64 bytes */
};

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n)	((x) >> (n) | (x) << (32 - (n)))

static void sha256_block(uint32_t *h, const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
	int i;

	for (i = 0; i < 16; i++, p += 4)
		w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		       (uint32_t)p[2] << 8 | p[3];
	for (; i < 64; i++)
		w[i] = w[i - 16] + w[i - 7] +
		       (ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ w[i - 15] >> 3) +
		       (ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ w[i - 2] >> 10);
	a = h[0], b = h[1], c = h[2], d = h[3];
	e = h[4], f = h[5], g = h[6], k = h[7];
	for (i = 0; i < 64; i++) {
		t1 = k + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) +
		     ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
		t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) +
		     ((a & b) ^ (a & c) ^ (b & c));
		k = g, g = f, f = e, e = d + t1;
		d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d;
	h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t fill = s->len % 64, n;

	s->len += len;
	if (fill) {
		n = len < 64 - fill ? len : 64 - fill;
		memcpy(s->buf + fill, p, n);
		if (fill + n < 64)
			return;
		sha256_block(s->h, s->buf);
		p += n;
		len -= n;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha256_block(s->h, p);
	memcpy(s->buf, p, len);
}

static void sha256_final(struct sha256 *s, unsigned char out[32])
{
	unsigned char pad[64 + 8] = { 0x80 };
	uint64_t bits = s->len * 8;
	size_t n = 64 - (s->len + 8) % 64;	/* 0x80, then zeros: 1..64 */
	int i;

	for (i = 0; i < 8; i++)
		pad[n + i] = bits >> (56 - 8 * i);
	sha256_update(s, pad, n + 8);
	for (i = 0; i < 32; i++)
		out[i] = s->h[i / 4] >> (24 - 8 * (i % 4));
}

static void sha256_hex(const unsigned char sha[32], char hex[65])
{
	int i;

	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sha[i]);
}

/* -------------------------------------------------------------------------
 * xfer: the streams and the wire format (see the top comment).
 */

#define XFER_MAGIC	"SLX1"
#define XFER_F_NO_HALF_CLOSE 1U	/* header flags */
#define XFER_HDR_LEN	32
#define XFER_TRL_LEN	64
#define XFER_SERVER_XOR	0x5a5a5a5aU	/* server stream: seed ^ this */
#define XFER_RANDOM_MAX	262144		/* --msg random: 1..this */
#define XFER_MSG_MAX	(16 << 20)	/* largest fixed message */
#define XFER_BYTES_MAX	(1LL << 50)
#define XFER_RBUF	(128 << 10)	/* recv() size */
#define XFER_SINK	4096		/* recv() size where EOF is due */
#define XFER_STACK	(256 << 10)

enum xgen_kind { XGEN_DATA, XGEN_SIZES };

/* xorshift64* seeded through splitmix64; bytes are outputs, LSB first. */
struct xgen {
	uint64_t x;
	uint64_t word;		/* the rest of the current output */
	unsigned int left;	/* bytes in word */
};

static uint64_t splitmix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ z >> 27) * 0x94d049bb133111ebULL;
	return z ^ z >> 31;
}

static void xgen_init(struct xgen *g, uint32_t seed, enum xgen_kind kind)
{
	g->x = splitmix64((uint64_t)kind << 32 | seed);
	if (!g->x)
		g->x = 1;
	g->left = 0;
}

static uint64_t xgen_next(struct xgen *g)
{
	g->x ^= g->x >> 12;
	g->x ^= g->x << 25;
	g->x ^= g->x >> 27;
	return g->x * 0x2545f4914f6cdd1dULL;
}

/* The next len bytes of the stream. */
static void xgen_fill(struct xgen *g, unsigned char *p, size_t len)
{
	uint64_t v;
	int i;

	for (; len && g->left; len--, g->left--) {
		*p++ = g->word;
		g->word >>= 8;
	}
	for (; len >= 8; len -= 8, p += 8) {
		v = xgen_next(g);
		for (i = 0; i < 8; i++)
			p[i] = v >> (8 * i);
	}
	if (!len)
		return;
	g->word = xgen_next(g);
	for (g->left = 8; len; len--, g->left--) {
		*p++ = g->word;
		g->word >>= 8;
	}
}

/* Size of the next send(): msg, or random when msg is 0; at most left. */
static size_t xfer_msg_size(struct xgen *sizes, uint32_t msg, uint64_t left)
{
	uint64_t m = msg ? msg : 1 + xgen_next(sizes) % XFER_RANDOM_MAX;

	return m < left ? m : left;
}

struct xfer_hdr {
	uint32_t flags;		/* XFER_F_* */
	uint64_t up;		/* bytes client to server */
	uint64_t down;		/* bytes server to client */
	uint32_t seed;
	uint32_t msg;		/* send() size, 0: random */
};

enum xfer_status {
	XFER_OK,
	XFER_MISMATCH,		/* a byte differed from the stream */
	XFER_SHORT,		/* EOF or an error before all the bytes */
	XFER_EOF_ERROR,		/* recv() failed where EOF was due */
	XFER_EXTRA,		/* recv() returned bytes where EOF was due */
};

static const char *const xfer_status_names[] = {
	"ok", "mismatch", "short", "eof-error", "extra",
};

struct xfer_trailer {
	unsigned char sha[32];	/* of the bytes received, at most up */
	uint64_t count;		/* bytes received, at most up */
	uint32_t status;	/* enum xfer_status */
};

static void put_be(unsigned char *p, uint64_t v, int n)
{
	while (n--) {
		p[n] = v;
		v >>= 8;
	}
}

static uint64_t get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

static void xfer_hdr_put(unsigned char *p, const struct xfer_hdr *h)
{
	memcpy(p, XFER_MAGIC, 4);
	put_be(p + 4, h->flags, 4);
	put_be(p + 8, h->up, 8);
	put_be(p + 16, h->down, 8);
	put_be(p + 24, h->seed, 4);
	put_be(p + 28, h->msg, 4);
}

static int xfer_hdr_get(const unsigned char *p, struct xfer_hdr *h)
{
	if (memcmp(p, XFER_MAGIC, 4))
		return -EPROTO;
	h->flags = get_be(p + 4, 4);
	h->up = get_be(p + 8, 8);
	h->down = get_be(p + 16, 8);
	h->seed = get_be(p + 24, 4);
	h->msg = get_be(p + 28, 4);
	if (h->flags & ~XFER_F_NO_HALF_CLOSE)
		return -EPROTO;
	return h->msg > XFER_MSG_MAX ? -EMSGSIZE : 0;
}

static void xfer_trl_put(unsigned char *p, const struct xfer_trailer *t)
{
	memset(p, 0, XFER_TRL_LEN);
	memcpy(p, t->sha, 32);
	put_be(p + 32, t->count, 8);
	put_be(p + 40, t->status, 4);
}

static void xfer_trl_get(const unsigned char *p, struct xfer_trailer *t)
{
	memcpy(t->sha, p, 32);
	t->count = get_be(p + 32, 8);
	t->status = get_be(p + 40, 4);
}

/*
 * Blocking I/O: no timeouts, no poll(). Only EINTR is retried; EAGAIN from
 * a blocking socket is a failure and is reported as such.
 */
static int bsend_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static ssize_t brecv(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Exactly len bytes: 0, -errno, or -EPIPE when the stream ends first. */
static int brecv_exact(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = brecv(fd, p, len);
		if (n <= 0)
			return n ? (int)n : -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

/* The recv() after a stream: XFER_OK at EOF, XFER_EXTRA, XFER_EOF_ERROR. */
static enum xfer_status xfer_eof(int fd, int *err)
{
	char sink[XFER_SINK];
	ssize_t n;

	n = brecv(fd, sink, sizeof(sink));
	*err = n < 0 ? (int)-n : 0;
	return n < 0 ? XFER_EOF_ERROR : n ? XFER_EXTRA : XFER_OK;
}

static int xfer_thread(pthread_t *tid, void *(*fn)(void *), void *arg,
		       bool detach)
{
	pthread_attr_t attr;
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	err = pthread_attr_setstacksize(&attr, XFER_STACK);
	if (!err && detach)
		err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!err)
		err = pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -err;
}

/* One direction, sending: total bytes of a stream in msg-sized send()s. */
struct xfer_tx {
	int fd;
	uint64_t total;
	uint32_t seed;
	uint32_t msg;
	bool shut_wr;		/* shutdown(SHUT_WR) once all is sent */
	struct sha256 *sha;	/* of what was sent, or NULL */
	uint64_t sent;		/* atomic: for the alarm handler */
	int err;		/* -errno */
	long long done_ms;
};

static int xfer_send(struct xfer_tx *tx)
{
	struct xgen data, sizes;
	unsigned char *buf;
	uint64_t left;
	size_t cap, m;
	int err = 0;

	cap = tx->msg ? tx->msg : XFER_RANDOM_MAX;
	if (cap > tx->total)
		cap = tx->total;
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return -ENOMEM;
	xgen_init(&data, tx->seed, XGEN_DATA);
	xgen_init(&sizes, tx->seed, XGEN_SIZES);
	for (left = tx->total; left; left -= m) {
		m = xfer_msg_size(&sizes, tx->msg, left);
		xgen_fill(&data, buf, m);
		err = bsend_all(tx->fd, buf, m);
		if (err)
			break;
		if (tx->sha)
			sha256_update(tx->sha, buf, m);
		__atomic_add_fetch(&tx->sent, m, __ATOMIC_RELAXED);
	}
	free(buf);
	return err;
}

/*
 * A failed sender shuts the socket down both ways, so that its receiver,
 * blocked in recv(), gets EOF instead of waiting for the deadline.
 */
static void *xfer_tx_run(void *arg)
{
	struct xfer_tx *tx = arg;

	tx->err = xfer_send(tx);
	if (tx->err)
		shutdown(tx->fd, SHUT_RDWR);
	else if (tx->shut_wr && shutdown(tx->fd, SHUT_WR))
		tx->err = -errno;
	tx->done_ms = now_ms();
	return NULL;
}

/* One direction, receiving: total bytes, each checked, all hashed. */
struct xfer_rx {
	int fd;
	uint64_t total;
	uint32_t seed;
	struct sha256 sha;
	uint64_t received;	/* atomic: for the alarm handler */
	uint64_t bad_at;	/* offset of the first wrong byte, or UINT64_MAX */
	long long done_ms;
};

/* 0 once total bytes arrived (right or wrong), else -errno, -EPIPE at EOF. */
static int xfer_recv(struct xfer_rx *rx)
{
	unsigned char *buf, *want;
	struct xgen data;
	uint64_t got = 0;
	ssize_t n;
	size_t i;
	int err = 0;

	sha256_init(&rx->sha);
	rx->bad_at = UINT64_MAX;
	buf = malloc(2 * XFER_RBUF);
	if (!buf)
		return -ENOMEM;
	want = buf + XFER_RBUF;
	xgen_init(&data, rx->seed, XGEN_DATA);
	while (got < rx->total) {
		n = brecv(rx->fd, buf, rx->total - got < XFER_RBUF ?
					rx->total - got : XFER_RBUF);
		if (n <= 0) {
			err = n ? (int)n : -EPIPE;
			break;
		}
		if (rx->bad_at == UINT64_MAX) {
			xgen_fill(&data, want, n);
			if (memcmp(buf, want, n)) {
				for (i = 0; buf[i] == want[i]; i++)
					;
				rx->bad_at = got + i;
			}
		}
		sha256_update(&rx->sha, buf, n);
		got += n;
		__atomic_store_n(&rx->received, got, __ATOMIC_RELAXED);
	}
	rx->done_ms = now_ms();
	free(buf);
	return err;
}

/* -------------------------------------------------------------------------
 * xfer-serve: a listener, a thread per connection and one to send.
 */

struct xfer_serve_opts {
	const char *bind;
	const char *ready;
	long long tcp_port;
	long long max_ms;
};

struct xs_conn {
	int fd;
	struct sockaddr_storage peer;
};

static void xs_warn(const struct xs_conn *c, const char *what,
		    const char *why)
{
	char addr[ADDR_STRLEN];

	fprintf(stderr, "sltest: xfer-serve: %s: %s: %s\n",
		fmt_addr(&c->peer, addr, sizeof(addr)), what, why);
}

/*
 * Header; the client's stream and its EOF here while the sender thread
 * sends ours; trailer; SHUT_WR; then recv() until 0 so that unread bytes
 * cannot turn close() into a reset that would lose the trailer.
 */
static void *xs_conn_run(void *arg)
{
	struct xs_conn *c = arg;
	unsigned char hb[XFER_HDR_LEN], tb[XFER_TRL_LEN], sink[XFER_SINK];
	struct xfer_trailer tr = { .status = XFER_OK };
	struct xfer_tx tx = { .fd = c->fd };
	struct xfer_rx rx = { .fd = c->fd };
	enum xfer_status eof = XFER_OK;
	struct xfer_hdr h;
	int err, eof_err = 0;
	char why[64];
	pthread_t tid;

	err = brecv_exact(c->fd, hb, sizeof(hb));
	if (!err)
		err = xfer_hdr_get(hb, &h);
	if (err) {
		xs_warn(c, "header", errname(-err));
		goto out_close;
	}
	tx.total = h.down;
	tx.seed = h.seed ^ XFER_SERVER_XOR;
	tx.msg = h.msg;
	err = xfer_thread(&tid, xfer_tx_run, &tx, false);
	if (err) {
		xs_warn(c, "pthread_create", errname(-err));
		goto out_close;
	}
	rx.total = h.up;
	rx.seed = h.seed;
	err = xfer_recv(&rx);
	if (!err && !(h.flags & XFER_F_NO_HALF_CLOSE))
		eof = xfer_eof(c->fd, &eof_err);
	pthread_join(tid, NULL);

	if (rx.bad_at != UINT64_MAX) {
		tr.status = XFER_MISMATCH;
		snprintf(why, sizeof(why), "first at byte %llu",
			 (unsigned long long)rx.bad_at);
	} else if (err) {
		tr.status = XFER_SHORT;
		snprintf(why, sizeof(why), "%s after %llu of %llu bytes",
			 errname(-err), (unsigned long long)rx.received,
			 (unsigned long long)rx.total);
	} else if (eof) {
		tr.status = eof;
		snprintf(why, sizeof(why), "%s",
			 eof_err ? errname(eof_err) : "bytes after the stream");
	}
	if (tr.status)
		xs_warn(c, xfer_status_names[tr.status], why);
	if (tx.err)
		xs_warn(c, "send", errname(-tx.err));

	sha256_final(&rx.sha, tr.sha);
	tr.count = rx.received;
	xfer_trl_put(tb, &tr);
	err = bsend_all(c->fd, tb, sizeof(tb));
	if (err) {
		xs_warn(c, "trailer", errname(-err));
		goto out_close;
	}
	if (h.flags & XFER_F_NO_HALF_CLOSE)
		goto out_close;
	shutdown(c->fd, SHUT_WR);
	while (brecv(c->fd, sink, sizeof(sink)) > 0)
		;
out_close:
	close(c->fd);
	free(c);
	return NULL;
}

/* Accepted sockets are blocking: accept4() does not inherit O_NONBLOCK. */
static void xs_accept(struct server *s)
{
	struct xs_conn *c;
	socklen_t len;
	pthread_t tid;
	int i, err;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		c = malloc(sizeof(*c));
		if (!c) {
			serve_warn("accept", ENOMEM);
			return;
		}
		len = sizeof(c->peer);
		c->fd = accept4(s->tcp.fd, (struct sockaddr *)&c->peer, &len,
				SOCK_CLOEXEC);
		if (c->fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				serve_warn("accept", errno);
			free(c);
			return;
		}
		err = xfer_thread(&tid, xs_conn_run, c, true);
		if (err) {
			xs_warn(c, "pthread_create", errname(-err));
			close(c->fd);
			free(c);
		}
	}
}

static int run_xfer_serve(const struct xfer_serve_opts *o)
{
	struct server s = {
		.mode = "xfer-serve",
		.sig = { SRC_SIG, -1 },
		.tcp = { SRC_TCP, -1 },
		.udp = { SRC_UDP, -1 },
	};
	long long end = now_ms() + o->max_ms, left;
	struct epoll_event evs[2];
	struct signalfd_siginfo si;
	struct src *src;
	int i, n, err;

	raise_nofile();
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epfd < 0) {
		fprintf(stderr, "sltest: xfer-serve: epoll_create1: %s\n",
			errname(errno));
		return 1;
	}
	/* Before any thread exists, so that they all block the signals. */
	err = open_signals(&s);
	if (err) {
		fprintf(stderr, "sltest: xfer-serve: signalfd: %s\n",
			errname(-err));
		goto out;
	}
	err = open_socket(&s, &s.tcp, SOCK_STREAM, o->bind, o->tcp_port);
	if (err)
		goto out;
	if (o->ready) {
		err = touch(o->ready);
		if (err)
			goto out;
	}
	while (!s.stop) {
		left = end - now_ms();
		if (left <= 0) {
			fprintf(stderr, "sltest: xfer-serve: --max-seconds reached\n");
			break;
		}
		n = epoll_wait(s.epfd, evs, 2, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			fprintf(stderr, "sltest: xfer-serve: epoll_wait: %s\n",
				errname(-err));
			goto out;
		}
		for (i = 0; i < n; i++) {
			src = evs[i].data.ptr;
			if (src->type == SRC_TCP)
				xs_accept(&s);
			else if (read(src->fd, &si, sizeof(si)) == sizeof(si))
				s.stop = true;
		}
	}
out:
	/* Connection threads still running end with the process. */
	if (s.tcp.fd >= 0)
		close(s.tcp.fd);
	if (s.sig.fd >= 0)
		close(s.sig.fd);
	close(s.epfd);
	return err ? 1 : 0;
}

/* -------------------------------------------------------------------------
 * xfer: the client.
 */

enum xc_stage {
	XC_START, XC_CONNECT, XC_HEADER, XC_DOWN, XC_TRAILER, XC_EOF, XC_UP,
	XC_SERVER, XC_DONE,
};

static const char *const xc_stages[] = {
	"start", "connect", "header", "down", "trailer", "eof", "up",
	"server", "done",
};

struct xfer_conn {
	pthread_t tid;
	const struct opts *o;
	int idx;
	uint32_t seed;
	int stage;		/* atomic, enum xc_stage: where it is */
	struct sha256 up_sha;
	struct xfer_tx tx;
	struct xfer_rx rx;
	unsigned char sha_up[32], sha_down[32];
	struct xfer_trailer tr;
	bool have_trailer;
	int eof;		/* XFER_OK/EXTRA/EOF_ERROR, -1: not reached */
	int eof_err;
	/* The first failure, in protocol order. */
	bool failed;
	int fail_stage;		/* enum xc_stage */
	int fail_err;		/* errno, when fail_what is NULL */
	const char *fail_what;
	uint64_t fail_offset;	/* UINT64_MAX: none */
};

static struct xfer_conn *xfer_conns;
static long long xfer_nconns;

static void xc_stage(struct xfer_conn *c, enum xc_stage stage)
{
	__atomic_store_n(&c->stage, stage, __ATOMIC_RELEASE);
}

static void xc_fail(struct xfer_conn *c, enum xc_stage stage, int err,
		    const char *what)
{
	if (c->failed)
		return;
	c->failed = true;
	c->fail_stage = stage;
	c->fail_err = err;
	c->fail_what = what;
}

/*
 * The checks once both directions are over, in protocol order, except that
 * a sender failing after our shutdown() on a failed receive is no cause.
 */
static void xc_judge(struct xfer_conn *c, int down_err, int trl_err,
		     bool shut)
{
	const struct xfer_trailer *tr = &c->tr;

	if (c->tx.err && !shut)
		xc_fail(c, XC_UP, -c->tx.err, NULL);
	if (down_err)
		xc_fail(c, XC_DOWN, -down_err, NULL);
	if (c->rx.bad_at != UINT64_MAX) {
		xc_fail(c, XC_DOWN, EBADMSG, NULL);
		c->fail_offset = c->rx.bad_at;
	}
	if (trl_err)
		xc_fail(c, XC_TRAILER, -trl_err, NULL);
	if (c->eof == XFER_EOF_ERROR)
		xc_fail(c, XC_EOF, c->eof_err, NULL);
	else if (c->eof == XFER_EXTRA)
		xc_fail(c, XC_EOF, 0, "extra");
	if (c->tx.err)
		xc_fail(c, XC_UP, -c->tx.err, NULL);
	if (!c->have_trailer)
		return;
	if (tr->status >= sizeof(xfer_status_names) / sizeof(xfer_status_names[0]))
		xc_fail(c, XC_SERVER, 0, "status");
	else if (tr->status)
		xc_fail(c, XC_SERVER, 0, xfer_status_names[tr->status]);
	else if (tr->count != (uint64_t)c->o->up)
		xc_fail(c, XC_SERVER, 0, "count");
	else if (memcmp(tr->sha, c->sha_up, 32))
		xc_fail(c, XC_SERVER, 0, "sha256");
}

/* --bind-port: the client's own port, any address of its family. */
static int xfer_bind_port(int fd, int family, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		return bind(fd, (struct sockaddr *)&a6, sizeof(a6));
	return bind(fd, (struct sockaddr *)&a4, sizeof(a4));
}

static void *xc_run(void *arg)
{
	struct xfer_conn *c = arg;
	const struct opts *o = c->o;
	const struct xfer_hdr h = {
		.up = o->up, .down = o->down, .seed = c->seed, .msg = o->msg,
		.flags = o->no_half_close ? XFER_F_NO_HALF_CLOSE : 0,
	};
	unsigned char hb[XFER_HDR_LEN], tb[XFER_TRL_LEN];
	int fd, err, down_err, trl_err = 0;
	pthread_t tid;
	bool shut;

	xc_stage(c, XC_CONNECT);
	fd = socket(o->t.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		xc_fail(c, XC_CONNECT, errno, NULL);
		goto out;
	}
	if (o->bind_port && xfer_bind_port(fd, o->t.ss.ss_family, (uint16_t)o->bind_port)) {
		xc_fail(c, XC_CONNECT, errno, NULL);
		goto out_close;
	}
	if (connect(fd, (const struct sockaddr *)&o->t.ss, o->t.len)) {
		xc_fail(c, XC_CONNECT, errno, NULL);
		goto out_close;
	}
	xc_stage(c, XC_HEADER);
	xfer_hdr_put(hb, &h);
	err = bsend_all(fd, hb, sizeof(hb));
	if (err) {
		xc_fail(c, XC_HEADER, -err, NULL);
		goto out_close;
	}
	sha256_init(&c->up_sha);
	c->tx.fd = fd;
	c->tx.total = o->up;
	c->tx.seed = c->seed;
	c->tx.msg = o->msg;
	c->tx.shut_wr = !o->no_half_close;
	c->tx.sha = &c->up_sha;
	err = xfer_thread(&tid, xfer_tx_run, &c->tx, false);
	if (err) {
		xc_fail(c, XC_UP, -err, NULL);
		goto out_close;
	}

	xc_stage(c, XC_DOWN);
	c->rx.fd = fd;
	c->rx.total = o->down;
	c->rx.seed = c->seed ^ XFER_SERVER_XOR;
	down_err = xfer_recv(&c->rx);
	sha256_final(&c->rx.sha, c->sha_down);
	if (!down_err) {
		xc_stage(c, XC_TRAILER);
		trl_err = brecv_exact(fd, tb, sizeof(tb));
	}
	if (!down_err && !trl_err) {
		xfer_trl_get(tb, &c->tr);
		c->have_trailer = true;
		xc_stage(c, XC_EOF);
		c->eof = xfer_eof(fd, &c->eof_err);
	}
	/* The sender may be blocked on a peer that stopped reading. */
	shut = down_err || trl_err || c->eof > 0;
	if (shut)
		shutdown(fd, SHUT_RDWR);
	xc_stage(c, XC_UP);
	pthread_join(tid, NULL);
	sha256_final(&c->up_sha, c->sha_up);
	xc_judge(c, down_err, trl_err, shut);
out_close:
	close(fd);
out:
	xc_stage(c, XC_DONE);
	return NULL;
}

/* Async-signal-safe formatting for the alarm handler. */
static char *xfer_cat(char *p, const char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *xfer_catu(char *p, const char *end, unsigned long long v)
{
	char buf[24], *q = buf + sizeof(buf);

	*--q = '\0';
	do
		*--q = '0' + v % 10;
	while (v /= 10);
	return xfer_cat(p, end, q);
}

/* --timeout-s: report the first unfinished connection and where it is. */
static void xfer_alarm(int sig)
{
	char line[512], *p = line, *end = line + sizeof(line) - 2;
	long long i, first = -1, pending = 0;
	struct xfer_conn *c;
	int stage;

	for (i = 0; i < xfer_nconns; i++) {
		stage = __atomic_load_n(&xfer_conns[i].stage, __ATOMIC_ACQUIRE);
		if (stage == XC_DONE)
			continue;
		if (first < 0)
			first = i;
		pending++;
	}
	p = xfer_cat(p, end, "{\"ok\":false,\"connections\":");
	p = xfer_catu(p, end, xfer_nconns);
	p = xfer_cat(p, end, ",\"error\":\"ETIMEDOUT\",\"pending\":");
	p = xfer_catu(p, end, pending);
	if (first >= 0) {
		c = &xfer_conns[first];
		p = xfer_cat(p, end, ",\"connection\":");
		p = xfer_catu(p, end, first);
		stage = __atomic_load_n(&c->stage, __ATOMIC_ACQUIRE);
		p = xfer_cat(p, end, ",\"stage\":\"");
		p = xfer_cat(p, end, xc_stages[stage]);
		p = xfer_cat(p, end, "\",\"up_sent\":");
		p = xfer_catu(p, end, __atomic_load_n(&c->tx.sent,
						      __ATOMIC_RELAXED));
		p = xfer_cat(p, end, ",\"down_received\":");
		p = xfer_catu(p, end, __atomic_load_n(&c->rx.received,
						      __ATOMIC_RELAXED));
	}
	p = xfer_cat(p, end, "}\n");
	if (write(STDOUT_FILENO, line, p - line) < 0)
		_exit(1);
	_exit(1);
}

static const char *xc_eof_name(const struct xfer_conn *c)
{
	if (c->eof == XFER_OK)
		return "ok";
	if (c->eof == XFER_EXTRA)
		return "extra";
	if (c->eof == XFER_EOF_ERROR)
		return errname(c->eof_err);
	return "none";
}

static void xc_verbose(const struct xfer_conn *c)
{
	char up[65], down[65];

	sha256_hex(c->sha_up, up);
	sha256_hex(c->sha_down, down);
	fprintf(stderr, "sltest: xfer: connection %d seed %u: %s", c->idx,
		c->seed, c->failed ? "FAILED" : "ok");
	if (c->failed)
		fprintf(stderr, " at %s: %s", xc_stages[c->fail_stage],
			c->fail_what ? c->fail_what : errname(c->fail_err));
	fprintf(stderr, "; up %llu sent, down %llu received",
		(unsigned long long)c->tx.sent,
		(unsigned long long)c->rx.received);
	if (c->rx.bad_at != UINT64_MAX)
		fprintf(stderr, " (first wrong byte %llu)",
			(unsigned long long)c->rx.bad_at);
	if (c->have_trailer)
		fprintf(stderr, "; server: %llu received, status %u",
			(unsigned long long)c->tr.count, c->tr.status);
	fprintf(stderr, "; eof %s; sha256 up %s down %s\n", xc_eof_name(c),
		up, down);
}

static double mbps(double bytes, long long ms)
{
	return ms > 0 ? bytes * 8 / 1000.0 / ms : 0.0;
}

static int run_xfer(const struct opts *o)
{
	struct sigaction sa = { .sa_handler = xfer_alarm };
	long long start, up_ms = 0, down_ms = 0, i, started, failed = 0;
	char up[65], down[65];
	struct xfer_conn *c, *bad = NULL;
	const struct xfer_conn *r;
	double secs;
	int err = 0;

	raise_nofile();
	c = calloc(o->parallel, sizeof(*c));
	if (!c) {
		fprintf(stderr, "sltest: xfer: %s\n", errname(ENOMEM));
		return 1;
	}
	for (i = 0; i < o->parallel; i++) {
		c[i].o = o;
		c[i].idx = i;
		c[i].seed = (uint32_t)(o->seed + i);
		c[i].eof = -1;
		c[i].fail_offset = UINT64_MAX;
		c[i].rx.bad_at = UINT64_MAX;
	}
	xfer_conns = c;
	xfer_nconns = o->parallel;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(o->timeout_s);

	start = now_ms();
	for (started = 0; started < o->parallel; started++) {
		err = xfer_thread(&c[started].tid, xc_run, &c[started], false);
		if (err)
			break;
	}
	for (i = 0; i < started; i++)
		pthread_join(c[i].tid, NULL);
	alarm(0);
	secs = (now_ms() - start) / 1000.0;
	for (i = started; i < o->parallel; i++)
		xc_fail(&c[i], XC_START, -err, NULL);

	for (i = 0; i < o->parallel; i++) {
		if (c[i].tx.done_ms - start > up_ms)
			up_ms = c[i].tx.done_ms - start;
		if (c[i].rx.done_ms - start > down_ms)
			down_ms = c[i].rx.done_ms - start;
		if (c[i].failed) {
			failed++;
			if (!bad)
				bad = &c[i];
		}
		if (o->verbose && i < started)
			xc_verbose(&c[i]);
	}

	printf("{\"ok\":%s,\"connections\":%lld", failed ? "false" : "true",
	       o->parallel);
	if (bad) {
		printf(",\"failed\":%lld,\"connection\":%d,\"stage\":\"%s\"",
		       failed, bad->idx, xc_stages[bad->fail_stage]);
		if (bad->fail_what)
			printf(",\"error\":\"%s\"", bad->fail_what);
		else
			printf(",\"error\":\"%s\"", errname(bad->fail_err));
		if (bad->fail_offset != UINT64_MAX)
			printf(",\"offset\":%llu",
			       (unsigned long long)bad->fail_offset);
		if (bad->have_trailer)
			printf(",\"server_status\":%u,\"server_count\":%llu",
			       bad->tr.status,
			       (unsigned long long)bad->tr.count);
	}
	printf(",\"up\":%lld,\"down\":%lld", o->up, o->down);
	if (!bad) {
		sha256_hex(c[0].sha_up, up);
		sha256_hex(c[0].sha_down, down);
		printf(",\"sha256_up\":\"%s\",\"sha256_down\":\"%s\"", up, down);
	}
	/* The connection reported: the failed one, else connection 0. */
	r = bad ? bad : c;
	if (r->have_trailer)
		printf(",\"server_sha256_ok\":%s",
		       memcmp(r->tr.sha, r->sha_up, 32) ? "false" : "true");
	printf(",\"eof\":\"%s\",\"seconds\":%.3f", xc_eof_name(r), secs);
	printf(",\"mbps_up\":%.1f,\"mbps_down\":%.1f}\n",
	       mbps((double)o->up * o->parallel, up_ms),
	       mbps((double)o->down * o->parallel, down_ms));
	xfer_conns = NULL;
	xfer_nconns = 0;
	free(c);
	return failed ? 1 : 0;
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
"  xfer-serve --tcp PORT [--bind ADDR] [--ready FILE] [--max-seconds S]\n"
"          Bulk transfer peer (protocol: top comment of sltest.c). Per\n"
"          connection: read the header, then at once check the client's\n"
"          stream and its EOF and send our own; then a 64-byte trailer\n"
"          (SHA-256, count, status of what was received), SHUT_WR, close.\n"
"          Blocking sockets, a thread per direction. Binds like serve;\n"
"          runs until SIGTERM/SIGINT or S seconds (default 300): exit 0.\n"
"  xfer    --to ADDR --up BYTES --down BYTES [--msg SPEC] [--seed N]\n"
"          [--parallel P] [--timeout-s S] [--verbose] [--no-half-close]\n"
"          [--bind-port PORT]\n"
"          P connections at once (default 1; connection i uses seed N+i,\n"
"          default N 1), each sending BYTES up while receiving BYTES down,\n"
"          every byte checked, on blocking sockets: SHUT_WR after the\n"
"          upload (not with --no-half-close: the server closes after\n"
"          up bytes), then down bytes, the trailer and recv() == 0 (EOF).\n"
"          --bind-port: the client's own port (with --parallel 1).\n"
"          BYTES: N, NK, NM or NG (powers of 1024). SPEC: the send() size,\n"
"          1..16777216 (default 65536), or random (1..262144). The run is\n"
"          bounded by S seconds (default 120). --verbose: a line per\n"
"          connection on stderr. Prints\n"
"          {\"ok\":true,\"connections\":P,\"up\":B,\"down\":B,\"sha256_up\":H,\n"
"          \"sha256_down\":H,\"server_sha256_ok\":true,\"eof\":\"ok\",\n"
"          \"seconds\":S,\"mbps_up\":X,\"mbps_down\":Y} (hashes of connection\n"
"          0; megabits/s of all connections) or {\"ok\":false,\n"
"          \"connections\":P,\"failed\":F,\"connection\":I,\"stage\":G,\n"
"          \"error\":E,..} for the first failed connection: G is connect,\n"
"          header, up, down, trailer, eof (E: errno name, or extra: bytes\n"
"          instead of EOF) or server (E: the server's status: mismatch,\n"
"          short, eof-error, extra; or count, sha256); a wrong byte is down\n"
"          EBADMSG with \"offset\". At the time bound: \"error\":\"ETIMEDOUT\"\n"
"          with the first unfinished connection and its stage.\n"
"\n"
"ADDR is IP:PORT or [IPv6]:PORT; [::ffff:a.b.c.d]:PORT uses an AF_INET6\n"
"socket. Client steps time out after --timeout ms (default 2000; xfer has\n"
"no step timeout, only --timeout-s). Errors are errno names; EPIPE: peer\n"
"closed early, EPROTO: bad name line or header, EBADMSG: bad echo, payload\n"
"or stream byte. Client modes print one JSON line on stdout.\n"
"Exit status: 0 success (crr: no errors; xfer: every connection ok),\n"
"1 failure, 2 usage error.\n");
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
	{ "up", required_argument, NULL, 'W' },
	{ "down", required_argument, NULL, 'R' },
	{ "msg", required_argument, NULL, 'm' },
	{ "seed", required_argument, NULL, 's' },
	{ "timeout-s", required_argument, NULL, 'S' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "no-half-close", no_argument, NULL, 'H' },
	{ "bind-port", required_argument, NULL, 'B' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct option xfer_serve_options[] = {
	{ "tcp", required_argument, NULL, 'c' },
	{ "bind", required_argument, NULL, 'b' },
	{ "ready", required_argument, NULL, 'r' },
	{ "max-seconds", required_argument, NULL, 'M' },
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
	{ "xfer", "tWRmsPSvHB", "tWR", run_xfer },
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

/* N, NK, NM or NG (powers of 1024). */
static int parse_bytes(const char *s, long long *out)
{
	unsigned long long v;
	int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	}
	if (shift)
		end++;
	if (*end || v > (unsigned long long)XFER_BYTES_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
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
	case 'W':
		err = parse_bytes(arg, &o->up);
		break;
	case 'R':
		err = parse_bytes(arg, &o->down);
		break;
	case 'm':
		if (!strcmp(arg, "random"))
			o->msg = 0;
		else
			err = parse_num(arg, 1, XFER_MSG_MAX, &o->msg);
		break;
	case 's':
		err = parse_num(arg, 0, UINT32_MAX, &o->seed);
		break;
	case 'S':
		err = parse_num(arg, 1, 86400, &o->timeout_s);
		break;
	case 'v':
		o->verbose = true;
		break;
	case 'H':
		o->no_half_close = true;
		break;
	case 'B':
		err = parse_num(arg, 1, 65535, &o->bind_port);
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
		.msg = 65536,
		.seed = 1,
		.timeout_s = 120,
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

static int xfer_serve_main(int argc, char **argv)
{
	struct xfer_serve_opts o = { .bind = "::", .max_ms = 300000 };
	int c;

	while ((c = getopt_long(argc, argv, "h", xfer_serve_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'c':
			if (parse_num(optarg, 1, 65535, &o.tcp_port))
				return bad_value("--tcp", optarg);
			break;
		case 'b':
			o.bind = optarg;
			break;
		case 'r':
			o.ready = optarg;
			break;
		case 'M':
			if (parse_secs(optarg, &o.max_ms))
				return bad_value("--max-seconds", optarg);
			break;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sltest: xfer-serve: unexpected '%s'\n",
			argv[optind]);
		return 2;
	}
	if (!o.tcp_port) {
		fprintf(stderr, "sltest: xfer-serve: --tcp PORT is required\n");
		return 2;
	}
	return run_xfer_serve(&o);
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
	if (!strcmp(argv[1], "xfer-serve"))
		return xfer_serve_main(argc - 1, argv + 1);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			return client_main(&modes[i], argc - 1, argv + 1);
	fprintf(stderr, "sltest: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
