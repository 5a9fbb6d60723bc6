// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbmap.c - the load balancer's pinned maps (lbmap.h): opening them, and
 * reading back what they hold. Applying a snapshot to them is in
 * lbmap_apply.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "lib/core/bpfmap.h"
#include "lib/node/lbmap.h"

/* Drop what lbmap_apply() knew: the next one reads the maps. */
static void forget(struct lbmap *m)
{
	if (m->known)
		lb_live_free(m->known);
	free(m->known);
	m->known = NULL;
}

static int map_size(int fd, uint32_t *max)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*max = info.max_entries;
	return 0;
}

int lbmap_open(struct lbmap *m, const char *pin_root)
{
	static const char *const names[LBMAP_NFDS] = {
		SL_MAP_SERVICES, SL_MAP_SLOTS, SL_MAP_BACKENDS, SL_MAP_REVNAT, SL_MAP_SVC_POLICY,
		SL_MAP_SVC_STATE, SL_MAP_BE_STATE, SL_MAP_HELD, SL_MAP_AFFINITY, SL_MAP_TP_CONFIG };
	int *fds[LBMAP_NFDS] = { &m->svc_fd, &m->slot_fd, &m->be_fd, &m->rev_fd, &m->pol_fd,
				 &m->st_fd, &m->bst_fd, &m->held_fd, &m->aff_fd, &m->tpc_fd };
	char path[PATH_MAX];
	int err;

	m->known = NULL;
	m->svc_next = m->be_next = 0;
	m->vip_fd = m->forget_fd = -1;
	for (unsigned int i = 0; i < LBMAP_NFDS; i++)
		*fds[i] = -1;
	for (unsigned int i = 0; i < LBMAP_NFDS; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_root, names[i]);
		*fds[i] = bpf_obj_get(path);
		if (*fds[i] < 0) {
			err = -errno;
			lbmap_close(m);
			return err;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", pin_root, SL_MAP_SVC_VIP);
	m->vip_fd = bpf_obj_get(path);
	err = map_size(m->svc_fd, &m->max_svc);
	err = err ?: map_size(m->be_fd, &m->max_be);
	err = err ?: map_size(m->slot_fd, &m->max_slots);
	if (err)
		lbmap_close(m);
	return err;
}

void lbmap_close(struct lbmap *m)
{
	int *fds[LBMAP_NFDS] = { &m->svc_fd, &m->slot_fd, &m->be_fd, &m->rev_fd, &m->pol_fd,
				 &m->st_fd, &m->bst_fd, &m->held_fd, &m->aff_fd, &m->tpc_fd };

	for (unsigned int i = 0; i < LBMAP_NFDS; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	if (m->vip_fd >= 0)
		close(m->vip_fd);
	m->vip_fd = -1;
	m->forget_fd = -1;   /* the program's, not ours */
	forget(m);
}

int lb_cmp_svc(const void *a, const void *b)
{
	return memcmp(&((const struct live_svc *)a)->key,
		      &((const struct live_svc *)b)->key, sizeof(struct sl_svc_key));
}

int lb_cmp_be(const void *a, const void *b)
{
	return memcmp(&((const struct live_be *)a)->be,
		      &((const struct live_be *)b)->be, sizeof(struct sl_backend));
}

void lb_live_free(struct lb_live *l)
{
	for (size_t i = 0; i < l->nsvc; i++) {
		free(l->svc[i].slots);
		free(l->svc[i].in_ids);   /* and the copy of the input after the ids */
	}
	free(l->svc);
	free(l->be);
	free(l->slotkeys);
	memset(l, 0, sizeof(*l));
}

/* Slot entries ordered by service id, generation, index. */
struct slot_ent {
	struct sl_slot_key k;
	__u32 backend_id;
};

static int cmp_slot(const void *a, const void *b)
{
	const struct sl_slot_key *x = &((const struct slot_ent *)a)->k;
	const struct sl_slot_key *y = &((const struct slot_ent *)b)->k;

	if (x->svc_id != y->svc_id)
		return x->svc_id < y->svc_id ? -1 : 1;
	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Everything in three batched dumps (lib/core/bpfmap.h): the services,
 * the slots (keys kept for the clean-up of slots nothing points at, values
 * matched to their services) and the backends.
 */
int lbmap_read(const struct lbmap *m, struct lb_live *out)
{
	struct lb_live l = {};
	struct sl_svc_key *skeys = NULL;
	struct sl_svc_val *svals = NULL;
	struct sl_slot_val *slvals = NULL;
	struct slot_ent *ents = NULL;
	struct sl_backend *bvals = NULL;
	__u32 *bkeys = NULL;
	size_t n, nb;
	int err;

	err = map_dump(m->svc_fd, sizeof(*skeys), sizeof(*svals), (void **)&skeys,
		       (void **)&svals, &n);
	err = err ?: map_dump(m->slot_fd, sizeof(struct sl_slot_key), sizeof(*slvals),
			      (void **)&l.slotkeys, (void **)&slvals, &l.nslotkeys);
	err = err ?: map_dump(m->be_fd, sizeof(*bkeys), sizeof(*bvals), (void **)&bkeys,
			      (void **)&bvals, &nb);
	if (err)
		goto fail;
	ents = malloc((l.nslotkeys ?: 1) * sizeof(*ents));
	l.svc = calloc(n ?: 1, sizeof(*l.svc));
	l.be = calloc(nb ?: 1, sizeof(*l.be));
	if (!ents || !l.svc || !l.be) {
		err = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < l.nslotkeys; i++)
		ents[i] = (struct slot_ent){ l.slotkeys[i], slvals[i].backend_id };
	qsort(ents, l.nslotkeys, sizeof(*ents), cmp_slot);
	for (size_t i = 0; i < n; i++) {
		struct live_svc *s = &l.svc[l.nsvc++];

		s->key = skeys[i];
		s->val = svals[i];
		s->slots = calloc(s->val.count ?: 1, sizeof(*s->slots));
		if (!s->slots) {
			err = -ENOMEM;
			goto fail;
		}
		for (__u32 j = 0; j < s->val.count; j++) {
			struct slot_ent want = { .k = { .svc_id = s->val.svc_id, .gen = s->val.gen,
							.idx = j } };
			struct slot_ent *e = l.nslotkeys ?
				bsearch(&want, ents, l.nslotkeys, sizeof(*ents), cmp_slot) : NULL;

			/* A missing slot reads as backend 0, which never
			 * exists, so the next apply rewrites the service. */
			s->slots[j] = e ? e->backend_id : 0;
		}
	}
	qsort(l.svc, l.nsvc, sizeof(*l.svc), lb_cmp_svc);
	for (size_t i = 0; i < nb; i++)
		l.be[l.nbe++] = (struct live_be){ .id = bkeys[i], .be = bvals[i] };
	qsort(l.be, l.nbe, sizeof(*l.be), lb_cmp_be);
	*out = l;
	l = (struct lb_live){};
fail:
	free(skeys);
	free(svals);
	free(slvals);
	free(ents);
	free(bkeys);
	free(bvals);
	lb_live_free(&l);
	return err;
}

const struct live_be *lb_live_backend(const struct lb_live *l, uint32_t id)
{
	for (size_t i = 0; i < l->nbe; i++)
		if (l->be[i].id == id)
			return &l->be[i];
	return NULL;
}
