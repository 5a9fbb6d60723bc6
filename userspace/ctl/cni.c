// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cni.c - podman's side of `sluicectl install` when cni.enabled is set
 * (docs/cni.md): a network whose conflist chains sluice-cni after the
 * bridge, and a containers.conf that points podman at it, both under
 * ETC (PREFIX/etc/sluice), so that podman's own configuration is never
 * edited: `CONTAINERS_CONF=ETC/containers.conf podman run --network NET`.
 *
 *   ETC/cni/NET.conflist    cniVersion 0.4.0 (podman 4's CNI backend):
 *                           bridge + host-local (cni.subnet), portmap,
 *                           firewall, tuning, sluice-cni (the agent's socket)
 *   ETC/containers.conf     the CNI backend with that directory, the plugin
 *                           directories (sluice-cni is in BIN), runc, the
 *                           cgroupfs manager (containers under
 *                           /libpod_parent, where the agent's cgroup is) and
 *                           the file events logger (no systemd needed)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ctl/cni.h"
#include "ctl/plan.h"
#include "ctl/profile.h"
#include "lib/core/file.h"
#include "lib/core/sys.h"

/* cni.subnet: an IPv4 CIDR of /8../29; the gateway is its first address. */
int cni_subnet(const json_t *prof, char *gw, size_t gwlen, char *err, size_t errlen)
{
	const char *s = prof_str(prof, "cni.subnet"), *slash = strchr(s, '/');
	char a[INET_ADDRSTRLEN];
	struct in_addr in;
	char *end;
	long len = slash ? strtol(slash + 1, &end, 10) : -1;
	uint32_t net, mask;

	if (!slash || slash - s >= (long)sizeof(a) || *end || len < 8 || len > 29) {
		snprintf(err, errlen, "cni.subnet: \"%s\" is not an IPv4 CIDR from /8 to /29", s);
		return -EINVAL;
	}
	snprintf(a, sizeof(a), "%.*s", (int)(slash - s), s);
	if (inet_pton(AF_INET, a, &in) != 1) {
		snprintf(err, errlen, "cni.subnet: \"%s\" is not an IPv4 address", a);
		return -EINVAL;
	}
	mask = len ? ~0u << (32 - len) : 0;
	net = ntohl(in.s_addr);
	if (net & ~mask) {
		snprintf(err, errlen, "cni.subnet: %s has host bits set", s);
		return -EINVAL;
	}
	in.s_addr = htonl(net + 1);
	inet_ntop(AF_INET, &in, gw, (socklen_t)gwlen);
	return 0;
}

static void paths(const struct plan *p, char *conflist, char *conf, size_t len)
{
	snprintf(conflist, len, "%s/cni/%s.conflist", p->etc, prof_str(p->prof, "cni.network"));
	snprintf(conf, len, "%s/containers.conf", p->etc);
}

/*
 * podman asks runc for large resource limits (nofile 1048576, nproc
 * 4194304); raising one past the hard limit needs CAP_SYS_RESOURCE, and a
 * root without it (some sandboxes and nested containers) sees every
 * `podman run` fail "error setting rlimits ... operation not permitted".
 * There, containers get this host's hard limit of open files and at most
 * 4,096 processes (runc runs under conmon, whose process limit podman
 * lowers below the host's: 32,768 on such a host, where 96,367 failed):
 * the [containers] section to write into containers.conf, or "" where
 * root can raise limits.
 */
static void ulimits_section(char *buf, size_t len)
{
	unsigned long long cap = 0;
	struct rlimit nofile, nproc;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	buf[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &cap) == 1)
			break;
	if (f)
		fclose(f);
	if (cap & (1ULL << 24) /* CAP_SYS_RESOURCE */ || getrlimit(RLIMIT_NOFILE, &nofile) ||
	    getrlimit(RLIMIT_NPROC, &nproc) || nofile.rlim_max == RLIM_INFINITY ||
	    nproc.rlim_max == RLIM_INFINITY)
		return;
	if (nproc.rlim_max > 4096)
		nproc.rlim_max = 4096;
	snprintf(buf, len, "[containers]\n# root here cannot raise resource limits (no CAP_SYS_RESOURCE): "
		 "limits runc can set,\n# not podman's larger defaults\n"
		 "default_ulimits = [\"nofile=%llu:%llu\", \"nproc=%llu:%llu\"]\n",
		 (unsigned long long)nofile.rlim_max, (unsigned long long)nofile.rlim_max,
		 (unsigned long long)nproc.rlim_max, (unsigned long long)nproc.rlim_max);
	printf("  podman: no CAP_SYS_RESOURCE here: containers get nofile %llu, nproc %llu\n",
	       (unsigned long long)nofile.rlim_max, (unsigned long long)nproc.rlim_max);
}

int cni_files_write(const struct plan *p)
{
	const char *net = prof_str(p->prof, "cni.network");
	char conflist[PATH_MAX + 64], conf[PATH_MAX + 64], dir[PATH_MAX + 8], sock[PATH_MAX + 16];
	char gw[INET_ADDRSTRLEN], err[256], bridge[16], ulimits[512], *text = NULL;
	json_t *j;
	int rc;

	if (!prof_bool(p->prof, "cni.enabled"))
		return 0;
	if (!p->nnodes) {
		fprintf(stderr, "sluicectl install: cni.enabled needs an agent on this node\n");
		return -EINVAL;
	}
	if (cni_subnet(p->prof, gw, sizeof(gw), err, sizeof(err))) {
		fprintf(stderr, "sluicectl install: %s\n", err);
		return -EINVAL;
	}
	paths(p, conflist, conf, sizeof(conflist));
	snprintf(dir, sizeof(dir), "%s/cni", p->etc);
	snprintf(sock, sizeof(sock), "%s/cni.sock", p->nodes[0].run_dir);
	snprintf(bridge, sizeof(bridge), "cni-%.11s", net);
	j = json_pack("{s:s, s:s, s:[{s:s, s:s, s:b, s:b, s:b, s:{s:s, s:[{s:s}], s:[[{s:s, s:s}]]}},"
		      " {s:s, s:{s:b}}, {s:s, s:s}, {s:s}, {s:s, s:s}]}",
		      "cniVersion", "0.4.0", "name", net, "plugins",
		      "type", "bridge", "bridge", bridge, "isGateway", 1, "ipMasq", 1, "hairpinMode", 1,
		      "ipam", "type", "host-local", "routes", "dst", "0.0.0.0/0", "ranges",
		      "subnet", prof_str(p->prof, "cni.subnet"), "gateway", gw,
		      "type", "portmap", "capabilities", "portMappings", 1,
		      "type", "firewall", "backend", "",
		      "type", "tuning",
		      "type", "sluice-cni", "agentSocket", sock);
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	rc = text ? sys_mkdir_p(dir, 0755) : -ENOMEM;
	rc = rc ?: file_write_atomic(conflist, text, strlen(text), 0644);
	free(text);
	if (rc) {
		fprintf(stderr, "sluicectl install: %s: %s\n", conflist, strerror(-rc));
		return rc;
	}
	ulimits_section(ulimits, sizeof(ulimits));
	if (asprintf(&text, "# written by sluicectl install (docs/cni.md): use it with\n"
		     "#   CONTAINERS_CONF=%s podman run --network %s ...\n"
		     "%s[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"%s\"\n"
		     "cni_plugin_dirs = [\"%s\", \"/usr/lib/cni\", \"/usr/libexec/cni\", \"/opt/cni/bin\"]\n"
		     "default_network = \"%s\"\n"
		     "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
		     conf, net, ulimits, dir, p->bin, net) < 0)
		return -ENOMEM;
	rc = file_write_atomic(conf, text, strlen(text), 0644);
	free(text);
	if (rc)
		fprintf(stderr, "sluicectl install: %s: %s\n", conf, strerror(-rc));
	else
		printf("  podman: CONTAINERS_CONF=%s podman run --network %s ...\n", conf, net);
	return rc;
}
