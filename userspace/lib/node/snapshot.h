/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * snapshot.h - a node's desired state, the JSON document the agent reads
 * from --snapshot (and the control plane will push). Format: docs/snapshot.md.
 *
 * Parsing is strict: unknown fields, wrong types, bad addresses, duplicate
 * VIPs and out-of-range numbers are refused with a message naming the source
 * and the field ("snap.json: services[1].backends[0].weight: ..."). A refused
 * snapshot produces no struct snapshot, so nothing downstream can apply half
 * of it.
 */
#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sluice_lb.h"
#include "sluice_policy.h"
#include "sluice_traffic.h"

#define SL_NAME_MAX 254

struct snap_backend {
	struct sl_backend be;     /* address, port, proto as the map holds them */
	uint32_t weight;          /* 1 .. SL_WEIGHT_MAX */
};

struct snap_service {
	char *name;               /* malloc'd, at most SL_NAME_MAX characters */
	struct sl_svc_key key;
	size_t nbackends;
	struct snap_backend *backends;
	/* "traffic" (docs/snapshot.md): the service's traffic policy, as
	 * sl_svc_policy holds it except nbackends, which the apply counts. */
	bool has_traffic;
	struct sl_svc_policy traffic;
	/* nonzero: this parse's number in snapshot_from_json_cached(), kept
	 * while the cache keeps the parse and never given to another: equal
	 * serials are the same service, unchanged (lbmap_apply() carries it
	 * over without comparing) */
	uint64_t serial;
};

/* A CIDR identity: addresses of a prefix that are not a workload's
 * (AuthorizationPolicy ipBlocks), inserted into sl_ipcache. */
struct snap_cidr {
	struct sl_ipcache_key key;   /* prefixlen in the IPv4-mapped 128-bit space */
	uint32_t identity;
};

/* An mTLS mode from PeerAuthentication (the data plane uses it in a later
 * issue; today the agent only stores it). */
enum snap_mtls { SNAP_MTLS_UNSET = 0, SNAP_MTLS_STRICT, SNAP_MTLS_PERMISSIVE, SNAP_MTLS_DISABLE };

struct snap_mtls_port {
	uint16_t port;
	enum snap_mtls mode;
};

/* A workload identity: the control plane's number for a SPIFFE ID. */
struct snap_identity {
	uint32_t id;                 /* >= SL_ID_FIRST_WORKLOAD */
	char spiffe[256];            /* spiffe://TD/ns/NS/sa/SA */
};

/* A workload anywhere in the mesh; local ones (on this node) also name
 * their network namespace and host-side veth. */
struct snap_workload {
	char name[SL_NAME_MAX + 1];
	char ns[SL_NAME_MAX + 1];
	uint32_t identity;
	bool has_v4, has_v6;
	__be32 addr4[4];             /* IPv4-mapped */
	__be32 addr6[4];
	bool local;
	char netns[256];             /* path, e.g. /run/netns/NAME */
	char ifname[16];             /* host-side veth in the node's netns */
	char cgroup[256];            /* local: the pod's cgroup v2 path, "" if not given */
	char node[64];               /* the node it runs on, "" if not said */
	enum snap_mtls mtls;         /* SNAP_MTLS_UNSET if the snapshot says nothing */
	size_t nmtls_ports;
	struct snap_mtls_port *mtls_ports;
};

enum snap_action { SNAP_ALLOW = 1, SNAP_DENY = 2 };

/* A compiled L4 policy entry. */
struct snap_policy {
	enum snap_action action;
	uint32_t src;                /* identity or SL_ID_ANY */
	uint32_t dst;                /* identity */
	uint8_t proto;
	uint16_t port;               /* 0: any */
};

/* A node's HBONE address (docs/snapshot.md), for the proxy to reach a
 * remote workload's node. */
struct snap_node {
	char name[64];
	char hbone[64];              /* "IP:PORT" or "[IPv6]:PORT" */
};

struct snapshot {
	uint64_t version;
	size_t nservices;
	struct snap_service *services;
	size_t nidentities;
	struct snap_identity *identities;
	size_t nworkloads;
	struct snap_workload *workloads;
	size_t npolicies;
	struct snap_policy *policies;
	size_t ncidrs;
	struct snap_cidr *cidrs;
	size_t nnodes;
	struct snap_node *nodes;
	/* the services' names and backends are the cache's
	 * (snapshot_from_json_cached) */
	bool services_borrowed;
};

/* The node entry named `name`, or NULL. */
const struct snap_node *snapshot_node(const struct snapshot *s, const char *name);

/* The identity entry for `id`, or NULL. */
const struct snap_identity *snapshot_identity(const struct snapshot *s, uint32_t id);

/* 0, or -EINVAL with a message in err. `src` names the input in messages. */
int snapshot_parse(const char *text, size_t len, const char *src,
		   struct snapshot *out, char *err, size_t errlen);
/* The same from a document already parsed (messages give the field path
 * only; duplicate keys cannot be told). An array item may be packed (a
 * string of its JSON text, lib/wire/snapdelta.h): it is decoded one at a
 * time, so the agent never holds a large snapshot as objects. */
int snapshot_from_json(json_t *root, const char *src, struct snapshot *out, char *err,
		       size_t errlen);

/*
 * The services a snapshot_from_json_cached() call parsed, by their item's
 * json_t: a later call given the cache takes a service whose packed item
 * is the very same json_t (an item the index of lib/wire/snapdelta.h kept
 * across a delta) instead of parsing it again. Holds a reference to each
 * item, so an address is never reused for another item while the cache
 * knows it. Zeroed: empty.
 */
struct snap_cache {
	size_t n;
	struct snap_cached *e;       /* sorted by item address */
	/* for one call, set by the caller: packed items new in this
	 * snapshot whose decoded form it still has (a delta's items before
	 * they were packed), sorted by packed item address; such a service
	 * is parsed from that form, not decoded again from its text */
	const struct snap_fresh *fresh;
	size_t nfresh;
};
struct snap_cached {
	json_t *item;
	struct snap_service *svc;    /* parsed from item (malloc'd, its own name and backends) */
};
struct snap_fresh {
	const json_t *packed;        /* the item as the snapshot holds it */
	json_t *decoded;             /* the same item as an object */
};
/* Sort for snap_cache.fresh. */
void snap_fresh_sort(struct snap_fresh *f, size_t n);
void snap_cache_free(struct snap_cache *c);
/* snapshot_from_json(), then the cache holds the services of this
 * snapshot (or nothing, if the snapshot is refused). The snapshot's
 * services borrow their names and backends from the cache: free it
 * before the cache is used again or freed. */
int snapshot_from_json_cached(json_t *root, const char *src, struct snapshot *out,
			      struct snap_cache *cache, char *err, size_t errlen);

int snapshot_load(const char *path, struct snapshot *out, char *err, size_t errlen);
void snapshot_free(struct snapshot *s);

#endif /* SL_SNAPSHOT_H */
