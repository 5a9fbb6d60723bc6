// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice-cni - a chained CNI plugin (CNI 1.0.0, and 0.3.x/0.4.0 configs):
 * after the plugin that creates the container's interface, it hands the
 * container to the node's sluice agent over a local unix socket and
 * returns prevResult unchanged. The agent enrolls it in the mesh
 * (docs/cni.md); an ADD the agent refuses or cannot take fails, unless
 * the network configuration says "failOpen": true.
 *
 * Invoked by a container runtime, never by hand: CNI_COMMAND and the other
 * CNI_* variables in the environment, the network configuration on stdin,
 * the result or a CNI error object on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "cni/chain.h"
#include "cni/conf.h"
#include "lib/core/cli.h"

#define AGENT_WAIT_S 15     /* the agent answers within 10 s */

static const struct cli_opt cni_options[] = {
	{ "version", no_argument, 'V', NULL, "print the version and exit" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help and exit" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

static const struct cli_prog cni_cli = {
	.name = "sluice-cni",
	.section = 8,
	.summary = "the sluice CNI plugin: containers join the mesh when their runtime starts them",
	.usage = (const char *const[]){ "(run by a container runtime: CNI_COMMAND=ADD|DEL|CHECK|VERSION)",
					"install-chain --socket PATH [--bin-dir DIR] [--conf-dir DIR]",
					"uninstall-chain [--bin-dir DIR] [--conf-dir DIR]",
					NULL },
	.description =
		"A chained CNI plugin (CNI 1.0.0; 0.3.0, 0.3.1 and 0.4.0 configurations too). "
		"Listed after the plugin that creates the container's interface (bridge or "
		"ptp), it reads prevResult and hands the container to the node's sluice agent "
		"over the unix socket named by the network configuration's agentSocket "
		"(default " CNI_DEFAULT_SOCKET "). The agent reads the container's identity from "
		"the runtime's own record, registers it with the control plane and attaches the "
		"data plane; ADD returns prevResult unchanged once that is done. ADD fails when "
		"the agent refuses the container or cannot be reached, unless the configuration "
		"says \"failOpen\": true. DEL always succeeds (the agent retries what it could "
		"not undo); CHECK reports drift. `sluicectl install` installs the plugin and a "
		"chained network for podman; docs/cni.md has the details.\n\n"
		"install-chain, run by the Kubernetes installer container on each node, copies "
		"the plugin into --bin-dir (default /opt/cni/bin) and chains it, with the agent's "
		"--socket, into the node's CNI configuration: the lexically first *.conflist, "
		"*.conf or *.json of --conf-dir (default /etc/cni/net.d), as the runtime picks it. "
		"Running it again changes nothing; uninstall-chain undoes it.",
	.opts = cni_options,
};

static int cni_error(const char *version, int code, const char *msg, const char *details)
{
	json_t *j = json_pack("{s:s, s:i, s:s, s:s}", "cniVersion", version ?: "1.0.0", "code", code,
			      "msg", msg, "details", details ?: "");

	json_dumpf(j, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(j);
	fprintf(stderr, "sluice-cni: %s%s%s\n", msg, details && *details ? ": " : "", details ?: "");
	return 1;
}

static char *read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap + 1);
	ssize_t r;

	while (b && (r = read(0, b + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			char *nb = cap >= CNI_STDIN_MAX ? NULL : realloc(b, cap * 2 + 1);

			if (!nb) {
				free(b);
				errno = EFBIG;
				return NULL;
			}
			b = nb;
			cap *= 2;
		}
	}
	if (b)
		b[n] = 0;
	*len = n;
	return b;
}

/* One request, one answer line. 0, or -errno when the agent cannot be
 * reached (connect) or goes away (-EPROTO: no answer that parses);
 * *answer NULL then. */
static int ask_agent(const char *sock, const json_t *req, json_t **answer, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = AGENT_WAIT_S };
	char *text = json_dumps(req, JSON_COMPACT), buf[65536];
	size_t n = 0, tl = text ? strlen(text) : 0, off = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	json_error_t je;
	ssize_t r;
	int rc;

	*answer = NULL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (fd < 0 || !text || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = fd >= 0 && !text ? -ENOMEM : -errno;
		snprintf(err, errlen, "cannot reach the sluice agent at %s: %s", sock, strerror(-rc));
		goto fail;
	}
	while (off < tl && (r = send(fd, text + off, tl - off, MSG_NOSIGNAL)) > 0)
		off += (size_t)r;
	if (off < tl || shutdown(fd, SHUT_WR)) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "sending to the sluice agent at %s: %s", sock, strerror(-rc));
		goto fail;
	}
	while (n < sizeof(buf) - 1 && (r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
		n += (size_t)r;
	*answer = json_loadb(buf, n, 0, &je);
	if (!json_is_object(*answer)) {
		snprintf(err, errlen, "the sluice agent at %s gave no answer%s%s", sock,
			 n ? ": " : " (timed out or closed)", n ? je.text : "");
		json_decref(*answer);
		*answer = NULL;
		rc = -EPROTO;
		goto fail;
	}
	free(text);
	close(fd);
	return 0;
fail:
	free(text);
	if (fd >= 0)
		close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct cni_env env = { getenv("CNI_COMMAND"), getenv("CNI_CONTAINERID"), getenv("CNI_NETNS"),
			       getenv("CNI_IFNAME"), getenv("CNI_ARGS") };
	struct cni_conf c;
	char err[1024], *in;
	json_t *req, *ans = NULL;
	size_t len = 0;
	int rc;

	if (argc > 1 && (!strcmp(argv[1], "install-chain") || !strcmp(argv[1], "uninstall-chain")))
		return chain_main(argc - 1, argv + 1);
	if (argc > 1) {
		if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
			printf("sluice-cni %s\n", sluice_version);
			return 0;
		}
		if (!strcmp(argv[1], "--man")) {
			cli_man(stdout, &cni_cli);
			return 0;
		}
		cli_help(strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? stderr : stdout, &cni_cli);
		return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? 2 : 0;
	}
	in = read_stdin(&len);
	if (!in)
		return cni_error(NULL, CNI_ERR_IO, "reading the network configuration from stdin failed",
				 strerror(errno));
	rc = cni_conf_parse(in, len, &env, &c, err, sizeof(err));
	free(in);
	if (rc) {
		rc = cni_error(c.version, rc, err, NULL);
		cni_conf_free(&c);
		return rc;
	}
	if (!strcmp(env.command, "VERSION")) {
		json_t *v = json_pack("{s:s, s:[]}", "cniVersion", "1.0.0", "supportedVersions");

		for (const char *const *x = cni_versions; *x; x++)
			json_array_append_new(json_object_get(v, "supportedVersions"), json_string(*x));
		json_dumpf(v, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(v);
		cni_conf_free(&c);
		return 0;
	}
	req = cni_request(&c, &env);
	if (!req) {
		rc = cni_error(c.version, CNI_ERR_IO, "out of memory", NULL);
	} else if (ask_agent(c.socket, req, &ans, err, sizeof(err))) {
		if (!strcmp(env.command, "DEL")) {
			/* DEL must succeed; the agent deregisters containers whose
			 * namespace is gone when it is back */
			fprintf(stderr, "sluice-cni: DEL %.12s: %s; the agent cleans up when it is back\n",
				env.container_id, err);
			rc = 0;
		} else if (!strcmp(env.command, "ADD") && c.fail_open) {
			fprintf(stderr, "sluice-cni: ADD %.12s: %s; failOpen: the container starts "
				"outside the mesh\n", env.container_id, err);
			json_dumpf(c.prev, stdout, JSON_COMPACT);
			putchar('\n');
			rc = 0;
		} else {
			rc = cni_error(c.version, CNI_ERR_AGAIN, err, "the container does not start "
				       "outside the mesh (failOpen is false)");
		}
	} else if (!json_is_true(json_object_get(ans, "ok"))) {
		json_int_t code = json_integer_value(json_object_get(ans, "code"));

		rc = cni_error(c.version, code > 0 ? (int)code : CNI_ERR_IO,
			       json_string_value(json_object_get(ans, "msg")) ?: "the agent refused",
			       json_string_value(json_object_get(ans, "details")));
	} else {
		if (!strcmp(env.command, "ADD")) {
			json_dumpf(c.prev, stdout, JSON_COMPACT);
			putchar('\n');
		}
		rc = 0;
	}
	json_decref(ans);
	json_decref(req);
	cni_conf_free(&c);
	return rc;
}
