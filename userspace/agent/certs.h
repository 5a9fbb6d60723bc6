/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * certs.h - the workload certificates of the node proxy (Citadel's client
 * side): one P-256 key per local workload identity of the current
 * snapshot, generated here and never written anywhere; a CSR naming the
 * identity goes to the control plane (POST /v1/certs on the watch
 * connection, authenticated by the node certificate), which signs only
 * identities of workloads it places on this node.
 *
 * Contract: a certificate is renewed at half of its remaining life when
 * it arrived (with a new key); a failed request is retried with backoff
 * (1 s doubling to 30 s). Each new certificate, and each identity
 * dropped, goes to the caller's certs_fn (the agent hands them to the
 * proxy, agent/proxysup.h). <run dir>/certs.json lists identity, serial,
 * not_after and renew_at for `sluicectl proxy certs`, rewritten
 * atomically on every change.
 */
#ifndef SL_AGENT_CERTS_H
#define SL_AGENT_CERTS_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "agent/sync.h"
#include "lib/node/snapshot.h"

struct wcert {
	uint32_t id;               /* numeric identity */
	char spiffe[256];
	EVP_PKEY *key;             /* of the certificate below */
	X509 *cert;                /* NULL until the first one arrives */
	char serial[80];
	long long not_after;       /* epoch seconds */
	uint64_t renew_ms;         /* monotonic: when to ask again */
	unsigned int failures;
	bool inflight, wanted;
};

struct certs;

/* A new certificate for the identity, or (cert NULL) the identity dropped. */
typedef void (*certs_fn)(void *arg, uint32_t id, const char *spiffe, EVP_PKEY *key, X509 *cert);

struct certs *certs_new(struct sync *sy, const char *run_dir, certs_fn fn, void *arg);
void certs_free(struct certs *c);
/* The identities of the snapshot's local workloads are the ones wanted;
 * certificates of identities no longer wanted are dropped. */
void certs_set_wanted(struct certs *c, const struct snapshot *s);
/* Ask for what is due; call at least once a second. */
void certs_tick(struct certs *c);
/* The identity's current certificate, or NULL (none yet). */
const struct wcert *certs_get(const struct certs *c, uint32_t id);

#endif /* SL_AGENT_CERTS_H */
