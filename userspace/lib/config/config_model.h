/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config_model.h - a validated config read as typed workloads and services,
 * for the cross-resource checks (config_check.c) and the per-node compiler
 * (lib/compile/compile.c), so that both read hosts, selectors, addresses and
 * ports the same way.
 *
 * Contract: sl_model_build() runs on a config whose documents validated
 * (sl_config_parse/from_json); it reads the stored JSON and allocates only
 * the arrays below (strings and json_t pointers point into the config,
 * which must outlive the model). Order follows the config (kind, namespace,
 * name), so everything derived from it is deterministic.
 */
#ifndef SL_CONFIG_MODEL_H
#define SL_CONFIG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "lib/config/config.h"

/* The DNS suffix of Service hosts: NAME.NAMESPACE.svc.cluster.local. */
#define SL_DNS_SUFFIX "svc.cluster.local"
/* Istio's root namespace: its policies apply to the whole mesh. */
#define SL_ROOT_NAMESPACE "istio-system"

/* A WorkloadEntry, or one endpoint of a ServiceEntry (r is the entry). */
struct sl_wl {
	const struct sl_resource *r;
	const char *ns, *name;
	const char *sa;               /* serviceAccount, "default" if not given */
	const json_t *labels, *ports; /* NULL if not given */
	bool has4, has6;
	__be32 addr4[4], addr6[4];
	uint32_t weight;              /* 1 if not given */
	const char *node, *netns, *ifname, *cgroup; /* sluice.io/ annotations or NULL */
};

struct sl_svc_port {
	const char *name;             /* NULL if not given */
	uint16_t port;
	uint16_t target;              /* numeric targetPort, 0 if none */
	const char *target_name;      /* named targetPort, NULL if none */
	uint8_t proto;                /* IPPROTO_TCP or IPPROTO_UDP */
};

/* A v1 Service or a ServiceEntry. */
struct sl_svc {
	const struct sl_resource *r;
	bool entry;                   /* ServiceEntry */
	bool passthrough;             /* ServiceEntry resolution NONE: no VIP entries */
	size_t nhosts;
	char **hosts;                 /* Service: its FQDN; ServiceEntry: spec.hosts */
	size_t nvips;
	__be32 (*vips)[4];
	size_t nports;
	struct sl_svc_port *ports;
	const json_t *selector;       /* labels the backends carry; NULL: none */
	size_t neps;
	struct sl_wl *eps;            /* ServiceEntry endpoints */
	/* The rules in force for it (the first of each in config order), NULL
	 * if none: a VirtualService binds only once every destination it routes
	 * to exists (sl_vs_missing); until then it is stored and inert. */
	const struct sl_resource *vs, *dr;
};

struct sl_label_ix;

struct sl_model {
	size_t nwl;
	struct sl_wl *wl;             /* WorkloadEntries */
	size_t nsvc;
	struct sl_svc *svc;
	size_t nix;
	struct sl_label_ix *ix;       /* (namespace, label, value) -> workload, sorted */
	size_t nhostix;               /* slots of hostix (a power of two) */
	struct sl_host_ix { const char *host; const struct sl_svc *svc; } *hostix; /* hashed */
};

/* 0 or -ENOMEM. */
int sl_model_build(const struct sl_config *c, struct sl_model *m);
void sl_model_free(struct sl_model *m);

/* The workloads of namespace `ns` (NULL: any) that carry every label of
 * `selector` (NULL or empty: all of them), in model order, as a malloc'd
 * array in *out (NULL when none). Returns the count, or -ENOMEM. */
long sl_model_select(const struct sl_model *m, const char *ns, const json_t *selector,
		     const struct sl_wl ***out);
/* The spec.selector.matchLabels of an AuthorizationPolicy or
 * PeerAuthentication (NULL: none), and whether the policy applies to `w`:
 * the policy's namespace, or every namespace from the root namespace. */
const json_t *sl_policy_selector(const struct sl_resource *r);
bool sl_policy_selects(const struct sl_resource *r, const struct sl_wl *w);

/* Every key=value of `selector` (a JSON object of strings; NULL or empty
 * selects everything) is in `labels`. */
bool sl_labels_match(const json_t *selector, const json_t *labels);
/* `host` as written in a rule of namespace `ns`, made fully qualified the
 * way Istio does: a name without dots is NAME.NS.svc.cluster.local. */
void sl_host_fqdn(const char *host, const char *ns, char *out, size_t len);
/* The service with this (fully qualified) host, or NULL. */
const struct sl_svc *sl_model_host(const struct sl_model *m, const char *fqdn);
/* The references of VirtualService `vs`'s routes (destination host,
 * subset, port) that name nothing in the model: each is a warning in d
 * (NULL: only counted), as Istio's analyzer reports IST0101. Returns the
 * count; a VirtualService with any is inert. */
size_t sl_vs_missing(const struct sl_model *m, const struct sl_resource *vs, struct sl_diags *d);
/* The subset `name` of the DestinationRule `dr` (its JSON), or NULL. */
const json_t *sl_dr_subset(const struct sl_resource *dr, const char *name);
/* The port of workload `w` named `name` in its ports map, or 0. */
uint16_t sl_wl_port(const struct sl_wl *w, const char *name);
/* The port w serves service port sp on, 0 if it does not: its ports entry
 * for the service port's name, else a numeric targetPort, else its entry
 * for a named targetPort, else the service port. */
uint16_t sl_backend_port(const struct sl_wl *w, const struct sl_svc_port *sp);
/* A workload's SPIFFE ID: spiffe://TD/ns/NS/sa/SA. */
void sl_wl_spiffe(const struct sl_wl *w, const char *trust_domain, char *out, size_t len);

#endif /* SL_CONFIG_MODEL_H */
