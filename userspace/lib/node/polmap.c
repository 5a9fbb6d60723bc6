// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/node/polmap.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int polmap_open(struct polmap *m, const char *pin_root)
{
	static const char *const names[] = { SL_MAP_IPCACHE, SL_MAP_NETNS, SL_MAP_ENDPOINTS,
					     SL_MAP_POLICY, SL_MAP_POLDST, SL_MAP_CONFIG,
					     SL_MAP_DROPS, SL_MAP_MTLS_PORT };
	int *fds[] = { &m->ipcache_fd, &m->netns_fd, &m->ep_fd, &m->policy_fd,
		       &m->poldst_fd, &m->config_fd, &m->drops_fd, &m->mtls_port_fd };
	char path[PATH_MAX];
	int err;

	m->netns_cookies = true;
	memset(&m->ns_cache, 0, sizeof(m->ns_cache));
	for (unsigned int i = 0; i < 8; i++)
		*fds[i] = -1;
	for (unsigned int i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_root, names[i]);
		*fds[i] = bpf_obj_get(path);
		if (*fds[i] < 0) {
			err = -errno;
			polmap_close(m);
			return err;
		}
	}
	return 0;
}

void polmap_close(struct polmap *m)
{
	int *fds[] = { &m->ipcache_fd, &m->netns_fd, &m->ep_fd, &m->policy_fd,
		       &m->poldst_fd, &m->config_fd, &m->drops_fd, &m->mtls_port_fd };

	for (unsigned int i = 0; i < 8; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	free(m->ns_cache.v);
	memset(&m->ns_cache, 0, sizeof(m->ns_cache));
}

uint64_t polmap_drops(const struct polmap *m, uint32_t reason)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t sum = 0, *v;

	if (ncpu <= 0)
		return 0;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (v && bpf_map_lookup_elem(m->drops_fd, &reason, v) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	free(v);
	return sum;
}

/* ---- netns cookie: setns() in a throwaway thread ---------------------- */

struct cookie_req {
	const char *path;
	uint64_t cookie;
	int err;
};

static void *cookie_thread(void *arg)
{
	struct cookie_req *r = arg;
	socklen_t len = sizeof(r->cookie);
	int nsfd, s;

	nsfd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		r->err = -errno;
		return NULL;
	}
	if (setns(nsfd, CLONE_NEWNET)) {
		r->err = -errno;
		close(nsfd);
		return NULL;
	}
	close(nsfd);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &r->cookie, &len))
		r->err = -errno;
	if (s >= 0)
		close(s);
	return NULL;
}

int netns_cookie(const char *path, uint64_t *cookie)
{
	struct cookie_req r = { .path = path };
	pthread_t t;
	int err;

	/* setns() changes only the calling thread, which then exits */
	err = pthread_create(&t, NULL, cookie_thread, &r);
	if (err)
		return -err;
	pthread_join(t, NULL);
	*cookie = r.cookie;
	return r.err;
}

/*
 * The cookies of the namespaces seen by the last apply. A namespace is
 * known by its path and its nsfs inode (device and inode number of the
 * path, which stat() follows through the bind mount): a path bound again
 * to a new namespace has another inode while the old namespace is alive,
 * and an entry lives only as long as a workload of the snapshot names it,
 * so a path and an inode number both reused is never taken for the old
 * namespace unless they were reused between two applies. A node has at
 * most a few hundred local workloads: a linear search.
 */
struct ns_cookie {
	char path[sizeof(((struct snap_workload *)0)->netns)];
	dev_t dev;
	ino_t ino;
	uint64_t cookie;
	uint64_t gen;           /* the apply that last named it */
};

static int cached_cookie(struct polmap *m, const char *path, uint64_t gen, uint64_t *cookie)
{
	struct ns_cookie *v = m->ns_cache.v, *e;
	struct stat st;
	int rc;

	if (stat(path, &st))
		return -errno;
	for (size_t i = 0; i < m->ns_cache.n; i++) {
		if (v[i].ino == st.st_ino && v[i].dev == st.st_dev && !strcmp(v[i].path, path)) {
			v[i].gen = gen;
			*cookie = v[i].cookie;
			return 0;
		}
	}
	rc = netns_cookie(path, cookie);
	if (rc)
		return rc;
	if (m->ns_cache.n == m->ns_cache.cap) {
		size_t cap = m->ns_cache.cap ? m->ns_cache.cap * 2 : 64;

		v = realloc(v, cap * sizeof(*v));
		if (!v)
			return 0;   /* found, not remembered */
		m->ns_cache.v = v;
		m->ns_cache.cap = cap;
	}
	e = &v[m->ns_cache.n++];
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->cookie = *cookie;
	e->gen = gen;
	return 0;
}

/* Forget the namespaces the apply `gen` did not name. */
static void cookies_prune(struct polmap *m, uint64_t gen)
{
	size_t k = 0;

	for (size_t i = 0; i < m->ns_cache.n; i++)
		if (m->ns_cache.v[i].gen == gen)
			m->ns_cache.v[k++] = m->ns_cache.v[i];
	m->ns_cache.n = k;
}

/* ---- policy ------------------------------------------------------------ */

struct polent {
	struct sl_policy_key k;
	struct sl_policy_val v;
};

static int cmp_polent(const void *a, const void *b)
{
	return memcmp(&((const struct polent *)a)->k, &((const struct polent *)b)->k,
		      sizeof(struct sl_policy_key));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Compile the snapshot's policies into merged, sorted entries for `gen`. */
static int compile(const struct snapshot *s, uint32_t gen, struct polent **out, size_t *n,
		   uint32_t **allow_dsts, size_t *nallow)
{
	struct polent *e = calloc(s->npolicies ?: 1, sizeof(*e));
	uint32_t *d = calloc(s->npolicies ?: 1, sizeof(*d));
	size_t k = 0, nd = 0;

	if (!e || !d) {
		free(e);
		free(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->npolicies; i++) {
		const struct snap_policy *p = &s->policies[i];

		e[i].k = (struct sl_policy_key){ .gen = gen, .src_id = p->src, .dst_id = p->dst,
						 .port = p->port, .proto = p->proto };
		if (p->action == SNAP_DENY)
			e[i].v.deny = 1;
		else
			e[i].v.allow = 1;
		if (p->action == SNAP_ALLOW)
			d[nd++] = p->dst;
	}
	qsort(e, s->npolicies, sizeof(*e), cmp_polent);
	for (size_t i = 0; i < s->npolicies; i++) {
		if (k && memcmp(&e[k - 1].k, &e[i].k, sizeof(e[i].k)) == 0) {
			e[k - 1].v.deny |= e[i].v.deny;
			e[k - 1].v.allow |= e[i].v.allow;
		} else {
			e[k++] = e[i];
		}
	}
	qsort(d, nd, sizeof(*d), cmp_u32);
	*nallow = 0;
	for (size_t i = 0; i < nd; i++)
		if (i == 0 || d[i] != d[i - 1])
			d[(*nallow)++] = d[i];
	*out = e;
	*n = k;
	*allow_dsts = d;
	return 0;
}

/* Read generation `gen` of the policy maps, sorted like compile(). */
static int read_gen(const struct polmap *m, uint32_t gen, struct polent **out, size_t *n,
		    uint32_t **dsts, size_t *nd)
{
	struct sl_policy_key k, *prev = NULL;
	struct sl_poldst_key dk, *dprev = NULL;
	struct polent *e = NULL;
	uint32_t *d = NULL;
	size_t cap = 0, dcap = 0;

	*n = *nd = 0;
	while (bpf_map_get_next_key(m->policy_fd, prev, &k) == 0) {
		prev = &k;
		if (k.gen != gen)
			continue;
		if (*n == cap) {
			struct polent *ne = realloc(e, (cap = cap * 2 + 64) * sizeof(*e));

			if (!ne)
				goto nomem;
			e = ne;
		}
		e[*n].k = k;
		if (bpf_map_lookup_elem(m->policy_fd, &k, &e[*n].v) == 0)
			(*n)++;
	}
	while (bpf_map_get_next_key(m->poldst_fd, dprev, &dk) == 0) {
		struct sl_poldst_val v;

		dprev = &dk;
		if (dk.gen != gen || bpf_map_lookup_elem(m->poldst_fd, &dk, &v) ||
		    !(v.flags & SL_PD_HAS_ALLOW))
			continue;
		if (*nd == dcap) {
			uint32_t *nd2 = realloc(d, (dcap = dcap * 2 + 64) * sizeof(*d));

			if (!nd2)
				goto nomem;
			d = nd2;
		}
		d[(*nd)++] = dk.dst_id;
	}
	if (e)
		qsort(e, *n, sizeof(*e), cmp_polent);
	if (d)
		qsort(d, *nd, sizeof(*d), cmp_u32);
	*out = e;
	*dsts = d;
	return 0;
nomem:
	free(e);
	free(d);
	return -ENOMEM;
}

/* Delete every entry of generation `gen`. */
static void drop_gen(const struct polmap *m, uint32_t gen)
{
	struct sl_policy_key k, next;
	struct sl_poldst_key dk, dnext;
	bool have = false;

	/* deleting while iterating: always restart from the key we kept */
	while (bpf_map_get_next_key(m->policy_fd, have ? &k : NULL, &next) == 0) {
		if (next.gen == gen) {
			bpf_map_delete_elem(m->policy_fd, &next);
			continue;
		}
		k = next;
		have = true;
	}
	have = false;
	while (bpf_map_get_next_key(m->poldst_fd, have ? &dk : NULL, &dnext) == 0) {
		if (dnext.gen == gen) {
			bpf_map_delete_elem(m->poldst_fd, &dnext);
			continue;
		}
		dk = dnext;
		have = true;
	}
}

static int apply_policy(const struct polmap *m, const struct snapshot *s,
			struct pol_apply_stats *st, char *err, size_t errlen)
{
	struct polent *want = NULL, *live = NULL;
	uint32_t *wd = NULL, *ld = NULL, zero = 0, next;
	size_t nw, nl, nwd, nld;
	struct sl_config cfg;
	int rc;

	if (bpf_map_lookup_elem(m->config_fd, &zero, &cfg))
		return -errno;
	next = !cfg.policy_gen;
	rc = compile(s, cfg.policy_gen, &want, &nw, &wd, &nwd);
	rc = rc ?: read_gen(m, cfg.policy_gen, &live, &nl, &ld, &nld);
	if (rc)
		goto out;
	st->policy_entries = (unsigned int)nw;
	/* empty arrays are NULL, which memcmp must not be passed */
	if (nw == nl && nwd == nld && (!nw || !memcmp(want, live, nw * sizeof(*want))) &&
	    (!nwd || !memcmp(wd, ld, nwd * sizeof(*wd))))
		goto out; /* unchanged */

	drop_gen(m, next); /* leftovers of a crash mid-apply */
	for (size_t i = 0; i < nw; i++) {
		want[i].k.gen = next;
		if (bpf_map_update_elem(m->policy_fd, &want[i].k, &want[i].v, BPF_ANY)) {
			rc = -errno;
			snprintf(err, errlen, "writing policy entry: %s", strerror(-rc));
			goto out;
		}
	}
	for (size_t i = 0; i < nwd; i++) {
		struct sl_poldst_key dk = { .gen = next, .dst_id = wd[i] };
		struct sl_poldst_val dv = { .flags = SL_PD_HAS_ALLOW };

		if (bpf_map_update_elem(m->poldst_fd, &dk, &dv, BPF_ANY)) {
			rc = -errno;
			snprintf(err, errlen, "writing policy destination: %s", strerror(-rc));
			goto out;
		}
	}
	cfg.policy_gen = next; /* the flip */
	if (bpf_map_update_elem(m->config_fd, &zero, &cfg, BPF_ANY)) {
		rc = -errno;
		goto out;
	}
	st->policy_flipped = true;
	/* The old generation stays until the next change: a decision that
	 * read the old policy_gen just before the flip still finds all of
	 * it. The next apply deletes it before writing (drop_gen above). */
out:
	free(want);
	free(live);
	free(wd);
	free(ld);
	return rc;
}

/* ---- identities ---------------------------------------------------------- */

struct ipc_ent {
	struct sl_ipcache_key k;
	struct sl_ipcache_val v;
};

static int cmp_ipc(const void *a, const void *b)
{
	return memcmp(&((const struct ipc_ent *)a)->k, &((const struct ipc_ent *)b)->k,
		      sizeof(struct sl_ipcache_key));
}

/*
 * Delete the keys of map `fd` (ksz-byte keys) that are not in want[]: n
 * entries of esz bytes sorted by `cmp`, each starting with its key. The
 * stale keys are gathered first, so the walk is not disturbed by the
 * deletes. Returns how many were deleted, or -ENOMEM.
 */
static long remove_unwanted(int fd, size_t ksz, const void *want, size_t n, size_t esz,
			    int (*cmp)(const void *, const void *))
{
	uint8_t *stale = NULL, *probe = calloc(1, esz), k[64];
	size_t nstale = 0, cap = 0;
	bool have = false;
	long removed = 0;

	if (!probe || ksz > sizeof(k)) {
		free(probe);
		return -ENOMEM;
	}
	while (bpf_map_get_next_key(fd, have ? k : NULL, k) == 0) {
		have = true;
		memcpy(probe, k, ksz);
		if (n && bsearch(probe, want, n, esz, cmp))
			continue;
		if (nstale == cap) {
			uint8_t *ns = realloc(stale, (cap = cap * 2 + 16) * ksz);

			if (!ns) {
				free(stale);
				free(probe);
				return -ENOMEM;
			}
			stale = ns;
		}
		memcpy(stale + nstale++ * ksz, k, ksz);
	}
	for (size_t i = 0; i < nstale; i++)
		removed += bpf_map_delete_elem(fd, stale + i * ksz) == 0;
	free(stale);
	free(probe);
	return removed;
}

static int apply_ipcache(const struct polmap *m, const struct snapshot *s,
			 struct pol_apply_stats *st)
{
	struct ipc_ent *w = calloc(2 * s->nworkloads + s->ncidrs + 1, sizeof(*w));
	size_t n = 0;
	long removed;
	int rc = 0;

	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < s->nworkloads; i++) {
		const struct snap_workload *wl = &s->workloads[i];
		/* no PeerAuthentication means Istio's default, PERMISSIVE */
		struct sl_ipcache_val v = { .identity = wl->identity,
					    .flags = (wl->local ? SL_IPC_LOCAL : 0) |
						     (wl->mtls != SNAP_MTLS_DISABLE ? SL_IPC_MTLS : 0) };

		if (wl->has_v4) {
			w[n].k.prefixlen = 128;
			memcpy(w[n].k.addr, wl->addr4, 16);
			w[n++].v = v;
		}
		if (wl->has_v6) {
			w[n].k.prefixlen = 128;
			memcpy(w[n].k.addr, wl->addr6, 16);
			w[n++].v = v;
		}
	}
	/* CIDR identities (ipBlocks): the trie's longest match gives a
	 * workload's /128 precedence over any prefix that contains it */
	for (size_t i = 0; i < s->ncidrs; i++) {
		w[n].k = s->cidrs[i].key;
		w[n++].v = (struct sl_ipcache_val){ .identity = s->cidrs[i].identity };
	}
	qsort(w, n, sizeof(*w), cmp_ipc);
	for (size_t i = 0; i < n; i++) {
		struct sl_ipcache_val cur;

		if (bpf_map_lookup_elem(m->ipcache_fd, &w[i].k, &cur) == 0 &&
		    memcmp(&cur, &w[i].v, sizeof(cur)) == 0)
			continue;
		if (bpf_map_update_elem(m->ipcache_fd, &w[i].k, &w[i].v, BPF_ANY)) {
			rc = -errno;
			goto out;
		}
		st->ids_written++;
	}
	removed = remove_unwanted(m->ipcache_fd, sizeof(struct sl_ipcache_key), w, n, sizeof(*w),
				  cmp_ipc);
	if (removed < 0)
		rc = (int)removed;
	else
		st->ids_removed += (unsigned int)removed;
out:
	free(w);
	return rc;
}

struct mtls_ent {
	struct sl_mtls_port_key k;
	__u8 mode;
};

static int cmp_mtls(const void *a, const void *b)
{
	return memcmp(&((const struct mtls_ent *)a)->k, &((const struct mtls_ent *)b)->k,
		      sizeof(struct sl_mtls_port_key));
}

static __u8 mtls_mode(enum snap_mtls m)
{
	return m == SNAP_MTLS_STRICT ? SL_MTLS_STRICT :
	       m == SNAP_MTLS_DISABLE ? SL_MTLS_DISABLE : SL_MTLS_PERMISSIVE;
}

/* sl_mtls_port: every workload address's portLevelMtls ports, written
 * where they differ and the rest removed. */
static int apply_mtls_ports(const struct polmap *m, const struct snapshot *s)
{
	struct mtls_ent *w;
	size_t n = 0, cap = 0;
	long removed;
	int rc = 0;

	for (size_t i = 0; i < s->nworkloads; i++)
		cap += 2 * s->workloads[i].nmtls_ports;
	w = calloc(cap ?: 1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < s->nworkloads; i++) {
		const struct snap_workload *wl = &s->workloads[i];

		for (size_t j = 0; j < wl->nmtls_ports; j++) {
			for (int fam = 0; fam < 2; fam++) {
				if (!(fam ? wl->has_v6 : wl->has_v4))
					continue;
				memcpy(w[n].k.addr, fam ? wl->addr6 : wl->addr4, 16);
				w[n].k.port = wl->mtls_ports[j].port;
				w[n++].mode = mtls_mode(wl->mtls_ports[j].mode);
			}
		}
	}
	qsort(w, n, sizeof(*w), cmp_mtls);
	for (size_t i = 0; i < n; i++) {
		__u8 cur;

		if (bpf_map_lookup_elem(m->mtls_port_fd, &w[i].k, &cur) == 0 && cur == w[i].mode)
			continue;
		if (bpf_map_update_elem(m->mtls_port_fd, &w[i].k, &w[i].mode, BPF_ANY)) {
			rc = -errno;
			goto out;
		}
	}
	removed = remove_unwanted(m->mtls_port_fd, sizeof(struct sl_mtls_port_key), w, n,
				  sizeof(*w), cmp_mtls);
	if (removed < 0)
		rc = (int)removed;
out:
	free(w);
	return rc;
}

/* Delete keys of a hash map with `ksz`-byte keys that `keep` rejects. */
static void prune(int fd, size_t ksz, bool (*keep)(const void *key, const void *ctx),
		  const void *ctx)
{
	char k[16], next[16];
	bool have = false;

	while (bpf_map_get_next_key(fd, have ? k : NULL, next) == 0) {
		if (!keep(next, ctx)) {
			bpf_map_delete_elem(fd, next);
			continue;
		}
		memcpy(k, next, ksz);
		have = true;
	}
}

struct want_keys {
	const uint64_t *cookies;
	const uint32_t *ifindexes;
	size_t n;
};

static bool keep_cookie(const void *key, const void *ctx)
{
	const struct want_keys *w = ctx;

	for (size_t i = 0; i < w->n; i++)
		if (w->cookies[i] == *(const uint64_t *)key)
			return true;
	return false;
}

static bool keep_ifindex(const void *key, const void *ctx)
{
	const struct want_keys *w = ctx;

	for (size_t i = 0; i < w->n; i++)
		if (w->ifindexes[i] == *(const uint32_t *)key)
			return true;
	return false;
}

/* A local workload as the maps key it, resolved before anything is
 * written, so that a snapshot naming a netns or interface that is not
 * there is refused whole. */
struct local_ep {
	uint64_t cookie;       /* 0 without SO_NETNS_COOKIE */
	uint32_t ifindex;
	struct sl_netns_val nv;
	struct sl_endpoint ep;
	const struct snap_workload *w;
};

static int resolve_local(struct polmap *m, const struct snapshot *s,
			 struct local_ep **out, size_t *n, char *err, size_t errlen)
{
	uint64_t gen = ++m->ns_cache.gen;
	struct local_ep *v = calloc(s->nworkloads + 1, sizeof(*v));
	size_t k = 0;
	int rc = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nworkloads; i++) {
		const struct snap_workload *w = &s->workloads[i];
		struct local_ep *e = &v[k];

		if (!w->local)
			continue;
		/* Without SO_NETNS_COOKIE (before 5.14) there is no cookie to
		 * key sl_netns by; the socket programs know and leave the
		 * decision to tc at the destination (the agent's probe). */
		if (m->netns_cookies)
			rc = cached_cookie(m, w->netns, gen, &e->cookie);
		else
			rc = access(w->netns, F_OK) ? -errno : 0; /* refused the same */
		if (rc) {
			snprintf(err, errlen, "workload %s/%s: netns %s: %s", w->ns, w->name,
				 w->netns, strerror(-rc));
			break;
		}
		e->ifindex = if_nametoindex(w->ifname);
		if (!e->ifindex) {
			rc = -errno;
			snprintf(err, errlen, "workload %s/%s: interface %s: %s", w->ns, w->name,
				 w->ifname, strerror(-rc));
			break;
		}
		e->nv.identity = w->identity;
		e->ep.identity = w->identity;
		if (w->has_v4) {
			e->ep.flags |= SL_EP_HAS_V4;
			e->ep.addr4 = w->addr4[3];
		}
		if (w->has_v6) {
			e->ep.flags |= SL_EP_HAS_V6;
			memcpy(e->ep.addr6, w->addr6, 16);
		}
		if (w->mtls == SNAP_MTLS_STRICT)
			e->ep.flags |= SL_EP_STRICT;
		e->w = w;
		k++;
	}
	if (rc) {
		free(v);
		return rc;
	}
	cookies_prune(m, gen);
	*out = v;
	*n = k;
	return 0;
}

static int apply_local(const struct polmap *m, const struct local_ep *v, size_t n,
		       struct pol_endpoint **eps, size_t *neps,
		       struct pol_apply_stats *st, char *err, size_t errlen)
{
	uint64_t *cookies = calloc(n + 1, sizeof(*cookies));
	uint32_t *ifx = calloc(n + 1, sizeof(*ifx));
	struct pol_endpoint *out = calloc(n + 1, sizeof(*out));
	struct want_keys wk = { cookies, ifx, 0 };
	int rc = 0;

	if (!cookies || !ifx || !out) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct local_ep *e = &v[i];

		if ((e->cookie && bpf_map_update_elem(m->netns_fd, &e->cookie, &e->nv, BPF_ANY)) ||
		    bpf_map_update_elem(m->ep_fd, &e->ifindex, &e->ep, BPF_ANY)) {
			rc = -errno;
			snprintf(err, errlen, "workload %s/%s: %s", e->w->ns, e->w->name, strerror(-rc));
			goto out;
		}
		cookies[wk.n] = e->cookie;
		ifx[wk.n] = e->ifindex;
		out[wk.n].ifindex = e->ifindex;
		snprintf(out[wk.n].ifname, sizeof(out[wk.n].ifname), "%s", e->w->ifname);
		wk.n++;
	}
	prune(m->netns_fd, sizeof(uint64_t), keep_cookie, &wk);
	prune(m->ep_fd, sizeof(uint32_t), keep_ifindex, &wk);
	st->local_endpoints = (unsigned int)wk.n;
out:
	free(cookies);
	free(ifx);
	if (!rc && eps) {
		*eps = out;
		*neps = wk.n;
	} else {
		free(out);
	}
	return rc;
}

int polmap_apply(struct polmap *m, const struct snapshot *s,
		 struct pol_endpoint **eps, size_t *neps,
		 struct pol_apply_stats *st, char *err, size_t errlen)
{
	struct pol_apply_stats dummy;
	struct local_ep *local = NULL;
	size_t nlocal = 0;
	int rc;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	err[0] = '\0';
	rc = resolve_local(m, s, &local, &nlocal, err, errlen);
	if (!rc)
		rc = apply_policy(m, s, st, err, errlen);
	if (!rc) {
		rc = apply_ipcache(m, s, st);
		if (rc)
			snprintf(err, errlen, "writing ipcache: %s", strerror(-rc));
	}
	if (!rc) {
		rc = apply_mtls_ports(m, s);
		if (rc)
			snprintf(err, errlen, "writing sl_mtls_port: %s", strerror(-rc));
	}
	if (!rc)
		rc = apply_local(m, local, nlocal, eps, neps, st, err, errlen);
	if (rc && !err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
	free(local);
	return rc;
}
