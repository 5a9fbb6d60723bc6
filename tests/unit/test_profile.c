// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Install profiles (ctl/profile.h): resolution order and refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ctl/profile.h"

static json_t *resolve(const char *name, const char **sets, size_t nsets, const char **files,
		       size_t nfiles, char *err, size_t errlen)
{
	struct profile_src src = { .name = name, .sets = sets, .nsets = nsets, .overlays = files,
				   .noverlays = nfiles };
	json_t *p = NULL;

	err[0] = 0;
	return profile_resolve(&src, &p, err, errlen) ? NULL : p;
}

static const char *overlay(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/sluice-profile-test.XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(profile, every_key_has_a_default)
{
	char err[256];
	json_t *p = resolve(NULL, NULL, 0, NULL, 0, err, sizeof(err));

	cr_assert(p, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(p, "profile")), "default");
	for (const struct profile_key *k = profile_keys; k->key; k++) {
		char key[128], *dot, *save = NULL;
		const json_t *o = p;

		snprintf(key, sizeof(key), "%s", k->key);
		for (dot = strtok_r(key, ".", &save); dot; dot = strtok_r(NULL, ".", &save))
			o = json_object_get(o, dot);
		cr_assert(o, "profiles/default.yaml lacks %s", k->key);
	}
	json_decref(p);
}

Test(profile, order_profile_overlay_set)
{
	const char *f = overlay("profile: demo\nagent:\n  logLevel: warn\n  sockmap: \"on\"\n");
	const char *sets[] = { "agent.logLevel=debug" };
	const char *files[] = { f };
	char err[256];
	json_t *p = resolve(NULL, sets, 1, files, 1, err, sizeof(err));

	cr_assert(p, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(p, "profile")), "demo");
	cr_assert(prof_bool(p, "demo.enabled"));                        /* the profile */
	cr_assert_str_eq(prof_str(p, "agent.sockmap"), "on");           /* the overlay */
	cr_assert_str_eq(prof_str(p, "agent.logLevel"), "debug");       /* --set, last */
	cr_assert(prof_bool(p, "components.control.enabled"));          /* default.yaml */
	json_decref(p);
	unlink(f);
}

Test(profile, set_profile_and_name)
{
	const char *sets[] = { "profile=minimal" };
	char err[256];
	json_t *p = resolve(NULL, sets, 1, NULL, 0, err, sizeof(err));

	cr_assert(p, "%s", err);
	cr_assert(!prof_bool(p, "components.control.enabled"));
	json_decref(p);
	p = resolve("empty", sets, 1, NULL, 0, err, sizeof(err));   /* --profile wins */
	cr_assert(p && !prof_bool(p, "components.agent.enabled"));
	json_decref(p);
}

Test(profile, refusals_name_the_key_and_what_is_allowed)
{
	const char *bad_set[] = { "agent.sockmap=maybe" };
	const char *unknown[] = { "agent.nope=1" };
	const char *range[] = { "probe.port=70000" };
	const char *noeq[] = { "agent.sockmap" };
	char err[256];

	cr_assert_null(resolve(NULL, bad_set, 1, NULL, 0, err, sizeof(err)));
	cr_assert_str_eq(err, "--set agent.sockmap: 'maybe' is not one of off, on, force");
	cr_assert_null(resolve(NULL, unknown, 1, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "--set agent.nope: unknown key"), "%s", err);
	cr_assert_null(resolve(NULL, range, 1, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "not an integer in 1..65535"), "%s", err);
	cr_assert_null(resolve(NULL, noeq, 1, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "expected KEY=VALUE"), "%s", err);
	cr_assert_null(resolve("nosuch", NULL, 0, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "profile 'nosuch': unknown (default, demo, minimal, empty, podman)"), "%s", err);
}

Test(profile, overlay_errors_have_file_line_column)
{
	const char *f = overlay("agent:\n  flowLog: maybe\n");
	const char *files[] = { f };
	char err[256], want[128];

	cr_assert_null(resolve(NULL, NULL, 0, files, 1, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2:12: agent.flowLog: 'maybe' is not a boolean", f);
	cr_assert(strstr(err, want), "%s", err);
	unlink(f);
	f = overlay("agent:\n  logLevel: info\n  colour: red\n");
	files[0] = f;
	cr_assert_null(resolve(NULL, NULL, 0, files, 1, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3:3: agent.colour: unknown key", f);
	cr_assert(strstr(err, want), "%s", err);
	unlink(f);
	f = overlay("agent: [1, 2]\n");
	files[0] = f;
	cr_assert_null(resolve(NULL, NULL, 0, files, 1, err, sizeof(err)));
	cr_assert(strstr(err, "agent: expected a mapping"), "%s", err);
	unlink(f);
}

Test(profile, replicas_need_an_etcd_store)
{
	const char *alone[] = { "control.replicas=3" };
	const char *scheme[] = { "control.store=/var/lib/x" };
	const char *ha[] = { "control.replicas=3", "control.store=etcd://10.0.0.1:2379,10.0.0.2:2379",
			     "control.storeKeyFile=/etc/sluice/store.key" };
	const char *many[] = { "control.replicas=10" };
	char err[256];
	json_t *p;

	cr_assert_null(resolve(NULL, alone, 1, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "control.replicas=3 needs control.store=etcd://"), "%s", err);
	cr_assert_null(resolve(NULL, scheme, 1, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "control.store: '/var/lib/x' is not"), "%s", err);
	cr_assert_null(resolve(NULL, many, 1, NULL, 0, err, sizeof(err)));
	cr_assert(strstr(err, "not an integer in 1..9"), "%s", err);
	p = resolve(NULL, ha, 3, NULL, 0, err, sizeof(err));
	cr_assert(p, "%s", err);
	cr_assert_eq(prof_int(p, "control.replicas"), 3);
	cr_assert_str_eq(prof_str(p, "control.store"), "etcd://10.0.0.1:2379,10.0.0.2:2379");
	json_decref(p);
	p = resolve(NULL, NULL, 0, NULL, 0, err, sizeof(err));   /* the default: one, state dir */
	cr_assert(p, "%s", err);
	cr_assert_eq(prof_int(p, "control.replicas"), 1);
	cr_assert_str_eq(prof_str(p, "control.store"), "");
	json_decref(p);
}
