// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * verify.c - `sluicectl verify-install [-o json]`: one line per check of
 * what install set up (install.h), OK or what failed and its fix, and a
 * live probe: a connection through the probe service's VIP, from a process
 * in the node's workload cgroup to a backend this command opens on
 * loopback, whose flow event and metric counter must then be seen.
 * Exit 0 only when every check passes. Run it in the network namespace
 * install ran in (the probe's backend is on its loopback).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <openssl/x509.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "ctl/install.h"
#include "ctl/plan.h"
#include "ctl/supervise.h"
#include "ctl/profile.h"
#include "lib/core/file.h"
#include "lib/node/tchook.h"
#include "lib/wire/pki.h"
#include "sluice_fast.h"
#include "sluice_flow.h"
#include "sluice_lb.h"
#include "sluice_policy.h"
#include "sluice_proxy.h"

/* The maps every agent pins (headers/ names them). */
static const char *const maps[] = {
	SL_MAP_SERVICES, SL_MAP_SLOTS, SL_MAP_BACKENDS, SL_MAP_REVNAT, SL_MAP_IPCACHE,
	SL_MAP_NETNS, SL_MAP_ENDPOINTS, SL_MAP_POLICY, SL_MAP_POLDST, SL_MAP_CONFIG, SL_MAP_DROPS,
	SL_MAP_METRICS, SL_MAP_CONNS, SL_MAP_EVENTS, SL_MAP_ORIGDST, SL_MAP_PROXY,
};
/* The cgroup links every agent pins under links/, by program name. */
static const char *const links[] = {
	"sl_connect4", "sl_connect6", "sl_sendmsg4", "sl_sendmsg6", "sl_recvmsg4", "sl_recvmsg6",
	"sl_getpeername4", "sl_getpeername6", "sl_sockops",
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct vrun {
	const struct plan *p;
	json_t *checks;
	int failed;
	bool json;
};

__attribute__((format(printf, 5, 6)))
static void report(struct vrun *r, const char *check, bool ok, const char *fix, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (!ok)
		r->failed++;
	json_array_append_new(r->checks, json_pack("{s:s, s:b, s:s, s:s?}", "check", check, "ok", ok,
						   "detail", detail, "fix", ok ? NULL : fix));
	if (r->json)
		return;
	printf("%-5s %-26s %s\n", ok ? "OK" : "FAIL", check, detail);
	if (!ok)
		printf("      %-26s fix: %s\n", "", fix);
}

#define FIX_DAEMON "sluicectl install (starts what is not running); its log is under " \
		   "paths.prefix/var/log/sluice"

static void check_daemons(struct vrun *r)
{
	for (int i = 0; i < r->p->nd; i++) {
		char name[80];
		int sv, child;

		daemon_pids(r->p, r->p->d[i].name, &sv, &child);
		snprintf(name, sizeof(name), "daemon %s", r->p->d[i].name);
		if (sv && child)
			report(r, name, true, NULL, "running, pid %d (supervisor %d)", child, sv);
		else if (sv)
			report(r, name, false, FIX_DAEMON, "the supervisor (pid %d) runs, the daemon does "
			       "not: it keeps failing", sv);
		else
			report(r, name, false, FIX_DAEMON, "not running");
	}
}

static bool check_bpffs(struct vrun *r)
{
	struct statfs st;
	bool ok = statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC;

	report(r, "bpffs", ok, "mount -t bpf bpf /sys/fs/bpf, then sluicectl install (the agents pin "
	       "their maps there again)", ok ? "mounted at /sys/fs/bpf" : "/sys/fs/bpf is not a bpffs");
	return ok;
}

/* Every link pinned and attached to the node's cgroup. */
static void check_links(struct vrun *r, const struct plan_node *nd)
{
	char name[96], missing[512] = "";
	struct stat cg;
	size_t bad = 0;

	snprintf(name, sizeof(name), "programs %s", nd->name);
	if (stat(nd->cgroup, &cg)) {
		report(r, name, false, "sluicectl install", "cgroup %s: %s", nd->cgroup, strerror(errno));
		return;
	}
	for (size_t i = 0; i < N(links); i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		char path[PATH_MAX + 64];
		int fd;

		snprintf(path, sizeof(path), "%s/links/%s", nd->pin_root, links[i]);
		fd = bpf_obj_get(path);
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) ||
		    info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != (__u64)cg.st_ino) {
			bad++;
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s%s",
				 links[i], fd < 0 ? "(no pin)" : "(detached)");
		}
		if (fd >= 0)
			close(fd);
	}
	if (bad)
		report(r, name, false, "restart the node's agent (kill its pid: its supervisor starts "
		       "it again, and a starting agent attaches what is missing)", "%zu of %zu cgroup programs not attached to %s:%s", bad,
		       N(links), nd->cgroup, missing);
	else
		report(r, name, true, NULL, "%zu cgroup programs attached to %s", N(links), nd->cgroup);
}

/* tc on each local workload's veth, looked up in the node's netns. */
static int tc_missing(const struct plan_node *nd, int *total)
{
	char path[PATH_MAX + 32];
	__u32 k, *prev = NULL;
	int fd, missing = 0;

	snprintf(path, sizeof(path), "%s/%s", nd->pin_root, SL_MAP_ENDPOINTS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	*total = 0;
	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		prev = &k;
		(*total)++;
		missing += 2 - tchook_count(k);
	}
	close(fd);
	return missing;
}

static void check_tc(struct vrun *r, const struct plan_node *nd)
{
	char name[96];
	int pfd[2], res[2] = { -1, 0 };
	pid_t c;

	snprintf(name, sizeof(name), "tc %s", nd->name);
	if (pipe(pfd))
		return;
	c = fork();
	if (c == 0) {
		int fd = nd->netns[0] ? open(nd->netns, O_RDONLY | O_CLOEXEC) : -1;

		if (!nd->netns[0] || (fd >= 0 && setns(fd, CLONE_NEWNET) == 0))
			res[0] = tc_missing(nd, &res[1]);
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (c < 0 || read(pfd[0], res, sizeof(res)) != sizeof(res))
		res[0] = -EIO;
	close(pfd[0]);
	if (c > 0)
		waitpid(c, NULL, 0);
	if (res[0] < 0)
		report(r, name, false, "restart the node's agent (kill its pid: its supervisor starts it again)",
		       "cannot read the node's workloads: %s", strerror(-res[0]));
	else if (res[0])
		report(r, name, false, "restart the node's agent (kill its pid: its supervisor starts "
		       "it again, and a starting agent attaches what is missing)",
		       "%d of %d tc programs missing on the node's %d workload veths", res[0],
		       2 * res[1], res[1]);
	else
		report(r, name, true, NULL, "tc programs on ingress and egress of %d workload veth%s", res[1],
		       res[1] == 1 ? "" : "s");
}

static void check_maps(struct vrun *r, const struct plan_node *nd)
{
	char name[96], bad[512] = "";
	size_t nbad = 0;

	snprintf(name, sizeof(name), "maps %s", nd->name);
	for (size_t i = 0; i < N(maps); i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		char path[PATH_MAX + 64];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", nd->pin_root, maps[i]);
		fd = bpf_obj_get(path);
		/* a ring buffer has no key or value to describe */
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) || strcmp(info.name, maps[i]) ||
		    (!info.btf_id && info.type != BPF_MAP_TYPE_RINGBUF)) {
			nbad++;
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), " %s%s", maps[i],
				 fd < 0 ? "(no pin)" : !info.btf_id ? "(no BTF)" : "(other map)");
		}
		if (fd >= 0)
			close(fd);
	}
	if (nbad)
		report(r, name, false, "restart the node's agent (kill its pid: its supervisor starts it again)",
		       "%zu of %zu maps wrong under %s:%s", nbad, N(maps), nd->pin_root, bad);
	else
		report(r, name, true, NULL, "%zu maps pinned under %s, with BTF (ring buffer: none needed)",
		       N(maps), nd->pin_root);
}

/* The node certificate: signed by the control plane's CA, not expired. */
static void check_node_cert(struct vrun *r, const struct plan_node *nd)
{
	char path[PATH_MAX + 16], name[96];
	X509 *crt, *ca = pki_cert_load(r->p->ca_file);
	long left;

	snprintf(name, sizeof(name), "node certificate %s", nd->name);
	snprintf(path, sizeof(path), "%s/node.crt", nd->state_dir);
	crt = pki_cert_load(path);
	left = crt ? pki_cert_seconds_left(crt) : 0;
	if (!crt || !ca || X509_verify(crt, X509_get0_pubkey(ca)) != 1 || left <= 0)
		report(r, name, false, "remove it and reinstall: the agent joins again with a new token",
		       "%s: %s", path, !crt ? "unreadable" : !ca ? "no CA to check it against" :
		       left <= 0 ? "expired" : "not signed by the control plane's CA");
	else
		report(r, name, true, NULL, "valid, expires in %ldd %ldh", left / 86400, left % 86400 / 3600);
	X509_free(crt);
	X509_free(ca);
}

static void check_control(struct vrun *r)
{
	char err[512];
	int status = 0;
	json_t *j = ctl_api(r->p->control_url, r->p->control_dir, "GET", "/v1/status", NULL, 0,
			    &status, err, sizeof(err));
	json_t *ag = json_object_get(j, "agents");

	if (!j || status != 200) {
		report(r, "control plane", false, "sluicectl install (starts it); its log: "
		       "paths.prefix/var/log/sluice/control.log", "%s: %s", r->p->control_url,
		       j ? "refused the admin" : err);
		json_decref(j);
		return;
	}
	report(r, "control plane", true, NULL, "%s, version %s, config version %lld",
	       r->p->control_url, json_string_value(json_object_get(j, "control_plane_version")),
	       (long long)json_integer_value(json_object_get(j, "config_version")));
	for (int i = 0; i < r->p->nnodes; i++) {
		const char *n = r->p->nodes[i].name;
		char check[96];
		json_t *a = NULL;

		snprintf(check, sizeof(check), "config %s", n);
		for (size_t k = 0; k < json_array_size(ag) && !a; k++)
			if (!strcmp(json_string_value(json_object_get(json_array_get(ag, k), "node")) ?: "", n))
				a = json_array_get(ag, k);
		if (!a || !json_is_true(json_object_get(a, "connected")))
			report(r, check, false, "check the agent's log; sluicectl install restarts it",
			       "the agent is not connected to the control plane");
		else if (!json_is_true(json_object_get(a, "in_sync")))
			report(r, check, false, "the agent's log says why (a NACK names the reason)",
			       "ACKed version %lld, the latest is %lld%s%s",
			       (long long)json_integer_value(json_object_get(a, "acked")),
			       (long long)json_integer_value(json_object_get(a, "version")),
			       json_object_get(a, "nack_reason") ? "; NACK: " : "",
			       json_string_value(json_object_get(a, "nack_reason")) ?: "");
		else
			report(r, check, true, NULL, "ACKed the latest version, %lld",
			       (long long)json_integer_value(json_object_get(a, "acked")));
	}
	json_decref(j);
}

static void check_workload_certs(struct vrun *r, const struct plan_node *nd)
{
	char path[PATH_MAX + 16], name[96];
	json_t *j, *c;
	size_t i, bad = 0;

	snprintf(name, sizeof(name), "workload certificates %s", nd->name);
	snprintf(path, sizeof(path), "%s/certs.json", nd->run_dir);
	j = json_load_file(path, 0, NULL);
	if (!json_is_array(j)) {
		report(r, name, !prof_bool(r->p->prof, "components.proxy.enabled"),
		       "the agent writes it once it has joined: check its log", "%s: unreadable", path);
		json_decref(j);
		return;
	}
	json_array_foreach(j, i, c)
		if (!*(json_string_value(json_object_get(c, "serial")) ?: ""))
			bad++;
	if (bad)
		report(r, name, false, "the agent's log says why the control plane did not sign them",
		       "%zu of %zu identities without a certificate", bad, json_array_size(j));
	else
		report(r, name, true, NULL, "%zu identities, each with a valid certificate",
		       json_array_size(j));
	json_decref(j);
}

/* The node proxy: one serving, alive, of this installation's version. */
static void check_proxy(struct vrun *r, const struct plan_node *nd)
{
	char path[PATH_MAX + 16], name[96];
	json_t *j, *serving;

	snprintf(name, sizeof(name), "node proxy %s", nd->name);
	snprintf(path, sizeof(path), "%s/status.json", nd->run_dir);
	j = json_load_file(path, 0, NULL);
	serving = serving_proxy(j);
	if (!serving)
		report(r, name, false, "the agent starts it: check the agent's log (proxy: lines)",
		       "no node proxy serves (%s)", j ? "none in the agent's status" : path);
	else
		report(r, name, true, NULL, "pid %lld, version %s, %lld tunnels open, %lld connections "
		       "accepted", (long long)json_integer_value(json_object_get(serving, "pid")),
		       json_string_value(json_object_get(serving, "version")) ?: "?",
		       (long long)json_integer_value(json_object_get(serving, "tunnels")),
		       (long long)json_integer_value(json_object_get(serving, "accepted")));
	json_decref(j);
}

/* ---- the live probe ---------------------------------------------------- */

/* The sum of a metric's samples whose labels contain `label`, -1 on error. */
static long long metric_sum(const char *hostport, const char *metric, const char *label)
{
	char host[64], req[128], *buf = malloc(1 << 20), *line, *save = NULL;
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	long long sum = -1;
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - hostport) : 0, hostport);
	sa.sin_port = htons((uint16_t)atoi(colon ? colon + 1 : "0"));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!buf || fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", hostport);
	if (write(fd, req, strlen(req)) < 0)
		goto out;
	while (len < (1 << 20) - 1 && (n = read(fd, buf + len, (1 << 20) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	sum = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, metric, strlen(metric)) && line[strlen(metric)] == '{' &&
		    strstr(line, label))
			sum += atoll(strrchr(line, ' ') + 1);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return sum;
}

/* In a child in the node's cgroup: connect to the VIP, one exchange. */
static int probe_client(const struct plan_node *nd, const char *vip, int port)
{
	char procs[PATH_MAX + 16], b[16];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, cg, status = 0;
	pid_t c = fork();

	if (c == 0) {
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", nd->cgroup);
		cg = open(procs, O_WRONLY | O_CLOEXEC);
		if (cg < 0 || write(cg, "0", 1) != 1)
			_exit(2);
		inet_pton(AF_INET, vip, &sa.sin_addr);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			_exit(3);
		if (write(fd, "probe\n", 6) != 6 || read(fd, b, sizeof(b)) < 2)
			_exit(4);
		_exit(0);
	}
	if (c < 0)
		return -errno;
	waitpid(c, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
}

static bool flow_seen(const struct plan_node *nd, const char *service, off_t from)
{
	char path[PATH_MAX + 16], *buf = NULL;
	size_t len = 0;
	bool hit = false;

	snprintf(path, sizeof(path), "%s/flows.jsonl", nd->run_dir);
	if (file_read(path, &buf, &len, 256u << 20) == 0 && (size_t)from <= len)
		hit = memmem(buf + from, len - (size_t)from, service, strlen(service)) != NULL;
	free(buf);
	return hit;
}

static void check_probe(struct vrun *r, const struct plan_node *nd)
{
	const json_t *pr = r->p->prof;
	const char *vip = prof_str(pr, "probe.vip");
	int port = (int)prof_int(pr, "probe.port"), bport = (int)prof_int(pr, "probe.backendPort");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)bport),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char service[128], label[160], flows[PATH_MAX + 16];
	long long before, after;
	struct stat st;
	int lfd, one = 1, rc;
	off_t from;

	snprintf(service, sizeof(service), "istio-system/sluice-probe-%s", nd->name);
	snprintf(label, sizeof(label), "destination_service=\"%s\"", service);
	snprintf(flows, sizeof(flows), "%s/flows.jsonl", nd->run_dir);
	from = stat(flows, &st) ? 0 : st.st_size;
	before = metric_sum(nd->metrics, "istio_tcp_connections_opened_total", label);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 8)) {
		report(r, "probe", false, "free the port or --set probe.backendPort= on install",
		       "cannot listen on 127.0.0.1:%d: %s", bport, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return;
	}
	/* the kernel completes the handshake from the backlog: the child's
	 * exchange needs our answer, so serve one connection alongside */
	pid_t srv = fork();

	if (srv == 0) {
		struct pollfd pf = { .fd = lfd, .events = POLLIN };
		char b[16];
		int c;

		if (poll(&pf, 1, 5000) == 1 && (c = accept(lfd, NULL, NULL)) >= 0) {
			if (read(c, b, sizeof(b)) > 0 && write(c, "sluice-probe\n", 13) < 0)
				_exit(1);
			close(c);
		}
		_exit(0);
	}
	rc = probe_client(nd, vip, port);
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	close(lfd);
	if (rc) {
		report(r, "probe", false, "sluicectl inspect services shows whether the VIP is in the "
		       "node's maps; the agent's log whether the config applied",
		       "a connection to %s:%d from cgroup %s failed (step %d)", vip, port, nd->cgroup, rc);
		return;
	}
	/* the event and the counter come from the agent's ring buffer poll */
	for (int i = 0; i < 40; i++) {
		after = metric_sum(nd->metrics, "istio_tcp_connections_opened_total", label);
		if (after > before && (!prof_bool(pr, "agent.flowLog") || flow_seen(nd, service, from)))
			break;
		usleep(50000);
	}
	if (after <= before)
		report(r, "probe", false, "check the agent's metrics (agent.metricsAddr) and its log",
		       "connected through %s:%d, but istio_tcp_connections_opened_total{%s} did not grow "
		       "(%lld -> %lld)", vip, port, label, before, after);
	else if (prof_bool(pr, "agent.flowLog") && !flow_seen(nd, service, from))
		report(r, "probe", false, "check the agent's flow log", "connected through %s:%d, "
		       "counted, but no flow event for %s in %s", vip, port, service, flows);
	else
		report(r, "probe", true, NULL, "%s:%d -> 127.0.0.1:%d from %s: connected, %s, "
		       "istio_tcp_connections_opened_total %lld -> %lld", vip, port, bport, nd->cgroup,
		       prof_bool(pr, "agent.flowLog") ? "flow event seen" : "flow log off",
		       before, after);
}

const struct cli_opt ctl_verify_opts[] = {
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	PROFILE_OPT_PREFIX,
	CTL_OPT_HELP,
	{}
};

int cmd_verify_install(const struct ctl_opts *o, int argc, char **argv)
{
	struct profile_args a;
	struct plan p = {};
	struct vrun r = { .p = &p, .checks = json_array() };
	char err[512];
	int rc = profile_args_parse(&a, CTL_VERIFY_HELP, ctl_verify_opts, argc, argv);

	if (rc >= 0) {
		profile_args_free(&a);
		json_decref(r.checks);
		return rc;
	}
	r.json = o->json || a.json;
	rc = plan_installed(&p, &a, err, sizeof(err));
	if (rc) {
		report(&r, "installation", false, "sluicectl install --set profile=default -y", "%s", err);
		goto out;
	}
	check_daemons(&r);
	if (check_bpffs(&r))
		for (int i = 0; i < p.nnodes; i++) {
			check_links(&r, &p.nodes[i]);
			check_maps(&r, &p.nodes[i]);
			check_tc(&r, &p.nodes[i]);
		}
	if (plan_daemon(&p, "control"))
		check_control(&r);
	for (int i = 0; i < p.nnodes; i++) {
		check_node_cert(&r, &p.nodes[i]);
		if (prof_bool(p.prof, "components.proxy.enabled")) {
			check_proxy(&r, &p.nodes[i]);
			check_workload_certs(&r, &p.nodes[i]);
		}
	}
	for (int i = 0; i < p.nnodes; i++)
		if (p.nodes[i].probe)
			check_probe(&r, &p.nodes[i]);
out:
	if (r.json) {
		json_t *j = json_pack("{s:b, s:i, s:O}", "ok", !r.failed, "failed", r.failed,
				      "checks", r.checks);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	} else {
		printf(r.failed ? "%d check(s) failed\n" : "sluice is installed and working\n", r.failed);
	}
	json_decref(r.checks);
	if (!rc)
		plan_free(&p);
	profile_args_free(&a);
	return r.failed ? 1 : 0;
}
