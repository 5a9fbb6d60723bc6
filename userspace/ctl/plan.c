// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * plan.c - from a resolved profile to what runs where (install.h): paths,
 * the daemons with their command lines, the nodes whose agents run here,
 * and the mesh config install applies.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/cni.h"
#include "ctl/plan.h"
#include "ctl/profile.h"
#include "lib/core/file.h"
#include "lib/core/sys.h"

/* The simulated cluster's fixed addresses (tests/simcluster --help). */
#define DEMO_HOST_ADDR "192.168.77.254"

/* Copy s into the plan's argument buffer; NULL on ENOMEM. */
static char *arg(struct plan *p, const char *fmt, ...)
{
	char tmp[PATH_MAX + 64];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	n = strlen(tmp) + 1;
	if (p->argused + n > p->argcap)
		return NULL;
	memcpy(p->argbuf + p->argused, tmp, n);
	p->argused += n;
	return p->argbuf + p->argused - n;
}

static struct daemon *daemon_add(struct plan *p, const char *name)
{
	struct daemon *d;

	if (p->nd == PLAN_MAX_DAEMONS)
		return NULL;
	d = &p->d[p->nd++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	return d;
}

/* Append arguments to d->argv, NULL-terminated list of format-free strings. */
static int argv_add(struct plan *p, struct daemon *d, ...)
{
	va_list ap;
	const char *s;
	int n = 0;

	while (d->argv[n])
		n++;
	va_start(ap, d);
	while ((s = va_arg(ap, const char *))) {
		if (n + 1 >= PLAN_MAX_ARGS || !(d->argv[n] = arg(p, "%s", s))) {
			va_end(ap);
			return -E2BIG;
		}
		n++;
	}
	va_end(ap);
	return 0;
}

const struct daemon *plan_daemon(const struct plan *p, const char *name)
{
	for (int i = 0; i < p->nd; i++)
		if (!strcmp(p->d[i].name, name))
			return &p->d[i];
	return NULL;
}

static void node_name(const json_t *prof, char *out, size_t len)
{
	const char *n = prof_str(prof, "node.name");
	char host[256] = "node";

	if (!*n) {
		gethostname(host, sizeof(host) - 1);
		for (char *c = host; *c; c++)
			*c = isalnum((unsigned char)*c) || *c == '-' ? (char)tolower(*c) : '-';
		n = host;
	}
	snprintf(out, len, "%s", n);
}

/* An agent for node nd: the common flags. */
static int agent_daemon(struct plan *p, struct plan_node *nd, const char *url)
{
	const json_t *pr = p->prof;
	struct daemon *d = daemon_add(p, nd->daemon);
	char flowlog[PATH_MAX];
	int rc;

	if (!d)
		return -E2BIG;
	snprintf(d->netns, sizeof(d->netns), "%s", nd->netns);
	snprintf(d->ready, sizeof(d->ready), "programs attached");
	snprintf(flowlog, sizeof(flowlog), "%s/flows.jsonl", nd->run_dir);
	rc = argv_add(p, d, arg(p, "%s/sluice-agent", p->bin), "--node", nd->name,
		      "--cgroup", nd->cgroup, "--control", url, "--ca-file", p->ca_file,
		      "--state-dir", nd->state_dir, "--pin-root", nd->pin_root,
		      "--metrics-addr", nd->metrics,
		      "--flow-log", prof_bool(pr, "agent.flowLog") ? flowlog : "none",
		      "--sockmap", prof_str(pr, "agent.sockmap"),
		      "--log-level", prof_str(pr, "agent.logLevel"),
		      "--proxy", prof_bool(pr, "components.proxy.enabled") ? "on" : "off",
		      "--hbone-addr", prof_str(pr, "proxy.hboneAddr"),
		      "--outbound-addr", prof_str(pr, "proxy.outboundAddr"), NULL);
	return rc;
}

static int node_add(struct plan *p, const char *name, const char *netns, const char *cgroup,
		    const char *metrics, struct plan_node **out)
{
	struct plan_node *nd;

	if (p->nnodes == PLAN_MAX_NODES)
		return -E2BIG;
	nd = &p->nodes[p->nnodes++];
	memset(nd, 0, sizeof(*nd));
	snprintf(nd->name, sizeof(nd->name), "%s", name);
	snprintf(nd->netns, sizeof(nd->netns), "%s", netns);
	snprintf(nd->cgroup, sizeof(nd->cgroup), "%s", cgroup);
	snprintf(nd->metrics, sizeof(nd->metrics), "%s", metrics);
	snprintf(nd->pin_root, sizeof(nd->pin_root), "%s/%s", prof_str(p->prof, "paths.pinBase"), name);
	snprintf(nd->state_dir, sizeof(nd->state_dir), "%s/agent-%s", p->state, name);
	/* the agent's run dir: /run/sluice/<pin root's last component> */
	snprintf(nd->run_dir, sizeof(nd->run_dir), SL_RUN_BASE "/%s", name);
	snprintf(nd->daemon, sizeof(nd->daemon), "agent-%s", name);
	*out = nd;
	return 0;
}

/* The demo: two simulated nodes with agents that capture, and servers. */
static int plan_demo(struct plan *p, const char *port)
{
	static const struct { const char *name, *pod; int node, port; } servers[] = {
		{ "web-v1", "node1.pod2", 1, 8080 },
		{ "web-v2", "node2.pod1", 2, 8080 },
		{ "ledger", "node2.pod2", 2, 9090 },
	};
	const char *c = p->demo_cluster;
	char url[128];
	int rc;

	snprintf(url, sizeof(url), "https://" DEMO_HOST_ADDR ":%s", port);
	for (int i = 1; i <= prof_int(p->prof, "demo.nodes"); i++) {
		char name[64], ns[PATH_MAX], cg[PATH_MAX];
		struct plan_node *nd;

		snprintf(name, sizeof(name), "%s-node%d", c, i);
		snprintf(ns, sizeof(ns), "/run/netns/slc.%s.node%d", c, i);
		snprintf(cg, sizeof(cg), "%s/slc.%s/node%d", p->cgroot, c, i);
		rc = node_add(p, name, ns, cg, "127.0.0.1:15020", &nd);
		rc = rc ?: agent_daemon(p, nd, url);
		rc = rc ?: argv_add(p, &p->d[p->nd - 1],
				    "--capture-addr", arg(p, "10.244.%d.1", i),
				    "--capture-addr", arg(p, "fd00:244:%d::1", i), NULL);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
		struct daemon *d;
		char name[64], pn[8];

		snprintf(name, sizeof(name), "demo-%s", servers[i].name);
		d = daemon_add(p, name);
		if (!d)
			return -E2BIG;
		snprintf(d->netns, sizeof(d->netns), "/run/netns/slc.%s.%s", c, servers[i].pod);
		snprintf(d->cgroup, sizeof(d->cgroup), "%s/slc.%s/node%d/pod%s", p->cgroot, c,
			 servers[i].node, strrchr(servers[i].pod, 'd') + 1);
		snprintf(pn, sizeof(pn), "%d", servers[i].port);
		rc = argv_add(p, d, arg(p, "%s/sltest", p->bin), "serve", "--name", servers[i].name,
			      "--tcp", pn, NULL);
		if (rc)
			return rc;
	}
	return 0;
}

static int self_dir(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -errno;
	exe[n] = 0;
	snprintf(out, len, "%s", dirname(exe));
	return 0;
}

static bool systemd_is_init(void)
{
	char comm[32] = "";
	FILE *f = fopen("/proc/1/comm", "r");

	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
	}
	return !strncmp(comm, "systemd", 7);
}

int plan_build(struct plan *p, json_t *prof, char *err, size_t errlen)
{
	const char *pre = prof_str(prof, "paths.prefix"), *listen, *colon, *sup;
	char node[64], host[128];
	struct plan_node *nd;
	int rc;

	memset(p, 0, sizeof(*p));
	p->prof = json_incref(prof);
	p->argcap = 16384;
	p->argbuf = malloc(p->argcap);
	if (!p->argbuf)
		return -ENOMEM;
	snprintf(p->etc, sizeof(p->etc), "%s/etc/sluice", pre);
	snprintf(p->state, sizeof(p->state), "%s/var/lib/sluice", pre);
	snprintf(p->log, sizeof(p->log), "%s/var/log/sluice", pre);
	snprintf(p->bin, sizeof(p->bin), "%s/usr/local/lib/sluice", pre);
	snprintf(p->daemons, sizeof(p->daemons), "%s/daemons", p->state);
	snprintf(p->control_dir, sizeof(p->control_dir), "%s/control", p->state);
	rc = self_dir(p->src_bin, sizeof(p->src_bin));
	if (rc) {
		snprintf(err, errlen, "cannot find this program's directory: %s", strerror(-rc));
		return rc;
	}
	rc = sys_cgroup2_root(p->cgroot, sizeof(p->cgroot));
	if (rc)
		p->cgroot[0] = 0;   /* preflight says so */
	sup = prof_str(prof, "supervisor");
	p->systemd = !strcmp(sup, "systemd") || (!strcmp(sup, "auto") && systemd_is_init());

	listen = prof_str(prof, "control.listen");
	colon = strrchr(listen, ':');
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (*prof_str(prof, "control.address"))
		snprintf(p->control_url, sizeof(p->control_url), "%s", prof_str(prof, "control.address"));
	else
		snprintf(p->control_url, sizeof(p->control_url), "https://%s:%s",
			 strcmp(host, "0.0.0.0") ? host : "127.0.0.1", colon + 1);
	if (*prof_str(prof, "control.caFile"))
		snprintf(p->ca_file, sizeof(p->ca_file), "%s", prof_str(prof, "control.caFile"));
	else
		snprintf(p->ca_file, sizeof(p->ca_file), "%s/ca.crt", p->control_dir);
	if (prof_bool(prof, "demo.enabled"))
		snprintf(p->demo_cluster, sizeof(p->demo_cluster), "%s", prof_str(prof, "demo.cluster"));

	if (prof_bool(prof, "components.control.enabled")) {
		struct daemon *d = daemon_add(p, "control");

		snprintf(d->ready, sizeof(d->ready), "listening on");
		if (prof_int(prof, "control.replicas") > 1) {
			snprintf(err, errlen, "control.replicas=%ld: an install runs one replica, on "
				 "this host; install each replica's host with the same control.store "
				 "and control.storeKeyFile and control.replicas=1, or use sluicectl "
				 "manifest generate", prof_int(prof, "control.replicas"));
			return -EINVAL;
		}
		if (*prof_str(prof, "control.store") && !*prof_str(prof, "control.storeKeyFile")) {
			snprintf(err, errlen, "control.store is etcd: control.storeKeyFile must name "
				 "the store key every replica shares (sluice-control store-key create FILE)");
			return -EINVAL;
		}
		rc = argv_add(p, d, arg(p, "%s/sluice-control", p->bin), "--state-dir", p->control_dir,
			      "--listen", listen, "--trust-domain", prof_str(prof, "control.trustDomain"),
			      "--log-level", prof_str(prof, "agent.logLevel"), NULL);
		if (!rc && *prof_str(prof, "control.store"))
			rc = argv_add(p, d, "--store", prof_str(prof, "control.store"), "--store-key",
				      prof_str(prof, "control.storeKeyFile"), NULL);
		if (!rc && p->demo_cluster[0])
			rc = argv_add(p, d, "--san", DEMO_HOST_ADDR, NULL);
		if (rc)
			goto big;
	}
	if (prof_bool(prof, "components.agent.enabled")) {
		char cg[PATH_MAX];

		node_name(prof, node, sizeof(node));
		snprintf(cg, sizeof(cg), "%s/%s", p->cgroot, prof_str(prof, "node.cgroup"));
		rc = node_add(p, node, "", cg, prof_str(prof, "agent.metricsAddr"), &nd);
		rc = rc ?: agent_daemon(p, nd, p->control_url);
		if (rc)
			goto big;
		nd->probe = prof_bool(prof, "probe.enabled");
	}
	if (prof_bool(prof, "cni.enabled") && (rc = cni_subnet(prof, host, sizeof(host), err, errlen)))
		return rc;
	if (p->nnodes && !prof_bool(prof, "components.control.enabled") &&
	    (!*prof_str(prof, "control.address") || !*prof_str(prof, "control.caFile"))) {
		snprintf(err, errlen, "an agent without a control plane here joins one elsewhere: set "
			 "control.address (https://HOST:PORT), control.caFile (its CA certificate) and, "
			 "for the first install, control.joinToken (sluice-control token create --node %s)",
			 p->nodes[0].name);
		return -EINVAL;
	}
	if (p->demo_cluster[0]) {
		if (!prof_bool(prof, "components.control.enabled") ||
		    (strcmp(host, "0.0.0.0") && strcmp(host, DEMO_HOST_ADDR))) {
			snprintf(err, errlen, "demo.enabled: the simulated nodes reach the control plane at "
				 DEMO_HOST_ADDR ": needs components.control.enabled=true and "
				 "control.listen=0.0.0.0:PORT (is %s)", listen);
			return -EINVAL;
		}
		rc = plan_demo(p, colon + 1);
		if (rc)
			goto big;
	}
	return 0;
big:
	snprintf(err, errlen, "the plan is larger than sluicectl's tables: %s", strerror(-rc));
	return rc;
}

void plan_free(struct plan *p)
{
	json_decref(p->prof);
	free(p->argbuf);
	memset(p, 0, sizeof(*p));
}

int plan_installed(struct plan *p, struct profile_args *a, char *err, size_t errlen)
{
	char path[PATH_MAX];
	json_t *asked = NULL, *prof;
	int rc = profile_args_resolve("install", a, &asked);

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/etc/sluice/install.json", prof_str(asked, "paths.prefix"));
	json_decref(asked);
	prof = json_load_file(path, 0, NULL);
	if (!prof) {
		snprintf(err, errlen, "%s: no installation here (sluicectl install)", path);
		return -ENOENT;
	}
	rc = plan_build(p, prof, err, errlen);
	json_decref(prof);
	return rc;
}

/* The demo's services and policies (docs/install.md shows them). */
static const char demo_yaml[] =
"---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n"
"spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n"
"---\napiVersion: v1\nkind: Service\nmetadata: {name: ledger, namespace: demo}\n"
"spec:\n  clusterIP: 10.96.0.20\n  selector: {app: ledger}\n  ports: [{port: 90, targetPort: 9090}]\n"
"---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, namespace: demo}\n"
"spec:\n  host: web\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n"
"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: demo}\n"
"spec:\n  hosts: [web]\n  tcp:\n  - route:\n    - {destination: {host: web, subset: v1}, weight: 80}\n"
"    - {destination: {host: web, subset: v2}, weight: 20}\n"
"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ledger, namespace: demo}\n"
"spec:\n  selector: {matchLabels: {app: ledger}}\n  action: ALLOW\n  rules:\n"
"  - from: [{source: {principals: [\"%s/ns/demo/sa/web\"]}}]\n";

/* A WorkloadEntry for a demo pod. */
static int demo_workload(FILE *f, const struct plan *p, int node, int pod, const char *name,
			 const char *sa, const char *labels)
{
	return fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
		       "metadata:\n  name: %s\n  namespace: demo\n  annotations:\n"
		       "    sluice.io/node: %s-node%d\n    sluice.io/netns: /run/netns/slc.%s.node%d.pod%d\n"
		       "    sluice.io/interface: p%d\n    sluice.io/ipv6: fd00:244:%d::%d\n"
		       "spec:\n  address: 10.244.%d.%d\n  serviceAccount: %s\n  labels: {%s}\n",
		       name, p->demo_cluster, node, p->demo_cluster, node, pod, pod, node, pod + 1,
		       node, pod + 1, sa, labels);
}

char *plan_mesh_yaml(const struct plan *p)
{
	const json_t *pr = p->prof;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
		"metadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: %s}\n",
		prof_str(pr, "mesh.mtls"));
	for (int i = 0; i < p->nnodes; i++) {
		if (!p->nodes[i].probe)
			continue;
		/* the probe: a VIP whose backend verify-install opens on loopback */
		fprintf(f, "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
			"metadata: {name: sluice-probe-%s, namespace: istio-system}\nspec:\n"
			"  hosts: [sluice-probe-%s.istio-system.svc.cluster.local]\n"
			"  addresses: [%s]\n  resolution: STATIC\n  location: MESH_INTERNAL\n"
			"  ports: [{number: %ld, name: tcp, protocol: TCP, targetPort: %ld}]\n"
			"  endpoints: [{address: 127.0.0.1}]\n",
			p->nodes[i].name, p->nodes[i].name, prof_str(pr, "probe.vip"),
			prof_int(pr, "probe.port"), prof_int(pr, "probe.backendPort"));
	}
	if (p->demo_cluster[0]) {
		fprintf(f, demo_yaml, prof_str(pr, "control.trustDomain"));
		demo_workload(f, p, 1, 1, "sleep", "sleep", "app: sleep");
		demo_workload(f, p, 1, 2, "web-v1", "web", "app: web, version: v1");
		demo_workload(f, p, 2, 1, "web-v2", "web", "app: web, version: v2");
		demo_workload(f, p, 2, 2, "ledger", "ledger", "app: ledger");
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
