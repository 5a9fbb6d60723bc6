// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * manifest.c - `sluicectl manifest generate [--set K=V]... [-f FILE]...`:
 * the Kubernetes objects that run a profile on a cluster (docs/install.md):
 *
 *   Namespace sluice-system; ServiceAccounts sluice-control and
 *   sluice-agent, with no API token mounted and no role bound (neither
 *   program talks to the API server); ConfigMap sluice-profile (the
 *   resolved profile); Deployment and Service sluice-control (state on a
 *   PersistentVolumeClaim); DaemonSet sluice-agent (host network, the
 *   host's bpffs, cgroup and run directories, CAP_BPF, CAP_NET_ADMIN and
 *   CAP_SYS_ADMIN, probes on the agent's /healthz and /readyz).
 *
 * With control.store=etcd://... the control plane's state is in etcd, not
 * on a volume: the Deployment runs control.replicas replicas (rolling
 * updates; each replica's own credentials in an emptyDir) with --store and
 * the store key from Secret sluice-store-key; agents reach them through
 * the Service, which sends a reconnecting agent to a live replica.
 *
 * The CA (Secret sluice-ca), the store key and the nodes' join tokens
 * (Secret sluice-join, one key per node name) are the operator's to
 * create: the commands are in docs/install.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/profile.h"
#include "lib/core/sys.h"

#define NS "sluice-system"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

/* The port of an ADDRESS:PORT value. */
static const char *port_of(const json_t *p, const char *key)
{
	const char *v = prof_str(p, key), *c = strrchr(v, ':');

	return c ? c + 1 : v;
}

static void labels(FILE *f, const char *indent, const char *app)
{
	fprintf(f, "%slabels:\n%s  app.kubernetes.io/name: %s\n%s  app.kubernetes.io/part-of: sluice\n",
		indent, indent, app, indent);
}

static void accounts(FILE *f)
{
	static const char *const names[] = { "sluice-control", "sluice-agent" };

	fprintf(f, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: " NS "\n");
	labels(f, "  ", "sluice");
	for (int i = 0; i < 2; i++) {
		fprintf(f, "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %s\n"
			"  namespace: " NS "\n", names[i]);
		labels(f, "  ", names[i]);
		/* neither program calls the API server: no token, no role */
		fprintf(f, "automountServiceAccountToken: false\n");
	}
}

static void profile_map(FILE *f, const json_t *p)
{
	char *j = json_dumps(p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	fprintf(f, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sluice-profile\n"
		"  namespace: " NS "\n");
	labels(f, "  ", "sluice");
	fprintf(f, "data:\n  install.json: |\n");
	for (char *line = j, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		fprintf(f, "    %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
	}
	free(j);
}

static void control(FILE *f, const json_t *p, const char *image)
{
	const char *port = port_of(p, "control.listen"), *store = prof_str(p, "control.store");
	char store_args[600] = "";

	if (*store) {
		/* the state is in etcd: replicas, each with its own credentials */
		snprintf(store_args, sizeof(store_args),
			 ",\n               --store, \"%s\", --store-key, /etc/sluice/store-key/key", store);
		fprintf(f, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sluice-control\n"
			"  namespace: " NS "\n");
		labels(f, "  ", "sluice-control");
		fprintf(f, "spec:\n  replicas: %ld\n"
			"  # every replica serves (any takes applies, each pushes to its agents):\n"
			"  # they share config, identities, node addresses, tokens and the CA in etcd\n"
			"  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 1}\n",
			prof_int(p, "control.replicas"));
	} else {
		fprintf(f, "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n"
			"  name: sluice-control-state\n  namespace: " NS "\n");
		labels(f, "  ", "sluice-control");
		fprintf(f, "spec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n");
		fprintf(f, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sluice-control\n"
			"  namespace: " NS "\n");
		labels(f, "  ", "sluice-control");
		fprintf(f, "spec:\n  replicas: 1\n"
			"  # one writer of the state directory at a time\n"
			"  strategy:\n    type: Recreate\n");
	}
	fprintf(f, "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sluice-control\n"
		"  template:\n    metadata:\n");
	labels(f, "      ", "sluice-control");
	fprintf(f, "    spec:\n      serviceAccountName: sluice-control\n"
		"      automountServiceAccountToken: false\n"
		"      containers:\n      - name: sluice-control\n        image: %s\n"
		"        command: [/usr/local/lib/sluice/sluice-control]\n"
		"        args: [--state-dir, /var/lib/sluice/control, --listen, \"0.0.0.0:%s\",\n"
		"               --trust-domain, %s, --log-level, %s,\n"
		"               --ca-cert, /etc/sluice/ca/tls.crt, --ca-key, /etc/sluice/ca/tls.key,\n"
		"               --san, sluice-control." NS ".svc%s]\n"
		"        ports:\n        - {name: api, containerPort: %s}\n"
		"        # the API is HTTP/2 over mutual TLS only: probe the socket\n"
		"        readinessProbe:\n          tcpSocket: {port: %s}\n          periodSeconds: 5\n"
		"        livenessProbe:\n          tcpSocket: {port: %s}\n          periodSeconds: 10\n"
		"        securityContext:\n          runAsNonRoot: false\n"
		"          allowPrivilegeEscalation: false\n          readOnlyRootFilesystem: true\n"
		"          capabilities: {drop: [ALL]}\n"
		"        volumeMounts:\n        - {name: state, mountPath: /var/lib/sluice/control}\n"
		"        - {name: ca, mountPath: /etc/sluice/ca, readOnly: true}\n"
		"%s"
		"      volumes:\n      - name: state\n%s"
		"      - name: ca\n        secret: {secretName: sluice-ca}\n%s",
		image, port, prof_str(p, "control.trustDomain"), prof_str(p, "agent.logLevel"),
		store_args, port, port, port,
		*store ? "        - {name: store-key, mountPath: /etc/sluice/store-key, readOnly: true}\n" : "",
		*store ? "        # this replica's own credentials; the shared state is in etcd\n"
			 "        emptyDir: {}\n"
		       : "        persistentVolumeClaim: {claimName: sluice-control-state}\n",
		*store ? "      - name: store-key\n        secret: {secretName: sluice-store-key}\n" : "");
	fprintf(f, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: sluice-control\n"
		"  namespace: " NS "\n");
	labels(f, "  ", "sluice-control");
	fprintf(f, "spec:\n  selector:\n    app.kubernetes.io/name: sluice-control\n"
		"  ports:\n  - {name: api, port: %s, targetPort: %s}\n", port, port);
}

/* A hostPath volume and its mount; the agent uses each (docs/install.md). */
static const struct { const char *name, *path, *type, *why; bool bidir; } host_paths[] = {
	{ "bpffs", SL_BPFFS, "DirectoryOrCreate", "pinned maps and links outlive the pod", true },
	{ "cgroup", "/sys/fs/cgroup", "Directory", "the node's pod cgroup, where the programs attach", false },
	{ "run", SL_RUN_BASE, "DirectoryOrCreate", "status.json, certs.json, the flow log", false },
	{ "state", "/var/lib/sluice", "DirectoryOrCreate", "the node key, certificate, last snapshot", false },
	{ "netns", "/run/netns", "DirectoryOrCreate", "workloads' network namespaces", true },
};

static void agent(FILE *f, const json_t *p, const char *image)
{
	const char *cport = port_of(p, "control.listen"), *mport = port_of(p, "agent.metricsAddr");
	char *cni_init = NULL;
	size_t i;

	/* cni.enabled: the installer container (docs/cni.md) chains sluice-cni
	 * into the node's CNI configuration before the agent starts */
	if (prof_bool(p, "cni.enabled") &&
	    asprintf(&cni_init, "      initContainers:\n      - name: install-cni\n        image: %s\n"
		     "        env:\n        - name: NODE_NAME\n          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}\n"
		     "        command: [/bin/sh, -c]\n"
		     "        args:\n        - >-\n"
		     "          exec /usr/local/lib/sluice/sluice-cni install-chain\n"
		     "          --bin-dir /host/opt/cni/bin --conf-dir /host/etc/cni/net.d\n"
		     "          --socket " SL_RUN_BASE "/$NODE_NAME/cni.sock\n"
		     "        securityContext:\n          allowPrivilegeEscalation: false\n"
		     "          capabilities: {drop: [ALL]}\n"
		     "        volumeMounts:\n"
		     "        - {name: cni-bin, mountPath: /host/opt/cni/bin}\n"
		     "        - {name: cni-conf, mountPath: /host/etc/cni/net.d}\n", image) < 0)
		cni_init = NULL;

	fprintf(f, "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: sluice-agent\n"
		"  namespace: " NS "\n");
	labels(f, "  ", "sluice-agent");
	fprintf(f, "spec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: sluice-agent\n"
		"  # one node at a time; the pinned maps and links on the host keep the\n"
		"  # node's traffic running while its agent is replaced\n"
		"  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 1}\n"
		"  template:\n    metadata:\n");
	labels(f, "      ", "sluice-agent");
	fprintf(f, "    spec:\n      serviceAccountName: sluice-agent\n"
		"      automountServiceAccountToken: false\n"
		"      hostNetwork: true\n      dnsPolicy: ClusterFirstWithHostNet\n"
		"      priorityClassName: system-node-critical\n"
		"      tolerations: [{operator: Exists}]\n"
		"      terminationGracePeriodSeconds: 30\n"
		"%s"
		"      containers:\n      - name: sluice-agent\n        image: %s\n"
		"        env:\n        - name: NODE_NAME\n          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}\n"
		"        # the first start joins with the node's token; later ones use the\n"
		"        # certificate in /var/lib/sluice\n"
		"        command: [/bin/sh, -c]\n"
		"        args:\n        - >-\n"
		"          TOKEN=$(cat /etc/sluice/join/$NODE_NAME 2>/dev/null);\n"
		"          exec /usr/local/lib/sluice/sluice-agent --node \"$NODE_NAME\"\n"
		"          --cgroup %s\n"
		"          --control https://sluice-control." NS ".svc:%s\n"
		"          --ca-file /etc/sluice/ca/tls.crt\n"
		"          --state-dir /var/lib/sluice/agent\n"
		"          --metrics-addr 0.0.0.0:%s\n"
		"          %s--sockmap %s --log-level %s --proxy %s\n"
		"          ${TOKEN:+--join-token \"$TOKEN\"}\n"
		"        ports:\n        - {name: metrics, containerPort: %s}\n"
		"        - {name: hbone, containerPort: %s}\n"
		"        readinessProbe:\n          httpGet: {path: /readyz, port: %s}\n          periodSeconds: 5\n"
		"        livenessProbe:\n          httpGet: {path: /healthz, port: %s}\n          periodSeconds: 10\n"
		"        securityContext:\n          allowPrivilegeEscalation: false\n"
		"          capabilities:\n            drop: [ALL]\n"
		"            # BPF: load programs, create maps; NET_ADMIN: attach them (cgroup,\n"
		"            # tc); SYS_ADMIN: enter workloads' network namespaces (setns),\n"
		"            # mount bpffs, and BPF itself on kernels before 5.8 (no CAP_BPF)\n"
		"            add: [BPF, NET_ADMIN, SYS_ADMIN]\n"
		"        volumeMounts:\n",
		cni_init ? cni_init : "", image, prof_str(p, "node.cgroup"), cport, mport,
		prof_bool(p, "agent.flowLog") ? "" : "--flow-log none ",
		prof_str(p, "agent.sockmap"), prof_str(p, "agent.logLevel"),
		prof_bool(p, "components.proxy.enabled") ? "on" : "off", mport,
		port_of(p, "proxy.hboneAddr"), mport, mport);
	for (i = 0; i < sizeof(host_paths) / sizeof(host_paths[0]); i++)
		fprintf(f, "        - {name: %s, mountPath: %s%s}\n", host_paths[i].name, host_paths[i].path,
			host_paths[i].bidir ? ", mountPropagation: Bidirectional" : "");
	fprintf(f, "        - {name: ca, mountPath: /etc/sluice/ca, readOnly: true}\n"
		"        - {name: join, mountPath: /etc/sluice/join, readOnly: true}\n"
		"      volumes:\n");
	for (i = 0; i < sizeof(host_paths) / sizeof(host_paths[0]); i++)
		fprintf(f, "      # %s\n      - name: %s\n        hostPath: {path: %s, type: %s}\n",
			host_paths[i].why, host_paths[i].name, host_paths[i].path, host_paths[i].type);
	if (prof_bool(p, "cni.enabled"))
		fprintf(f, "      # the installer container's: the node's CNI plugins and configuration\n"
			"      - name: cni-bin\n        hostPath: {path: /opt/cni/bin, type: DirectoryOrCreate}\n"
			"      - name: cni-conf\n        hostPath: {path: /etc/cni/net.d, type: DirectoryOrCreate}\n");
	fprintf(f, "      - name: ca\n        secret:\n          secretName: sluice-ca\n"
		"          items: [{key: tls.crt, path: tls.crt}]\n"
		"      - name: join\n        secret: {secretName: sluice-join, optional: true}\n");
	free(cni_init);
}

const struct cli_opt ctl_manifest_opts[] = {
	PROFILE_OPT_SET("KEY=VALUE", "set a key (repeatable; profile=NAME picks the profile)"),
	PROFILE_OPT_OVERLAY,
	PROFILE_OPT_PROFILE,
	CTL_OPT_HELP,
	{}
};

static int manifest_generate(const struct ctl_opts *o, int argc, char **argv)
{
	struct profile_args a;
	json_t *p = NULL;
	char image[128];
	int rc = profile_args_parse(&a, CTL_MANIFEST_HELP, ctl_manifest_opts, argc, argv);

	if (rc >= 0) {
		profile_args_free(&a);
		return rc;
	}
	rc = profile_args_resolve("manifest generate", &a, &p);
	if (rc)
		goto out;
	if (prof_bool(p, "demo.enabled")) {
		fprintf(stderr, "sluicectl manifest generate: the demo's simulated cluster runs on one "
			"host, not on Kubernetes: use --set profile=default\n");
		rc = -1;
		goto out;
	}
	snprintf(image, sizeof(image), "sluice:%s", SLUICE_VERSION);
	accounts(stdout);
	profile_map(stdout, p);
	if (prof_bool(p, "components.control.enabled"))
		control(stdout, p, image);
	if (prof_bool(p, "components.agent.enabled"))
		agent(stdout, p, image);
out:
	json_decref(p);
	profile_args_free(&a);
	return rc ? 1 : 0;
}

int cmd_manifest(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ .name = "generate", .fn = manifest_generate },
		{}
	};

	return ctl_dispatch(sub, "manifest", CTL_MANIFEST_HELP, ctl_manifest_opts, o, argc, argv);
}
