/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lbmap.h - the load balancer's pinned maps: read them back into memory and
 * reconcile them with a snapshot by writing only the difference.
 *
 * The maps are the state: a restarted agent reads them back (service and
 * backend ids included) instead of keeping a file of its own, so adopting
 * pinned state and applying a snapshot are the same operation.
 *
 * Write order keeps every connect() consistent (headers/sluice_lb.h):
 * removed services go first (service entry, then slots, policy and state);
 * then for each added or changed service: new backends, its traffic policy
 * and the state entries the BPF side counts in, slots of the inactive
 * generation, the service entry (an atomic flip), and the old generation's
 * slots (and the policy, if the service no longer has one); last, backends
 * no longer referenced, slots nothing points at (left over by a crash
 * mid-apply) and backend states of no service that no connection holds.
 */
#ifndef SL_LBMAP_H
#define SL_LBMAP_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_lb.h"
#include "sluice_traffic.h"
#include "lib/node/snapshot.h"

struct lbmap {
	int svc_fd;
	int slot_fd;
	int be_fd;
	int rev_fd;
	/* traffic policy (headers/sluice_traffic.h) */
	int pol_fd;
	int st_fd;
	int bst_fd;
	int held_fd;
	int aff_fd;
	int tpc_fd;
	/* sl_svc_vip (headers/sluice_lb.h), or -1 if this install has none
	 * (sluicectl only reads the others) */
	int vip_fd;
	/* bpf/admin.bpf.c's sl_be_forget (the agent's), or -1: a backend
	 * state is then deleted as it is, ejection and all */
	int forget_fd;
	/* what the last lbmap_apply() left in the maps, which nothing but
	 * lbmap_apply() writes: the next apply starts from it instead of
	 * reading the maps back. NULL: read them (first apply, or the last
	 * one failed part way). */
	struct lb_live *known;
	/* what the services, backends and slots maps hold (their max_entries,
	 * which may be an earlier install's: agent/datapath.c) */
	uint32_t max_svc, max_be, max_slots;
	/* where the next new service and backend ids are looked for: ids
	 * rotate, so a removed service's id, which connections still open
	 * may count against, is not given to another soon (0: after the
	 * highest in use) */
	uint32_t svc_next, be_next;
};

#define LBMAP_NFDS 10

struct live_svc {
	struct sl_svc_key key;
	struct sl_svc_val val;
	uint32_t *slots;          /* backend id per slot, val.count of them */
	/* the service as the apply that wrote it was given it: the serial of
	 * its parse, or (without one) a copy of its backends; and their ids.
	 * A service given the same again is carried over as it is. None after
	 * lbmap_read(). */
	uint64_t in_serial;
	struct snap_backend *in;
	uint32_t *in_ids;
	uint32_t nin;
};

struct live_be {
	uint32_t id;
	struct sl_backend be;
};

struct lb_live {
	size_t nsvc;
	struct live_svc *svc;     /* sorted by key */
	size_t nbe;
	struct live_be *be;       /* sorted by address, port, proto */
	size_t nslotkeys;
	/* every key in the slots map, after lbmap_read(); none in what
	 * lbmap_apply() keeps, where the slots are exactly each service's
	 * val.count in its generation val.gen */
	struct sl_slot_key *slotkeys;
};

struct lb_apply_stats {
	unsigned int svc_added, svc_updated, svc_removed, svc_unchanged;
	unsigned int be_added, be_removed, slots_gc;
	unsigned int policies;    /* services with a traffic policy */
	uint32_t *svc_ids;        /* the caller's, want->nservices long, or NULL:
				   * each wanted service's id in the maps */
};

/* Open the maps pinned under pin_root. 0 or -errno. */
int lbmap_open(struct lbmap *m, const char *pin_root);
void lbmap_close(struct lbmap *m);

int lbmap_read(const struct lbmap *m, struct lb_live *out);
/* The orders of struct lb_live: services by key, backends by address. */
int lb_cmp_svc(const void *a, const void *b);
int lb_cmp_be(const void *a, const void *b);
void lb_live_free(struct lb_live *l);
const struct live_be *lb_live_backend(const struct lb_live *l, uint32_t id);

/* Make the maps hold exactly `want`. 0, or -errno with a message in err;
 * capacity is checked before anything is written. Keeps m->known. */
int lbmap_apply(struct lbmap *m, const struct snapshot *want,
		struct lb_apply_stats *st, char *err, size_t errlen);

#endif /* SL_LBMAP_H */
