// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Policy map reconciliation on maps created here (the BPF programs are not
 * loaded): an unchanged snapshot writes nothing, including one without
 * policy, whose arrays are NULL (under ASan+UBSan, unit-asan, a NULL
 * passed to memcmp aborts the test). Skipped where BPF maps cannot be
 * created (not root).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "lib/node/polmap.h"
#include "sluice_policy.h"

static int mk(enum bpf_map_type type, size_t key, size_t val, unsigned int max, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);

	return bpf_map_create(type, NULL, key, val, max, &o);
}

static void polmap_test_open(struct polmap *m)
{
	int *fds[] = { &m->ipcache_fd, &m->netns_fd, &m->ep_fd, &m->policy_fd,
		       &m->poldst_fd, &m->config_fd, &m->drops_fd, &m->mtls_port_fd };

	m->ipcache_fd = mk(BPF_MAP_TYPE_LPM_TRIE, sizeof(struct sl_ipcache_key),
			   sizeof(struct sl_ipcache_val), 64, BPF_F_NO_PREALLOC);
	if (m->ipcache_fd < 0 && (errno == EPERM || errno == EACCES))
		cr_skip_test("cannot create BPF maps (not root?)");
	m->netns_fd = mk(BPF_MAP_TYPE_HASH, sizeof(__u64), sizeof(struct sl_netns_val), 64, 0);
	m->ep_fd = mk(BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(struct sl_endpoint), 64, 0);
	m->policy_fd = mk(BPF_MAP_TYPE_HASH, sizeof(struct sl_policy_key),
			  sizeof(struct sl_policy_val), 64, BPF_F_NO_PREALLOC);
	m->poldst_fd = mk(BPF_MAP_TYPE_HASH, sizeof(struct sl_poldst_key),
			  sizeof(struct sl_poldst_val), 64, BPF_F_NO_PREALLOC);
	m->config_fd = mk(BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct sl_config), 1, 0);
	m->drops_fd = mk(BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(__u64), SL_DROP_MAX, 0);
	m->mtls_port_fd = mk(BPF_MAP_TYPE_HASH, sizeof(struct sl_mtls_port_key), sizeof(__u8), 64, 0);
	m->netns_cookies = false;
	for (unsigned int i = 0; i < 8; i++)
		cr_assert_geq(*fds[i], 0, "map %u: %s", i, strerror(errno));
}

Test(polmap, empty_snapshot_twice_writes_nothing)
{
	struct polmap m = {};
	struct snapshot s = { .version = 1 };
	struct pol_apply_stats st = {};
	char err[256] = "";

	polmap_test_open(&m);
	cr_assert_eq(polmap_apply(&m, &s, NULL, NULL, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st.policy_entries, 0);
	cr_assert_not(st.policy_flipped, "no policy in either generation: nothing to switch");
	s.version = 2;
	memset(&st, 0, sizeof(st));
	cr_assert_eq(polmap_apply(&m, &s, NULL, NULL, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(st.policy_flipped);
	cr_assert_eq(st.ids_written, 0);
	polmap_close(&m);
}
