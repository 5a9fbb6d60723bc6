// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kernel tests for userspace/lib/node/tchook.c: sluice's tc programs on a
 * veth, by tcx and by cls_bpf, in a network namespace of the test's own
 * (the veth goes with it).
 *
 * What must hold in both modes: an attach puts exactly one of our programs
 * on each hook, a second attach replaces them in place (the new program,
 * no second copy), a move to the other mode leaves nothing behind in the
 * old one, detach takes ours off and leaves a program of another name
 * where it was. The tcx cases skip on kernels before 6.6, with the reason.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/filter.h>

#include "bpf/tc.skel.h"
#include "bpft.h"
#include "lib/node/tchook.h"

#define TCX_INGRESS 46
#define TCX_EGRESS  47
#define VETH "sltchook0"

static struct tc_bpf *a, *b; /* two loads: two sets of program ids */
static unsigned int ifindex;

static struct tc_bpf *load(void)
{
	struct tc_bpf *s = tc_bpf__open();

	cr_assert_not_null(s, "open: %s", strerror(errno));
	bpft_private_maps(s->obj, 16);
	cr_assert_eq(tc_bpf__load(s), 0, "load: %s", strerror(errno));
	return s;
}

static void setup(void)
{
	if (geteuid() != 0)
		return; /* each test skips with the reason */
	bpft_netns();
	cr_assert_eq(system("ip link add " VETH " type veth peer name " VETH "p"), 0);
	ifindex = if_nametoindex(VETH);
	cr_assert_gt(ifindex, 0);
	a = load();
	b = load();
}

static void teardown(void)
{
	tc_bpf__destroy(a);
	tc_bpf__destroy(b);
	a = b = NULL;
}

TestSuite(tchook, .init = setup, .fini = teardown, .timeout = 30);

static __u32 id_of(const struct bpf_program *p)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	cr_assert_eq(bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len), 0);
	return info.id;
}

/* The programs on a tcx hook, in order: how many, ids in ids[]. */
static int tcx_ids(int attach_type, __u32 ids[8])
{
	LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .prog_cnt = 8);

	cr_assert_eq(bpf_prog_query_opts((int)ifindex, attach_type, &q), 0, "tcx query: %s",
		     strerror(errno));
	return (int)q.prog_cnt;
}

/* The cls_bpf filter (handle 1, priority 1) on a hook: its program id, 0 if none. */
static __u32 cls_id(enum bpf_tc_attach_point where)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	int err = bpf_tc_query(&hook, &opts);

	libbpf_set_print(print);
	return err ? 0 : opts.prog_id;
}

static void require_tcx(void)
{
	BPFT_REQUIRE_ROOT();
	if (!tchook_tcx_supported())
		cr_skip_test("the kernel has no tcx (6.6 and later)");
}

static int attach(struct tc_bpf *s, enum tchook_mode m)
{
	return tchook_attach(ifindex, m, bpf_program__fd(s->progs.sl_from_pod),
			     bpf_program__fd(s->progs.sl_to_pod));
}

Test(tchook, tcx_attach_replaces_in_place_and_detaches)
{
	__u32 ids[8];

	require_tcx();
	cr_assert_eq(tchook_resolve(TCHOOK_AUTO), TCHOOK_TCX);
	cr_assert_eq(tchook_count(ifindex), 0);
	cr_assert_eq(attach(a, TCHOOK_TCX), 0);
	cr_assert_eq(tchook_count(ifindex), 2);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 1);
	cr_assert_eq(ids[0], id_of(a->progs.sl_from_pod));
	cr_assert_eq(tcx_ids(TCX_EGRESS, ids), 1);
	cr_assert_eq(ids[0], id_of(a->progs.sl_to_pod));
	cr_assert_eq(cls_id(BPF_TC_INGRESS), 0, "no cls_bpf filter in tcx mode");

	/* the same programs again: nothing changes; new ones: swapped */
	cr_assert_eq(attach(a, TCHOOK_TCX), 0);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 1);
	cr_assert_eq(attach(b, TCHOOK_TCX), 0);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 1, "replaced, not appended");
	cr_assert_eq(ids[0], id_of(b->progs.sl_from_pod));
	cr_assert_eq(tcx_ids(TCX_EGRESS, ids), 1);
	cr_assert_eq(ids[0], id_of(b->progs.sl_to_pod));

	tchook_detach(ifindex);
	cr_assert_eq(tchook_count(ifindex), 0);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 0);
	cr_assert_eq(tcx_ids(TCX_EGRESS, ids), 0);
}

Test(tchook, cls_attach_replaces_in_place_and_detaches)
{
	BPFT_REQUIRE_ROOT();
	cr_assert_eq(attach(a, TCHOOK_CLS), 0);
	cr_assert_eq(tchook_count(ifindex), 2);
	cr_assert_eq(cls_id(BPF_TC_INGRESS), id_of(a->progs.sl_from_pod));
	cr_assert_eq(cls_id(BPF_TC_EGRESS), id_of(a->progs.sl_to_pod));
	cr_assert_eq(attach(b, TCHOOK_CLS), 0);
	cr_assert_eq(cls_id(BPF_TC_INGRESS), id_of(b->progs.sl_from_pod));
	cr_assert_eq(cls_id(BPF_TC_EGRESS), id_of(b->progs.sl_to_pod));
	tchook_detach(ifindex);
	cr_assert_eq(tchook_count(ifindex), 0);
	cr_assert_eq(cls_id(BPF_TC_INGRESS), 0);
}

Test(tchook, moving_between_modes_leaves_nothing_in_the_old_one)
{
	__u32 ids[8];

	require_tcx();
	cr_assert_eq(attach(a, TCHOOK_CLS), 0);
	cr_assert_eq(attach(b, TCHOOK_TCX), 0);
	cr_assert_eq(tchook_count(ifindex), 2);
	cr_assert_eq(cls_id(BPF_TC_INGRESS), 0, "cls_bpf filter left after the move to tcx");
	cr_assert_eq(cls_id(BPF_TC_EGRESS), 0);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 1);
	cr_assert_eq(ids[0], id_of(b->progs.sl_from_pod));

	cr_assert_eq(attach(a, TCHOOK_CLS), 0);
	cr_assert_eq(tchook_count(ifindex), 2);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 0, "tcx program left after the move to cls_bpf");
	cr_assert_eq(tcx_ids(TCX_EGRESS, ids), 0);
	cr_assert_eq(cls_id(BPF_TC_EGRESS), id_of(a->progs.sl_to_pod));
}

Test(tchook, a_program_of_another_name_stays)
{
	struct bpf_insn pass[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int other;
	__u32 ids[8], oid;
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	require_tcx();
	other = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "other_tool", "GPL", pass, 2, NULL);
	cr_assert_geq(other, 0, "load: %s", strerror(errno));
	cr_assert_eq(bpf_obj_get_info_by_fd(other, &info, &len), 0);
	oid = info.id;
	cr_assert_eq(bpf_prog_attach(other, (int)ifindex, TCX_INGRESS, 0), 0, "tcx attach: %s",
		     strerror(errno));

	cr_assert_eq(attach(a, TCHOOK_TCX), 0);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 2);
	cr_assert_eq(tchook_count(ifindex), 2);
	cr_assert_eq(attach(b, TCHOOK_TCX), 0);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 2);
	cr_assert(ids[0] == oid || ids[1] == oid, "the other program was replaced");
	tchook_detach(ifindex);
	cr_assert_eq(tcx_ids(TCX_INGRESS, ids), 1);
	cr_assert_eq(ids[0], oid);
	cr_assert_eq(tchook_count(ifindex), 0);
	close(other);
}
