// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * control.c - sluicectl's control-plane commands: apply, get, delete and
 * `status --control`. Each talks to sluice-control's API (HTTP/2 over
 * mutual TLS 1.3) with the admin credentials, and checks that the server's
 * certificate is the control plane's before sending anything.
 *
 * Connection: --control https://HOST:PORT (env SLUICE_CONTROL, default
 * https://127.0.0.1:15012) and --credentials DIR holding ca.crt, admin.crt
 * and admin.key (env SLUICE_CREDENTIALS, default the control plane's
 * default state dir).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <jansson.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "lib/config/config.h"
#include "lib/config/config_yaml.h"
#include "lib/core/file.h"
#include "lib/core/sys.h"
#include "lib/wire/h2.h"
#include "lib/wire/h2_client.h"
#include "lib/wire/pki.h"


const struct cli_opt ctl_apply_opts[] = {
	{ "filename", required_argument | CLI_SHORT, 'f', "FILE",
	  "a YAML file, a directory (its .yaml, .yml and .json files), or - for stdin; "
	  "repeat for more (all are one change)" },
	CTL_CONNECTION_OPTS,
	CTL_OPT_HELP,
	{}
};

const struct cli_opt ctl_get_opts[] = {
	{ "namespace", required_argument | CLI_SHORT, 'n', "NS",
	  "the namespace (default: default, or all when no NAME is given)" },
	{ "all-namespaces", no_argument | CLI_SHORT, 'A', NULL, "every namespace" },
	CTL_OPT_OUTPUT("table|yaml|json", "table (default), yaml or json"),
	CTL_CONNECTION_OPTS,
	CTL_OPT_HELP,
	{}
};

const struct cli_opt ctl_delete_opts[] = {
	{ "filename", required_argument | CLI_SHORT, 'f', "FILE",
	  "delete what a YAML file holds, - for stdin" },
	{ "namespace", required_argument | CLI_SHORT, 'n', "NS", "KIND NAME's namespace (default: default)" },
	CTL_CONNECTION_OPTS,
	CTL_OPT_HELP,
	{}
};

const struct cli_opt ctl_status_opts[] = {
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	CTL_CONNECTION_OPTS,
	CTL_OPT_HELP,
	{}
};

int ctl_control_args(struct ctl_control_args *a, const char *help, const struct cli_opt *opts,
		     int argc, char **argv)
{
	unsigned long t;
	char *end, *url;
	int c;

	memset(a, 0, sizeof(*a));
	a->url = getenv("SLUICE_CONTROL") ?: CONTROL_DEFAULT_URL;
	a->creds = getenv("SLUICE_CREDENTIALS") ?: SL_CONTROL_DIR;
	a->timeout_ms = 60000;
	ctl_args_init(&a->args, "sluicectl", help, opts, argc, argv);
	while ((c = ctl_args_next(&a->args)) >= 0) {
		switch (c) {
		case CTL_OPT_CONTROL:
			a->control_flag = true;
			if (optarg)
				a->url = optarg;
			else if ((url = ctl_args_next_word(&a->args)))
				a->url = url;	/* --control URL */
			break;
		case CTL_OPT_CREDENTIALS:
			a->creds = optarg;
			a->creds_flag = true;
			break;
		case 'f':
			if (a->nfiles == CTL_MAX_FILES)
				return ctl_usage_error(&a->args, "at most %d files", CTL_MAX_FILES);
			a->files[a->nfiles++] = optarg;
			break;
		case 'n':
			a->ns = optarg;
			break;
		case 'A':
			a->all_ns = true;
			break;
		case 'o':
			a->out = optarg;
			break;
		case CTL_OPT_TIMEOUT:
			errno = 0;
			t = strtoul(optarg, &end, 10);
			if (errno || *end || !t || t > UINT_MAX / 1000)
				return ctl_usage_error(&a->args, "--timeout: seconds > 0");
			a->timeout_ms = (unsigned int)t * 1000;
			break;
		}
	}
	if (c == CTL_ARGS_EXIT)
		return a->args.status;
	a->pos = a->args.pos;
	a->npos = a->args.npos;
	return -1;
}

/* An admin TLS context from DIR/{ca.crt,admin.crt,admin.key}, or NULL
 * with the reason in err. */
static SSL_CTX *admin_tls(const char *dir, char *err, size_t errlen)
{
	char cp[4096], ap[4096], kp[4096];
	struct pki_tls_opts to = { .alpn = "h2" };
	SSL_CTX *ctx = NULL;

	snprintf(cp, sizeof(cp), "%s/ca.crt", dir);
	snprintf(ap, sizeof(ap), "%s/admin.crt", dir);
	snprintf(kp, sizeof(kp), "%s/admin.key", dir);
	to.ca = pki_cert_load(cp);
	to.cert = to.ca ? pki_cert_load(ap) : NULL;
	to.key = to.cert ? pki_key_load(kp) : NULL;
	if (!to.key)
		snprintf(err, errlen, "credentials %s: need ca.crt, admin.crt and admin.key "
			 "(--credentials DIR or SLUICE_CREDENTIALS)", dir);
	else if (!(ctx = pki_tls_ctx(&to)))
		snprintf(err, errlen, "%s: the credentials do not go together", dir);
	X509_free(to.ca);
	X509_free(to.cert);
	EVP_PKEY_free(to.key);
	return ctx;
}

static SSL_CTX *admin_ctx(const char *cmd, const char *dir)
{
	char err[4400];
	SSL_CTX *ctx = admin_tls(dir, err, sizeof(err));

	if (!ctx)
		fprintf(stderr, "sluicectl: %s: %s\n", cmd, err);
	return ctx;
}

/*
 * One API call. Returns the parsed JSON body (NULL after printing why) and
 * the HTTP status in *status.
 */
static json_t *call(const char *cmd, const struct ctl_control_args *a, const char *method, const char *path,
		    const char *ctype, const char *file, const char *body, size_t len, int *status)
{
	struct h2_header hdrs[2];
	struct h2_result res;
	size_t nh = 0;
	char err[1024];
	json_error_t jerr;
	json_t *j = NULL;
	SSL_CTX *ctx = admin_ctx(cmd, a->creds);

	*status = 0;
	if (!ctx)
		return NULL;
	if (ctype)
		hdrs[nh++] = (struct h2_header){ "content-type", ctype };
	if (file)
		hdrs[nh++] = (struct h2_header){ "x-sluice-file", file };
	for (int attempt = 1;; attempt++) {
		if (h2_fetch(ctx, a->url, "/sluice/control", method, path, hdrs, nh, body, len,
			     a->timeout_ms, &res, err, sizeof(err))) {
			fprintf(stderr, "sluicectl: %s: %s\n", cmd, err);
			goto out;
		}
		/* 409: another replica of the control plane changed the
		 * config first; the same request again applies onto it */
		if (res.status != 409 || attempt == 5)
			break;
		free(res.body);
		usleep(50000u * (unsigned int)attempt);
	}
	*status = res.status;
	j = json_loadb(res.body, res.len, 0, &jerr);
	if (!j)
		fprintf(stderr, "sluicectl: %s: HTTP %d with a body that is not JSON: %.200s\n", cmd,
			res.status, res.body ?: "");
	free(res.body);
out:
	SSL_CTX_free(ctx);
	return j;
}

/* Print a refusal: the message and every diagnostic (file:line:column). */
static int refused(const char *cmd, int status, json_t *j)
{
	json_t *d = json_object_get(j, "diagnostics");

	for (size_t i = 0; i < json_array_size(d); i++) {
		json_t *x = json_array_get(d, i);

		fprintf(stderr, "%s: %s\n", json_string_value(json_object_get(x, "level")) ?: "error",
			json_string_value(json_object_get(x, "message")) ?: "?");
	}
	fprintf(stderr, "sluicectl: %s: %s (HTTP %d)\n", cmd,
		json_string_value(json_object_get(j, "error")) ?: "refused", status);
	return 1;
}

static void print_warnings(json_t *j)
{
	json_t *d = json_object_get(j, "diagnostics");

	for (size_t i = 0; i < json_array_size(d); i++)
		fprintf(stderr, "%s: %s\n",
			json_string_value(json_object_get(json_array_get(d, i), "level")) ?: "warning",
			json_string_value(json_object_get(json_array_get(d, i), "message")) ?: "?");
}

static char *read_input(const char *cmd, const char *path, size_t *len)
{
	char *buf = NULL;
	int e;

	if (strcmp(path, "-") == 0) {
		FILE *m = open_memstream(&buf, len);
		char chunk[65536];
		size_t n;

		while (m && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
			fwrite(chunk, 1, n, m);
		if (m)
			fclose(m);
		return buf;
	}
	e = file_read(path, &buf, len, H2_CONTROL_BODY_MAX);
	if (e == -EFBIG)
		fprintf(stderr, "sluicectl: %s: %s: larger than %u MiB (the API's limit)\n", cmd,
			path, H2_CONTROL_BODY_MAX >> 20);
	else if (e)
		fprintf(stderr, "sluicectl: %s: %s: %s\n", cmd, path, strerror(-e));
	return buf;
}

/* A file name a header carries whole: printable ASCII, and shorter than
 * the 511 bytes the control plane keeps of a header value. */
static bool header_safe(const char *name)
{
	size_t n = 0;

	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c > 0x7e || ++n >= 500)
			return false;
	return true;
}

/*
 * apply -f FILE... : every file in one request, so the control plane takes
 * them as one change or refuses them all. The body is JSON,
 * {"files": [{"name", "content"}]}, so each message names its own file;
 * a single file is sent as it is, named by x-sluice-file.
 */
int cmd_apply(const struct ctl_opts *o, int argc, char **argv)
{
	struct ctl_control_args a;
	json_t *req = json_pack("{s:[]}", "files"), *j = NULL;
	const char *name = NULL;   /* of the one file sent as itself */
	char *body = NULL, *one;
	size_t len;
	int status, rc = 1;

	rc = ctl_control_args(&a, CTL_APPLY_HELP, ctl_apply_opts, argc, argv);
	if (rc >= 0)
		goto out;
	if (!a.nfiles || a.npos) {
		rc = ctl_usage_error(&a.args, a.npos ? "unexpected '%s'" : "no -f FILE%s",
				     a.npos ? a.pos[0] : "");
		goto out;
	}
	rc = 1;
	for (size_t i = 0; i < a.nfiles; i++) {
		char **paths;
		size_t np;
		int e = file_list_inputs(a.files[i], &paths, &np);

		if (e) {
			fprintf(stderr, "sluicectl: apply: %s: %s\n", a.files[i],
				e == -ENOENT ? "no .yaml, .yml or .json file in the directory" :
				strerror(-e));
			goto out;
		}
		for (size_t k = 0; k < np; k++) {
			one = read_input("apply", paths[k], &len);
			if (one)
				json_array_append_new(json_object_get(req, "files"), json_pack(
					"{s:s, s:s%}", "name", strcmp(paths[k], "-") ? paths[k] : "stdin",
					"content", one, len));
			free(one);
			if (!one) {
				while (k < np)
					free(paths[k++]);
				free(paths);
				goto out;
			}
			free(paths[k]);
		}
		free(paths);
	}
	if (json_array_size(json_object_get(req, "files")) == 1) {
		json_t *f = json_array_get(json_object_get(req, "files"), 0);

		/* one file goes as itself, named by a header: the control
		 * plane reads the YAML without unwrapping a JSON string of
		 * megabytes first */
		name = json_string_value(json_object_get(f, "name"));
		if (name && header_safe(name))
			j = call("apply", &a, "POST", "/v1/apply", "application/yaml", name,
				 json_string_value(json_object_get(f, "content")),
				 json_string_length(json_object_get(f, "content")), &status);
		else
			name = NULL;   /* named in the JSON body instead */
	}
	if (!name) {
		body = json_dumps(req, JSON_COMPACT);
		if (!body) {
			fprintf(stderr, "sluicectl: apply: the files are not UTF-8 text\n");
			goto out;
		}
		j = call("apply", &a, "POST", "/v1/apply", "application/json", NULL, body,
			 strlen(body), &status);
	}
	if (!j)
		goto out;
	if (status != 200) {
		rc = refused("apply", status, j);
		goto out;
	}
	print_warnings(j);
	if (o->json) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		printf("\n");
	} else if (json_is_true(json_object_get(j, "changed"))) {
		printf("applied: config version %lld, %lld node snapshots changed\n",
		       (long long)json_integer_value(json_object_get(j, "version")),
		       (long long)json_integer_value(json_object_get(j, "nodes_changed")));
	} else {
		printf("unchanged: config version %lld\n",
		       (long long)json_integer_value(json_object_get(j, "version")));
	}
	rc = 0;
out:
	free(body);
	json_decref(req);
	json_decref(j);
	return rc;
}

/* A query string parameter, percent-encoded. */
static void qadd(char *q, size_t len, const char *key, const char *val)
{
	size_t o = strlen(q);

	o += (size_t)snprintf(q + o, len - o, "%s%s=", o ? "&" : "", key);
	for (const unsigned char *p = (const unsigned char *)val; *p && o + 4 < len; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			q[o++] = (char)*p;
		else
			o += (size_t)snprintf(q + o, len - o, "%%%02X", *p);
	}
	q[o] = '\0';
}

int cmd_get(const struct ctl_opts *o, int argc, char **argv)
{
	char path[2048] = "/v1/resources?", q[1900] = "";
	struct ctl_control_args a;
	json_t *j, *items;
	const char *fmt;
	int status, rc = 1;

	rc = ctl_control_args(&a, CTL_GET_HELP, ctl_get_opts, argc, argv);
	if (rc >= 0)
		return rc;
	fmt = a.out ?: o->json ? "json" : "table";
	if (a.npos < 1 || a.npos > 2)
		return ctl_usage_error(&a.args, a.npos ? "too many arguments" : "no KIND");
	qadd(q, sizeof(q), "kind", a.pos[0]);
	if (a.npos == 2)
		qadd(q, sizeof(q), "name", a.pos[1]);
	if (!a.all_ns && (a.ns || a.npos == 2))
		qadd(q, sizeof(q), "namespace", a.ns ?: "default");
	strncat(path, q, sizeof(path) - strlen(path) - 1);
	j = call("get", &a, "GET", path, NULL, NULL, NULL, 0, &status);
	if (!j)
		return 1;
	if (status != 200) {
		rc = refused("get", status, j);
		goto out;
	}
	items = json_object_get(j, "items");
	if (strcmp(fmt, "json") == 0) {
		json_dumpf(a.npos == 2 && json_array_size(items) == 1 ? json_array_get(items, 0) : items,
			   stdout, JSON_INDENT(2));
		printf("\n");
	} else if (strcmp(fmt, "yaml") == 0) {
		for (size_t i = 0; i < json_array_size(items); i++) {
			char *y = sl_json_to_yaml(json_array_get(items, i));

			if (!y) {
				fprintf(stderr, "sluicectl: get: cannot write YAML\n");
				goto out;
			}
			printf("%s%s", i ? "---\n" : "", y);
			free(y);
		}
	} else {
		printf("%-20s %-40s %s\n", "NAMESPACE", "NAME", "KIND");
		for (size_t i = 0; i < json_array_size(items); i++) {
			json_t *md = json_object_get(json_array_get(items, i), "metadata");

			printf("%-20s %-40s %s\n",
			       json_string_value(json_object_get(md, "namespace")) ?: "", /* cluster-scoped */
			       json_string_value(json_object_get(md, "name")) ?: "?",
			       json_string_value(json_object_get(json_array_get(items, i), "kind")) ?: "?");
		}
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

int cmd_delete(const struct ctl_opts *o, int argc, char **argv)
{
	char path[2048] = "/v1/delete", q[1900] = "";
	struct ctl_control_args a;
	char *body = NULL;
	size_t len = 0;
	json_t *j;
	int status, rc = 1;

	rc = ctl_control_args(&a, CTL_DELETE_HELP, ctl_delete_opts, argc, argv);
	if (rc >= 0)
		return rc;
	if ((a.nfiles == 1) == (a.npos == 2) || a.nfiles > 1 || (a.npos && a.npos != 2))
		return ctl_usage_error(&a.args, "-f FILE, or KIND NAME");
	if (a.nfiles) {
		body = read_input("delete", a.files[0], &len);
		if (!body)
			return 1;
	} else {
		qadd(q, sizeof(q), "kind", a.pos[0]);
		qadd(q, sizeof(q), "name", a.pos[1]);
		qadd(q, sizeof(q), "namespace", a.ns ?: "default");
		snprintf(path, sizeof(path), "/v1/delete?%s", q);
	}
	j = call("delete", &a, "POST", path, body ? "application/yaml" : NULL,
		 a.nfiles ? a.files[0] : NULL, body ?: "", len, &status);
	free(body);
	if (!j)
		return 1;
	if (status != 200) {
		rc = refused("delete", status, j);
	} else {
		print_warnings(j);
		printf("deleted: config version %lld\n",
		       (long long)json_integer_value(json_object_get(j, "version")));
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* status: the agent's (status.c), unless --control or --credentials asks
 * for the control plane's. */
int cmd_status(const struct ctl_opts *o, int argc, char **argv)
{
	struct ctl_control_args a;
	json_t *j, *ag;
	int status, rc;

	rc = ctl_control_args(&a, CTL_STATUS_HELP, ctl_status_opts, argc, argv);
	if (rc >= 0)
		return rc;
	if (a.npos)
		return ctl_usage_error(&a.args, "unexpected '%s'", a.pos[0]);
	if (!a.control_flag && !a.creds_flag)
		return ctl_agent_status_print(o, o->json || (a.out && !strcmp(a.out, "json")));
	j = call("status", &a, "GET", "/v1/status", NULL, NULL, NULL, 0, &status);
	if (!j)
		return 1;
	if (status != 200) {
		rc = refused("status", status, j);
		json_decref(j);
		return rc;
	}
	if (o->json || (a.out && strcmp(a.out, "json") == 0)) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(j);
		return 0;
	}
	printf("control plane %s at %s (pid %lld, up %llds), trust domain %s\n",
	       json_string_value(json_object_get(j, "control_plane_version")), a.url,
	       (long long)json_integer_value(json_object_get(j, "pid")),
	       (long long)json_integer_value(json_object_get(j, "uptime_seconds")),
	       json_string_value(json_object_get(j, "trust_domain")));
	printf("config version %lld, %lld resources\n",
	       (long long)json_integer_value(json_object_get(j, "config_version")),
	       (long long)json_integer_value(json_object_get(j, "resources")));
	printf("%-20s %-9s %-8s %-8s %-8s %s\n", "NODE", "CONNECTED", "VERSION", "ACKED", "NACKED",
	       "NACK REASON");
	ag = json_object_get(j, "agents");
	for (size_t i = 0; i < json_array_size(ag); i++) {
		json_t *x = json_array_get(ag, i), *ak = json_object_get(x, "acked"),
		       *nk = json_object_get(x, "nacked");
		char acked[24] = "-", nacked[24] = "-";

		if (ak)
			snprintf(acked, sizeof(acked), "%lld", (long long)json_integer_value(ak));
		if (nk)
			snprintf(nacked, sizeof(nacked), "%lld", (long long)json_integer_value(nk));
		printf("%-20s %-9s %-8lld %-8s %-8s %s\n", json_string_value(json_object_get(x, "node")),
		       json_is_true(json_object_get(x, "connected")) ? "yes" : "no",
		       (long long)json_integer_value(json_object_get(x, "version")), acked, nacked,
		       json_string_value(json_object_get(x, "nack_reason")) ?: "");
	}
	json_decref(j);
	return 0;
}

json_t *ctl_api(const char *url, const char *creds, const char *method, const char *path,
		const char *body, size_t len, int *status, char *err, size_t errlen)
{
	struct h2_header hdr = { "content-type", "application/json" };
	struct h2_result res = {};
	SSL_CTX *ctx = admin_tls(creds, err, errlen);
	json_t *j = NULL;

	*status = 0;
	if (ctx && h2_fetch(ctx, url, "/sluice/control", method, path, &hdr, body ? 1 : 0, body, len,
			    10000, &res, err, errlen) == 0) {
		*status = res.status;
		j = json_loadb(res.body ?: "", res.len, 0, NULL);
		if (!j)
			snprintf(err, errlen, "HTTP %d with a body that is not JSON", res.status);
	}
	free(res.body);
	SSL_CTX_free(ctx);
	return j;
}
