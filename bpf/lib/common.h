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

/* cgroup sock_addr verdicts */
#define SYS_PROCEED 1
#define SYS_REJECT  0

#endif /* SL_BPF_COMMON_H */
