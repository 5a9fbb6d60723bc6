/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * install.h - what `sluicectl install` sets up on a node, shared by
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
#ifndef SL_CTL_INSTALL_H
#define SL_CTL_INSTALL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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

/* Every agent of the plan connected to the control plane and in sync
 * (install.c): 0, or -ETIMEDOUT with what was seen in why. */
int wait_in_sync(const struct plan *p, int timeout_ms, char *why, size_t wlen);

/* The node proxy that serves for the agent whose status.json is `status`
 * (a live process in state "serving"), or NULL (install.c). */
json_t *serving_proxy(json_t *status);

/* ---- podman (cni.c, docs/cni.md) ---- */

/* cni.subnet's gateway (its first address); -EINVAL with the reason. */
int cni_subnet(const json_t *prof, char *gw, size_t gwlen, char *err, size_t errlen);
/* With cni.enabled: ETC/cni/NET.conflist chaining sluice-cni, and
 * ETC/containers.conf pointing podman at it. 0 or -errno (printed). */
int cni_files_write(const struct plan *p);

/* ---- supervision (supervise.c) ---- */

/* Start d under a supervisor that restarts it when it exits; returns once
 * the supervisor has written its pid file and, if d->ready is set, the
 * log shows that line (timeout_ms). 0 or -errno. */
int daemon_start(const struct plan *p, const struct daemon *d, int timeout_ms);
/* Stop the supervisor and its daemon (SIGTERM, SIGKILL after 10 s). 0 if
 * none ran or it stopped. */
int daemon_stop(const struct plan *p, const char *name);
/* The systemd unit of d, to f (what daemon_start writes under systemd). */
int daemon_unit(const struct plan *p, const struct daemon *d, FILE *f);
/* pid of the supervisor and of the daemon now, 0 if not running (under
 * systemd, *sv is 1 while the unit runs). */
int daemon_pids(const struct plan *p, const char *name, int *sv, int *child);

/* Run argv (argv[0] a path), wait; its stdout in *out (malloc'd, may be
 * NULL). The exit status, or -errno. */
int run_cmd(char *const argv[], char **out);
/* The same in network namespace netns ("" or NULL: this one). */
int run_cmd_in(const char *netns, char *const argv[], char **out);

#endif /* SL_CTL_INSTALL_H */
