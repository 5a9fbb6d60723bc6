// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * register.c - WorkloadGroup auto-registration (register.h): from a node's
 * request to a new config holding (or no longer holding) the entry.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "control/register.h"
#include "lib/config/config_check.h"

#define WE "WorkloadEntry"

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static const char *ann(const json_t *doc, const char *k)
{
	return jstr(json_object_get(json_object_get(doc, "metadata"), "annotations"), k);
}

static bool hex_id(const char *s)
{
	size_t n = strlen(s);

	if (n < REG_ID_CHARS || n > 128)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
			return false;
	return true;
}

/* The entry registered for container `id`, if any. */
static const struct sl_resource *by_container(const struct sl_config *c, const char *id)
{
	for (size_t i = 0; i < sl_config_count(c); i++) {
		const struct sl_resource *r = sl_config_at(c, i);

		if (!strcmp(sl_resource_kind(r), WE) &&
		    !strcmp(ann(sl_resource_json(r), "sluice.io/container") ?: "", id))
			return r;
	}
	return NULL;
}

/* The WorkloadGroup of namespace ns allowing service account sa (the
 * first by name), and in `known` the service accounts the namespace's
 * groups allow, for the refusal. */
static const struct sl_resource *find_group(const struct sl_config *c, const char *ns,
					    const char *sa, char *known, size_t klen)
{
	const struct sl_resource *best = NULL;
	size_t kl = 0;

	known[0] = 0;
	for (size_t i = 0; i < sl_config_count(c); i++) {
		const struct sl_resource *r = sl_config_at(c, i);
		const char *gsa;

		if (strcmp(sl_resource_kind(r), "WorkloadGroup") || strcmp(sl_resource_namespace(r), ns))
			continue;
		gsa = jstr(json_object_get(json_object_get(sl_resource_json(r), "spec"), "template"),
			   "serviceAccount") ?: "";
		if (!strcmp(gsa, sa) && (!best || strcmp(sl_resource_name(r), sl_resource_name(best)) < 0))
			best = r;
		if (kl < klen)
			kl += (size_t)snprintf(known + kl, klen - kl, "%s%s", kl ? ", " : "", gsa);
	}
	return best;
}

/* Labels, lowest precedence first; sluice.io/ keys of `from` left out
 * when `skip_ours`. 0, or -EINVAL with the reason in err. */
static int merge_labels(json_t *into, const json_t *from, bool skip_ours, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	if (from && !json_is_object(from)) {
		snprintf(err, errlen, "labels: must be an object of strings");
		return -EINVAL;
	}
	json_object_foreach((json_t *)from, k, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "labels.%s: must be a string", k);
			return -EINVAL;
		}
		if (skip_ours && !strncmp(k, "sluice.io/", 10))
			continue;
		json_object_set(into, k, v);
	}
	return 0;
}

/* The first error of a parse or check, for a one-line answer. */
static void first_error(const struct sl_diags *d, char *err, size_t errlen)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].level == SL_DIAG_ERROR && d->v[i].msg) {
			snprintf(err, errlen, "%s", d->v[i].msg);
			return;
		}
	snprintf(err, errlen, "the entry is invalid");
}

static json_t *entry_doc(const struct sl_resource *g, const char *node, const json_t *body,
			 const char *name, const char *ns, const char *sa, char *err, size_t errlen)
{
	const json_t *gspec = json_object_get(sl_resource_json(g), "spec");
	const json_t *tmpl = json_object_get(gspec, "template");
	const json_t *gmeta = json_object_get(gspec, "metadata");
	json_t *labels = json_object(), *annots = json_object(), *spec, *doc = NULL;
	const char *cg = jstr(body, "cgroup"), *k;
	static const char *const copied[] = { "ports", "network", "locality", "weight", NULL };
	json_t *v;

	if (!labels || !annots)
		goto fail;
	if (merge_labels(labels, json_object_get(gmeta, "labels"), false, err, errlen) ||
	    merge_labels(labels, json_object_get(tmpl, "labels"), false, err, errlen) ||
	    merge_labels(labels, json_object_get(body, "labels"), true, err, errlen))
		goto fail;
	json_object_foreach((json_t *)json_object_get(gmeta, "annotations"), k, v)
		if (strncmp(k, "sluice.io/", 10))
			json_object_set(annots, k, v);
	json_object_set_new(annots, "sluice.io/node", json_string(node));
	json_object_set_new(annots, "sluice.io/netns", json_string(jstr(body, "netns")));
	json_object_set_new(annots, "sluice.io/interface", json_string(jstr(body, "interface")));
	json_object_set_new(annots, "sluice.io/container", json_string(jstr(body, "container")));
	if (cg)
		json_object_set_new(annots, "sluice.io/cgroup", json_string(cg));
	spec = json_pack("{s:s, s:o, s:s}", "address", jstr(body, "address"), "labels", labels,
			 "serviceAccount", sa);
	labels = NULL;
	for (size_t i = 0; spec && copied[i]; i++)
		if (json_object_get(tmpl, copied[i]))
			json_object_set(spec, copied[i], json_object_get(tmpl, copied[i]));
	doc = spec ? json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:o}", "apiVersion",
			       "networking.istio.io/v1", "kind", WE, "metadata", "name", name,
			       "namespace", ns, "annotations", annots, "spec", spec) : NULL;
	annots = NULL;
	if (!doc)
		snprintf(err, errlen, "out of memory");
	return doc;
fail:
	if (!err[0])
		snprintf(err, errlen, "out of memory");
	json_decref(labels);
	json_decref(annots);
	return NULL;
}

static int do_register(const struct sl_config *cur, const char *node, const json_t *body,
		       struct sl_config **out, char *name, size_t namelen, char *err, size_t errlen)
{
	const char *id = jstr(body, "container"), *ns = jstr(body, "namespace") ?: "default";
	const char *sa = jstr(body, "serviceAccount") ?: "default";
	const char *need[] = { "container", "address", "netns", "interface" };
	const struct sl_resource *g, *old, *same;
	struct sl_diags d = {};
	struct sl_config *nc = NULL;
	json_t *doc = NULL, *docs;
	char known[512];
	int status = 422;

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!jstr(body, need[i])) {
			snprintf(err, errlen, "body: %s (a string) is required", need[i]);
			return 400;
		}
	if (!hex_id(id)) {
		snprintf(err, errlen, "body: container: \"%.80s\" is not a container id (%d to 128 "
			 "lowercase hex digits)", id, REG_ID_CHARS);
		return 400;
	}
	g = find_group(cur, ns, sa, known, sizeof(known));
	if (!g) {
		snprintf(err, errlen, "no WorkloadGroup in namespace %s allows service account %s "
			 "(allowed there: %s)", ns, sa, known[0] ? known : "none");
		return 403;
	}
	if ((size_t)snprintf(name, namelen, "%s-%.*s", sl_resource_name(g), REG_ID_CHARS, id) >= namelen ||
	    strlen(name) > 253) {
		snprintf(err, errlen, "WorkloadGroup %s/%s: its name is too long to name entries after",
			 ns, sl_resource_name(g));
		return 422;
	}
	old = by_container(cur, id);
	same = sl_config_find(cur, WE, ns, name);
	if ((old && strcmp(ann(sl_resource_json(old), "sluice.io/node") ?: "", node)) ||
	    (same && (strcmp(ann(sl_resource_json(same), "sluice.io/node") ?: "", node) ||
		      strcmp(ann(sl_resource_json(same), "sluice.io/container") ?: "", id)))) {
		snprintf(err, errlen, "WorkloadEntry %s/%s exists and was not registered by node %s "
			 "for container %.12s", ns, old && !same ? sl_resource_name(old) : name, node, id);
		return 403;
	}
	doc = entry_doc(g, node, body, name, ns, sa, err, errlen);
	if (!doc)
		return err[0] && strcmp(err, "out of memory") ? 400 : 500;
	nc = sl_config_dup(cur);
	docs = json_array();
	if (!nc || !docs || json_array_append(docs, doc)) {
		json_decref(docs);
		snprintf(err, errlen, "out of memory");
		status = 500;
		goto out;
	}
	/* the container registered again under another group: the new entry
	 * replaces the old one */
	if (old && !same)
		sl_config_remove(nc, WE, sl_resource_namespace(old), sl_resource_name(old));
	if (sl_config_from_json(nc, "registration", docs, &d) || sl_config_check(nc, &d)) {
		json_decref(docs);
		first_error(&d, err, errlen);
		goto out;
	}
	json_decref(docs);
	*out = nc;
	nc = NULL;
	status = 200;
out:
	sl_diags_free(&d);
	sl_config_free(nc);
	json_decref(doc);
	return status;
}

static int do_deregister(const struct sl_config *cur, const char *node, const json_t *body,
			 struct sl_config **out, char *name, size_t namelen, char *err, size_t errlen)
{
	const char *id = jstr(body, "container");
	const struct sl_resource *r;
	struct sl_diags d = {};
	struct sl_config *nc;

	if (!id || !hex_id(id)) {
		snprintf(err, errlen, "body: container (a container id, %d to 128 lowercase hex "
			 "digits) is required", REG_ID_CHARS);
		return 400;
	}
	r = by_container(cur, id);
	if (!r)
		return 200;   /* gone already: deregistering is idempotent */
	snprintf(name, namelen, "%s", sl_resource_name(r));
	if (strcmp(ann(sl_resource_json(r), "sluice.io/node") ?: "", node)) {
		snprintf(err, errlen, "WorkloadEntry %s/%s was registered by node %s, not %s",
			 sl_resource_namespace(r), sl_resource_name(r),
			 ann(sl_resource_json(r), "sluice.io/node") ?: "(none)", node);
		return 403;
	}
	nc = sl_config_dup(cur);
	if (!nc || sl_config_remove(nc, WE, sl_resource_namespace(r), sl_resource_name(r))) {
		sl_config_free(nc);
		snprintf(err, errlen, "out of memory");
		return 500;
	}
	if (sl_config_check(nc, &d)) {
		first_error(&d, err, errlen);
		sl_diags_free(&d);
		sl_config_free(nc);
		return 422;
	}
	sl_diags_free(&d);
	*out = nc;
	return 200;
}

int reg_change(const struct sl_config *cur, const char *node, const json_t *body,
	       struct sl_config **out, char *name, size_t namelen, char *err, size_t errlen)
{
	const char *op = jstr(body, "op");

	*out = NULL;
	err[0] = 0;
	name[0] = 0;
	if (!json_is_object(body) || !op) {
		snprintf(err, errlen, "body: op (\"register\" or \"deregister\") is required");
		return 400;
	}
	if (!strcmp(op, "register"))
		return do_register(cur, node, body, out, name, namelen, err, errlen);
	if (!strcmp(op, "deregister"))
		return do_deregister(cur, node, body, out, name, namelen, err, errlen);
	snprintf(err, errlen, "body: op: \"%.40s\" is neither \"register\" nor \"deregister\"", op);
	return 400;
}
