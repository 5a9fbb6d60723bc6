/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync.h - the agent's link to sluice-control: join once with a token and
 * a CSR, then hold the watch stream over mutual TLS, apply each pushed
 * snapshot through the caller's apply function, and answer ACK or NACK.
 *
 * Contract: nothing here blocks; the caller polls sync_fd() for
 * sync_events() with at most sync_timeout_ms() and calls sync_handle().
 * The node key and certificate live in the state dir (key 0600); the last
 * snapshot that applied is saved there atomically by sync_persist_due(),
 * called after sync_handle() and after whatever waits for the applied
 * version (once changes pause), and by sync_free(); sync_start() applies
 * it again, so an agent that starts while the
 * control plane is down still converges to its last good state. A NACKed
 * snapshot changes nothing (the apply function guarantees it) and is not
 * saved. The control URL may list replicas (https://A:P,https://B:P): a
 * lost or refused connection moves to the next one at once, and only a
 * whole round of failed attempts waits, with jittered exponential backoff
 * (0.5 s doubling to 30 s); the version held is offered to every replica
 * (x-sluice-have), so a move resumes without a whole snapshot when the
 * replica is at that version. A join the control plane refuses (bad token)
 * is fatal: sync_fatal() turns true and the reason is logged.
 */
#ifndef SL_AGENT_SYNC_H
#define SL_AGENT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "agent/sync_snap.h"

#define SYNC_DEFAULT_STATE_BASE "/var/lib/sluice"

struct sync_opts {
	const char *node;
	const char *url;           /* https://HOST:PORT[,https://HOST:PORT...] */
	const char *token;         /* needed until the node has a certificate */
	const char *ca_file;       /* the control plane's CA */
	const char *state_dir;
	uint16_t hbone_port;       /* reported with the watch (0: no proxy) */
	const char *hbone_host;    /* the address to report; NULL: the local
				    * address of the control plane connection */
};

/* The answer to sync_post(): status -1 when the connection went away. */
typedef void (*sync_resp_fn)(void *arg, int status, const char *body, size_t len);

struct sync;

struct sync *sync_new(const struct sync_opts *o, sync_apply_fn apply, void *arg);
/* Apply the saved last good snapshot, if any; true if one applied. */
bool sync_start(struct sync *s);
int sync_fd(const struct sync *s);              /* -1: nothing to poll */
/* Changes whenever sync_fd() is a new connection, even with the same number. */
unsigned int sync_fd_serial(const struct sync *s);
short sync_events(const struct sync *s);
int sync_timeout_ms(const struct sync *s);      /* -1: no timeout (poll's) */
void sync_handle(struct sync *s, short revents);
bool sync_fatal(const struct sync *s);
uint64_t sync_version(const struct sync *s);    /* last applied; 0: none */
/* Write the last applied snapshot to the state dir now, if sync_handle()
 * applied one since. Called after the callers that wait on sync_version()
 * (enroll_tick()), so they do not wait for the disk. */
void sync_persist(struct sync *s);
/* sync_persist() once changes paused SYNC_SAVE_QUIET_MS, or the first
 * unsaved one is SYNC_SAVE_LATEST_MS old (sync_int.h); sync_timeout_ms()
 * wakes the loop for it. */
void sync_persist_due(struct sync *s);
void sync_free(struct sync *s);

/* Is the watch stream's connection up (requests can go out)? */
bool sync_connected(const struct sync *s);
/* POST a JSON body on the watch connection; `fn` gets the answer, or
 * status -1 if the connection drops first. 0 or -errno (-ENOTCONN: not
 * connected). */
int sync_post(struct sync *s, const char *path, const char *body, sync_resp_fn fn, void *arg);
/* The node's credentials and the mesh CA (owned by sync). */
X509 *sync_ca(const struct sync *s);
X509 *sync_node_cert(const struct sync *s);
EVP_PKEY *sync_node_key(const struct sync *s);


#endif /* SL_AGENT_SYNC_H */
