// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF program tests for bpf/tc.bpf.c through its skeleton and
 * BPF_PROG_TEST_RUN: crafted Ethernet frames in, verdicts and map effects
 * out.
 *
 * Each test loads a private copy of the object (nothing pinned) and fills
 * its maps the way the agent would: the pod behind the veth in
 * sl_endpoints, identities in sl_ipcache, compiled policy in sl_policy and
 * sl_poldst. BPF_PROG_TEST_RUN runs a tc program on the calling netns's
 * loopback, so skb->ifindex is lo's (1) and the pod's endpoint is keyed by
 * it. Cases are tables: a frame and the verdict it must get; the counters
 * (sl_drops, sl_metrics) and the flow events are checked after each table.
 * Needs root; skips without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "bpf/tc.skel.h"
#include "bpft.h"
#include "sluice_policy.h"
#include "sluice_proxy.h"

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2

#define POD4   "10.1.0.5"
#define POD6   "fd00:1::5"
#define POD_ID 300
#define PEER_ID 301	/* another workload, on another node */
#define LOCAL4 "10.1.0.9"	/* a workload on this node */
#define LOCAL_ID 302
#define REMOTE4 "10.2.0.7"	/* PEER_ID's address */
#define WORLD4 "192.0.2.1"

static struct tc_bpf *skel;
static unsigned int lo;

static void setup(void)
{
	if (geteuid() != 0)
		return; /* each test skips with the reason */
	bpft_netns();
	lo = if_nametoindex("lo");
	cr_assert_gt(lo, 0);
	skel = tc_bpf__open();
	cr_assert_not_null(skel, "open: %s", strerror(errno));
	bpft_private_maps(skel->obj, 256);
	cr_assert_eq(tc_bpf__load(skel), 0, "load: %s", strerror(errno));
}

static void teardown(void)
{
	tc_bpf__destroy(skel);
	skel = NULL;
}

TestSuite(tc, .init = setup, .fini = teardown, .timeout = 30);

/* ---- the maps, as the agent writes them ---------------------------------- */

static void endpoint(__u32 flags)
{
	struct sl_endpoint ep = { .identity = POD_ID, .flags = flags | SL_EP_HAS_V4 | SL_EP_HAS_V6 };
	uint32_t a[4];

	bpft_addr16(POD4, a);
	ep.addr4 = a[3];
	bpft_addr16(POD6, ep.addr6);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.sl_endpoints), &lo, &ep, BPF_ANY), 0);
}

/* the cluster around the pod: itself, a local neighbour, a remote peer */
static void cluster(__u32 ep_flags)
{
	endpoint(ep_flags);
	bpft_ipcache(skel->maps.sl_ipcache, POD4, POD_ID, SL_IPC_LOCAL);
	bpft_ipcache(skel->maps.sl_ipcache, POD6, POD_ID, SL_IPC_LOCAL);
	bpft_ipcache(skel->maps.sl_ipcache, LOCAL4, LOCAL_ID, SL_IPC_LOCAL);
	bpft_ipcache(skel->maps.sl_ipcache, REMOTE4, PEER_ID, 0);
}

static void rule(__u32 gen, __u32 src, __u8 proto, __u16 port, bool allow)
{
	struct sl_policy_key k = { .gen = gen, .src_id = src, .dst_id = POD_ID, .port = port,
				   .proto = proto };
	struct sl_policy_val v = { .deny = !allow, .allow = allow };

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.sl_policy), &k, &v, BPF_ANY), 0);
}

static void default_deny(__u32 gen)
{
	struct sl_poldst_key k = { .gen = gen, .dst_id = POD_ID };
	struct sl_poldst_val v = { .flags = SL_PD_HAS_ALLOW };

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.sl_poldst), &k, &v, BPF_ANY), 0);
}

static void port_mode(const char *addr, __u16 port, __u8 mode)
{
	struct sl_mtls_port_key k = { .port = port };

	bpft_addr16(addr, k.addr);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.sl_mtls_port), &k, &mode, BPF_ANY), 0);
}

/* ---- frames -------------------------------------------------------------- */

#define SYN 0x02	/* TCP flags, byte 13 of the header */
#define ACK 0x10

struct frame {
	const char *what;
	const char *src, *dst;	/* IPv4 or IPv6 literals; NULL src: ARP */
	__u8 proto;		/* IPPROTO_TCP, _UDP, _ICMPV6, ... */
	__u16 sport, dport;
	__u8 flags;		/* TCP: SYN, ACK */
	__u32 mark;		/* skb->mark */
	int trunc;		/* bytes cut off the end */
	int verdict;		/* TC_ACT_* expected */
};

/* Ethernet + IPv4 or IPv6 + TCP/UDP header (or 8 bytes of anything else). */
static size_t build(const struct frame *f, unsigned char *buf)
{
	struct ethhdr *eth = (void *)buf;
	unsigned char *l4;
	size_t l4len = f->proto == IPPROTO_TCP ? sizeof(struct tcphdr) :
		       f->proto == IPPROTO_UDP ? sizeof(struct udphdr) : 8;

	memset(buf, 0, 256);
	memcpy(eth->h_dest, "\x02\0\0\0\0\x01", ETH_ALEN);
	memcpy(eth->h_source, "\x02\0\0\0\0\x02", ETH_ALEN);
	if (!f->src) {
		eth->h_proto = htons(ETH_P_ARP);
		return sizeof(*eth) + 28;
	}
	if (strchr(f->src, ':')) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		eth->h_proto = htons(ETH_P_IPV6);
		ip6->version = 6;
		ip6->nexthdr = f->proto;
		ip6->hop_limit = 64;
		ip6->payload_len = htons(l4len);
		cr_assert_eq(inet_pton(AF_INET6, f->src, &ip6->saddr), 1);
		cr_assert_eq(inet_pton(AF_INET6, f->dst, &ip6->daddr), 1);
		l4 = (void *)(ip6 + 1);
	} else {
		struct iphdr *ip = (void *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = f->proto;
		ip->tot_len = htons(sizeof(*ip) + l4len);
		cr_assert_eq(inet_pton(AF_INET, f->src, &ip->saddr), 1);
		cr_assert_eq(inet_pton(AF_INET, f->dst, &ip->daddr), 1);
		l4 = (void *)(ip + 1);
	}
	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *t = (void *)l4;

		t->source = htons(f->sport);
		t->dest = htons(f->dport);
		t->doff = 5;
		t->syn = !!(f->flags & SYN);
		t->ack = !!(f->flags & ACK);
	} else if (f->proto == IPPROTO_UDP) {
		struct udphdr *u = (void *)l4;

		u->source = htons(f->sport);
		u->dest = htons(f->dport);
		u->len = htons(sizeof(*u));
	}
	return l4 + l4len - buf;
}

/* The program's return value for f; the test fails if the run does. */
static int run(struct bpf_program *prog, const struct frame *f)
{
	unsigned char buf[256];
	struct __sk_buff ctx = { .mark = f->mark };
	size_t len = build(f, buf) - f->trunc;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .data_size_in = len,
		    .ctx_in = f->mark ? &ctx : NULL, .ctx_size_in = f->mark ? sizeof(ctx) : 0,
		    .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	if (err && f->mark)
		cr_skip_test("BPF_PROG_TEST_RUN refuses skb->mark in ctx_in here (%s): "
			     "the proxy-mark case needs it", strerror(-err));
	cr_assert_eq(err, 0, "%s: BPF_PROG_TEST_RUN: %s", f->what, strerror(-err));
	return o.retval;
}

static void table(struct bpf_program *prog, const struct frame *fs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int v = run(prog, &fs[i]);

		cr_expect_eq(v, fs[i].verdict, "%s: verdict %d, want %d", fs[i].what, v,
			     fs[i].verdict);
	}
}

#define TABLE(prog, fs) table(skel->progs.prog, fs, sizeof(fs) / sizeof(fs[0]))

static struct sl_metric_val metric(__u32 src, __u32 dst, __u16 port, __u8 proto, __u8 reporter)
{
	struct sl_metric_key k = { .src_id = src, .dst_id = dst, .port = port, .proto = proto,
				   .reporter = reporter };
	struct sl_metric_val v;

	cr_assert(bpft_metric(skel->maps.sl_metrics, &k, &v),
		  "no sl_metrics entry %u -> %u port %u proto %u reporter %u", src, dst, port,
		  proto, reporter);
	return v;
}

/* ---- sl_from_pod: anti-spoofing ----------------------------------------- */

Test(tc, from_pod_passes_only_the_pods_own_source)
{
	static const struct frame fs[] = {
		{ "own v4 TCP", POD4, REMOTE4, IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_OK },
		{ "own v6 TCP", POD6, "fd00:2::7", IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_OK },
		{ "ARP", NULL, NULL, 0, 0, 0, 0, 0, 0, TC_ACT_OK },
		{ "v6 DAD from ::", "::", "ff02::1:ff00:5", IPPROTO_ICMPV6, 0, 0, 0, 0, 0, TC_ACT_OK },
		{ "v6 ND from link-local", "fe80::1", "ff02::2", IPPROTO_ICMPV6, 0, 0, 0, 0, 0,
		  TC_ACT_OK },
		{ "forged v4", "10.1.0.6", REMOTE4, IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_SHOT },
		{ "forged v4 UDP", WORLD4, REMOTE4, IPPROTO_UDP, 5353, 53, 0, 0, 0, TC_ACT_SHOT },
		{ "forged v6", "fd00:1::6", "fd00:2::7", IPPROTO_TCP, 40000, 80, SYN, 0, 0,
		  TC_ACT_SHOT },
		{ "TCP from ::", "::", "fd00:2::7", IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_SHOT },
		{ "UDP from link-local", "fe80::1", "fd00:2::7", IPPROTO_UDP, 1, 2, 0, 0, 0,
		  TC_ACT_SHOT },
		{ "truncated TCP header", POD4, REMOTE4, IPPROTO_TCP, 40000, 80, SYN, 0, 4,
		  TC_ACT_SHOT },
	};
	struct sl_event ev[16];
	int n, spoof = 0;

	BPFT_REQUIRE_ROOT();
	cluster(0);
	TABLE(sl_from_pod, fs);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_SPOOF), 6);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_POLICY_INGRESS), 0);
	/* counted against the pod, as the source saw it, the destination
	 * identified by the ipcache */
	cr_assert_eq(metric(POD_ID, PEER_ID, 80, IPPROTO_TCP, SL_REPORTER_SOURCE).denied, 1);
	cr_assert_eq(metric(POD_ID, PEER_ID, 53, IPPROTO_UDP, SL_REPORTER_SOURCE).denied, 1);
	cr_assert_eq(metric(POD_ID, SL_ID_WORLD, 80, IPPROTO_TCP, SL_REPORTER_SOURCE).denied, 2);
	n = bpft_events(skel->maps.sl_events, ev, 16);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(ev[i].type, SL_EV_DENY);
		cr_assert_eq(ev[i].reason, SL_DENY_SPOOF);
		spoof++;
	}
	cr_assert_eq(spoof, 6, "deny events: %d", spoof);
	cr_assert_eq(ev[0].key.src_id, POD_ID);
	cr_assert_eq(ntohs(ev[0].sport), 40000);
	cr_assert_eq(ntohs(ev[0].dport), 80);
}

Test(tc, from_pod_v4_only_pod_may_not_send_v6_and_unknown_veths_pass)
{
	static const struct frame fs[] = {
		{ "own v6 TCP, no v6", POD6, "fd00:2::7", IPPROTO_TCP, 1, 80, SYN, 0, 0,
		  TC_ACT_SHOT },
		{ "own v4", POD4, REMOTE4, IPPROTO_TCP, 1, 80, SYN, 0, 0, TC_ACT_OK },
	};
	static const struct frame other[] = {
		{ "any source, not a pod's veth", WORLD4, REMOTE4, IPPROTO_TCP, 1, 80, SYN, 0, 0,
		  TC_ACT_OK },
	};
	struct sl_endpoint ep = { .identity = POD_ID, .flags = SL_EP_HAS_V4 };
	uint32_t a[4];

	BPFT_REQUIRE_ROOT();
	TABLE(sl_from_pod, other);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_SPOOF), 0);
	bpft_addr16(POD4, a);
	ep.addr4 = a[3];
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.sl_endpoints), &lo, &ep, BPF_ANY), 0);
	TABLE(sl_from_pod, fs);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_SPOOF), 1);
}

/* ---- UDP: what the pod sends lets the reply in --------------------------- */

Test(tc, udp_reply_to_the_pods_datagram_passes_default_deny)
{
	static const struct frame out[] = {
		{ "pod's query", POD4, REMOTE4, IPPROTO_UDP, 5353, 53, 0, 0, 0, TC_ACT_OK },
	};
	static const struct frame in[] = {
		{ "the reply", REMOTE4, POD4, IPPROTO_UDP, 53, 5353, 0, 0, 0, TC_ACT_OK },
		{ "same peer, other port", REMOTE4, POD4, IPPROTO_UDP, 54, 5353, 0, 0, 0,
		  TC_ACT_SHOT },
		{ "other peer", WORLD4, POD4, IPPROTO_UDP, 53, 5353, 0, 0, 0, TC_ACT_SHOT },
	};
	struct sl_udpflow_key k = {};
	__u8 one;

	BPFT_REQUIRE_ROOT();
	cluster(0);
	default_deny(0);
	TABLE(sl_from_pod, out);
	bpft_addr16(POD4, k.pod_addr);
	bpft_addr16(REMOTE4, k.peer_addr);
	k.pod_port = htons(5353);
	k.peer_port = htons(53);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_udpflow), &k, &one), 0,
		     "the pod's datagram left no sl_udpflow entry");
	TABLE(sl_to_pod, in);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_POLICY_INGRESS), 2);
}

/* ---- sl_to_pod: ingress L4 authorization ------------------------------- */

Test(tc, to_pod_checks_syns_against_policy)
{
	static const struct frame fs[] = {
		{ "SYN, allowed port", WORLD4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_OK },
		{ "SYN, allowed peer any port", REMOTE4, POD4, IPPROTO_TCP, 40000, 9090, SYN, 0, 0,
		  TC_ACT_OK },
		{ "SYN, other port", WORLD4, POD4, IPPROTO_TCP, 40000, 81, SYN, 0, 0, TC_ACT_SHOT },
		{ "SYN, denied peer on the open port", LOCAL4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0,
		  TC_ACT_SHOT },
		{ "established (ACK) on a closed port", WORLD4, POD4, IPPROTO_TCP, 40000, 81, ACK, 0,
		  0, TC_ACT_OK },
		{ "SYN-ACK on a closed port", WORLD4, POD4, IPPROTO_TCP, 81, 40000, SYN | ACK, 0, 0,
		  TC_ACT_OK },
		{ "UDP, not allowed", WORLD4, POD4, IPPROTO_UDP, 1000, 80, 0, 0, 0, TC_ACT_SHOT },
		{ "v6 SYN, allowed port", "fd00:2::7", POD6, IPPROTO_TCP, 40000, 80, SYN, 0, 0,
		  TC_ACT_OK },
		{ "v6 SYN, other port", "fd00:2::7", POD6, IPPROTO_TCP, 40000, 81, SYN, 0, 0,
		  TC_ACT_SHOT },
		{ "ICMP", WORLD4, POD4, IPPROTO_ICMP, 0, 0, 0, 0, 0, TC_ACT_OK },
	};
	struct sl_event ev[16];
	int n;

	BPFT_REQUIRE_ROOT();
	cluster(0);
	default_deny(0);
	rule(0, SL_ID_ANY, IPPROTO_TCP, 80, true);	/* anyone to 80 */
	rule(0, PEER_ID, IPPROTO_TCP, 0, true);		/* the peer to any port */
	rule(0, LOCAL_ID, IPPROTO_TCP, 80, false);	/* but never the neighbour */
	TABLE(sl_to_pod, fs);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_POLICY_INGRESS), 4);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_SPOOF), 0);
	/* reported as the destination saw it, source from the ipcache */
	cr_assert_eq(metric(SL_ID_WORLD, POD_ID, 81, IPPROTO_TCP, SL_REPORTER_DESTINATION).denied, 2);
	cr_assert_eq(metric(LOCAL_ID, POD_ID, 80, IPPROTO_TCP, SL_REPORTER_DESTINATION).denied, 1);
	cr_assert_eq(metric(SL_ID_WORLD, POD_ID, 80, IPPROTO_UDP, SL_REPORTER_DESTINATION).denied, 1);
	n = bpft_events(skel->maps.sl_events, ev, 16);
	cr_assert_eq(n, 4);
	for (int i = 0; i < n; i++)
		cr_assert(ev[i].type == SL_EV_DENY && ev[i].reason == SL_DENY_POLICY_INGRESS &&
			  ev[i].key.dst_id == POD_ID);
}

Test(tc, to_pod_without_default_deny_passes_and_follows_the_generation)
{
	static const struct frame open[] = {
		{ "SYN, no policy", WORLD4, POD4, IPPROTO_TCP, 40000, 81, SYN, 0, 0, TC_ACT_OK },
	};
	static const struct frame gen1[] = {
		{ "SYN, gen 1 denies", WORLD4, POD4, IPPROTO_TCP, 40000, 81, SYN, 0, 0, TC_ACT_SHOT },
		{ "SYN, gen 1 allows 80", WORLD4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_OK },
	};

	BPFT_REQUIRE_ROOT();
	cluster(0);
	TABLE(sl_to_pod, open);
	/* the next generation is written beside the current one, then
	 * switched to in sl_config: nothing of it applies before */
	default_deny(1);
	rule(1, SL_ID_ANY, IPPROTO_TCP, 80, true);
	TABLE(sl_to_pod, open);
	bpft_config(skel->maps.sl_config, 1, 0);
	TABLE(sl_to_pod, gen1);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_POLICY_INGRESS), 1);
}

/* ---- sl_to_pod: STRICT mTLS --------------------------------------------- */

Test(tc, strict_pod_takes_plaintext_only_from_local_workloads_and_the_proxy)
{
	static const struct frame fs[] = {
		{ "SYN from another node", REMOTE4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0,
		  TC_ACT_SHOT },
		{ "SYN from outside", WORLD4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_SHOT },
		{ "SYN from a local workload", LOCAL4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0,
		  TC_ACT_OK },
		{ "established from another node", REMOTE4, POD4, IPPROTO_TCP, 40000, 80, ACK, 0, 0,
		  TC_ACT_OK },
		{ "port-level PERMISSIVE", REMOTE4, POD4, IPPROTO_TCP, 40000, 8080, SYN, 0, 0,
		  TC_ACT_OK },
	};
	struct sl_event ev[8];

	BPFT_REQUIRE_ROOT();
	cluster(SL_EP_STRICT);
	port_mode(POD4, 8080, SL_MTLS_PERMISSIVE);
	TABLE(sl_to_pod, fs);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_MTLS_STRICT), 2);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_POLICY_INGRESS), 0);
	cr_assert_eq(metric(PEER_ID, POD_ID, 80, IPPROTO_TCP, SL_REPORTER_DESTINATION).denied, 1);
	cr_assert_eq(bpft_events(skel->maps.sl_events, ev, 8), 2);
	cr_assert_eq(ev[0].reason, SL_DENY_MTLS_STRICT);
}

Test(tc, port_level_strict_on_a_permissive_pod)
{
	static const struct frame fs[] = {
		{ "SYN to the STRICT port", REMOTE4, POD4, IPPROTO_TCP, 40000, 5432, SYN, 0, 0,
		  TC_ACT_SHOT },
		{ "SYN to another port", REMOTE4, POD4, IPPROTO_TCP, 40000, 80, SYN, 0, 0, TC_ACT_OK },
	};

	BPFT_REQUIRE_ROOT();
	cluster(0);
	port_mode(POD4, 5432, SL_MTLS_STRICT);
	TABLE(sl_to_pod, fs);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_MTLS_STRICT), 1);
}

Test(tc, proxy_delivery_to_a_strict_pod_passes_and_is_recorded)
{
	static const struct frame fs[] = {
		{ "SYN from the proxy, marked", REMOTE4, POD4, IPPROTO_TCP, 41000, 80, SYN,
		  SL_PROXY_MARK, 0, TC_ACT_OK },
	};
	struct sl_proxied_key k = { .proxy_port = 41000, .workload_port = 80 };
	__u8 one;

	BPFT_REQUIRE_ROOT();
	cluster(SL_EP_STRICT);
	default_deny(0);	/* the proxy authorized it: policy is not asked */
	TABLE(sl_to_pod, fs);
	cr_assert_eq(bpft_drops(skel->maps.sl_drops, SL_DROP_MTLS_STRICT), 0);
	bpft_addr16(REMOTE4, k.proxy);
	bpft_addr16(POD4, k.workload);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_proxied), &k, &one), 0,
		     "the proxy's delivery is not in sl_proxied for sockops to take");
}
