// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * serve.c - sltest serve: the backend, one thread, level-triggered epoll.
 */
#include "sltest.h"


struct conn {
	struct src src;
	struct conn *prev, *next;
	uint32_t events;	/* registered interest, 0 before EPOLL_CTL_ADD */
	size_t off, len;	/* pending output is buf[off, len) */
	char buf[CONN_BUF];
};


/* Errors of the serving loop, at most one line a second. */
void serve_warn(const char *what, int err)
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

int open_socket(struct server *s, struct src *src, int type,
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

int open_signals(struct server *s)
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

int touch(const char *path)
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
void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int run_serve(const struct serve_opts *o)
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

