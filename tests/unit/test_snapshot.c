// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Snapshot parsing: valid documents decode to the map layout, and every
 * invalid case is refused with a message naming the source and the field.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "lib/core/addr.h"
#include "lib/node/snapshot.h"

static int parse(const char *json, struct snapshot *s, char *err, size_t len)
{
	return snapshot_parse(json, strlen(json), "snap.json", s, err, len);
}

Test(snapshot, valid_v4_v6_udp)
{
	const char *j =
		"{\"version\": 7, \"services\": ["
		" {\"name\": \"default/web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
		"  \"backends\": [{\"address\": \"10.244.1.2\", \"port\": 8080},"
		"                {\"address\": \"10.244.1.3\", \"port\": 8080, \"weight\": 3}]},"
		" {\"name\": \"default/dns\", \"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"UDP\","
		"  \"backends\": []},"
		" {\"name\": \"default/web6\", \"vip\": \"fd00:96::10\", \"port\": 80, \"protocol\": \"tcp\","
		"  \"backends\": [{\"address\": \"fd00:244:1::2\", \"port\": 8080}]}]}";
	struct snapshot s;
	char err[256] = "";
	char buf[SL_ADDRSTRLEN];

	cr_assert_eq(parse(j, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.version, 7);
	cr_assert_eq(s.nservices, 3);
	cr_assert_str_eq(s.services[0].name, "default/web");
	cr_assert(addr_is_v4(s.services[0].key.addr));
	cr_assert_str_eq(addr_fmt(s.services[0].key.addr, buf), "10.96.0.10");
	cr_assert_eq(ntohs(s.services[0].key.port), 80);
	cr_assert_eq(s.services[0].key.proto, IPPROTO_TCP);
	cr_assert_eq(s.services[0].nbackends, 2);
	cr_assert_eq(s.services[0].backends[0].weight, 1);
	cr_assert_eq(s.services[0].backends[1].weight, 3);
	cr_assert_eq(s.services[0].backends[1].be.proto, IPPROTO_TCP);
	cr_assert_eq(ntohs(s.services[0].backends[1].be.port), 8080);
	cr_assert_eq(s.services[1].key.proto, IPPROTO_UDP);
	cr_assert_eq(s.services[1].nbackends, 0);
	cr_assert_not(addr_is_v4(s.services[2].key.addr));
	cr_assert_str_eq(addr_fmt(s.services[2].backends[0].be.addr, buf), "fd00:244:1::2");
	snapshot_free(&s);
}

Test(snapshot, same_vip_port_different_proto_is_fine)
{
	const char *j = "{\"services\": ["
		"{\"name\": \"a\", \"vip\": \"10.96.0.53\", \"port\": 53, \"backends\": []},"
		"{\"name\": \"b\", \"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"UDP\", \"backends\": []}]}";
	struct snapshot s;
	char err[256] = "";

	cr_assert_eq(parse(j, &s, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
}

/* Criterion runs each parameter in a re-executed child (PIE: other
 * addresses), so cases hold their strings by value, not by pointer. */
struct bad_case {
	char json[400];
	char want[100]; /* substring of the error */
};

#define SVC(extra) "{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80, " extra "}]}"
#define BE(b) SVC("\"backends\": [" b "]")

ParameterizedTestParameters(snapshot, refused)
{
	static struct bad_case cases[] = {
		{ "{\"services\": [", "snap.json:1:" },
		{ "[]", "top level must be an object" },
		{ "{\"services\": [], \"extra\": 1}", "snap.json: extra: unknown field" },
		{ "{}", "services: missing required field" },
		{ "{\"services\": {}}", "services: must be an array" },
		{ "{\"version\": -1, \"services\": []}", "version: -1 is out of range" },
		{ "{\"version\": \"1\", \"services\": []}", "version: must be an integer" },
		{ SVC("\"backends\": [], \"colour\": 1"), "services[0].colour: unknown field" },
		{ "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.1\", \"port\": 80}]}",
		  "services[0].backends: missing required field" },
		{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"backends\": []}]}",
		  "services[0].name: missing required field" },
		{ "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.300\", \"port\": 80, \"backends\": []}]}",
		  "services[0].vip: \"10.96.0.300\" is not an IPv4 or IPv6 address" },
		{ "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.1\", \"port\": 0, \"backends\": []}]}",
		  "services[0].port: 0 is out of range 1..65535" },
		{ "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.1\", \"port\": 65536, \"backends\": []}]}",
		  "services[0].port: 65536 is out of range" },
		{ "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.1\", \"port\": 80, \"protocol\": \"SCTP\", \"backends\": []}]}",
		  "services[0].protocol: \"SCTP\" is not TCP or UDP" },
		{ BE("{\"address\": \"10.244.1.2\", \"port\": 8080, \"weight\": 0}"),
		  "services[0].backends[0].weight: 0 is out of range 1..100" },
		{ BE("{\"address\": \"10.244.1.2\", \"port\": 8080, \"weight\": 101}"),
		  "services[0].backends[0].weight: 101 is out of range 1..100" },
		{ BE("{\"address\": \"10.244.1.2\", \"port\": 8080, \"weight\": 1.5}"),
		  "services[0].backends[0].weight: must be an integer" },
		{ BE("{\"address\": \"10.244.1.2\", \"port\": 8080}, {\"address\": \"bogus\", \"port\": 1}"),
		  "services[0].backends[1].address: \"bogus\" is not an IPv4 or IPv6 address" },
		{ BE("{\"address\": \"fd00::2\", \"port\": 8080}"),
		  "services[0].backends[0].address: address family differs" },
		{ BE("{\"address\": \"10.244.1.2\", \"port\": 8080, \"wieght\": 2}"),
		  "services[0].backends[0].wieght: unknown field" },
		{ BE("{\"address\": \"10.244.1.2\", \"port\": 8080}, {\"address\": \"10.244.1.2\", \"port\": 8080}"),
		  "services[0].backends[1]: duplicate of backends[0]" },
		{ "{\"services\": [{\"name\": \"a\", \"vip\": \"10.96.0.1\", \"port\": 80, \"backends\": []},"
		  "{\"name\": \"b\", \"vip\": \"10.96.0.2\", \"port\": 80, \"backends\": []},"
		  "{\"name\": \"c\", \"vip\": \"10.96.0.1\", \"port\": 80, \"backends\": []}]}",
		  "services[2]: vip 10.96.0.1 port 80/TCP duplicates services[0] (\"a\")" },
		{ "{\"services\": [], \"services\": []}", "duplicate object key" },
	};

	return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, snapshot, refused)
{
	struct snapshot s = { .version = 12345 };
	char err[512] = "";

	cr_assert_eq(parse(c->json, &s, err, sizeof(err)), -EINVAL, "accepted: %s", c->json);
	cr_assert(strstr(err, c->want), "error \"%s\" lacks \"%s\"", err, c->want);
	cr_assert(strncmp(err, "snap.json", 9) == 0, "error \"%s\" does not name the source", err);
	cr_assert_eq(s.version, 12345, "output touched on failure");
}

Test(snapshot, load_missing_file_names_it)
{
	struct snapshot s;
	char err[256] = "";

	cr_assert_eq(snapshot_load("/nonexistent/snap.json", &s, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/snap.json"), "%s", err);
}
