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
 * --profile NAME, -y/--yes, --dry-run, --purge, -o FORMAT; pos/npos: the
 * other arguments. */
struct profile_args {
	struct profile_src src;
	const char **sets, **overlays;
	bool yes, dry_run, purge, json, help;
	char **pos;
	int npos;
};

int profile_args_parse(const char *cmd, int argc, char **argv, struct profile_args *a);
/* profile_resolve() that prints its error. */
int profile_args_resolve(const char *cmd, struct profile_args *a, json_t **p);
void profile_args_free(struct profile_args *a);

#endif /* SL_CTL_PROFILE_H */
