// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * install.c - `sluicectl install`: check the node, then set up what the
 * profile asks for (install.h has the layout), or change a running
 * installation into it: an upgrade replaces the binaries and restarts the
 * daemons whose binary or flags changed, one at a time. Pinned maps and
 * links keep the kernel's data path running while an agent restarts.
 *
 * A second install of the same profile and binaries changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "ctl/cni.h"
#include "ctl/install.h"
#include "ctl/plan.h"
#include "ctl/supervise.h"
#include "ctl/profile.h"
#include "lib/core/file.h"
#include "lib/core/sys.h"

/* The programs install copies, and whether only the demo needs them. */
static const struct { const char *src, *dst; bool demo; } binaries[] = {
	{ "sluice-agent", "sluice-agent", false },
	{ "sluice-proxy", "sluice-proxy", false },
	{ "sluice-control", "sluice-control", false },
	{ "sluicectl", "sluicectl", false },
	{ "sluice-cni", "sluice-cni", false },
	{ "sltest", "sltest", true },
	{ "sluice-simcluster", "sluice-simcluster", true },
};
#define NBIN (sizeof(binaries) / sizeof(binaries[0]))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- preflight -------------------------------------------------------- */

struct check {
	int failed;
};

static void fail(struct check *c, const char *what, const char *fix)
{
	fprintf(stderr, "  FAIL  %s\n        fix: %s\n", what, fix);
	c->failed++;
}

static void probe_prog(struct check *c, enum bpf_prog_type t, const char *name)
{
	char what[128];

	if (libbpf_probe_bpf_prog_type(t, NULL) == 1)
		return;
	snprintf(what, sizeof(what), "the kernel lacks BPF program type %s", name);
	fail(c, what, "a kernel with CONFIG_BPF_SYSCALL, CONFIG_CGROUP_BPF, CONFIG_NET_CLS_BPF (5.10 or later)");
}

static void probe_map(struct check *c, enum bpf_map_type t, const char *name)
{
	char what[128];

	if (libbpf_probe_bpf_map_type(t, NULL) == 1)
		return;
	snprintf(what, sizeof(what), "the kernel lacks BPF map type %s", name);
	fail(c, what, "a kernel with CONFIG_BPF_SYSCALL and CONFIG_BPF_STREAM_PARSER (5.10 or later)");
}

/* What sluice-simcluster runs. */
static const struct { const char *name, *fix; } demo_tools[] = {
	{ "ip", "apt-get install iproute2" },
	{ "nsenter", "apt-get install util-linux" },
	{ "jq", "apt-get install jq" },
	{ "bash", "apt-get install bash" },
};

static bool in_path(const char *name)
{
	char dirs[4096], path[PATH_MAX], *save = NULL;

	snprintf(dirs, sizeof(dirs), "%s", getenv("PATH") ?: "/usr/sbin:/usr/bin:/sbin:/bin");
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/%s", d, name);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/* Everything install needs from the node; nothing is changed here. */
static int preflight(const struct plan *p, bool quiet)
{
	struct check c = {};
	struct utsname u;
	unsigned int maj = 0, min = 0;
	char path[PATH_MAX + 32], what[PATH_MAX + 64];

	if (!quiet)
		printf("checking the node\n");
	if (geteuid() != 0)
		fail(&c, "not root", "run as root (BPF, cgroups, network namespaces)");
	uname(&u);
	if (sscanf(u.release, "%u.%u", &maj, &min) != 2 || maj < 5 || (maj == 5 && min < 10)) {
		snprintf(what, sizeof(what), "kernel %s is older than 5.10", u.release);
		fail(&c, what, "boot a 5.10 or later kernel");
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		fail(&c, "no kernel BTF at /sys/kernel/btf/vmlinux", "a kernel built with CONFIG_DEBUG_INFO_BTF=y");
	probe_prog(&c, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup_sock_addr");
	probe_prog(&c, BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock");
	probe_prog(&c, BPF_PROG_TYPE_SOCK_OPS, "sock_ops");
	probe_prog(&c, BPF_PROG_TYPE_SK_MSG, "sk_msg");
	probe_prog(&c, BPF_PROG_TYPE_SCHED_CLS, "sched_cls (tc)");
	probe_map(&c, BPF_MAP_TYPE_LPM_TRIE, "lpm_trie");
	probe_map(&c, BPF_MAP_TYPE_RINGBUF, "ringbuf");
	probe_map(&c, BPF_MAP_TYPE_SOCKHASH, "sockhash");
	probe_map(&c, BPF_MAP_TYPE_SK_STORAGE, "sk_storage");
	if (!p->cgroot[0])
		fail(&c, "cgroup v2 is not mounted", "mount -t cgroup2 none /sys/fs/cgroup (or /sys/fs/cgroup/unified)");
	if (access(SL_BPFFS, F_OK))
		fail(&c, SL_BPFFS " does not exist", "a kernel with sysfs and CONFIG_BPF_SYSCALL");
	for (size_t i = 0; i < NBIN; i++) {
		if (binaries[i].demo && !p->demo_cluster[0])
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->src_bin, binaries[i].src);
		if (access(path, X_OK)) {
			snprintf(what, sizeof(what), "%s is missing", path);
			fail(&c, what, "make (builds the programs and their BPF objects with clang)");
		}
	}
	for (size_t i = 0; p->demo_cluster[0] && i < sizeof(demo_tools) / sizeof(demo_tools[0]); i++)
		if (!in_path(demo_tools[i].name)) {
			snprintf(what, sizeof(what), "the demo's simulated cluster needs %s", demo_tools[i].name);
			fail(&c, what, demo_tools[i].fix);
		}
	if (!quiet && !c.failed)
		printf("  ok    kernel %s, BTF, program and map types, cgroup v2 at %s, %s\n", u.release,
		       p->cgroot, access(SL_BPFFS "/.", F_OK) == 0 ? "bpffs" : "bpffs (to mount)");
	return c.failed ? -1 : 0;
}

/* ---- steps ------------------------------------------------------------ */

static bool same_file(const char *a, const char *b)
{
	char *x = NULL, *y = NULL;
	size_t lx = 0, ly = 0;
	bool same = !file_read(a, &x, &lx, 256u << 20) && !file_read(b, &y, &ly, 256u << 20) &&
		    lx == ly && !memcmp(x, y, lx);

	free(x);
	free(y);
	return same;
}

/* Which installed binaries differ from this build's; with copy, replace
 * them (rename over a running binary is safe: it keeps its old inode). */
static int binaries_sync(const struct plan *p, bool copy, int *changed)
{
	*changed = 0;
	for (size_t i = 0; i < NBIN; i++) {
		char src[PATH_MAX + 32], dst[PATH_MAX + 32];
		char *buf = NULL;
		size_t len = 0;
		int rc;

		if (binaries[i].demo && !p->demo_cluster[0])
			continue;
		snprintf(src, sizeof(src), "%s/%s", p->src_bin, binaries[i].src);
		snprintf(dst, sizeof(dst), "%s/%s", p->bin, binaries[i].dst);
		if (same_file(src, dst))
			continue;
		(*changed)++;
		if (!copy)
			continue;
		rc = file_read(src, &buf, &len, 256u << 20);
		rc = rc ?: file_write_atomic(dst, buf, len, 0755);
		free(buf);
		if (rc) {
			fprintf(stderr, "sluicectl install: %s -> %s: %s\n", src, dst, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static bool argv_equal(const struct daemon *a, const struct daemon *b)
{
	int i;

	for (i = 0; a->argv[i] && b->argv[i]; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return !a->argv[i] && !b->argv[i] && !strcmp(a->netns, b->netns) &&
	       !strcmp(a->cgroup, b->cgroup);
}

/* Start one daemon; an agent without a node certificate gets a token. */
static int start(const struct plan *p, const struct daemon *d)
{
	struct daemon x = *d;
	char crt[PATH_MAX + 16], *tok = NULL;
	const struct plan_node *nd = NULL;
	int n = 0, rc;

	for (int i = 0; i < p->nnodes; i++)
		if (!strcmp(p->nodes[i].daemon, d->name))
			nd = &p->nodes[i];
	if (nd) {
		snprintf(crt, sizeof(crt), "%s/node.crt", nd->state_dir);
		while (x.argv[n])
			n++;
		if (access(crt, F_OK) && *prof_str(p->prof, "control.joinToken")) {
			x.argv[n++] = "--join-token";
			x.argv[n++] = (char *)prof_str(p->prof, "control.joinToken");
		} else if (access(crt, F_OK) && !plan_daemon(p, "control")) {
			fprintf(stderr, "sluicectl install: node %s has no certificate in %s yet: set "
				"control.joinToken (sluice-control token create --node %s, on the control "
				"plane's host)\n", nd->name, nd->state_dir, nd->name);
			return -EINVAL;
		} else if (access(crt, F_OK)) {
			char ctl[PATH_MAX + 32];
			char *targv[] = { ctl, "token", "create", "--state-dir", (char *)p->control_dir,
					  "--node", (char *)nd->name, NULL };

			snprintf(ctl, sizeof(ctl), "%s/sluice-control", p->bin);
			rc = run_cmd(targv, &tok);
			if (rc || !tok) {
				fprintf(stderr, "sluicectl install: issuing a join token for %s failed\n",
					nd->name);
				free(tok);
				return -EIO;
			}
			tok[strcspn(tok, "\n")] = 0;
			x.argv[n++] = "--join-token";
			x.argv[n++] = tok;
		}
		x.argv[n] = NULL;
		if (sys_mkdir_p(nd->cgroup, 0755))
			fprintf(stderr, "sluicectl install: cannot create cgroup %s\n", nd->cgroup);
	}
	rc = daemon_start(p, &x, 30000);
	free(tok);
	if (rc)
		fprintf(stderr, "sluicectl install: %s did not start (%s): see %s/%s.log\n", d->name,
			strerror(-rc), p->log, d->name);
	return rc;
}

static int demo_cluster(const struct plan *p)
{
	char sim[PATH_MAX + 32], state[PATH_MAX];
	char *upargv[] = { sim, "up", "--name", (char *)p->demo_cluster, "--nodes", "2",
			   "--pods-per-node", "2", "--host-link", NULL };
	int rc;

	snprintf(sim, sizeof(sim), "%s/sluice-simcluster", p->bin);
	/* its state file: the cluster is up (sluice-simcluster --help) */
	snprintf(state, sizeof(state), "/run/sluice-sim/%s.json", p->demo_cluster);
	if (access(state, F_OK) == 0)
		return 0;
	rc = run_cmd(upargv, NULL);
	if (rc)
		fprintf(stderr, "sluicectl install: the simulated cluster did not come up (exit %d)\n", rc);
	return rc ? -EIO : 0;
}

static int apply_mesh(const struct plan *p)
{
	char path[PATH_MAX + 32], err[512];
	char *yaml = plan_mesh_yaml(p), *body = NULL;
	json_t *req, *res = NULL;
	int status = 0, rc = -ENOMEM;

	if (!yaml)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/mesh", p->etc);
	sys_mkdir_p(path, 0755);
	snprintf(path, sizeof(path), "%s/mesh/install.yaml", p->etc);
	rc = file_write_atomic(path, yaml, strlen(yaml), 0644);
	req = json_pack("{s:[{s:s, s:s}]}", "files", "name", path, "content", yaml);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!rc && body)
		res = ctl_api(p->control_url, p->control_dir, "POST", "/v1/apply", body, strlen(body),
			      &status, err, sizeof(err));
	if (!rc && (!res || status != 200)) {
		fprintf(stderr, "sluicectl install: applying %s: %s\n", path,
			res ? json_dumps(res, JSON_COMPACT) : err);
		rc = -EIO;
	}
	json_decref(res);
	json_decref(req);
	free(body);
	free(yaml);
	return rc;
}

/* Every agent of the plan connected and in sync with the control plane. */
int wait_in_sync(const struct plan *p, int timeout_ms, char *why, size_t wlen)
{
	char err[512];

	snprintf(why, wlen, "no answer from the control plane");
	for (int t = 0; t < timeout_ms; t += 100) {
		int status = 0, ok = 0;
		json_t *j = ctl_api(p->control_url, p->control_dir, "GET", "/v1/status", NULL, 0,
				    &status, err, sizeof(err));
		json_t *ag = json_object_get(j, "agents");

		for (int i = 0; i < p->nnodes; i++)
			for (size_t k = 0; k < json_array_size(ag); k++) {
				json_t *a = json_array_get(ag, k);

				if (!strcmp(json_string_value(json_object_get(a, "node")) ?: "",
					    p->nodes[i].name) &&
				    json_is_true(json_object_get(a, "connected")) &&
				    json_is_true(json_object_get(a, "in_sync")))
					ok++;
			}
		json_decref(j);
		if (ok == p->nnodes)
			return 0;
		snprintf(why, wlen, "%d of %d agents connected and in sync", ok, p->nnodes);
		usleep(100000);
	}
	return -ETIMEDOUT;
}

json_t *serving_proxy(json_t *status)
{
	json_t *p, *serving = NULL;
	size_t i;

	json_array_foreach(json_object_get(status, "proxies"), i, p) {
		json_int_t pid = json_integer_value(json_object_get(p, "pid"));

		if (!strcmp(json_string_value(json_object_get(p, "state")) ?: "", "serving") &&
		    pid > 0 && kill((pid_t)pid, 0) == 0)
			serving = p;
	}
	return serving;
}

static bool proxy_serves(json_t *status)
{
	return serving_proxy(status) != NULL;
}

static bool config_applied(json_t *status)
{
	return json_integer_value(json_object_get(json_object_get(status, "snapshot"), "version")) > 0;
}

/* Every agent of the plan says `ok` in its status.json: 0, or -ETIMEDOUT. */
static int wait_status(const struct plan *p, int timeout_ms, bool (*ok)(json_t *status))
{
	for (int t = 0; t < timeout_ms; t += 100) {
		int n = 0;

		for (int i = 0; i < p->nnodes; i++) {
			char path[PATH_MAX + 16];
			json_t *j;

			snprintf(path, sizeof(path), "%s/status.json", p->nodes[i].run_dir);
			j = json_load_file(path, 0, NULL);
			n += ok(j);
			json_decref(j);
		}
		if (n == p->nnodes)
			return 0;
		usleep(100000);
	}
	return -ETIMEDOUT;
}

static void print_plan(const struct plan *p, const struct plan *old)
{
	printf("plan (profile %s):\n", prof_str(p->prof, "profile"));
	printf("  write   %s/install.json%s%s%s\n", p->etc, plan_daemon(p, "control") ? ", " : "",
	       plan_daemon(p, "control") ? p->etc : "", plan_daemon(p, "control") ? "/mesh/install.yaml" : "");
	printf("  copy    programs from %s to %s\n", p->src_bin, p->bin);
	printf("  state   %s, logs %s, pins under %s\n", p->state, p->log,
	       prof_str(p->prof, "paths.pinBase"));
	if (p->demo_cluster[0])
		printf("  create  simulated cluster %s: 2 nodes x 2 pods (sluice-simcluster)\n",
		       p->demo_cluster);
	for (int i = 0; i < p->nd; i++)
		printf("  %-7s %-20s %s%s%s\n", old && plan_daemon(old, p->d[i].name) ? "restart?" : "start",
		       p->d[i].name, p->d[i].argv[0], p->d[i].netns[0] ? " in " : "", p->d[i].netns);
	for (int i = 0; i < p->nnodes; i++)
		printf("  attach  node %s: cgroup programs on %s, tc on its workloads' veths\n",
		       p->nodes[i].name, p->nodes[i].cgroup);
	if (plan_daemon(p, "control"))
		printf("  apply   mesh-wide mTLS %s%s%s\n", prof_str(p->prof, "mesh.mtls"),
		       prof_bool(p->prof, "probe.enabled") ? ", the probe service" : "",
		       p->demo_cluster[0] ? ", the demo's services, workloads and policy" : "");
	else if (p->nnodes)
		printf("  join    the control plane at %s\n", p->control_url);
	printf("  supervisor: %s\n", p->systemd ? "systemd units (the demo's workloads: sluicectl's "
	       "supervisor)" : "sluicectl's supervisor (pid files)");
	for (int i = 0; p->systemd && i < p->nd; i++) {
		if (p->d[i].cgroup[0])
			continue;
		printf("  unit sluice-%s.service:\n", p->d[i].name);
		daemon_unit(p, &p->d[i], stdout);
	}
}

static bool confirm(void)
{
	char line[16] = "";

	printf("Proceed? [y/N] ");
	fflush(stdout);
	return fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y');
}

static bool all_running(const struct plan *p)
{
	for (int i = 0; i < p->nd; i++) {
		int sv, child;

		daemon_pids(p, p->d[i].name, &sv, &child);
		if (!sv || !child)
			return false;
	}
	return true;
}

/* Stop what the old installation ran and the new one does not. */
static void stop_removed(const struct plan *old, const struct plan *p)
{
	for (int i = 0; i < old->nd; i++) {
		if (plan_daemon(p, old->d[i].name))
			continue;
		printf("  stop    %s\n", old->d[i].name);
		daemon_stop(old, old->d[i].name);
	}
}

static int install(struct plan *p, struct plan *old)
{
	char path[PATH_MAX + 32], why[256];
	double t0 = now_s();
	char *text;
	int changed = 0, rc;
	bool applied = false;

	rc = sys_mkdir_p(p->etc, 0755) ?: sys_mkdir_p(p->state, 0755) ?: sys_mkdir_p(p->log, 0755) ?:
	     sys_mkdir_p(p->bin, 0755);
	rc = rc ?: sys_ensure_bpffs();
	if (rc) {
		fprintf(stderr, "sluicectl install: %s\n", strerror(-rc));
		return rc;
	}
	rc = binaries_sync(p, true, &changed);
	rc = rc ?: cni_files_write(p);
	if (rc)
		return rc;
	text = json_dumps(p->prof, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	snprintf(path, sizeof(path), "%s/install.json", p->etc);
	rc = text ? file_write_atomic(path, text, strlen(text), 0644) : -ENOMEM;
	free(text);
	if (rc)
		return rc;
	if (old)
		stop_removed(old, p);
	if (p->demo_cluster[0] && (rc = demo_cluster(p)))
		return rc;
	/* one at a time: control, then each agent, then the demo's servers */
	for (int i = 0; i < p->nd; i++) {
		const struct daemon *d = &p->d[i], *od = old ? plan_daemon(old, d->name) : NULL;
		int sv, child;

		daemon_pids(p, d->name, &sv, &child);
		if (sv && od && argv_equal(d, od) && !changed)
			continue;
		if (sv) {
			printf("  restart %s\n", d->name);
			daemon_stop(p, d->name);
		} else {
			printf("  start   %s\n", d->name);
		}
		rc = start(p, d);
		if (rc)
			return rc;
		if (!strcmp(d->name, "control")) {
			rc = apply_mesh(p);
			if (rc)
				return rc;
			applied = true;
		}
	}
	if (!p->nnodes)
		goto done;
	if (!plan_daemon(p, "control")) {
		/* no admin credentials here: the agents' own status says it */
		rc = wait_status(p, 30000, config_applied);   /* a pushed config applied */
		if (rc) {
			fprintf(stderr, "sluicectl install: the agent applied no config from %s: see %s\n",
				p->control_url, p->log);
			return rc;
		}
		goto done;
	}
	if (!applied && apply_mesh(p))
		return -EIO;
	if (wait_in_sync(p, 30000, why, sizeof(why))) {
		fprintf(stderr, "sluicectl install: the agents did not ACK the config: %s\n", why);
		return -ETIMEDOUT;
	}
done:
	/* a restarted agent links to the proxy that ran on within a few
	 * hundred ms: until then its status lists none */
	if (prof_bool(p->prof, "components.proxy.enabled") && wait_status(p, 30000, proxy_serves)) {
		fprintf(stderr, "sluicectl install: a node proxy does not serve: see %s\n", p->log);
		return -ETIMEDOUT;
	}
	printf("sluice is installed (profile %s) in %.1f s; every agent applied the config\n",
	       prof_str(p->prof, "profile"), now_s() - t0);
	return 0;
}

static void how_to_inspect(const struct plan *p)
{
	char pfx[PATH_MAX + 64] = "";

	if (*prof_str(p->prof, "paths.prefix"))
		snprintf(pfx, sizeof(pfx), " --set paths.prefix=%s", prof_str(p->prof, "paths.prefix"));
	printf("\nnext:\n  sluicectl verify-install%s\n", pfx);
	if (plan_daemon(p, "control"))
		printf("  SLUICE_CREDENTIALS=%s sluicectl status --control %s\n", p->control_dir,
		       p->control_url);
	for (int i = 0; i < p->nnodes; i++)
		printf("  sluicectl --pin-root %s inspect services      # node %s\n",
		       p->nodes[i].pin_root, p->nodes[i].name);
	if (prof_bool(p->prof, "agent.flowLog"))
		printf("  sluicectl top%s                          # flows, live\n", pfx);
	printf("  logs: %s/*.log\n  sluicectl uninstall -y%s [--purge]\n", p->log, pfx);
}

const struct cli_opt ctl_install_opts[] = {
	PROFILE_OPT_SET("KEY=VALUE", "set a key (repeatable; profile=NAME picks the profile)"),
	PROFILE_OPT_OVERLAY,
	PROFILE_OPT_PROFILE,
	PROFILE_OPT_YES,
	{ "dry-run", no_argument, 'd', NULL, "check the node and print the plan; change nothing" },
	CTL_OPT_HELP,
	{}
};

int cmd_install(const struct ctl_opts *o, int argc, char **argv)
{
	struct profile_args a;
	struct plan p = {}, old = {};
	json_t *prof = NULL;
	char err[512];
	bool have_old = false;
	int rc, changed = 0;

	rc = profile_args_parse(&a, CTL_INSTALL_HELP, ctl_install_opts, argc, argv);
	if (rc >= 0) {
		profile_args_free(&a);
		return rc;
	}
	rc = profile_args_resolve("install", &a, &prof);
	if (rc)
		goto out_args;
	rc = plan_build(&p, prof, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "sluicectl install: %s\n", err);
		goto out;
	}
	have_old = plan_installed(&old, &a, err, sizeof(err)) == 0;
	if (preflight(&p, false)) {
		fprintf(stderr, "sluicectl install: the node is not ready; nothing was changed\n");
		rc = -EINVAL;
		goto out;
	}
	binaries_sync(&p, false, &changed);
	if (have_old && json_equal(old.prof, p.prof) && !changed && all_running(&p)) {
		printf("sluice is installed as asked (profile %s): nothing to change\n",
		       prof_str(p.prof, "profile"));
		goto out;
	}
	print_plan(&p, have_old ? &old : NULL);
	if (a.dry_run)
		goto out;
	if (!a.yes && !confirm()) {
		printf("nothing changed\n");
		rc = -ECANCELED;
		goto out;
	}
	printf("%s\n", have_old ? "upgrading" : "installing");
	rc = install(&p, have_old ? &old : NULL);
	if (!rc)
		how_to_inspect(&p);
	else
		fprintf(stderr, "sluicectl install: failed; `sluicectl uninstall -y` removes what it made\n");
out:
	plan_free(&p);
	if (have_old)
		plan_free(&old);
	json_decref(prof);
out_args:
	profile_args_free(&a);
	return rc ? 1 : 0;
}
