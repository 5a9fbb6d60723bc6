/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * guard.h - what must hold before an agent touches a node's data path.
 *
 * Contract: one agent per node and per pin root. guard_lock() takes two
 * locks for the agent's lifetime, which the kernel drops when the process
 * ends, however it ends: the node's, an abstract unix socket named after
 * it (a node is its name in its network namespace: simulated clusters on
 * one machine each have their own node1), and the pin root's, a file lock
 * on RUN_DIR/agent.lock (RUN_DIR names the pin root). A second agent gets
 * -EBUSY and a message naming the running agent's pid. guard_outside() refuses
 * an agent that runs inside the cgroup whose workloads it manages (its own
 * connections would be balanced, captured and counted as a workload's).
 * Both return 0 or -errno with the reason in err.
 */
#ifndef SL_AGENT_GUARD_H
#define SL_AGENT_GUARD_H

#include <stddef.h>

struct guard {
	int fds[2];
};

int guard_lock(struct guard *g, const char *node, const char *run_dir, char *err, size_t errlen);
void guard_unlock(struct guard *g);
/* cgroup: the absolute path of the managed cgroup (under the cgroup2 mount). */
int guard_outside(const char *cgroup, char *err, size_t errlen);

#endif /* SL_AGENT_GUARD_H */
