// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * profile.c - installation profiles (profile.h): the key table, the
 * built-in profiles, overlays and --set, and `sluicectl profile`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/profile.h"
#include "lib/config/config.h"
#include "lib/config/config_yaml.h"
#include "lib/core/file.h"

/* The one list of keys: validation, `profile keys` and docs/install.md
 * (which lists them as `sluicectl profile keys` prints them). */
const struct profile_key profile_keys[] = {
	{ "components.control.enabled", PK_BOOL, NULL, 0, 0, "run sluice-control (CA, config, push) on this node" },
	{ "components.agent.enabled", PK_BOOL, NULL, 0, 0, "run sluice-agent for this node" },
	{ "components.proxy.enabled", PK_BOOL, NULL, 0, 0, "the agent's mTLS node proxy (HBONE on proxy.hboneAddr)" },
	{ "paths.prefix", PK_PATH, NULL, 0, 0, "root for etc/sluice, var/lib/sluice, var/log/sluice, usr/local/lib/sluice (\"\" = /)" },
	{ "paths.pinBase", PK_PATH, NULL, 0, 0, "bpffs directory; each node's maps and links are pinned under pinBase/NODE" },
	{ "node.name", PK_NAME, NULL, 0, 0, "this node's name (\"\" = the host name)" },
	{ "node.cgroup", PK_PATH, NULL, 0, 0, "cgroup v2 directory of this node's workloads, relative to the cgroup2 mount (created)" },
	{ "control.listen", PK_HOSTPORT, NULL, 0, 0, "where sluice-control serves its API" },
	{ "control.address", PK_STRING, NULL, 0, 0, "the control plane the agent joins, https://HOST:PORT, or a comma-separated list of replicas (\"\" = this node's)" },
	{ "control.caFile", PK_PATH, NULL, 0, 0, "the control plane's CA certificate (\"\" = this node's control plane's)" },
	{ "control.joinToken", PK_STRING, NULL, 0, 0, "join token for the agent (\"\" = issued by this node's control plane)" },
	{ "control.trustDomain", PK_NAME, NULL, 0, 0, "SPIFFE trust domain of workload identities" },
	{ "control.replicas", PK_INT, NULL, 1, 9, "sluice-control replicas (manifest generate; more than 1 needs control.store)" },
	{ "control.store", PK_STRING, NULL, 0, 0, "where the control plane keeps its state: \"\" = its state dir, or etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS), shared by replicas" },
	{ "control.storeKeyFile", PK_PATH, NULL, 0, 0, "with control.store: the 32-byte key that encrypts the CA key in etcd (sluice-control store-key create FILE); manifests take Secret sluice-store-key instead" },
	{ "agent.metricsAddr", PK_HOSTPORT, NULL, 0, 0, "Prometheus metrics and health (/metrics, /healthz, /readyz)" },
	{ "agent.flowLog", PK_BOOL, NULL, 0, 0, "write flow events (sluicectl observe, sluicectl top)" },
	{ "agent.sockmap", PK_ENUM, "off|on|force", 0, 0, "the same-node fast path" },
	{ "agent.logLevel", PK_ENUM, "error|warn|info|debug", 0, 0, "the daemons' log level" },
	{ "proxy.hboneAddr", PK_HOSTPORT, NULL, 0, 0, "HBONE (mTLS) listener" },
	{ "proxy.outboundAddr", PK_HOSTPORT, NULL, 0, 0, "listener for captured connections" },
	{ "mesh.mtls", PK_ENUM, "PERMISSIVE|STRICT|DISABLE", 0, 0, "mesh-wide PeerAuthentication mode (istio-system/default)" },
	{ "probe.enabled", PK_BOOL, NULL, 0, 0, "the probe service verify-install connects through" },
	{ "probe.vip", PK_IP, NULL, 0, 0, "the probe service's virtual IP" },
	{ "probe.port", PK_INT, NULL, 1, 65535, "the probe service's port" },
	{ "probe.backendPort", PK_INT, NULL, 1, 65535, "where verify-install's probe backend listens (loopback)" },
	{ "cni.enabled", PK_BOOL, NULL, 0, 0, "sluice-cni for podman: a network chaining it and a containers.conf (docs/cni.md)" },
	{ "cni.network", PK_NAME, NULL, 0, 0, "the podman network's name" },
	{ "cni.subnet", PK_STRING, NULL, 0, 0, "the podman network's IPv4 subnet (host-local addresses)" },
	{ "demo.enabled", PK_BOOL, NULL, 0, 0, "a simulated cluster with sample workloads and services" },
	{ "demo.cluster", PK_NAME, NULL, 0, 0, "the simulated cluster's name ([a-z0-9]{1,12})" },
	{ "demo.nodes", PK_INT, NULL, 2, 2, "simulated nodes (the sample workloads need two)" },
	{ "supervisor", PK_ENUM, "auto|systemd|process", 0, 0, "how daemons are kept running (auto: systemd if it is PID 1)" },
	{}
};

const char *const profile_names[] = { "default", "demo", "minimal", "empty", "podman", NULL };

/* The built-in profiles' text (build/gen/profiles.c, from profiles/NAME.yaml). */
extern const char *const profile_text[];

static const struct profile_key *key_find(const char *key)
{
	for (const struct profile_key *k = profile_keys; k->key; k++)
		if (!strcmp(k->key, key))
			return k;
	return NULL;
}

/* Whether key is a group of keys ("agent" of "agent.sockmap"). */
static bool is_group(const char *key)
{
	size_t n = strlen(key);

	for (const struct profile_key *k = profile_keys; k->key; k++)
		if (!strncmp(k->key, key, n) && k->key[n] == '.')
			return true;
	return false;
}

/* The index of profile `name` in profile_names[], or -1 (not found). */
static int name_ix(const char *name)
{
	for (int i = 0; profile_names[i]; i++)
		if (!strcmp(profile_names[i], name))
			return i;
	return -1;
}

static bool hostport_ok(const char *s)
{
	const char *c = strrchr(s, ':');
	char *end;
	long port;

	if (!c || c == s)
		return false;
	port = strtol(c + 1, &end, 10);
	return !*end && port > 0 && port < 65536;
}

/* Check `text` (plain: not quoted in YAML) against k; the typed JSON value,
 * or NULL with the reason in why. */
static json_t *typed(const struct profile_key *k, const char *text, bool plain,
		     char *why, size_t wlen)
{
	char *end;
	long v;

	switch (k->type) {
	case PK_BOOL:
		if (!strcmp(text, "true") || !strcmp(text, "false"))
			return json_boolean(!strcmp(text, "true"));
		snprintf(why, wlen, "'%.64s' is not a boolean (true, false)", text);
		return NULL;
	case PK_INT:
		errno = 0;
		v = strtol(text, &end, 10);
		if (!*text || *end || errno || v < k->min || v > k->max) {
			snprintf(why, wlen, "'%.64s' is not an integer in %ld..%ld", text, k->min, k->max);
			return NULL;
		}
		return json_integer(v);
	case PK_ENUM: {
		size_t n = strlen(text);
		const char *p = k->allowed;

		while (p) {
			if (!strncmp(p, text, n) && (p[n] == '|' || !p[n]) && n)
				return json_string(text);
			p = strchr(p, '|');
			p = p ? p + 1 : NULL;
		}
		n = (size_t)snprintf(why, wlen, "'%.64s' is not one of ", text);
		for (p = k->allowed; *p && n + 3 < wlen; p++) {
			if (*p == '|') {
				why[n++] = ',';
				why[n++] = ' ';
			} else {
				why[n++] = *p;
			}
		}
		why[n] = 0;
		return NULL;
	}
	case PK_HOSTPORT:
		if (hostport_ok(text))
			return json_string(text);
		snprintf(why, wlen, "'%.64s' is not ADDRESS:PORT", text);
		return NULL;
	case PK_NAME:
		for (const char *p = text; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
				snprintf(why, wlen, "'%.64s' is not a lower-case DNS name", text);
				return NULL;
			}
		if (strlen(text) > 63) {
			snprintf(why, wlen, "'%.64s...' is longer than 63 characters", text);
			return NULL;
		}
		return json_string(text);
	case PK_IP: {
		unsigned char b[16];

		if (inet_pton(AF_INET, text, b) == 1)
			return json_string(text);
		snprintf(why, wlen, "'%.64s' is not an IPv4 address", text);
		return NULL;
	}
	case PK_PATH:
		if (strlen(text) >= 256 || strstr(text, "..") || strchr(text, '\n')) {
			snprintf(why, wlen, "'%.64s' is not a usable path (at most 255 characters, no '..')", text);
			return NULL;
		}
		return json_string(text);
	case PK_STRING:
		(void)plain;
		return json_string(text);
	}
	return NULL;
}

/* Set key in the tree, creating the objects on the way. */
static int tree_set(json_t *root, const char *key, json_t *v)
{
	char buf[128], *save = NULL, *part, *next;
	json_t *o = root;

	snprintf(buf, sizeof(buf), "%s", key);
	part = strtok_r(buf, ".", &save);
	while (part && (next = strtok_r(NULL, ".", &save))) {
		json_t *c = json_object_get(o, part);

		if (!c) {
			c = json_object();
			if (!c || json_object_set_new(o, part, c))
				return -ENOMEM;
		}
		o = c;
		part = next;
	}
	return json_object_set_new(o, part, v) ? -ENOMEM : 0;
}

static const json_t *tree_get(const json_t *root, const char *key)
{
	char buf[128], *save = NULL;
	const json_t *o = root;

	snprintf(buf, sizeof(buf), "%s", key);
	for (char *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save))
		o = json_object_get(o, p);
	return o;
}

/* Walk one YAML mapping: every leaf must be a key of the table. */
static int walk(json_t *root, const char *file, const struct ynode *map, const char *prefix,
		char **name, char *err, size_t errlen)
{
	if (map->type != YN_MAP) {
		snprintf(err, errlen, "%s:%d:%d: %s: expected a mapping", file, map->line, map->col,
			 *prefix ? prefix : "(top)");
		return -EINVAL;
	}
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *kn = map->items[2 * i], *vn = map->items[2 * i + 1];
		char key[128], why[160];
		const struct profile_key *k;
		json_t *v;
		int rc;

		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", kn->str);
		if (!*prefix && !strcmp(kn->str, "profile") && vn->type == YN_SCALAR) {
			free(*name);
			*name = strdup(vn->str);
			continue;
		}
		if (vn->type == YN_MAP) {
			rc = walk(root, file, vn, key, name, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		k = key_find(key);
		if (!k && is_group(key)) {
			snprintf(err, errlen, "%s:%d:%d: %s: expected a mapping", file, vn->line, vn->col, key);
			return -EINVAL;
		}
		if (!k) {
			snprintf(err, errlen, "%s:%d:%d: %.100s: unknown key (`sluicectl profile keys` lists them)",
				 file, kn->line, kn->col, key);
			return -EINVAL;
		}
		if (vn->type != YN_SCALAR) {
			snprintf(err, errlen, "%s:%d:%d: %s: expected a scalar", file, vn->line, vn->col, key);
			return -EINVAL;
		}
		v = typed(k, yscalar_kind(vn) == YS_NULL ? "" : vn->str, vn->plain, why, sizeof(why));
		if (!v) {
			snprintf(err, errlen, "%s:%d:%d: %s: %s", file, vn->line, vn->col, key, why);
			return -EINVAL;
		}
		rc = tree_set(root, key, v);
		if (rc)
			return rc;
	}
	return 0;
}

/* Apply one YAML text (a profile or an overlay) over root. */
static int apply_yaml(json_t *root, const char *file, const char *text, size_t len,
		      char **name, char *err, size_t errlen)
{
	struct sl_diags d = {};
	struct ydoc **docs = NULL;
	size_t ndocs = 0;
	int rc = 0;

	if (yaml_parse_stream(file, text, len, &docs, &ndocs, &d)) {
		snprintf(err, errlen, "%s", d.n ? d.v[0].msg : "unreadable YAML");
		sl_diags_free(&d);
		return -EINVAL;
	}
	for (size_t i = 0; i < ndocs && !rc; i++)
		rc = walk(root, file, docs[i]->root, "", name, err, errlen);
	for (size_t i = 0; i < ndocs; i++)
		ydoc_unref(docs[i]);
	free(docs);
	sl_diags_free(&d);
	return rc;
}

static int apply_set(json_t *root, const char *set, char *err, size_t errlen)
{
	const char *eq = strchr(set, '=');
	const struct profile_key *k;
	char key[128], why[160];
	json_t *v;

	if (!eq || eq == set || (size_t)(eq - set) >= sizeof(key)) {
		snprintf(err, errlen, "--set %.100s: expected KEY=VALUE", set);
		return -EINVAL;
	}
	snprintf(key, sizeof(key), "%.*s", (int)(eq - set), set);
	if (!strcmp(key, "profile"))
		return 0;
	k = key_find(key);
	if (!k) {
		snprintf(err, errlen, "--set %s: unknown key (`sluicectl profile keys` lists them)", key);
		return -EINVAL;
	}
	v = typed(k, eq + 1, true, why, sizeof(why));
	if (!v) {
		snprintf(err, errlen, "--set %s: %s", key, why);
		return -EINVAL;
	}
	return tree_set(root, key, v);
}

/* The profile's name: --profile, else the last --set profile=, else the
 * last overlay's `profile:`. Overlays are read twice (here and below);
 * they are small files. */
static int pick_name(const struct profile_src *src, char **name, char *err, size_t errlen)
{
	for (size_t i = 0; i < src->noverlays; i++) {
		char *text = NULL;
		size_t len = 0;
		json_t *scratch = json_object();
		int rc = file_read(src->overlays[i], &text, &len, 1u << 20);

		if (rc) {
			snprintf(err, errlen, "-f %s: %s", src->overlays[i], strerror(-rc));
			json_decref(scratch);
			return rc;
		}
		rc = apply_yaml(scratch, src->overlays[i], text, len, name, err, errlen);
		free(text);
		json_decref(scratch);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < src->nsets; i++)
		if (!strncmp(src->sets[i], "profile=", 8)) {
			free(*name);
			*name = strdup(src->sets[i] + 8);
		}
	if (src->name) {
		free(*name);
		*name = strdup(src->name);
	}
	if (!*name)
		*name = strdup("default");
	if (!*name)
		return -ENOMEM;
	if (name_ix(*name) < 0) {
		snprintf(err, errlen, "profile '%.64s': unknown (default, demo, minimal, empty, podman)", *name);
		return -EINVAL;
	}
	return 0;
}

/* Keys that only make sense together; 0 or -EINVAL with the key named. */
static int check_combined(const json_t *p, char *err, size_t errlen)
{
	const char *store = prof_str(p, "control.store");

	if (*store && strncmp(store, "etcd://", 7) && strncmp(store, "etcds://", 8)) {
		snprintf(err, errlen, "control.store: '%.64s' is not \"\" (the state dir) or "
			 "etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS)", store);
		return -EINVAL;
	}
	if (prof_int(p, "control.replicas") > 1 && !*store) {
		snprintf(err, errlen, "control.replicas=%ld needs control.store=etcd://HOST:PORT[,...]: "
			 "replicas share their state through etcd, not a state dir",
			 prof_int(p, "control.replicas"));
		return -EINVAL;
	}
	return 0;
}

int profile_resolve(const struct profile_src *src, json_t **out, char *err, size_t errlen)
{
	char *name = NULL, *ignored = NULL, file[64];
	json_t *root = json_object();
	int rc, ix;

	*out = NULL;
	if (!root)
		return -ENOMEM;
	rc = pick_name(src, &name, err, errlen);
	if (rc)
		goto out;
	ix = name_ix(name);
	rc = apply_yaml(root, "profiles/default.yaml", profile_text[0], strlen(profile_text[0]),
			&ignored, err, errlen);
	snprintf(file, sizeof(file), "profiles/%s.yaml", name);
	if (!rc && ix > 0)
		rc = apply_yaml(root, file, profile_text[ix], strlen(profile_text[ix]), &ignored,
				err, errlen);
	for (size_t i = 0; !rc && i < src->noverlays; i++) {
		char *text = NULL;
		size_t len = 0;

		rc = file_read(src->overlays[i], &text, &len, 1u << 20);
		if (rc)
			snprintf(err, errlen, "-f %s: %s", src->overlays[i], strerror(-rc));
		else
			rc = apply_yaml(root, src->overlays[i], text, len, &ignored, err, errlen);
		free(text);
	}
	for (size_t i = 0; !rc && i < src->nsets; i++)
		rc = apply_set(root, src->sets[i], err, errlen);
	if (!rc)
		rc = check_combined(root, err, errlen);
	if (!rc && json_object_set_new(root, "profile", json_string(name)))
		rc = -ENOMEM;
out:
	free(name);
	free(ignored);
	if (rc)
		json_decref(root);
	else
		*out = root;
	return rc;
}

const char *prof_str(const json_t *p, const char *key)
{
	return json_string_value(tree_get(p, key)) ?: "";
}

bool prof_bool(const json_t *p, const char *key)
{
	return json_is_true(tree_get(p, key));
}

long prof_int(const json_t *p, const char *key)
{
	return (long)json_integer_value(tree_get(p, key));
}

/* A YAML scalar for v: strings quoted when they would read as another type. */
static void print_scalar(const json_t *v, FILE *f)
{
	const char *s;

	if (json_is_boolean(v)) {
		fputs(json_is_true(v) ? "true" : "false", f);
		return;
	}
	if (json_is_integer(v)) {
		fprintf(f, "%lld", (long long)json_integer_value(v));
		return;
	}
	s = json_string_value(v) ?: "";
	if (!*s || strspn(s, "0123456789.") == strlen(s) || !strcmp(s, "on") || !strcmp(s, "off") ||
	    !strcmp(s, "true") || !strcmp(s, "false") || strpbrk(s, ":#'\"{}[],&*!|>%@`"))
		fprintf(f, "\"%s\"", s);
	else
		fputs(s, f);
}

static void print_tree(const json_t *o, int depth, FILE *f)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v) {
		if (!depth && !strcmp(k, "profile"))
			continue;
		fprintf(f, "%*s%s:", 2 * depth, "", k);
		if (json_is_object(v)) {
			fputc('\n', f);
			print_tree(v, depth + 1, f);
		} else {
			fputc(' ', f);
			print_scalar(v, f);
			fputc('\n', f);
		}
	}
}

/* jansson keeps insertion order, and profiles/default.yaml, applied first,
 * inserts every key: the output follows its order. */
void profile_print_yaml(const json_t *p, FILE *f)
{
	fprintf(f, "profile: %s\n", json_string_value(json_object_get(p, "profile")) ?: "default");
	print_tree(p, 0, f);
}

/* ---- options shared by profile, install, manifest ---------------------- */

#define PROFILE_MAX_ARGS 64

/* profile dump's: the others are in the files of their commands */
const struct cli_opt ctl_profile_opts[] = {
	PROFILE_OPT_SET("KEY=VALUE", "set a key (repeatable; profile=NAME picks the profile)"),
	PROFILE_OPT_OVERLAY,
	PROFILE_OPT_PROFILE,
	CTL_OPT_OUTPUT("yaml|json|table", "yaml (default; table is yaml too) or json"),
	CTL_OPT_HELP,
	{}
};

void profile_args_free(struct profile_args *a)
{
	free(a->sets);
	free(a->overlays);
	memset(a, 0, sizeof(*a));
}

int profile_args_parse(struct profile_args *a, const char *help, const struct cli_opt *opts,
		       int argc, char **argv)
{
	struct ctl_args g;
	int c;

	memset(a, 0, sizeof(*a));
	a->sets = calloc(PROFILE_MAX_ARGS, sizeof(*a->sets));
	a->overlays = calloc(PROFILE_MAX_ARGS, sizeof(*a->overlays));
	if (!a->sets || !a->overlays)
		return 1;
	ctl_args_init(&g, "sluicectl", help, opts, argc, argv);
	while ((c = ctl_args_next(&g)) >= 0) {
		switch (c) {
		case 's':
			if (a->src.nsets == PROFILE_MAX_ARGS)
				goto many;
			a->sets[a->src.nsets++] = optarg;
			break;
		case 'f':
			if (a->src.noverlays == PROFILE_MAX_ARGS)
				goto many;
			a->overlays[a->src.noverlays++] = optarg;
			break;
		case 'p':
			a->src.name = optarg;
			break;
		case 'y':
			a->yes = true;
			break;
		case 'd':
			a->dry_run = true;
			break;
		case 'P':
			a->purge = true;
			break;
		case 'o':
			a->json = !strcmp(optarg, "json");
			break;
		}
	}
	if (c == CTL_ARGS_EXIT)
		return g.status;
	a->src.sets = a->sets;
	a->src.overlays = a->overlays;
	a->pos = g.pos;
	a->npos = g.npos;
	/* the commands take no other arguments, but profile dump's NAME */
	if (a->npos > (opts == ctl_profile_opts))
		return ctl_usage_error(&g, "unexpected '%s'", a->pos[opts == ctl_profile_opts]);
	return -1;
many:
	return ctl_usage_error(&g, "more than %d --set or -f", PROFILE_MAX_ARGS);
}

int profile_args_resolve(const char *cmd, struct profile_args *a, json_t **p)
{
	char err[512];
	int rc = profile_resolve(&a->src, p, err, sizeof(err));

	if (rc)
		fprintf(stderr, "sluicectl %s: %s\n", cmd, err);
	return rc;
}

static int profile_list(const struct ctl_opts *o, int argc, char **argv)
{
	for (int i = 0; profile_names[i]; i++) {
		const char *t = profile_text[i], *nl;

		/* the first comment line says what it is */
		t += strspn(t, "# ");
		nl = strchr(t, '\n');
		printf("%-8s %.*s\n", profile_names[i], nl ? (int)(nl - t) : (int)strlen(t), t);
	}
	return 0;
}

static int profile_dump(const struct ctl_opts *o, int argc, char **argv)
{
	struct profile_args a;
	json_t *p = NULL;
	int rc = profile_args_parse(&a, CTL_PROFILE_DUMP_HELP, ctl_profile_opts, argc, argv);

	if (rc >= 0) {
		profile_args_free(&a);
		return rc;
	}
	if (a.npos == 1 && !a.src.name)
		a.src.name = a.pos[0];
	rc = profile_args_resolve("profile dump", &a, &p);
	if (!rc && (o->json || a.json))
		json_dumpf(p, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER), putchar('\n');
	else if (!rc)
		profile_print_yaml(p, stdout);
	json_decref(p);
	profile_args_free(&a);
	return rc ? 1 : 0;
}

static const char *type_name(const struct profile_key *k, char *buf, size_t len)
{
	static const char *const names[] = { "bool", "int", "string", "enum", "ADDRESS:PORT",
					     "name", "path", "IPv4" };

	if (k->type == PK_INT)
		snprintf(buf, len, "int %ld..%ld", k->min, k->max);
	else if (k->type == PK_ENUM)
		snprintf(buf, len, "%s", k->allowed);
	else
		snprintf(buf, len, "%s", names[k->type]);
	return buf;
}

static int profile_keys_cmd(const struct ctl_opts *o, int argc, char **argv)
{
	char t[64];

	for (const struct profile_key *k = profile_keys; k->key; k++)
		printf("%-27s %-22s %s\n", k->key, type_name(k, t, sizeof(t)), k->help);
	return 0;
}

int cmd_profile(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ .name = "list", .fn = profile_list },
		{ .name = "dump", .fn = profile_dump },
		{ .name = "keys", .fn = profile_keys_cmd },
		{}
	};

	return ctl_dispatch(sub, "profile", CTL_PROFILE_HELP, ctl_profile_opts, o, argc, argv);
}
