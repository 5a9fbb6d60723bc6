/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * datapath.h - load, attach and adopt the BPF side of one node.
 *
 * State lives in bpffs under a pin root: maps pinned by name, and one
 * pinned bpf_link per program under <pin-root>/links/. Because the links
 * and maps are pinned, the programs stay attached and the maps keep their
 * contents when the agent exits or is killed. A restarted agent loads the
 * programs again, reuses the pinned maps, and swaps each pinned link over
 * to the new program with BPF_LINK_UPDATE: an atomic replace, so there is
 * no instant at which a connect() runs without the load balancer.
 */
#ifndef SL_DATAPATH_H
#define SL_DATAPATH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>

#include "lib/node/lbmap.h"
#include "lib/node/polmap.h"
#include "lib/node/tchook.h"

struct sock_bpf;
struct sockops_bpf;
struct skmsg_bpf;
struct tc_bpf;
struct admin_bpf;

struct datapath {
	struct sock_bpf *skel;
	struct sockops_bpf *sockops;
	struct skmsg_bpf *skmsg;
	struct tc_bpf *tc;
	struct admin_bpf *admin;   /* run by the agent, never attached */
	struct lbmap maps;
	struct polmap pol;
	char pin_root[PATH_MAX];
	bool has_set_retval;   /* refused connect() fails with ECONNREFUSED */
	bool has_netns_cookie; /* SO_NETNS_COOKIE: connect() knows the client */
	bool has_fastpath;     /* sk_msg + sockhash usable: see fastpath_reason */
	const char *fastpath_reason;
	/* The kernel breaks half-close for sockets in a sockhash (probed at
	 * start): the fast path is available, but only `--sockmap force` or
	 * `sluicectl fastpath force` turn it on. */
	bool fastpath_halfclose_bug;
	const char *fastpath_unsafe_reason;
	/* The local veths this agent put its tc programs on (the last
	 * datapath_attach_local()): an apply attaches only to the others. */
	struct pol_endpoint *tc_on;
	size_t ntc_on;
	enum tchook_mode tc_mode; /* how tc programs are attached (resolved: tcx or cls) */
	unsigned int adopted;  /* links that were pinned already */
	unsigned int attached; /* links created now */
};

/* Load, attach to cgroup `cgroup_path` (or adopt), open the maps.
 * flow_events: the programs write flow events (connections opened and
 * closed, denials, ejections) to the ring; false when nothing reads them
 * (a flow log of none). */
int datapath_open(struct datapath *dp, const char *pin_root, const char *cgroup_path,
		  bool flow_events);
/* Attach the tc programs to a local pod's host-side veth (ingress:
 * sl_from_pod, egress: sl_to_pod) in dp->tc_mode (lib/node/tchook.h),
 * replacing what an earlier agent put there in one step. They stay when
 * the agent exits. */
int datapath_attach_tc(struct datapath *dp, unsigned int ifindex);
/* tc on the local endpoints of an apply that this agent has not attached
 * to yet (an agent that starts attaches to all of them once, replacing
 * the filters an earlier agent left); the set is then the snapshot's.
 * 0, or -errno with the interface in err. */
int datapath_attach_local(struct datapath *dp, const struct pol_endpoint *eps, size_t n,
			  char *err, size_t errlen);
/* tc was removed from ifindex (0: from every veth, or an operator may
 * have done it): the next apply attaches again. */
void datapath_tc_forget(struct datapath *dp, unsigned int ifindex);
/* The same-node fast path's run-time switch (sl_config.fastpath): new
 * connections are redirected only while it is on. -EOPNOTSUPP when the
 * kernel cannot (dp->fastpath_reason says why). */
int datapath_set_fastpath(struct datapath *dp, bool on);
/* Capture (headers/sluice_proxy.h): connections of family `fam`
 * (SL_PROXY_V4 or SL_PROXY_V6) that must be mutual TLS go to the proxy's
 * outbound listener at addr and port while enabled; the proxy finds their
 * original destination in sl_origdst. */
int datapath_set_proxy(struct datapath *dp, __u32 fam, const __be32 addr[4], uint16_t port,
		       bool enabled);
/* Close our fds; programs, links and maps stay pinned. */
void datapath_close(struct datapath *dp);
/* Detach everything pinned under pin_root and remove the pins. */
int datapath_uninstall(const char *pin_root);

#endif /* SL_DATAPATH_H */
