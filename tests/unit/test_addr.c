// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Addresses as the maps hold them: 16 bytes, IPv4-mapped for IPv4. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib/core/addr.h"

Test(addr, v4_is_mapped)
{
	__be32 a[4];
	char buf[SL_ADDRSTRLEN];

	cr_assert_eq(addr_parse("10.96.0.1", a), 0);
	cr_assert_eq(a[0], 0);
	cr_assert_eq(a[1], 0);
	cr_assert_eq(a[2], htonl(0xffff));
	cr_assert_eq(a[3], inet_addr("10.96.0.1"));
	cr_assert(addr_is_v4(a));
	cr_assert_str_eq(addr_fmt(a, buf), "10.96.0.1");
}

Test(addr, mapped_literal_equals_v4)
{
	__be32 a[4], b[4];

	cr_assert_eq(addr_parse("::ffff:10.96.0.1", a), 0);
	cr_assert_eq(addr_parse("10.96.0.1", b), 0);
	cr_assert_eq(memcmp(a, b, 16), 0, "a dual-stack socket's VIP must find the IPv4 service");
}

Test(addr, v6_round_trip)
{
	__be32 a[4];
	char buf[SL_ADDRSTRLEN];

	cr_assert_eq(addr_parse("fd00:0244:0001:0000::0002", a), 0);
	cr_assert_not(addr_is_v4(a));
	cr_assert_str_eq(addr_fmt(a, buf), "fd00:244:1::2");
}

Test(addr, rejects)
{
	__be32 a[4];
	const char *bad[] = { "", "10.0.0", "10.0.0.256", "1.2.3.4/24", "fd00::1::2", "host", " 10.0.0.1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(addr_parse(bad[i], a), -EINVAL, "accepted '%s'", bad[i]);
}

Test(addr, proto)
{
	uint8_t p;

	cr_assert_eq(proto_parse("udp", &p), 0);
	cr_assert_eq(p, IPPROTO_UDP);
	cr_assert_str_eq(proto_name(IPPROTO_TCP), "TCP");
	cr_assert_eq(proto_parse("icmp", &p), -EINVAL);
}
