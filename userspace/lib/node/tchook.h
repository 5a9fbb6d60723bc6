/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tchook.h - sluice's two tc programs on a pod's host-side veth:
 * sl_from_pod on ingress (what the pod sends), sl_to_pod on egress (what
 * it receives).
 *
 * Two ways to hold them, the same programs either way:
 * - tcx (kernels 6.6 and later): the programs sit in the device's own
 *   list and run without the qdisc layer's classifier walk;
 * - cls_bpf: one filter per direction (handle 1, priority 1, direct
 *   action) under a clsact qdisc, on every kernel.
 * Both belong to the interface, not to a process or a pin: they stay when
 * the agent exits and go with the veth. A program is ours by its name, so
 * programs other tools put on the same hooks are left where they are.
 * Ours go last in tcx's list and first among the filters (priority 1);
 * their TC_ACT_OK ends the hook either way, so cls_bpf filters of other
 * tools after ours do not run, in either mode.
 * Replacing ours is one atomic step in both modes; moving from one mode to
 * the other attaches in the new mode before removing the old, so no packet
 * passes unchecked in between.
 */
#ifndef SL_TCHOOK_H
#define SL_TCHOOK_H

#include <stdbool.h>

enum tchook_mode {
	TCHOOK_AUTO = 0, /* tcx where the kernel has it, else cls_bpf */
	TCHOOK_TCX,
	TCHOOK_CLS,
};

/* "auto", "tcx", "cls"; 0 or -EINVAL. */
int tchook_mode_parse(const char *s, enum tchook_mode *out);
const char *tchook_mode_name(enum tchook_mode m);
/* Does the running kernel have tcx? Probed once (a query on loopback). */
bool tchook_tcx_supported(void);
/* The mode `want` means on this kernel: never TCHOOK_AUTO. */
enum tchook_mode tchook_resolve(enum tchook_mode want);

/* Put from_fd on ingress and to_fd on egress of ifindex (this netns) in
 * `mode` (resolved), replacing ours in place; then take ours off the
 * other mode's hooks. 0 or -errno. */
int tchook_attach(unsigned int ifindex, enum tchook_mode mode, int from_fd, int to_fd);
/* How many of the two hooks hold our program (0..2), in either mode. */
int tchook_count(unsigned int ifindex);
/* Take our programs off ifindex, both modes (what is not there is skipped). */
void tchook_detach(unsigned int ifindex);

#endif /* SL_TCHOOK_H */
