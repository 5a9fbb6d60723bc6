// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * apply.c - the agent's apply path (apply.h): a snapshot into the maps,
 * tc, the proxy and the capture switch, and the status file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/apply.h"
#include "lib/core/addr.h"
#include "lib/core/cli.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"
#include "lib/node/snapshot.h"
#include "lib/node/tchook.h"
#include "sluice_proxy.h"

/* Whether --sockmap turns the fast path on, given what the probes found. */
bool fastpath_wanted(const struct agent_opts *o, const struct datapath *dp)
{
	if (!dp->has_fastpath || o->sockmap == SOCKMAP_OFF)
		return false;
	return o->sockmap == SOCKMAP_FORCE || !dp->fastpath_halfclose_bug;
}

/* <run dir>/status.json, for `sluicectl status` and `version`: this
 * agent's version, what it runs with on this kernel, what its probes
 * turned off and why, and the last applied snapshot. Written whole and
 * renamed into place. */
void write_status(const struct agent_opts *o, const struct datapath *dp,
			 const struct telemetry *tm, const struct psup *ps)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	json_t *j, *off = json_array();
	struct utsname u;

	uname(&u);
	if (!dp->has_set_retval)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "ECONNREFUSED for empty services",
			"reason", "kernel lacks bpf_set_retval (5.18+): EPERM instead"));
	if (!dp->has_netns_cookie)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "policy decisions at connect()",
			"reason", "kernel lacks SO_NETNS_COOKIE (5.14+): tc at the destination decides"));
	if (!dp->has_fastpath)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "same-node fast path",
			"reason", dp->fastpath_reason ?: "unknown"));
	if (dp->has_fastpath && dp->fastpath_halfclose_bug)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "same-node fast path by default",
			"reason", dp->fastpath_unsafe_reason));
	if (!tchook_tcx_supported())
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "tcx for the pod veths' tc programs",
			"reason", "kernel lacks tcx (6.6+): cls_bpf filters instead"));
	j = json_pack("{s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:{s:b, s:b, s:b, s:b, s:b, s:s}, s:o, s:{s:I}}",
		      "node", o->node, "version", sluice_version, "pid", (int)getpid(),
		      "started_ms", (json_int_t)o->started_ms,
		      "pin_root", o->pin_root,
		      "cgroup", o->cgroup, "kernel", u.release,
		      "features", "set_retval", dp->has_set_retval, "netns_cookie", dp->has_netns_cookie,
		      "fastpath_available", dp->has_fastpath, "fastpath_on", fastpath_wanted(o, dp),
		      "fastpath_halfclose_bug", dp->fastpath_halfclose_bug,
		      "tc_attach", tchook_mode_name(dp->tc_mode),
		      "disabled", off, "snapshot", "version", (json_int_t)tm->version);
	if (!j)
		return;
	if (ps)
		json_object_set_new(j, "proxies", psup_status(ps));
	snprintf(path, sizeof(path), "%s/status.json", o->run_dir);
	snprintf(tmp, sizeof(tmp), "%s/.status.json.tmp", o->run_dir);
	if (sys_mkdir_p(o->run_dir, 0755) == 0 && json_dump_file(j, tmp, JSON_INDENT(2)) == 0)
		rename(tmp, path);
	json_decref(j);
}

/* Identities and policy, then tc on the local pods' veths that do not
 * have it yet. */
static int apply_identity(struct datapath *dp, const struct snapshot *snap,
			  char *err, size_t errlen)
{
	struct pol_apply_stats ps;
	struct pol_endpoint *eps = NULL;
	size_t neps = 0;
	int rc;

	rc = polmap_apply(&dp->pol, snap, &eps, &neps, &ps, err, errlen);
	rc = rc ?: datapath_attach_local(dp, eps, neps, err, errlen);
	free(eps);
	if (!rc)
		log_info("identities: %zu workloads (%u local), %u policy entries%s, "
			 "ipcache +%u -%u", snap->nworkloads, ps.local_endpoints,
			 ps.policy_entries, ps.policy_flipped ? " (new generation)" : "",
			 ps.ids_written, ps.ids_removed);
	return rc;
}

/* Parse a snapshot and apply it: 0, or -errno with the reason in err (a
 * snapshot that does not parse changes nothing). The one apply path of
 * both --snapshot and --control. sn: its text or its document (then
 * cache: the services parsed last time, to copy those whose packed item
 * did not change, lib/node/snapshot.h), and the node proxy's text. */
static int apply_snap(struct datapath *dp, struct telemetry *tm, const struct sync_snap *sn,
		      const char *src, char *err, size_t errlen, struct proxy_side *ps,
		      struct snap_cache *cache)
{
	const char *ptext = sn->proxy_text ?: sn->text;
	size_t plen = sn->proxy_text ? sn->proxy_len : sn->len;
	struct lb_apply_stats st = {};
	struct snapshot snap;
	uint64_t t0 = loop_now_ms();
	int rc;

	if (ps && ps->ps && !ptext) {
		/* a document and no text: nothing the proxy could take */
		snprintf(err, errlen, "%s: no text for the node proxy", src);
		log_err("snapshot refused, state unchanged: %s", err);
		return -EINVAL;
	}
	if (sn->doc && cache) {
		cache->fresh = sn->fresh;
		cache->nfresh = sn->nfresh;
	}
	rc = sn->doc ? snapshot_from_json_cached(sn->doc, src, &snap, cache, err, errlen) :
		snapshot_parse(sn->text, sn->len, src, &snap, err, errlen);
	if (cache) {
		cache->fresh = NULL;   /* for that call only */
		cache->nfresh = 0;
	}
	if (rc) {
		log_err("snapshot refused, state unchanged: %s", err);
		return rc;
	}
	st.svc_ids = calloc(snap.nservices ?: 1, sizeof(*st.svc_ids));
	rc = st.svc_ids ? 0 : -ENOMEM;
	if (rc)
		snprintf(err, errlen, "out of memory");
	rc = rc ?: apply_identity(dp, &snap, err, errlen);
	rc = rc ?: lbmap_apply(&dp->maps, &snap, &st, err, errlen);
	if (rc) {
		log_err("snapshot version=%llu not fully applied: %s",
			(unsigned long long)snap.version, err);
	} else {
		log_info("applied snapshot version=%llu services=%zu "
			 "(added %u, updated %u, removed %u, unchanged %u) "
			 "backends (added %u, removed %u) in %llu ms",
			 (unsigned long long)snap.version, snap.nservices,
			 st.svc_added, st.svc_updated, st.svc_removed, st.svc_unchanged,
			 st.be_added, st.be_removed, (unsigned long long)(loop_now_ms() - t0));
		telemetry_set_labels(tm, &snap, st.svc_ids);
		tm->ready = true;
		if (ps && ps->certs)
			certs_set_wanted(ps->certs, &snap);
		if (ps && ps->ps)
			psup_set_snapshot(ps->ps, ptext, plen, snap.version);
	}
	snapshot_free(&snap);
	free(st.svc_ids);
	return rc;
}

/* sync.c's apply function: a snapshot pushed by the control plane. */
int apply_pushed(void *arg, const struct sync_snap *sn, const char *src, char *err,
		 size_t errlen)
{
	struct pushed_ctx *p = arg;
	int rc = apply_snap(p->dp, p->tm, sn, src, err, errlen, &p->ps, &p->cache);

	write_status(p->o, p->dp, p->tm, p->ps.ps);
	return rc;
}

/* a snapshot file larger than this is refused (10,000 services: 6 MB) */
#define SNAPSHOT_FILE_MAX (512u << 20)

/* Apply the snapshot file if its content changed since the last apply. */
void apply_file(struct datapath *dp, struct telemetry *tm, const char *path,
		char **last, size_t *last_len)
{
	char err[512];
	char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = file_read(path, &buf, &len, SNAPSHOT_FILE_MAX);
	if (rc) {
		log_warn("snapshot %s: %s; keeping the current state", path, strerror(-rc));
		return;
	}
	if (*last && *last_len == len && memcmp(*last, buf, len) == 0) {
		free(buf);
		return;
	}

	/* no proxy in --snapshot mode: the text is only parsed */
	if (apply_snap(dp, tm, &(struct sync_snap){ .text = buf, .len = len }, path, err,
		       sizeof(err), NULL, NULL)) {
		free(buf);
	} else {
		free(*last);
		*last = buf;
		*last_len = len;
	}
}

/*
 * Capture (bpf/lib/proxy.h) sends a pod's connection that must be mutual
 * TLS to the outbound listener, at an address pods reach this node by, one
 * per family: --capture-addr, else the outbound listener's own address if
 * it is a specific one. A family with neither is not captured, and the log
 * says so.
 */
void capture_set(const struct agent_opts *o, struct datapath *dp, bool on)
{
	static const __be32 any6[4];
	const __be32 any4[4] = { 0, 0, htonl(0xffff), 0 };
	const char *spec[2] = { o->capture_addr, o->capture_addr6 };
	__be32 out[4] = {}, a[2][4] = {};
	bool want[2] = {}, specific = false;
	uint16_t port = 0;
	char s[SL_ADDRSTRLEN];

	if (on && !addr_hostport_parse(o->outbound_addr, out, &port))
		specific = memcmp(out, any4, 16) && memcmp(out, any6, 16);
	for (int f = SL_PROXY_V4; on && port && f <= SL_PROXY_V6; f++) {
		if (spec[f])
			want[f] = !addr_parse(spec[f], a[f]) && addr_is_v4(a[f]) == (f == SL_PROXY_V4);
		else if (specific && addr_is_v4(out) == (f == SL_PROXY_V4)) {
			memcpy(a[f], out, 16);
			want[f] = true;
		}
		if (spec[f] && !want[f])
			log_warn("capture off for IPv%c: --capture-addr %s is not an address",
				 f == SL_PROXY_V4 ? '4' : '6', spec[f]);
	}
	if (on && !want[SL_PROXY_V4] && !want[SL_PROXY_V6])
		log_warn("capture off: the outbound listener is %s and no --capture-addr "
			 "says where pods reach it", o->outbound_addr);
	for (int f = SL_PROXY_V4; f <= SL_PROXY_V6; f++) {
		int err = datapath_set_proxy(dp, (__u32)f, a[f], port, want[f]);

		if (err)
			log_err("setting capture: %s", strerror(-err));
		else if (want[f])
			log_info(f == SL_PROXY_V4 ?
				 "capture on: connections that must be mutual TLS go to %s:%u" :
				 "capture on: IPv6 connections that must be mutual TLS go to [%s]:%u",
				 addr_fmt(a[f], s), port);
	}
}
