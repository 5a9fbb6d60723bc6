// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/datapath.h"
#include "bpf/sock.skel.h"
#include "bpf/sockops.skel.h"
#include "bpf/skmsg.skel.h"
#include "bpf/tc.skel.h"
#include "bpf/admin.skel.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"
#include "lib/node/tchook.h"
#include "sluice_proxy.h"

static int link_path(char *buf, size_t len, const char *pin_root, const char *prog)
{
	if ((size_t)snprintf(buf, len, "%s/links/%s", pin_root, prog) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* The cgroup a pinned cgroup link is attached to, 0 if it was detached
 * (its cgroup was removed). */
static int link_cgroup_id(int link_fd, __u64 *id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	*id = info.cgroup.cgroup_id;
	return 0;
}

static int attach_or_adopt(struct datapath *dp, struct bpf_program *prog,
			   int cg_fd, __u64 cg_id)
{
	const char *name = bpf_program__name(prog);
	struct bpf_link *link;
	char path[PATH_MAX];
	__u64 pinned_cg = 0;
	int err;

	err = link_path(path, sizeof(path), dp->pin_root, name);
	if (err)
		return err;

	/* libbpf warns on a missing pin; a first start has none */
	link = access(path, F_OK) == 0 ? bpf_link__open(path) : (errno = ENOENT, NULL);
	if (link) {
		err = link_cgroup_id(bpf_link__fd(link), &pinned_cg);
		if (!err && pinned_cg == cg_id) {
			err = bpf_link__update_program(link, prog);
			if (err)
				log_err("%s: replacing program of pinned link %s: %s",
					name, path, strerror(-err));
			else
				dp->adopted++;
			bpf_link__destroy(link); /* drops our fd; the pin stays */
			return err;
		}
		if (!err && pinned_cg != 0) {
			log_err("%s: pinned link %s is attached to cgroup id %llu, not the "
				"requested one (id %llu); run `sluice-agent --node NODE "
				"--uninstall` first", name, path,
				(unsigned long long)pinned_cg, (unsigned long long)cg_id);
			bpf_link__destroy(link);
			return -EEXIST;
		}
		/* Defunct link (cgroup gone): replace it. */
		bpf_link__destroy(link);
		unlink(path);
	} else if (errno != ENOENT) {
		err = -errno;
		log_err("%s: opening pinned link %s: %s", name, path, strerror(-err));
		return err;
	}

	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link) {
		err = -errno;
		log_err("%s: attaching to cgroup: %s", name, strerror(-err));
		return err;
	}
	err = bpf_link__pin(link, path);
	if (err)
		log_err("%s: pinning link at %s: %s", name, path, strerror(-err));
	else
		dp->attached++;
	bpf_link__destroy(link);
	return err;
}

/* SLUICE_TEST_NO_NETNS_COOKIE=1 pretends the kernel lacks it, so that the
 * host's test run covers the mode old kernels run in. */
static bool probe_netns_cookie(void)
{
	const char *force = getenv("SLUICE_TEST_NO_NETNS_COOKIE");
	__u64 cookie;
	socklen_t len = sizeof(cookie);
	int s;
	bool ok;

	if (force && strcmp(force, "1") == 0)
		return false;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	ok = getsockopt(s, SOL_SOCKET, 71 /* SO_NETNS_COOKIE */, &cookie, &len) == 0;
	close(s);
	return ok;
}

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Does this kernel return EAGAIN to a blocking recv() of a half-closed
 * socket in a sockhash (kernel-notes; tcp_bpf_recvmsg treats the wake-up
 * by the ACK of its own FIN as "no data")? A loopback pair in a private
 * sockhash: one end shuts down its writing side and blocks in recv() with
 * a 200 ms timeout while the other stays silent. A correct kernel times
 * out; an affected one returns EAGAIN within the peer's delayed-ACK time
 * (a few ms here). 1: affected, 0: not, -errno: could not tell.
 */
static int probe_halfclose_once(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	int map = -1, lfd = -1, cfd = -1, sfd = -1, err;
	socklen_t alen = sizeof(a);
	__u32 key;
	__u64 val;
	double t0, took;
	char b;
	ssize_t n;

	map = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "sl_probe", sizeof(key), sizeof(val), 2, NULL);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (map < 0 || lfd < 0 || cfd < 0 || bind(lfd, (struct sockaddr *)&a, alen) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&a, &alen) ||
	    connect(cfd, (struct sockaddr *)&a, alen)) {
		err = -errno;
		goto out;
	}
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (sfd < 0) {
		err = -errno;
		goto out;
	}
	key = 0, val = (__u64)cfd;
	if (bpf_map_update_elem(map, &key, &val, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	key = 1, val = (__u64)sfd;
	if (bpf_map_update_elem(map, &key, &val, BPF_ANY) ||
	    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    shutdown(cfd, SHUT_WR)) {
		err = -errno;
		goto out;
	}
	t0 = mono_now();
	n = recv(cfd, &b, 1, 0);
	took = mono_now() - t0;
	if (n < 0 && errno != EAGAIN) {
		err = -errno;
		goto out;
	}
	err = n < 0 && took < 0.15;
	log_debug("half-close probe: recv() = %zd after %.3f s", n, took);
out:
	if (sfd >= 0)
		close(sfd);
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
	if (map >= 0)
		close(map);
	return err;
}

/* Whether the ACK wakes the reader before it sleeps depends on timing:
 * Debian's 6.1 passed one probe and failed the next. Three tries, and one
 * failure is enough (at most 0.6 s at start on a correct kernel). */
static int probe_halfclose_bug(void)
{
	int err = 0;

	for (int i = 0; i < 3 && err == 0; i++)
		err = probe_halfclose_once();
	return err;
}

/* The fast path needs sk_msg programs (4.17) and sockhash maps (4.18); a
 * kernel without them runs everything else, and says so. */
/*
 * A map pinned by an earlier install keeps its size. libbpf reuses a pinned
 * map only if it matches the object's definition, and what the maps hold
 * (services, backends, counters, held slots) must outlive an upgrade, so
 * the object takes the pinned map's size; lbmap_open() reads the sizes its
 * room check uses from the maps themselves. A new size takes `sluicectl
 * uninstall` and an install (docs/operations.md).
 */
static void adopt_pinned_sizes(struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		const char *path = bpf_map__pin_path(m);
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		int fd = path ? bpf_obj_get(path) : -1;

		if (fd < 0)
			continue;   /* not pinned yet: created as defined */
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    info.max_entries != bpf_map__max_entries(m)) {
			log_warn("map %s keeps the %u entries it was created with (this version "
				 "sizes it %u); `sluicectl uninstall` and an install resize it",
				 bpf_map__name(m), info.max_entries, bpf_map__max_entries(m));
			bpf_map__set_max_entries(m, info.max_entries);
		}
		close(fd);
	}
}

static int load_fastpath(struct datapath *dp, const struct bpf_object_open_opts *oopts)
{
	int err;

	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_MSG, NULL) <= 0) {
		dp->fastpath_reason = "kernel lacks BPF_PROG_TYPE_SK_MSG (4.17+)";
	} else if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL) <= 0) {
		dp->fastpath_reason = "kernel lacks BPF_MAP_TYPE_SOCKHASH (4.18+)";
	} else if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash,
					   NULL) <= 0) {
		dp->fastpath_reason = "kernel lacks bpf_msg_redirect_hash (4.18+)";
	}
	if (dp->fastpath_reason) {
		log_warn("same-node fast path disabled: %s", dp->fastpath_reason);
		return 0;
	}
	err = probe_halfclose_bug();
	if (err < 0)
		log_warn("half-close probe failed (%s): assuming the kernel has the bug",
			 strerror(-err));
	dp->fastpath_halfclose_bug = err != 0;
	if (dp->fastpath_halfclose_bug)
		dp->fastpath_unsafe_reason = "kernel returns EAGAIN to a blocking recv() of a "
			"half-closed socket in a sockhash (tcp_bpf_recvmsg)";
	dp->skmsg = skmsg_bpf__open_opts(oopts);
	if (!dp->skmsg)
		return -errno;
	adopt_pinned_sizes(dp->skmsg->obj);
	err = skmsg_bpf__load(dp->skmsg);
	if (err) {
		log_err("loading sk_msg program: %s", strerror(-err));
		return err;
	}
	/* Attached to the pinned sockhash, not to a cgroup: the attachment
	 * lives as long as the map, and a restarted agent's attach replaces
	 * the program for sockets inserted from then on. */
	err = bpf_prog_attach(bpf_program__fd(dp->skmsg->progs.sl_msg),
			      bpf_map__fd(dp->skmsg->maps.sl_sockhash), BPF_SK_MSG_VERDICT, 0);
	if (err) {
		err = -errno;
		log_err("attaching sk_msg to the sockhash: %s", strerror(-err));
		return err;
	}
	dp->has_fastpath = true;
	return 0;
}

int datapath_set_proxy(struct datapath *dp, __u32 fam, const __be32 addr[4], uint16_t port,
		       bool enabled)
{
	struct sl_proxy_cfg cfg = { .port = port, .enabled = enabled };
	struct bpf_map *m = fam == SL_PROXY_V6 ? dp->skel->maps.sl_proxy6 : dp->skel->maps.sl_proxy;
	__u32 zero = 0;

	memcpy(cfg.addr, addr, sizeof(cfg.addr));
	if (bpf_map_update_elem(bpf_map__fd(m), &zero, &cfg, BPF_ANY))
		return -errno;
	return 0;
}

int datapath_set_fastpath(struct datapath *dp, bool on)
{
	struct sl_config cfg;
	__u32 zero = 0;

	if (on && !dp->has_fastpath)
		return -EOPNOTSUPP;
	if (bpf_map_lookup_elem(dp->pol.config_fd, &zero, &cfg))
		return -errno;
	cfg.fastpath = on;
	if (bpf_map_update_elem(dp->pol.config_fd, &zero, &cfg, BPF_ANY))
		return -errno;
	return 0;
}

int datapath_open(struct datapath *dp, const char *pin_root, const char *cgroup_path,
		  bool flow_events)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = pin_root);
	struct bpf_program *prog;
	char links[PATH_MAX];
	struct stat st;
	int cg_fd = -1, err;

	memset(dp, 0, sizeof(*dp));
	dp->maps = (struct lbmap){ -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, NULL, 0, 0, 0, 0, 0 };
	dp->pol = (struct polmap){ -1, -1, -1, -1, -1, -1, -1, -1, true, { NULL, 0, 0, 0 } };
	if ((size_t)snprintf(dp->pin_root, sizeof(dp->pin_root), "%s", pin_root) >=
	    sizeof(dp->pin_root))
		return -ENAMETOOLONG;

	err = sys_ensure_bpffs();
	if (err) {
		log_err("mounting bpffs at %s: %s", SL_BPFFS, strerror(-err));
		return err;
	}
	snprintf(links, sizeof(links), "%s/links", pin_root);
	err = sys_mkdir_p(links, 0700);
	if (err) {
		log_err("creating %s: %s", links, strerror(-err));
		return err;
	}

	cg_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0 || fstat(cg_fd, &st)) {
		err = -errno;
		log_err("opening cgroup %s: %s", cgroup_path, strerror(-err));
		goto fail;
	}

	dp->skel = sock_bpf__open_opts(&oopts);
	if (!dp->skel) {
		err = -errno;
		log_err("opening BPF object: %s", strerror(-err));
		goto fail;
	}
	dp->has_set_retval = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						     BPF_FUNC_set_retval, NULL) > 0;
	if (!dp->has_set_retval)
		log_warn("kernel lacks bpf_set_retval (5.18+): connect() to a service "
			 "without backends fails with EPERM instead of ECONNREFUSED");
	dp->skel->rodata->cfg_has_set_retval = dp->has_set_retval;
	dp->has_netns_cookie = probe_netns_cookie();
	if (!dp->has_netns_cookie)
		log_warn("kernel lacks SO_NETNS_COOKIE (5.14+): connect() cannot tell which pod "
			 "is calling, so policy is enforced by tc at the destination (a denied "
			 "client times out instead of getting EACCES)");
	dp->skel->rodata->cfg_netns_ident = dp->has_netns_cookie;
	dp->skel->rodata->cfg_flow_events = flow_events;
	adopt_pinned_sizes(dp->skel->obj);

	err = sock_bpf__load(dp->skel);
	if (err) {
		log_err("loading BPF programs: %s", strerror(-err));
		goto fail;
	}
	bpf_object__for_each_program(prog, dp->skel->obj) {
		err = attach_or_adopt(dp, prog, cg_fd, (__u64)st.st_ino);
		if (err)
			goto fail;
	}
	/* the other objects share the pinned maps the socket object created */
	dp->sockops = sockops_bpf__open_opts(&oopts);
	if (!dp->sockops) {
		err = -errno;
		log_err("opening sockops BPF object: %s", strerror(-err));
		goto fail;
	}
	dp->sockops->rodata->cfg_flow_events = flow_events;
	adopt_pinned_sizes(dp->sockops->obj);
	err = sockops_bpf__load(dp->sockops);
	if (err) {
		log_err("loading sockops BPF program: %s", strerror(-err));
		goto fail;
	}
	err = attach_or_adopt(dp, dp->sockops->progs.sl_sockops, cg_fd, (__u64)st.st_ino);
	if (err)
		goto fail;
	err = load_fastpath(dp, &oopts);
	if (err)
		goto fail;
	dp->tc = tc_bpf__open_opts(&oopts);
	if (!dp->tc) {
		err = -errno;
		log_err("opening tc BPF object: %s", strerror(-err));
		goto fail;
	}
	dp->tc->rodata->cfg_flow_events = flow_events;
	adopt_pinned_sizes(dp->tc->obj);
	err = tc_bpf__load(dp->tc);
	if (err) {
		log_err("loading tc BPF programs: %s", strerror(-err));
		goto fail;
	}
	dp->admin = admin_bpf__open_opts(&oopts);
	if (!dp->admin) {
		err = -errno;
		log_err("opening admin BPF object: %s", strerror(-err));
		goto fail;
	}
	adopt_pinned_sizes(dp->admin->obj);
	err = admin_bpf__load(dp->admin);
	if (err) {
		log_err("loading admin BPF programs: %s", strerror(-err));
		goto fail;
	}
	err = lbmap_open(&dp->maps, pin_root);
	err = err ?: polmap_open(&dp->pol, pin_root);
	dp->pol.netns_cookies = dp->has_netns_cookie;
	if (err) {
		log_err("opening pinned maps under %s: %s", pin_root, strerror(-err));
		goto fail;
	}
	dp->maps.forget_fd = bpf_program__fd(dp->admin->progs.sl_be_forget);
	close(cg_fd);
	return 0;
fail:
	if (cg_fd >= 0)
		close(cg_fd);
	datapath_close(dp);
	return err;
}

int datapath_attach_tc(struct datapath *dp, unsigned int ifindex)
{
	return tchook_attach(ifindex, dp->tc_mode, bpf_program__fd(dp->tc->progs.sl_from_pod),
			     bpf_program__fd(dp->tc->progs.sl_to_pod));
}

static const struct pol_endpoint *tc_find(const struct pol_endpoint *v, size_t n,
					  const struct pol_endpoint *ep)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].ifindex == ep->ifindex && !strcmp(v[i].ifname, ep->ifname))
			return &v[i];
	return NULL;
}

int datapath_attach_local(struct datapath *dp, const struct pol_endpoint *eps, size_t n,
			  char *err, size_t errlen)
{
	struct pol_endpoint *on = calloc(n + 1, sizeof(*on));
	size_t k = 0;
	int rc = 0;

	if (!on) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* an ifindex with another name is another veth: attach again */
	for (size_t i = 0; i < n && !rc; i++) {
		if (!tc_find(dp->tc_on, dp->ntc_on, &eps[i])) {
			rc = datapath_attach_tc(dp, eps[i].ifindex);
			if (rc) {
				snprintf(err, errlen, "attaching tc to %s: %s", eps[i].ifname,
					 strerror(-rc));
				break;
			}
		}
		on[k++] = eps[i];
	}
	/* on a failure, the veths after it are left to the next apply */
	free(dp->tc_on);
	dp->tc_on = on;
	dp->ntc_on = k;
	return rc;
}

void datapath_tc_forget(struct datapath *dp, unsigned int ifindex)
{
	size_t k = 0;

	for (size_t i = 0; i < dp->ntc_on; i++)
		if (ifindex && dp->tc_on[i].ifindex != ifindex)
			dp->tc_on[k++] = dp->tc_on[i];
	dp->ntc_on = k;
}

void datapath_close(struct datapath *dp)
{
	free(dp->tc_on);
	dp->tc_on = NULL;
	dp->ntc_on = 0;
	polmap_close(&dp->pol);
	tc_bpf__destroy(dp->tc);
	dp->tc = NULL;
	admin_bpf__destroy(dp->admin);
	dp->admin = NULL;
	sockops_bpf__destroy(dp->sockops);
	dp->sockops = NULL;
	skmsg_bpf__destroy(dp->skmsg);
	dp->skmsg = NULL;
	lbmap_close(&dp->maps);
	sock_bpf__destroy(dp->skel);
	dp->skel = NULL;
}

/* Remove every pin in `dir`. Links are detached first with BPF_LINK_DETACH:
 * unpinning alone releases a link only when bpffs frees the inode, after an
 * RCU grace period, so the programs would keep running for a moment after
 * uninstall returned. */
static int unpin_all(const char *dir, bool detach)
{
	struct dirent *de;
	char path[PATH_MAX];
	int err = 0;
	DIR *d = opendir(dir);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (detach) {
			int fd = bpf_obj_get(path);

			if (fd >= 0) {
				if (bpf_link_detach(fd) && errno != EINVAL && errno != EOPNOTSUPP)
					log_warn("detaching %s: %s", path, strerror(errno));
				close(fd);
			}
		}
		if (unlink(path) && !err)
			err = -errno;
	}
	closedir(d);
	return err;
}

/* Take our tc programs off the veths listed in the pinned endpoints map
 * (interfaces of this netns; gone ones are skipped, and a program is
 * ours by its name: the ifindex means something only in the netns the
 * agent ran in). */
static void detach_tc_all(const char *pin_root)
{
	char path[PATH_MAX];
	__u32 k, *prev = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_root, SL_MAP_ENDPOINTS);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		prev = &k;
		tchook_detach(k);
	}
	close(fd);
}

int datapath_uninstall(const char *pin_root)
{
	char links[PATH_MAX];
	int err;

	detach_tc_all(pin_root);
	/* links go before the maps the programs use */
	snprintf(links, sizeof(links), "%s/links", pin_root);
	err = unpin_all(links, true);
	if (!err && rmdir(links) && errno != ENOENT)
		err = -errno;
	if (!err)
		err = unpin_all(pin_root, false);
	if (!err && rmdir(pin_root) && errno != ENOENT)
		err = -errno;
	return err;
}
