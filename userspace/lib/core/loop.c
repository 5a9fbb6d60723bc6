// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loop.c - the epoll loop and the monotonic clock (loop.h).
 */
#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/loop.h"

int loop_init(struct loop *l)
{
	l->efd = epoll_create1(EPOLL_CLOEXEC);
	return l->efd < 0 ? -errno : 0;
}

void loop_fini(struct loop *l)
{
	if (l->efd >= 0)
		close(l->efd);
	l->efd = -1;
}

int loop_add(struct loop *l, int fd, uint32_t events, struct loop_handler *h)
{
	struct epoll_event e = { .events = events, .data.ptr = h };

	return epoll_ctl(l->efd, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events, struct loop_handler *h)
{
	struct epoll_event e = { .events = events, .data.ptr = h };

	return epoll_ctl(l->efd, EPOLL_CTL_MOD, fd, &e) ? -errno : 0;
}

void loop_del(struct loop *l, int fd)
{
	epoll_ctl(l->efd, EPOLL_CTL_DEL, fd, NULL);
}

int loop_wait(struct loop *l, int timeout_ms)
{
	struct epoll_event ev[64];
	int n = epoll_wait(l->efd, ev, 64, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_handler *h = ev[i].data.ptr;

		h->fn(h, ev[i].events);
	}
	return n;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
