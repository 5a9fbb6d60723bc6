// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * api_config.c - the config API (api_config.h): apply, delete and list
 * resources, and a node's workload registrations. Every change goes
 * through config_change() (nodes.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "control/api_config.h"
#include "control/nodes.h"
#include "control/register.h"
#include "control/request.h"
#include "lib/config/config_check.h"
#include "lib/config/diag.h"
#include "lib/config/config_schema.h"
#include "lib/core/heap.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The decoded value of `key` in a query string: 0, -ENOENT if absent,
 * -EINVAL if bad (hexval() is a digit's value or -1: not an error code). */
static int qget(const char *q, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);

	while (*q) {
		const char *end = q + strcspn(q, "&");

		if ((size_t)(end - q) > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
			size_t o = 0;

			for (const char *p = q + kl + 1; p < end; p++) {
				int ch = *p;

				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
						return -EINVAL;
					ch = hexval(p[1]) * 16 + hexval(p[2]);
					p += 2;
				}
				if (o + 1 >= len || ch == 0)
					return -EINVAL;
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			return 0;
		}
		q = *end ? end + 1 : end;
	}
	return -ENOENT;
}

/* POST /v1/workloads: a node registers or deregisters a container
 * (control/register.h); a change goes the way of every change. */
void h_workloads(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct sl_config *nc = NULL;
	struct sl_diags d = {};
	char name[300], err[1024], what[400];
	json_t *j = parse_body(cn->h, r);
	const char *op;
	int st;

	if (!j)
		return;
	op = json_string_value(json_object_get(j, "op")) ?: "?";
	st = reg_change(s->st->cfg, node, j, &nc, name, sizeof(name), err, sizeof(err));
	if (st != 200) {
		log_warn("node %s: %s refused: %s", node, op, err);
		reply_err(cn->h, r->stream_id, st, "%s", err);
	} else if (!nc) {
		reply(cn->h, r->stream_id, 200, json_pack("{s:I, s:b}", "version",
			(json_int_t)s->st->version, "changed", 0));
	} else {
		snprintf(what, sizeof(what), "node %s: %s %s", node, op, name);
		config_change(s, cn->h, r->stream_id, nc, NULL, &d, what);
	}
	sl_diags_free(&d);
	json_decref(j);
}

/* The request's files into nc: a JSON {"files": [{"name", "content"}]}
 * body (sluicectl; one change from many files), or the YAML itself named
 * by x-sluice-file. 0; -EPROTO for a malformed body, after replying (400);
 * or sl_config_parse()'s -errno with errors in d (never -EPROTO). */
static int parse_files(struct conn *cn, const struct h2_req *r, struct sl_config *nc,
		       struct sl_diags *d, char *file, size_t flen)
{
	json_t *j, *files;
	int rc = 0, prc;

	snprintf(file, flen, "%s", req_header(r, "x-sluice-file") ?: "request");
	if (strncmp(r->content_type, "application/json", 16) != 0)
		return sl_config_parse(nc, file, r->body, r->body_len, d);
	j = parse_body(cn->h, r);
	if (!j)
		return -EPROTO;
	files = json_object_get(j, "files");
	if (!json_is_array(files) || !json_array_size(files)) {
		reply_err(cn->h, r->stream_id, 400, "body: files (a non-empty array of {name, content}) "
			  "is required");
		json_decref(j);
		return -EPROTO;
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(f, "name"));
		json_t *content = json_object_get(f, "content");

		if (!name || !json_is_string(content)) {
			reply_err(cn->h, r->stream_id, 400, "body: files[%zu]: name and content "
				  "(strings) are required", i);
			json_decref(j);
			return -EPROTO;
		}
		prc = sl_config_parse(nc, name, json_string_value(content), json_string_length(content), d);
		rc = rc ?: prc;
	}
	snprintf(file, flen, "%s", json_array_size(files) == 1 ?
		 json_string_value(json_object_get(json_array_get(files, 0), "name")) : "several files");
	json_decref(j);
	return rc;
}

/* POST /v1/apply: resources added or replaced, checked, compiled and pushed. */
void h_apply(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct sl_config *nc = sl_config_dup(s->st->cfg);
	struct sl_model *model = NULL;
	struct sl_diags d = {};
	char file[256];
	uint64_t t0;
	int prc;

	if (!nc) {
		reply_err(cn->h, r->stream_id, 500, "out of memory; nothing changed");
		return;
	}
	t0 = loop_now_ms();
	prc = parse_files(cn, r, nc, &d, file, sizeof(file));
	heap_huge();   /* the parse may have grown it: for the compile */
	if (prc == -EPROTO) {
		sl_config_free(nc);
	} else if (prc || sl_config_check_keep(nc, &d, &model)) {
		log_info("apply of %s refused: %zu errors", file, d.nerrors);
		reply(cn->h, r->stream_id, 422, json_pack("{s:s, s:o}", "error",
			"the configuration is invalid; nothing changed", "diagnostics", sl_diags_json(&d)));
		sl_config_free(nc);
	} else {
		char what[400];

		snprintf(what, sizeof(what), "apply %s (parse and check %llu ms)", file,
			 (unsigned long long)(loop_now_ms() - t0));
		config_change(s, cn->h, r->stream_id, nc, model, &d, what);
	}
	sl_diags_free(&d);
}

/* POST /v1/delete: resources removed, by ?kind&name or by a file naming them. */
void h_delete(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	const char *file = req_header(r, "x-sluice-file") ?: "request";
	struct sl_config *nc = sl_config_dup(s->st->cfg), *del = NULL;
	char kind[128], ns[256] = "default", name[256], missing[1024] = "";
	struct sl_model *model = NULL;
	struct sl_diags d = {};

	if (!nc)
		goto oom;
	if (qget(r->query, "kind", kind, sizeof(kind)) == 0) {
		const char *k = sl_kind_canon(kind);

		if (!k || qget(r->query, "name", name, sizeof(name))) {
			reply_err(cn->h, r->stream_id, 400, k ? "name is required with kind" :
				  "unknown kind '%s'", kind);
			goto out;
		}
		qget(r->query, "namespace", ns, sizeof(ns));
		if (sl_kind_cluster_scoped(k))
			ns[0] = '\0';
		if (sl_config_remove(nc, k, ns, name)) {
			reply_err(cn->h, r->stream_id, 404, "%s %s%s%s not found; nothing changed", k, ns,
				  *ns ? "/" : "", name);
			goto out;
		}
	} else {
		del = sl_config_new();
		if (!del)
			goto oom;
		if (sl_config_parse(del, file, r->body, r->body_len, &d)) {
			reply(cn->h, r->stream_id, 422, json_pack("{s:s, s:o}", "error",
				"the file to delete by is invalid; nothing changed", "diagnostics",
				sl_diags_json(&d)));
			goto out;
		}
		for (size_t i = 0; i < sl_config_count(del); i++) {
			const struct sl_resource *x = sl_config_at(del, i);

			if (sl_config_remove(nc, sl_resource_kind(x), sl_resource_namespace(x),
					     sl_resource_name(x)))
				snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
					 "%s%s", missing[0] ? ", " : "",
					 SL_RES_ID(sl_resource_kind(x), sl_resource_namespace(x),
						   sl_resource_name(x)));
		}
		if (missing[0]) {
			reply_err(cn->h, r->stream_id, 404, "not found: %s; nothing changed", missing);
			goto out;
		}
		sl_diags_free(&d);
	}
	if (sl_config_check_keep(nc, &d, &model)) {
		reply(cn->h, r->stream_id, 422, json_pack("{s:s, s:o}", "error",
			"the configuration without them is invalid; nothing changed",
			"diagnostics", sl_diags_json(&d)));
		goto out;
	}
	config_change(s, cn->h, r->stream_id, nc, model, &d, "delete");
	nc = NULL;
	goto out;
oom:
	reply_err(cn->h, r->stream_id, 500, "out of memory; nothing changed");
out:
	sl_diags_free(&d);
	sl_config_free(nc);
	sl_config_free(del);
}

/* GET /v1/resources: the stored resources, filtered by kind, namespace, name. */
void h_resources(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	char kind[128], ns[256], name[256];
	bool has_ns = qget(r->query, "namespace", ns, sizeof(ns)) == 0;
	bool has_name = qget(r->query, "name", name, sizeof(name)) == 0;
	const char *k = NULL;
	json_t *items = json_array();

	if (qget(r->query, "kind", kind, sizeof(kind)) == 0 && strcasecmp(kind, "all") != 0) {
		k = sl_kind_canon(kind);
		if (k && sl_kind_cluster_scoped(k))
			has_ns = false;
		if (!k) {
			reply_err(cn->h, r->stream_id, 400, "unknown kind '%s' (%s)", kind,
				  sl_kind_list());
			json_decref(items);
			return;
		}
	}
	for (size_t i = 0; i < sl_config_count(s->st->cfg); i++) {
		const struct sl_resource *x = sl_config_at(s->st->cfg, i);

		if ((k && strcmp(sl_resource_kind(x), k)) ||
		    (has_ns && strcmp(sl_resource_namespace(x), ns)) ||
		    (has_name && strcmp(sl_resource_name(x), name)))
			continue;
		json_array_append(items, (json_t *)sl_resource_json(x));
	}
	if (has_name && !json_array_size(items)) {
		reply_err(cn->h, r->stream_id, 404, "%s not found",
			  SL_RES_ID(k ?: "resource", has_ns ? ns : "*", name));
		json_decref(items);
		return;
	}
	reply(cn->h, r->stream_id, 200, json_pack("{s:I, s:o}", "version",
						  (json_int_t)s->st->version, "items", items));
}
