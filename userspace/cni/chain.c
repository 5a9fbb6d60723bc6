// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * chain.c - sluice-cni's installer subcommands (chain.h).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni/chain.h"
#include "lib/core/file.h"

#define PLUGIN "sluice-cni"
#define CONF_MAX (1u << 20)

static bool is_ours(const json_t *p)
{
	return !strcmp(json_string_value(json_object_get(p, "type")) ?: "", PLUGIN);
}

json_t *chain_add(json_t *doc, const char *file, const char *sock, char *err, size_t errlen)
{
	json_t *plugins = json_object_get(doc, "plugins"), *list, *x;
	size_t i;

	if (!json_is_object(doc)) {
		snprintf(err, errlen, "%s: not a JSON object", file);
		json_decref(doc);
		return NULL;
	}
	if (!json_is_string(json_object_get(doc, "cniVersion")) ||
	    !json_is_string(json_object_get(doc, "name"))) {
		snprintf(err, errlen, "%s: cniVersion and name (strings) are required", file);
		json_decref(doc);
		return NULL;
	}
	if (!plugins) {
		/* a single-plugin configuration: the same plugin, first of a list */
		if (!json_is_string(json_object_get(doc, "type"))) {
			snprintf(err, errlen, "%s: neither plugins (a conflist) nor type (a conf)", file);
			json_decref(doc);
			return NULL;
		}
		list = json_pack("{s:O, s:O, s:[]}", "cniVersion", json_object_get(doc, "cniVersion"),
				 "name", json_object_get(doc, "name"), "plugins");
		json_object_del(doc, "cniVersion");
		json_object_del(doc, "name");
		if (!list || json_array_append_new(json_object_get(list, "plugins"), doc)) {
			snprintf(err, errlen, "out of memory");
			json_decref(list);
			return NULL;
		}
		doc = list;
		plugins = json_object_get(doc, "plugins");
	} else if (!json_is_array(plugins) || !json_array_size(plugins)) {
		snprintf(err, errlen, "%s: plugins: a non-empty array is required", file);
		json_decref(doc);
		return NULL;
	}
	json_array_foreach(plugins, i, x)
		if (is_ours(x)) {
			json_object_set_new(x, "agentSocket", json_string(sock));
			return doc;
		}
	json_array_append_new(plugins, json_pack("{s:s, s:s}", "type", PLUGIN, "agentSocket", sock));
	return doc;
}

json_t *chain_remove(json_t *doc)
{
	json_t *plugins = json_object_get(doc, "plugins");

	for (size_t i = json_array_size(plugins); i-- > 0;)
		if (is_ours(json_array_get(plugins, i)))
			json_array_remove(plugins, i);
	return doc;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The configuration file the runtime uses: the lexically first. */
static int first_conf(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *names[256];
	size_t n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) && n < 256) {
		const char *dot = strrchr(e->d_name, '.');

		if (e->d_name[0] != '.' && dot && (!strcmp(dot, ".conflist") || !strcmp(dot, ".conf") ||
						    !strcmp(dot, ".json")))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp);
	if (n && names[0])
		snprintf(out, len, "%s/%s", dir, names[0]);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return n ? 0 : -ENOENT;
}

static int copy_self(const char *bin_dir)
{
	char dst[4096], *buf = NULL;
	size_t len = 0;
	int rc = file_read("/proc/self/exe", &buf, &len, 64u << 20);

	snprintf(dst, sizeof(dst), "%s/" PLUGIN, bin_dir);
	rc = rc ?: file_write_atomic(dst, buf, len, 0755);
	free(buf);
	if (rc)
		fprintf(stderr, "sluice-cni: installing %s: %s\n", dst, strerror(-rc));
	return rc;
}

int chain_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bin-dir", required_argument, NULL, 'b' }, { "conf-dir", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' }, {}
	};
	const char *bin = "/opt/cni/bin", *confdir = "/etc/cni/net.d", *sock = NULL;
	bool add = !strcmp(argv[0], "install-chain");
	char path[4200], out[4210], err[600], *buf = NULL;
	json_t *doc;
	json_error_t je;
	size_t len = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b': bin = optarg; break;
		case 'c': confdir = optarg; break;
		case 's': sock = optarg; break;
		default: return 2;
		}
	}
	if (add && (!sock || sock[0] != '/')) {
		fprintf(stderr, "sluice-cni %s: --socket: the agent's socket, an absolute path, is "
			"required\n", argv[0]);
		return 2;
	}
	rc = first_conf(confdir, path, sizeof(path));
	if (rc) {
		fprintf(stderr, "sluice-cni %s: %s: %s\n", argv[0], confdir,
			rc == -ENOENT ? "no CNI configuration to chain into (*.conflist, *.conf)" : strerror(-rc));
		return 1;
	}
	rc = file_read(path, &buf, &len, CONF_MAX);
	doc = rc ? NULL : json_loadb(buf, len, JSON_PRESERVE_ORDER, &je);
	free(buf);
	if (!doc) {
		fprintf(stderr, "sluice-cni %s: %s: %s\n", argv[0], path, rc ? strerror(-rc) : je.text);
		return 1;
	}
	if (add && copy_self(bin)) {
		json_decref(doc);
		return 1;
	}
	doc = add ? chain_add(doc, path, sock, err, sizeof(err)) : chain_remove(doc);
	if (!doc) {
		fprintf(stderr, "sluice-cni %s: %s\n", argv[0], err);
		return 1;
	}
	/* a .conf/.json turned into a list must be read as one: NAME.conflist */
	snprintf(out, sizeof(out), "%s", path);
	if (add && strcmp(strrchr(path, '.'), ".conflist"))
		snprintf(strrchr(out, '.'), sizeof(out) - (size_t)(strrchr(out, '.') - out), ".conflist");
	buf = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	rc = buf ? file_write_atomic(out, buf, strlen(buf), 0644) : -ENOMEM;
	free(buf);
	if (!rc && strcmp(out, path))
		unlink(path);
	if (!rc && !add) {
		char b[4200];

		snprintf(b, sizeof(b), "%s/" PLUGIN, bin);
		unlink(b);
	}
	if (rc) {
		fprintf(stderr, "sluice-cni %s: writing %s: %s\n", argv[0], out, strerror(-rc));
		return 1;
	}
	printf("sluice-cni %s: %s%s\n", argv[0], out, add ? " chains sluice-cni" : ": sluice-cni removed");
	return 0;
}
