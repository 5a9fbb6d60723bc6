/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * test_broken.h - a construct every kernel's verifier rejects, planted only
 * by `make BPF_TEST_BROKEN=1` (-DSLUICE_TEST_BROKEN) so the VM harness
 * (vmtests/, `make vmtest-selftest`) can prove that it fails when a program
 * does not load. Never included in a normal build.
 *
 * A 4-byte read 1024 bytes into struct bpf_sock_addr, far past its end: the
 * verifier's ctx access check refuses it ("invalid bpf_context access") on
 * every kernel since sock_addr programs exist (4.17), whatever the
 * privileges. volatile keeps clang from dropping the load.
 */
#ifndef SL_BPF_TEST_BROKEN_H
#define SL_BPF_TEST_BROKEN_H

#define SL_TEST_BROKEN(ctx)                                                  \
	do {                                                                 \
		if (*(volatile __u32 *)((char *)(ctx) + 1024) == 0x5111ce)   \
			return SYS_REJECT;                                   \
	} while (0)

#endif /* SL_BPF_TEST_BROKEN_H */
