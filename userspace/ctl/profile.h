/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * profile.h - installation profiles: what `sluicectl install` sets up.
 *
 * A profile is a YAML tree of the keys in profile_keys[] (profiles/NAME.yaml,
 * built into sluicectl). Resolution, in order, each step overriding the
 * one before: profiles/default.yaml (every key with its default), the named
 * profile, each -f overlay, each --set KEY=VALUE (dotted key, as istioctl
 * takes them). The name comes from --profile, else the last --set
 * profile=NAME, else the last overlay's `profile:`, else "default".
 *
 * Contract: every value is checked against its key's type and allowed
 * values; an error names the file, line and column (or the --set
 * argument), the key, and what is allowed, and nothing is resolved.
 * Functions return 0 or -errno with a message in err.
 */
#ifndef SL_CTL_PROFILE_H
#define SL_CTL_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "lib/core/cli.h"

enum pk_type { PK_BOOL, PK_INT, PK_STRING, PK_ENUM, PK_HOSTPORT, PK_NAME, PK_PATH, PK_IP };

struct profile_key {
	const char *key;        /* dotted path: "agent.sockmap" */
	enum pk_type type;
	const char *allowed;    /* PK_ENUM: "off|on|force" */
	long min, max;          /* PK_INT */
	const char *help;
};

extern const struct profile_key profile_keys[];

struct profile_src {
	const char *name;       /* NULL: from --set / overlays, else "default" */
	const char *const *overlays;  /* -f files */
	size_t noverlays;
	const char *const *sets;      /* "KEY=VALUE" */
	size_t nsets;
};

/* The names of the built-in profiles, NULL-terminated. */
extern const char *const profile_names[];

/* Resolve a profile. *out: a JSON object tree with every key, plus
 * "profile": the name. */
int profile_resolve(const struct profile_src *src, json_t **out, char *err, size_t errlen);

/* A resolved value by dotted key; the key must be in profile_keys[]. */
const char *prof_str(const json_t *p, const char *key);
bool prof_bool(const json_t *p, const char *key);
long prof_int(const json_t *p, const char *key);

/* The tree as YAML, keys in profile_keys[] order, to f. */
void profile_print_yaml(const json_t *p, FILE *f);


/* The options of the commands that take a profile: --set K=V, -f FILE,
 * --profile NAME, -y/--yes, --dry-run, --purge, -o FORMAT, each command
 * the ones its table (ctl.h) names; pos/npos: the other arguments. */
struct profile_args {
	struct profile_src src;
	const char **sets, **overlays;
	bool yes, dry_run, purge, json;
	char **pos;
	int npos;
};

/* The entries of those tables. */
#define PROFILE_OPT_SET(arg, help) { "set", required_argument | CLI_SHORT, 's', arg, help }
#define PROFILE_OPT_OVERLAY                                                                 \
	{ "filename", required_argument | CLI_SHORT, 'f', "FILE",                           \
	  "an overlay: a YAML tree of keys over the profile (repeatable)" }
#define PROFILE_OPT_PROFILE                                                                 \
	{ "profile", required_argument | CLI_SHORT, 'p', "NAME",                            \
	  "the profile (sluicectl profile list names them)" }
#define PROFILE_OPT_YES { "yes", no_argument | CLI_SHORT, 'y', NULL, "do not ask to proceed" }
#define PROFILE_OPT_PREFIX                                                                  \
	PROFILE_OPT_SET("paths.prefix=DIR", "where install put sluice (default: /)")

/* argv (after the command's name) by the command's table opts into a:
 * -1 to go on (a value, not an error code), else the command's exit
 * status (0 after --help; 2 after a usage error, said). Only profile dump
 * takes an argument (NAME). */
int profile_args_parse(struct profile_args *a, const char *help, const struct cli_opt *opts,
		       int argc, char **argv);
/* profile_resolve() that prints its error. */
int profile_args_resolve(const char *cmd, struct profile_args *a, json_t **p);
void profile_args_free(struct profile_args *a);

#endif /* SL_CTL_PROFILE_H */
