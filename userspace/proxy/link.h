/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * link.h - the node proxy's end of the link to the agent
 * (lib/wire/proxylink.h): connect to <run dir>/proxy.sock and say hello with
 * the listening sockets, take what the agent sends, and send reports.
 *
 * Contract: the link is never needed to serve. While the agent is away
 * (killed, restarting, upgrading) the proxy goes on with what it holds;
 * the link retries every 200 ms, and says hello again to the agent that
 * comes back. Events (flows, refusals) that cannot go out wait in a queue
 * of LINK_QUEUE messages, sent first once the agent is back; past that
 * they are dropped and counted (pl_status.events_dropped).
 */
#ifndef SL_PROXY_LINK_H
#define SL_PROXY_LINK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/core/loop.h"
#include "lib/wire/proxylink.h"

#define LINK_QUEUE 8192

/* A message from the agent; fds are the callee's to keep or close. */
typedef void (*link_msg_fn)(void *arg, const struct pl_hdr *msg, long len, int *fds, int nfds);

struct link_qmsg;

struct link {
	char path[PATH_MAX];
	int fd;                     /* -1: not connected */
	struct loop_handler h;
	struct loop *loop;
	uint64_t retry_ms;
	bool warned;
	struct pl_hello hello;
	int fds[PL_LS_MAX];         /* sent with every hello */
	int nfds;
	link_msg_fn on_msg;
	void *arg;
	struct link_qmsg **q;       /* waiting events, oldest first */
	size_t qhead, qn;
	uint64_t dropped;
};

/* 0 or -errno. Nothing is connected until link_tick(). */
int link_init(struct link *k, const char *run_dir, struct loop *l, link_msg_fn fn, void *arg);
/* What hello says and hands over, from now on. */
void link_set_hello(struct link *k, const struct pl_hello *h, const int fds[PL_LS_MAX]);
/* Connect when due; call at least every 200 ms. */
void link_tick(struct link *k);
bool link_up(const struct link *k);
/* An event (PL_FLOW, PL_REFUSED, PL_MISMATCH): sent, queued or dropped. */
void link_event(struct link *k, enum pl_type type, const void *body, size_t len);
/* A status: sent now or not at all. */
void link_status(struct link *k, const struct pl_status *st);
void link_fini(struct link *k);

#endif /* SL_PROXY_LINK_H */
