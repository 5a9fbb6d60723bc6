// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * link.c - the node proxy's end of the agent link (link.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/core/log.h"
#include "proxy/link.h"

#define RETRY_MS 200

struct link_qmsg {
	enum pl_type type;
	size_t len;
	char body[];
};

static void disconnect(struct link *k, const char *why)
{
	if (k->fd < 0)
		return;
	loop_del(k->loop, k->fd);
	close(k->fd);
	k->fd = -1;
	k->retry_ms = loop_now_ms() + RETRY_MS;
	log_info("proxy: link to the agent lost (%s); serving on with what it holds", why);
}

static void flush(struct link *k)
{
	while (k->fd >= 0 && k->qn) {
		struct link_qmsg *m = k->q[k->qhead];
		int e = pl_send(k->fd, m->type, m->body, m->len, NULL, NULL, NULL, 0);

		if (e == -EAGAIN)
			return;
		if (e) {
			disconnect(k, strerror(-e));
			return;
		}
		free(m);
		k->q[k->qhead] = NULL;
		k->qhead = (k->qhead + 1) % LINK_QUEUE;
		k->qn--;
	}
}

static void on_event(struct loop_handler *h, uint32_t events)
{
	struct link *k = (struct link *)((char *)h - offsetof(struct link, h));
	static char buf[PL_MAX_MSG] __attribute__((aligned(8)));

	if (events & EPOLLOUT)
		flush(k);
	while (k->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		int fds[PL_MAX_FDS], nfds;
		long n = pl_recv(k->fd, buf, fds, &nfds);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			disconnect(k, n ? strerror((int)-n) : "the agent closed it");
			break;
		}
		k->on_msg(k->arg, (const struct pl_hdr *)buf, n, fds, nfds);
	}
	if (k->fd >= 0)
		loop_mod(k->loop, k->fd, EPOLLIN | (k->qn ? EPOLLOUT : 0), &k->h);
}

static void try_connect(struct link *k)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	k->retry_ms = loop_now_ms() + RETRY_MS;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", k->path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (!k->warned)
			log_info("proxy: no agent at %s yet (%s); retrying every %d ms", k->path,
				 strerror(errno), RETRY_MS);
		k->warned = true;
		close(fd);
		return;
	}
	{
		int sz = 4 << 20;

		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	e = pl_send(fd, PL_HELLO, &k->hello, sizeof(k->hello), NULL, NULL, k->fds, k->nfds);
	if (e || loop_add(k->loop, fd, EPOLLIN | EPOLLOUT, &k->h)) {
		log_warn("proxy: hello to the agent failed: %s", strerror(e ? -e : errno));
		close(fd);
		return;
	}
	k->fd = fd;
	k->warned = false;
	log_info("proxy: linked to the agent at %s", k->path);
}

int link_init(struct link *k, const char *run_dir, struct loop *l, link_msg_fn fn, void *arg)
{
	memset(k, 0, sizeof(*k));
	k->fd = -1;
	k->loop = l;
	k->h.fn = on_event;
	k->on_msg = fn;
	k->arg = arg;
	if ((size_t)snprintf(k->path, sizeof(k->path), "%s/" PL_SOCK_NAME, run_dir) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	k->q = calloc(LINK_QUEUE, sizeof(*k->q));
	return k->q ? 0 : -ENOMEM;
}

void link_set_hello(struct link *k, const struct pl_hello *h, const int fds[PL_LS_MAX])
{
	k->hello = *h;
	k->hello.fds = 0;
	k->nfds = 0;
	for (int i = 0; i < PL_LS_MAX; i++) {
		if (fds[i] < 0)
			continue;
		k->hello.fds |= 1u << i;
		k->fds[k->nfds++] = fds[i];
	}
}

void link_tick(struct link *k)
{
	if (k->fd < 0 && loop_now_ms() >= k->retry_ms)
		try_connect(k);
}

bool link_up(const struct link *k) { return k->fd >= 0; }

void link_event(struct link *k, enum pl_type type, const void *body, size_t len)
{
	struct link_qmsg *m;

	if (k->fd >= 0 && !k->qn) {
		int e = pl_send(k->fd, type, body, len, NULL, NULL, NULL, 0);

		if (!e)
			return;
		if (e != -EAGAIN)
			disconnect(k, strerror(-e));
	}
	if (k->qn >= LINK_QUEUE || !(m = malloc(sizeof(*m) + len))) {
		k->dropped++;
		return;
	}
	m->type = type;
	m->len = len;
	if (len)
		memcpy(m->body, body, len);
	k->q[(k->qhead + k->qn) % LINK_QUEUE] = m;
	k->qn++;
	if (k->fd >= 0)
		loop_mod(k->loop, k->fd, EPOLLIN | EPOLLOUT, &k->h);
}

void link_status(struct link *k, const struct pl_status *st)
{
	struct pl_status s = *st;

	if (k->fd < 0)
		return;
	s.events_dropped = k->dropped;
	if (pl_send(k->fd, PL_STATUS, &s, sizeof(s), NULL, NULL, NULL, 0) == -EPIPE)
		disconnect(k, "the agent closed it");
}

void link_fini(struct link *k)
{
	if (k->fd >= 0) {
		flush(k);
		loop_del(k->loop, k->fd);
		close(k->fd);
	}
	k->fd = -1;
	for (size_t i = 0; k->q && i < k->qn; i++)
		free(k->q[(k->qhead + i) % LINK_QUEUE]);
	free(k->q);
	k->q = NULL;
}
