// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * admin.bpf.c - programs the agent runs itself with BPF_PROG_TEST_RUN,
 * never attached: changes to counters the BPF side owns, which must be
 * made under their bpf_spin_lock and with the atomic decrements the other
 * programs use (userspace can only replace a whole value).
 *
 *   sl_be_forget (tc, input: a struct sl_be_key at offset 0 of a frame of
 *     at least ETH_HLEN bytes): a backend leaves a service. If it is
 *     ejected, its place in the service's count of ejected backends is
 *     given back, as the connect that sees an ejection end would; then
 *     its state entry goes. Returns 1 if it was ejected, else 0. Without
 *     it, a backend removed while ejected (a crashing pod that got
 *     replaced) would count as ejected for the life of the service, and
 *     after a few such replacements maxEjectionPercent would allow no
 *     ejection at all.
 */
#include "lib/common.h"
#include "lib/traffic.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int sl_be_forget(struct __sk_buff *skb)
{
	struct sl_svc_state *st;
	struct sl_be_state *bs;
	struct sl_be_key k;
	bool counted;

	if (bpf_skb_load_bytes(skb, 0, &k, sizeof(k)))
		return 0;
	bs = bpf_map_lookup_elem(&sl_be_state, &k);
	if (!bs)
		return 0;
	bpf_spin_lock(&bs->lock);
	counted = bs->until != 0;
	bs->until = 0;
	bpf_spin_unlock(&bs->lock);
	st = counted ? bpf_map_lookup_elem(&sl_svc_state, &k.svc_id) : NULL;
	if (st)
		tp_uneject(st);
	bpf_map_delete_elem(&sl_be_state, &k);
	return counted;
}
