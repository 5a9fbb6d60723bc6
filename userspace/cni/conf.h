/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * conf.h - what sluice-cni reads from its runtime: the network
 * configuration on stdin (with prevResult, the result of the plugins
 * before it in the chain) and the CNI_* environment, checked whole before
 * anything is sent to the agent.
 *
 * Network configuration fields read (docs/cni.md):
 *   cniVersion   "0.3.0", "0.3.1", "0.4.0" or "1.0.0" (else error 1)
 *   name, type   strings (required)
 *   agentSocket  the agent's socket, an absolute path (default CNI_DEFAULT_SOCKET)
 *   failOpen     bool: ADD succeeds without the mesh when the agent cannot be
 *                reached (default false: ADD fails)
 *   prevResult   required for ADD and CHECK: interfaces[] ({name, sandbox?})
 *                and ips[] ({address: CIDR}); 0.3/0.4 and 1.0 shapes alike
 *
 * Contract: cni_conf_parse() returns 0, or a CNI error code (spec,
 * "Error": 1 incompatible version, 4 bad environment, 6 decoding failure,
 * 7 invalid network config) with a message naming the field in err.
 */
#ifndef SL_CNI_CONF_H
#define SL_CNI_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CNI_DEFAULT_SOCKET "/run/sluice/cni.sock"
#define CNI_STDIN_MAX      (1u << 20)

#define CNI_ERR_VERSION 1
#define CNI_ERR_ENV     4
#define CNI_ERR_IO      5
#define CNI_ERR_DECODE  6
#define CNI_ERR_CONFIG  7
#define CNI_ERR_AGAIN   11

/* CNI versions this plugin speaks, as VERSION reports them */
extern const char *const cni_versions[];

struct cni_env {
	const char *command, *container_id, *netns, *ifname, *args;
};

struct cni_conf {
	json_t *doc;               /* the whole configuration */
	const char *version;       /* cniVersion (in doc) */
	const char *socket;
	bool fail_open;
	json_t *prev;              /* prevResult (in doc), or NULL */
};

int cni_conf_parse(const char *buf, size_t len, const struct cni_env *env, struct cni_conf *c,
		   char *err, size_t errlen);
void cni_conf_free(struct cni_conf *c);

/* The request for the agent (agent/enroll.h); NULL on allocation failure. */
json_t *cni_request(const struct cni_conf *c, const struct cni_env *env);

#endif /* SL_CNI_CONF_H */
