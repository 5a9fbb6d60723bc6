// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * client_io.c - sltest: client I/O on nonblocking sockets, every wait bounded
 * by a deadline.
 */
#include "sltest.h"


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
int tcp_open(const struct target *t, char *name)
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
int echo_check(int fd, const char *msg, size_t len, int timeout_ms)
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
int tcp_ping(const struct target *t, char *name,
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

int tcp_name(const struct target *t, char *name)
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
int udp_exchange(const struct target *t, char *name,
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

