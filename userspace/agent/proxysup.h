/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxysup.h - the agent's side of the node proxy (sluice-proxy): start it,
 * feed it, hear from it, restart it without refusing a connection.
 *
 * The agent owns <run dir>/proxy.sock (lib/wire/proxylink.h). Every proxy of the
 * node connects there and says hello with its listening sockets; the agent
 * keeps a copy of them. It sends each proxy the node's credentials, every
 * workload certificate with its key, and the applied snapshot, and turns
 * the proxy's reports into its own metrics and flow events.
 *
 * Contract:
 * - A proxy outlives the agent: an agent that starts waits (up to 1.5 s)
 *   for the running proxy to link before it starts one.
 * - Crash: a serving proxy that exits without draining is restarted at
 *   once on the sockets the agent holds, so connections wait in the
 *   backlog instead of being refused (a proxy that keeps crashing is
 *   restarted with backoff, 0.5 s doubling to 10 s). Connections the crashed
 *   process carried are lost.
 * - Hot restart (psup_restart(): an upgrade, SIGUSR2 to the agent, or a
 *   proxy of another version than the agent's): a successor starts on the
 *   same sockets; once it serves, the old proxy drains (drain.ms) and
 *   exits. Nothing is refused, nothing established is cut before the
 *   drain timeout.
 * - Nothing here blocks. psup_tick() at least every 100 ms.
 */
#ifndef SL_AGENT_PROXYSUP_H
#define SL_AGENT_PROXYSUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "agent/telemetry.h"
#include "lib/core/loop.h"

struct psup_opts {
	const char *node;
	const char *pin_root;
	const char *run_dir;
	const char *bin;             /* the sluice-proxy to start */
	const char *hbone_addr, *outbound_addr;
	const char *outbound_addr6;  /* NULL: none */
	unsigned int handshake_ms;   /* 0: the proxy's default */
	unsigned int drain_ms;
	const char *log_level;
	struct telemetry *tm;        /* reports go here */
	struct loop *loop;
	/* a proxy is listening (capture may go on) */
	void (*on_listening)(void *arg);
	void *arg;
};

struct psup;

/* Bind the link socket. NULL after logging why. */
struct psup *psup_new(const struct psup_opts *o);
/* Close the link; running proxies go on. */
void psup_free(struct psup *ps);
/* The node has its credentials: find the running proxy or start one. */
void psup_start(struct psup *ps, X509 *ca, X509 *node_cert, EVP_PKEY *node_key);
/* A workload certificate with its key (cert NULL: the identity is gone). */
void psup_set_cert(struct psup *ps, uint32_t id, const char *spiffe, EVP_PKEY *key, X509 *cert);
void psup_set_snapshot(struct psup *ps, const char *text, size_t len, uint64_t version);
/* Hot restart: a successor on the same sockets, then the old one drains.
 * 0, or -errno (-EAGAIN: no serving proxy, or one is starting already). */
int psup_restart(struct psup *ps, const char *why);
/* Timers; true when the proxies' state changed (status.json is due). */
bool psup_tick(struct psup *ps);
/* [{pid, version, started, state, tunnels, ...}] for status.json. */
json_t *psup_status(const struct psup *ps);


#endif /* SL_AGENT_PROXYSUP_H */
