/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * common.h - includes and small definitions every sluice BPF object needs.
 * vmlinux.h carries kernel types but not the UAPI macros, so the few we use
 * are defined here once.
 */
#ifndef SL_BPF_COMMON_H
#define SL_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET  2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef EAGAIN
#define EAGAIN 11
#endif
#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif

/* Force a value into a register here: keeps clang from turning two ctx
 * loads into one load through a computed ctx pointer, which the verifier
 * rejects ("dereference of modified ctx ptr"). */
#define sl_barrier_var(v) asm volatile("" : "+r"(v))

/* Addresses of a socket context (struct bpf_sock_ops or sk_msg_md, which
 * name the fields alike) in the maps' form: IPv4 as IPv4-mapped, so an
 * AF_INET socket and a dual-stack AF_INET6 one look the same. Every field
 * is loaded up front and pinned in a register: loaded inside the family
 * branch, clang merges them into one load through a computed ctx pointer,
 * which the verifier rejects. */
#define SL_CTX_ADDRS(ctx, local, remote)                                       \
	do {                                                                   \
		__u32 fam_ = (ctx)->family;                                    \
		__be32 l4_ = (ctx)->local_ip4, r4_ = (ctx)->remote_ip4;        \
		__be32 l0_ = (ctx)->local_ip6[0], l1_ = (ctx)->local_ip6[1];   \
		__be32 l2_ = (ctx)->local_ip6[2], l3_ = (ctx)->local_ip6[3];   \
		__be32 r0_ = (ctx)->remote_ip6[0], r1_ = (ctx)->remote_ip6[1]; \
		__be32 r2_ = (ctx)->remote_ip6[2], r3_ = (ctx)->remote_ip6[3]; \
		sl_barrier_var(l4_);                                           \
		sl_barrier_var(r4_);                                           \
		sl_barrier_var(l3_);                                           \
		sl_barrier_var(r3_);                                           \
		if (fam_ == AF_INET) {                                         \
			l0_ = r0_ = 0;                                         \
			l1_ = r1_ = 0;                                         \
			l2_ = r2_ = bpf_htonl(0xffff);                         \
			l3_ = l4_;                                             \
			r3_ = r4_;                                             \
		}                                                              \
		(local)[0] = l0_;                                              \
		(local)[1] = l1_;                                              \
		(local)[2] = l2_;                                              \
		(local)[3] = l3_;                                              \
		(remote)[0] = r0_;                                             \
		(remote)[1] = r1_;                                             \
		(remote)[2] = r2_;                                             \
		(remote)[3] = r3_;                                             \
	} while (0)

/* remote_port in sock_ops and sk_msg is the network-order port in the
 * upper 16 bits; local_port is host order (kernel-notes). */
#define SL_CTX_RPORT(ctx) ((__u16)bpf_ntohl((ctx)->remote_port))

/* cgroup sock_addr verdicts */
#define SYS_PROCEED 1
#define SYS_REJECT  0

#endif /* SL_BPF_COMMON_H */
