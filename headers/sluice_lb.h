/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_lb.h - the service load-balancing ABI shared by bpf/ and userspace/.
 *
 * Contract: every map key, value and name used by the socket-layer load
 * balancer is defined here and nowhere else. Structs have explicit padding
 * and a size assertion, so that the BPF side, the agent, sluicectl and
 * bpftool (through BTF) all see the same bytes. Addresses are always 16 bytes
 * in network order; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), which lets a
 * dual-stack AF_INET6 socket connecting to ::ffff:VIP find the IPv4 service
 * with the same lookup as an AF_INET socket.
 *
 * Write order (see docs/architecture.md): backends, then the slots of the
 * inactive generation, then the service entry that flips to them; removal in
 * the reverse order. A hash map element update is atomic for readers, so a
 * connect() sees either the old or the new service, never a mix.
 */
#ifndef SLUICE_LB_H
#define SLUICE_LB_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Map names: at most 15 characters so `bpftool map show` prints them whole. */
#define SL_MAP_SERVICES "sl_services"
#define SL_MAP_SLOTS    "sl_slots"
#define SL_MAP_BACKENDS "sl_backends"
#define SL_MAP_REVNAT   "sl_revnat"
#define SL_MAP_SVC_VIP  "sl_svc_vip"

#define SL_MAX_SERVICES 131072
#define SL_MAX_BACKENDS 131072
#define SL_MAX_SLOTS    (1u << 21)
#define SL_MAX_REVNAT   262144

/* A backend's weight is 1..SL_WEIGHT_MAX; a service expands its backends into
 * sum(weight / gcd) slots and picks one slot uniformly at random. A
 * SOURCE_HASH service's slots are a Maglev table of a prime size instead,
 * each backend's share of it following its weight (userspace/lib/node/maglev.h). */
#define SL_WEIGHT_MAX            100
#define SL_MAX_BACKENDS_PER_SVC  1024

/* services: (VIP, port, protocol) -> service */
struct sl_svc_key {
	__be32 addr[4];  /* VIP, network order; IPv4 as ::ffff:a.b.c.d */
	__be16 port;     /* VIP port, network order */
	__u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;        /* must be 0 */
};

struct sl_svc_val {
	__u32 svc_id;    /* stable id, names the service's slots */
	__u32 count;     /* slots in generation `gen`; 0: no backends, refuse */
	__u16 wunit;     /* weight of one slot (gcd of the weights), for display;
			  * 0: the slots are a consistent-hash (Maglev) table */
	__u8 gen;        /* 0 or 1: which slot generation is live */
	__u8 flags;      /* SL_SVC_F_* (headers/sluice_traffic.h) */
};

/* slots: (service, generation, index) -> backend. A backend of weight w owns
 * w / wunit consecutive slots. */
struct sl_slot_key {
	__u32 svc_id;
	__u8 gen;
	__u8 pad[3];
	__u32 idx;       /* 0 .. count-1 */
};

struct sl_slot_val {
	__u32 backend_id;
};

/* backends: backend id -> address */
struct sl_backend {
	__be32 addr[4];  /* network order; IPv4 as ::ffff:a.b.c.d */
	__be16 port;     /* network order */
	__u8 proto;
	__u8 pad;
};

/* revnat (LRU): (socket cookie, backend address) -> VIP. Written at connect
 * and sendmsg (but for TCP through a service: svc_vip below); read by
 * getpeername and recvmsg so the application sees the VIP it asked for.
 * Keyed by the backend too, since one unconnected UDP socket may talk to
 * several services. */
struct sl_revnat_key {
	__u64 cookie;
	__be32 addr[4];  /* backend address */
	__be16 port;     /* backend port */
	__u8 pad[6];
};

struct sl_revnat_val {
	__be32 addr[4];  /* VIP */
	__be16 port;     /* VIP port */
	__u8 pad[2];
};

/* svc_vip (array, index svc_id): the key of the service that has the id,
 * written by the agent before the service entry that carries it; port 0:
 * none. A TCP connection through a service is in sl_conns
 * (sluice_flow.h) under its socket's cookie, with the service's id and the
 * backend it went to: getpeername() finds the VIP from there, so connect()
 * writes no sl_revnat entry for it (its one LRU write is sl_conns').
 * UDP, and connections the node proxy captures, keep sl_revnat. */

_Static_assert(sizeof(struct sl_svc_key) == 20, "sl_svc_key layout");
_Static_assert(sizeof(struct sl_svc_val) == 12, "sl_svc_val layout");
_Static_assert(sizeof(struct sl_slot_key) == 12, "sl_slot_key layout");
_Static_assert(sizeof(struct sl_slot_val) == 4, "sl_slot_val layout");
_Static_assert(sizeof(struct sl_backend) == 20, "sl_backend layout");
_Static_assert(sizeof(struct sl_revnat_key) == 32, "sl_revnat_key layout");
_Static_assert(sizeof(struct sl_revnat_val) == 20, "sl_revnat_val layout");

#endif /* SLUICE_LB_H */
