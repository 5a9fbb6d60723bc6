/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * loop.h - one thread, one epoll set: the event loop of the agent and of
 * the node proxy, and the one monotonic clock every program reads.
 *
 * Contract: a handler is registered for one fd with the events it wants;
 * loop_wait() blocks at most timeout_ms (-1: no limit) and calls each
 * ready handler's fn with the epoll events. Handlers are embedded in the
 * caller's structures (container_of style), so the loop allocates nothing.
 * Functions return 0 or -errno.
 */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include <stdint.h>

struct loop_handler {
	void (*fn)(struct loop_handler *h, uint32_t events);
};

struct loop {
	int efd;
};

int loop_init(struct loop *l);
void loop_fini(struct loop *l);
int loop_add(struct loop *l, int fd, uint32_t events, struct loop_handler *h);
int loop_mod(struct loop *l, int fd, uint32_t events, struct loop_handler *h);
void loop_del(struct loop *l, int fd);
/* Wait and dispatch: the number of handlers called, or -errno (EINTR is 0). */
int loop_wait(struct loop *l, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t loop_now_ms(void);

#endif /* SL_LOOP_H */
