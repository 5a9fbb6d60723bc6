// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * uninstall.c - `sluicectl uninstall [-y] [--purge]`: remove everything
 * install made (install.h): daemons, programs and their links, tc
 * filters, pins, the demo's network namespaces and cgroups, files. The
 * control plane's state (CA, config) and the agents' keys stay unless
 * --purge. Anything that could not be removed is named; exit 1 then.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "ctl/plan.h"
#include "ctl/supervise.h"
#include "ctl/profile.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	int rc = flag == FTW_DP ? rmdir(path) : unlink(path);

	if (rc && errno != ENOENT)
		fprintf(stderr, "  left  %s: %s\n", path, strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove the empty directories from path up to (not including) stop. */
static void rm_empty_parents(char *path, const char *stop)
{
	char *slash;

	while ((slash = strrchr(path, '/')) && slash > path && strcmp(path, stop)) {
		if (rmdir(path))
			return;
		*slash = 0;
	}
}

static int leftovers(const struct plan *p, bool purge)
{
	const char *must[] = { p->etc, p->log, p->bin, p->daemons, purge ? p->state : NULL };
	int n = 0;

	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		if (must[i] && access(must[i], F_OK) == 0) {
			fprintf(stderr, "  left  %s\n", must[i]);
			n++;
		}
	for (int i = 0; i < p->nnodes; i++) {
		const char *paths[] = { p->nodes[i].pin_root, p->nodes[i].run_dir };

		for (size_t k = 0; k < 2; k++)
			if (access(paths[k], F_OK) == 0) {
				fprintf(stderr, "  left  %s\n", paths[k]);
				n++;
			}
	}
	return n;
}

static void uninstall_node(const struct plan *p, const struct plan_node *nd)
{
	char agent[PATH_MAX + 32], *out = NULL;
	char *argv[] = { agent, "--node", (char *)nd->name, "--pin-root", (char *)nd->pin_root,
			 "--uninstall", NULL };
	int rc;

	snprintf(agent, sizeof(agent), "%s/sluice-agent", p->bin);
	if (access(agent, X_OK))
		snprintf(agent, sizeof(agent), "%s/sluice-agent", p->src_bin);
	/* in the node's netns: its tc programs are on the veths there */
	rc = run_cmd_in(nd->netns, argv, &out);
	if (rc)
		fprintf(stderr, "  left  node %s: sluice-agent --uninstall exited %d\n", nd->name, rc);
	else
		printf("  removed node %s: programs, links, tc programs, pins under %s\n", nd->name,
		       nd->pin_root);
	free(out);
	rm_tree(nd->run_dir);
	if (!nd->netns[0] && rmdir(nd->cgroup) && errno != ENOENT)
		fprintf(stderr, "  left  cgroup %s: %s\n", nd->cgroup, strerror(errno));
}

static void uninstall_demo(const struct plan *p)
{
	char sim[PATH_MAX + 32];
	char *argv[] = { sim, "down", (char *)p->demo_cluster, NULL };

	snprintf(sim, sizeof(sim), "%s/sluice-simcluster", p->bin);
	if (access(sim, X_OK))
		snprintf(sim, sizeof(sim), "%s/sluice-simcluster", p->src_bin);
	if (run_cmd(argv, NULL))
		fprintf(stderr, "  left  simulated cluster %s: sluice-simcluster down failed\n",
			p->demo_cluster);
	else
		printf("  removed simulated cluster %s (netns, veths, cgroups)\n", p->demo_cluster);
}

const struct cli_opt ctl_uninstall_opts[] = {
	PROFILE_OPT_YES,
	{ "purge", no_argument, 'P', NULL, "remove the state too (the control plane's CA, config)" },
	PROFILE_OPT_PREFIX,
	CTL_OPT_HELP,
	{}
};

int cmd_uninstall(const struct ctl_opts *o, int argc, char **argv)
{
	struct profile_args a;
	struct plan p = {};
	char err[512], top[PATH_MAX + 32];
	int rc;

	rc = profile_args_parse(&a, CTL_UNINSTALL_HELP, ctl_uninstall_opts, argc, argv);
	if (rc >= 0) {
		profile_args_free(&a);
		return rc;
	}
	rc = plan_installed(&p, &a, err, sizeof(err));
	if (rc == -ENOENT) {
		printf("nothing to uninstall: %s\n", err);
		profile_args_free(&a);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "sluicectl uninstall: %s\n", err);
		profile_args_free(&a);
		return 1;
	}
	if (!a.yes) {
		printf("uninstall removes %d daemon(s), %d node(s)' programs and pins%s, and %s, %s, %s%s%s.\n"
		       "Proceed? [y/N] ", p.nd, p.nnodes,
		       p.demo_cluster[0] ? ", the simulated cluster" : "", p.etc, p.log, p.bin,
		       a.purge ? ", " : "", a.purge ? p.state : "");
		fflush(stdout);
		if (!fgets(err, sizeof(err), stdin) || (err[0] != 'y' && err[0] != 'Y')) {
			printf("nothing changed\n");
			plan_free(&p);
			profile_args_free(&a);
			return 1;
		}
	}
	/* servers, then agents, then the control plane */
	for (int i = p.nd - 1; i >= 0; i--) {
		if (daemon_stop(&p, p.d[i].name))
			fprintf(stderr, "  left  %s: did not stop\n", p.d[i].name);
		else
			printf("  stopped %s\n", p.d[i].name);
	}
	for (int i = 0; i < p.nnodes; i++)
		uninstall_node(&p, &p.nodes[i]);
	if (p.demo_cluster[0])
		uninstall_demo(&p);
	/* the pin base install created, once no node's pins are in it */
	if (rmdir(prof_str(p.prof, "paths.pinBase")) && errno != ENOENT && errno != ENOTEMPTY)
		fprintf(stderr, "  left  %s: %s\n", prof_str(p.prof, "paths.pinBase"), strerror(errno));
	rm_tree(p.bin);
	rm_tree(p.etc);
	rm_tree(p.log);
	rm_tree(p.daemons);
	if (a.purge)
		rm_tree(p.state);
	/* the prefix's own directories that install created, if now empty */
	if (*prof_str(p.prof, "paths.prefix")) {
		const char *sub[] = { "/usr/local/lib", "/var/log", "/var/lib", "/etc" };

		for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
			snprintf(top, sizeof(top), "%s%s", prof_str(p.prof, "paths.prefix"), sub[i]);
			rm_empty_parents(top, prof_str(p.prof, "paths.prefix"));
		}
	}
	rc = leftovers(&p, a.purge);
	printf(rc ? "uninstalled, with the leftovers above\n" : "uninstalled: nothing of sluice is left%s\n",
	       a.purge ? "" : " but the state (keep it to reinstall; --purge removes it)");
	plan_free(&p);
	profile_args_free(&a);
	return rc ? 1 : 0;
}
