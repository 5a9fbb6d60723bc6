// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tchook.c - the tc programs on a pod's veth, by tcx or cls_bpf (tchook.h).
 *
 * libbpf 1.1 has no tcx API; tcx takes the classic BPF_PROG_ATTACH,
 * BPF_PROG_DETACH and BPF_PROG_QUERY commands with its own attach types,
 * and BPF_F_REPLACE swaps one program for another in place. A program
 * attached that way belongs to the device, as a tc filter does.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/node/tchook.h"

/* enum bpf_attach_type in kernels 6.6 and later */
#define TCX_INGRESS 46
#define TCX_EGRESS  47
#define TCX_MAX_PROGS 64

static const struct hook {
	const char *prog;                  /* our program's name */
	enum bpf_tc_attach_point cls;
	int tcx;
} hooks[2] = {
	{ "sl_from_pod", BPF_TC_INGRESS, TCX_INGRESS },
	{ "sl_to_pod", BPF_TC_EGRESS, TCX_EGRESS },
};

int tchook_mode_parse(const char *s, enum tchook_mode *out)
{
	static const char *const names[] = { "auto", "tcx", "cls" };

	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum tchook_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *tchook_mode_name(enum tchook_mode m)
{
	return m == TCHOOK_TCX ? "tcx" : m == TCHOOK_CLS ? "cls_bpf" : "auto";
}

bool tchook_tcx_supported(void)
{
	static int known = -1;

	if (known < 0) {
		LIBBPF_OPTS(bpf_prog_query_opts, q);

		/* loopback is ifindex 1 in every netns; older kernels refuse
		 * the attach type with EINVAL */
		known = bpf_prog_query_opts(1, TCX_INGRESS, &q) == 0;
	}
	return known;
}

enum tchook_mode tchook_resolve(enum tchook_mode want)
{
	if (want != TCHOOK_AUTO)
		return want;
	return tchook_tcx_supported() ? TCHOOK_TCX : TCHOOK_CLS;
}

/* An fd for program `id` if it is named `name`, else -1. */
static int prog_named(__u32 id, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || strcmp(info.name, name)) {
		close(fd);
		return -1;
	}
	return fd;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* ---- tcx ---------------------------------------------------------------- */

/* An fd for our program on hook h, -ENOENT if none, or the query's -errno. */
static int tcx_find(unsigned int ifindex, const struct hook *h)
{
	__u32 ids[TCX_MAX_PROGS];
	LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .prog_cnt = TCX_MAX_PROGS);
	int err = bpf_prog_query_opts((int)ifindex, h->tcx, &q);

	/* ENOSPC: more programs than fit; ours is looked for in those */
	if (err && err != -ENOSPC)
		return err < 0 ? err : -EIO;
	for (__u32 i = 0; i < q.prog_cnt && i < TCX_MAX_PROGS; i++) {
		int fd = prog_named(ids[i], h->prog);

		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

static int tcx_attach_one(unsigned int ifindex, const struct hook *h, int prog_fd)
{
	LIBBPF_OPTS(bpf_prog_attach_opts, opts);
	int old = tcx_find(ifindex, h), err;

	if (old < 0 && old != -ENOENT)
		return old;
	if (old >= 0) {
		if (prog_id(old) == prog_id(prog_fd)) {
			close(old);
			return 0;
		}
		opts.flags = BPF_F_REPLACE;
		opts.replace_prog_fd = old;
	}
	err = bpf_prog_attach_opts(prog_fd, (int)ifindex, h->tcx, &opts);
	if (old >= 0)
		close(old);
	return err < 0 ? err : err ? -EIO : 0;
}

static void tcx_detach_one(unsigned int ifindex, const struct hook *h)
{
	int fd;

	if (!tchook_tcx_supported())
		return;
	/* the same program twice is refused at attach: one pass is all */
	fd = tcx_find(ifindex, h);
	if (fd < 0)
		return;
	bpf_prog_detach2(fd, (int)ifindex, h->tcx);
	close(fd);
}

/* ---- cls_bpf ------------------------------------------------------------ */

/* Is our program the filter (handle 1, priority 1) on hook h? libbpf's
 * messages for a missing qdisc or filter, expected here, are kept quiet. */
static bool cls_present(unsigned int ifindex, const struct hook *h)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = h->cls);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	int err = bpf_tc_query(&hook, &opts), fd = -1;

	libbpf_set_print(print);
	if (!err)
		fd = prog_named(opts.prog_id, h->prog);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void cls_detach_one(unsigned int ifindex, const struct hook *h)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = h->cls);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);

	if (cls_present(ifindex, h))
		bpf_tc_detach(&hook, &opts);
}

/* Both filters, replacing what is there; the clsact qdisc is created
 * only when it is missing (creating an existing one fails with a kernel
 * message libbpf would log every time). */
static int cls_attach(unsigned int ifindex, const int fds[2])
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex);
	bool created = false;
	int err;

	for (unsigned int i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1,
			    .flags = BPF_TC_F_REPLACE, .prog_fd = fds[i]);

		hook.attach_point = hooks[i].cls;
		if (!created) {
			libbpf_print_fn_t print = libbpf_set_print(NULL);

			err = bpf_tc_attach(&hook, &opts);
			if (err) {
				hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
				err = bpf_tc_hook_create(&hook);
				created = true;
				hook.attach_point = hooks[i].cls;
			}
			libbpf_set_print(print);
			if (err && err != -EEXIST)
				return err;
			err = created ? bpf_tc_attach(&hook, &opts) : 0;
		} else {
			err = bpf_tc_attach(&hook, &opts);
		}
		if (err)
			return err;
	}
	return 0;
}

/* ---- both --------------------------------------------------------------- */

int tchook_attach(unsigned int ifindex, enum tchook_mode mode, int from_fd, int to_fd)
{
	const int fds[2] = { from_fd, to_fd };
	int err = 0;

	if (tchook_resolve(mode) == TCHOOK_TCX) {
		for (int i = 0; i < 2 && !err; i++)
			err = tcx_attach_one(ifindex, &hooks[i], fds[i]);
		for (int i = 0; i < 2 && !err; i++)
			cls_detach_one(ifindex, &hooks[i]);
		return err;
	}
	err = cls_attach(ifindex, fds);
	for (int i = 0; i < 2 && !err; i++)
		tcx_detach_one(ifindex, &hooks[i]);
	return err;
}

int tchook_count(unsigned int ifindex)
{
	int n = 0;

	for (int i = 0; i < 2; i++) {
		int fd = tchook_tcx_supported() ? tcx_find(ifindex, &hooks[i]) : -1;

		if (fd >= 0) {
			close(fd);
			n++;
		} else if (cls_present(ifindex, &hooks[i])) {
			n++;
		}
	}
	return n;
}

void tchook_detach(unsigned int ifindex)
{
	for (int i = 0; i < 2; i++) {
		tcx_detach_one(ifindex, &hooks[i]);
		cls_detach_one(ifindex, &hooks[i]);
	}
}
