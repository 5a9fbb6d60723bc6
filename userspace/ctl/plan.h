/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * plan.h - what `sluicectl install` sets up on a node, shared by
 * install, verify-install, uninstall, top and version.
 *
 * A plan is computed from a resolved profile (profile.h) and nothing else:
 * install writes the profile to ETC/install.json, and verify-install and
 * uninstall rebuild the same plan from it. Layout, with PREFIX the
 * profile's paths.prefix:
 *
 *   PREFIX/etc/sluice/install.json       the resolved profile, as installed
 *   PREFIX/etc/sluice/mesh/NAME.yaml       config install applied (probe, mTLS, demo)
 *   PREFIX/var/lib/sluice/control/       the control plane's state (CA, config)
 *   PREFIX/var/lib/sluice/agent-NODE/    an agent's key, certificate, last snapshot
 *   PREFIX/var/lib/sluice/daemons/       NAME.pid (supervisor), NAME.child (daemon)
 *   PREFIX/var/log/sluice/NAME.log       each daemon's log
 *   PREFIX/usr/local/lib/sluice/         the installed binaries
 *   PINBASE/NODE                         each node's pinned maps and links
 */
#ifndef SL_CTL_PLAN_H
#define SL_CTL_PLAN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define PLAN_MAX_DAEMONS 16
#define PLAN_MAX_NODES   4
#define PLAN_MAX_ARGS    40

/* A supervised process. */
struct daemon {
	char name[64];            /* "control", "agent-node1", "demo-web-v1" */
	char *argv[PLAN_MAX_ARGS];
	char netns[PATH_MAX];     /* "" = the installer's */
	char cgroup[PATH_MAX];    /* "" = the installer's; else joined before exec */
	char ready[64];           /* a log line that says it is up ("" = none) */
};

/* A node whose agent runs on this machine. */
struct plan_node {
	char name[64];
	char netns[PATH_MAX];     /* "" = the installer's */
	char pin_root[PATH_MAX];
	char state_dir[PATH_MAX];
	char run_dir[PATH_MAX];   /* status.json, certs.json, flows.jsonl */
	char cgroup[PATH_MAX];    /* absolute */
	char metrics[64];         /* ADDRESS:PORT, in netns */
	char daemon[64];          /* its daemon's name */
	bool probe;               /* the probe service's node */
};

struct plan {
	json_t *prof;             /* owned */
	char etc[PATH_MAX], state[PATH_MAX], log[PATH_MAX], bin[PATH_MAX], daemons[PATH_MAX];
	char src_bin[PATH_MAX];   /* where this sluicectl's binaries are */
	char control_dir[PATH_MAX], control_url[256], ca_file[PATH_MAX];
	char cgroot[PATH_MAX];    /* the cgroup2 mount */
	char demo_cluster[64];    /* "" = no demo */
	bool systemd;
	struct daemon d[PLAN_MAX_DAEMONS];
	int nd;
	struct plan_node nodes[PLAN_MAX_NODES];
	int nnodes;
	char *argbuf;             /* the argv strings, owned */
	size_t argused, argcap;
};

/* Build the plan of a resolved profile (takes a reference to it). 0 or
 * -errno with the reason in err. */
int plan_build(struct plan *p, json_t *prof, char *err, size_t errlen);
void plan_free(struct plan *p);

/* The plan of what is installed under the prefix that `a`'s --set
 * paths.prefix names (default /): -ENOENT if nothing is. */
struct profile_args;
int plan_installed(struct plan *p, struct profile_args *a, char *err, size_t errlen);

/* The config install applies (mesh mTLS, probe, demo workloads), as YAML. */
char *plan_mesh_yaml(const struct plan *p);

const struct daemon *plan_daemon(const struct plan *p, const char *name);

#endif /* SL_CTL_PLAN_H */
