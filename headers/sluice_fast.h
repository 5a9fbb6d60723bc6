/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_fast.h - the same-node fast path: a sockhash of local pod-to-pod
 * TCP sockets and sk_msg redirection between them.
 *
 * Contract:
 * - Only connections whose two ends are mesh workloads on this node (both
 *   addresses LOCAL in sl_ipcache, so never loopback) are inserted; pod IPs
 *   are unique on a node, so the 4-tuple alone identifies a socket and
 *   sockets in different network namespaces never collide. Addresses are
 *   IPv4-mapped like everywhere else, so a dual-stack AF_INET6 socket and
 *   an AF_INET one produce the same key.
 * - A direction of a connection never mixes paths: the client's first
 *   message decides (redirect if the server's socket is in the sockhash
 *   already, TCP otherwise, and then both directions and both sockets
 *   leave: bpf/sockops.bpf.c fast_insert) and every later message
 *   follows, because the receiver reads its redirected queue before its
 *   TCP queue. Going from redirect to TCP is the one safe switch, and
 *   happens when the receiver half-closes.
 * - Half-close (kernel-notes): a socket in a sockhash that blocks in recv()
 *   after shutdown(SHUT_WR) gets EAGAIN when the ACK of its FIN wakes it
 *   (tcp_bpf_recvmsg, up to at least 6.18). A half-closing socket that was
 *   never sent anything through the sockhash leaves it at once, so it
 *   reads through plain TCP; whether anything was sent is decided under
 *   `lock` (the sender claims its bytes in bytes_in before redirecting and
 *   gives up if rx_closed is set), so no redirect can be in flight when it
 *   leaves, and leaving never discards data. One that was sent data stays
 *   (leaving would discard what it has not read), and keeps the kernel's
 *   bug: the agent's start-up probe (docs/architecture.md) detects that
 *   bug and keeps the fast path off unless told `--sockmap force`.
 */
#ifndef SLUICE_FAST_H
#define SLUICE_FAST_H

#ifndef __VMLINUX_H__
#include <linux/bpf.h>
#include <linux/types.h>
#endif

#define SL_MAP_SOCKHASH  "sl_sockhash"
#define SL_MAP_FASTSTATE "sl_faststate"

#define SL_MAX_FASTSOCKS 65536

struct sl_sock_key {
	__be32 local[4];
	__be32 remote[4];
	__u16 lport;        /* host order */
	__u16 rport;        /* host order */
};

enum sl_fast_path {
	SL_PATH_UNDECIDED = 0,
	SL_PATH_REDIRECT = 1,
	SL_PATH_TCP = 2,
};

/* sl_faststate: per socket in the sockhash, same key. */
struct sl_fast_state {
	__u64 bytes_out;    /* payload this socket redirected to its peer */
	__u64 bytes_in;     /* payload its peer redirected to it (under lock) */
	struct bpf_spin_lock lock;  /* bytes_in, rx_closed, peer_ready, path */
	__u8 path;          /* enum sl_fast_path, for this socket's sends */
	__u8 rx_closed;     /* this socket half-closed: peer must use TCP */
	__u8 left;          /* ... and it left the sockhash (nothing was sent to it) */
	__u8 peer_ready;    /* the peer socket is in the sockhash */
};

_Static_assert(sizeof(struct sl_sock_key) == 36, "sl_sock_key layout");
_Static_assert(sizeof(struct sl_fast_state) == 24, "sl_fast_state layout");

#endif /* SLUICE_FAST_H */
