// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xfer_serve.c - sltest xfer-serve: a listener, a thread per connection and
 * one to send.
 */
#include "xfer.h"


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

int run_xfer_serve(const struct xfer_serve_opts *o)
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

