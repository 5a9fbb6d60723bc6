/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * enroll.h - containers a runtime starts join the mesh: the agent's side
 * of the sluice CNI plugin (userspace/cni/, docs/cni.md).
 *
 * The plugin connects to a unix socket (mode 0600, peers must be root),
 * writes one JSON request and shuts down its writing side; the agent
 * answers one JSON line and closes. Requests:
 *   {"command": "ADD"|"DEL"|"CHECK", "containerId", "netns", "ifname",
 *    "interfaces": [{name, sandbox?}], "ips": ["10.88.0.2/16", ...]}
 * Answers: {"ok": true, "workload": NS/NAME} or
 *   {"ok": false, "code": CNI error code, "msg", "details"}.
 *
 * ADD: the identity comes from the runtime's record of the container
 * (agent/podman.h: labels sluice.io/namespace and sluice.io/service-account,
 * defaults "default"), never from the request; the host-side interface is
 * the request's interface that is in the host's namespace and is not a
 * bridge; the container's cgroup (podman's cgroupParent/libpod-ID) must be
 * under the agent's --cgroup, where the socket programs are attached.
 * The workload is registered with the control plane (POST /v1/workloads,
 * control/register.h) and the answer waits until the snapshot holding it
 * is applied here (tc on the veth, identity maps), so a container never
 * runs outside the mesh after a successful ADD. DEL deregisters and
 * detaches tc; it succeeds for a container the agent does not know, and
 * when the control plane is unreachable the deregistration is kept and
 * retried. CHECK reports drift (netns, interface, tc programs, endpoint
 * map entry, identity in the runtime's record).
 *
 * The enrolled containers are kept in <run dir>/cni.json (atomic
 * rewrites), so a restarted agent knows them; every 10 s, and at start,
 * a container whose network namespace is gone (its runtime died without
 * DEL) is deregistered.
 *
 * Contract: nothing blocks the event loop; enroll_fd() is an epoll fd to
 * watch for input, enroll_handle() serves what is ready, enroll_tick()
 * runs timers and answers what the control plane decided;
 * enroll_timeout_ms() bounds the caller's wait.
 */
#ifndef SL_AGENT_ENROLL_H
#define SL_AGENT_ENROLL_H

#include "agent/datapath.h"
#include "agent/sync.h"

struct enroll_opts {
	const char *node;
	const char *socket;        /* the plugin's socket */
	const char *run_dir;       /* cni.json */
	const char *podman_db;     /* podman's state database */
	const char *cgroup;        /* the agent's cgroup, absolute filesystem path */
};

struct enroll;

struct enroll *enroll_new(const struct enroll_opts *o, struct sync *sy, struct datapath *dp);
int enroll_fd(const struct enroll *e);
void enroll_handle(struct enroll *e);
void enroll_tick(struct enroll *e);
int enroll_timeout_ms(const struct enroll *e);   /* -1: no timer */
void enroll_free(struct enroll *e);

#endif /* SL_AGENT_ENROLL_H */
