// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * store_journal.c - the state dir's config as a base and a log of changes
 * (store_journal.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/store_common.h"
#include "control/store_journal.h"
#include "lib/core/file.h"
#include "lib/core/log.h"

#define LOG_MAX (512u << 20)

/* One record onto cfg: its deletions, then what it sets. */
static int replay(struct sl_config *cfg, json_t *rec, const char *where, char *err,
		  size_t errlen)
{
	json_t *set = json_object_get(rec, "set"), *del = json_object_get(rec, "del"), *k;
	struct sl_diags d = {};
	size_t i;
	int rc;

	if (!json_is_array(set) || !json_is_array(del)) {
		snprintf(err, errlen, "%s: not a config record (version, set, del)", where);
		return -EINVAL;
	}
	json_array_foreach(del, i, k) {
		const char *kind = json_string_value(json_array_get(k, 0));
		const char *ns = json_string_value(json_array_get(k, 1));
		const char *name = json_string_value(json_array_get(k, 2));

		if (!kind || !ns || !name) {
			snprintf(err, errlen, "%s: del[%zu]: not [kind, namespace, name]", where, i);
			return -EINVAL;
		}
		/* absent already: the record was written against what it
		 * deletes, so only a hand-edited log gets here; nothing to do */
		sl_config_remove(cfg, kind, ns, name);
	}
	rc = sl_config_from_json(cfg, where, set, &d);
	if (rc)
		snprintf(err, errlen, "%s: the stored change does not load (%zu errors; first: %s)",
			 where, d.nerrors, d.n ? d.v[0].msg : "?");
	sl_diags_free(&d);
	return rc;
}

int journal_load(struct store *s, size_t base_bytes, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], where[PATH_MAX + 48], *text = NULL, *p, *nl;
	size_t len = 0, line = 0;
	int rc;

	store_path_of(s, "config.log", path, sizeof(path));
	s->base_bytes = base_bytes;
	s->log_bytes = 0;
	rc = access(path, F_OK) == 0 ? file_read(path, &text, &len, LOG_MAX) : 0;
	if (rc) {
		snprintf(err, errlen, "reading %s: %s", path, strerror(-rc));
		return rc;
	}
	for (p = text; p && p < text + len; p = nl + 1) {
		json_error_t jerr;
		json_t *rec;
		json_int_t v;

		line++;
		nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl) {
			/* a crash inside the last append: that save never
			 * returned, so what it began is not part of the config */
			log_warn("%s:%zu: an incomplete last record (%zu bytes) is dropped", path,
				 line, (size_t)(text + len - p));
			if (truncate(path, (off_t)(p - text))) {
				rc = -errno;
				snprintf(err, errlen, "truncating %s: %s", path, strerror(errno));
				goto out;
			}
			break;
		}
		snprintf(where, sizeof(where), "%s:%zu", path, line);
		rec = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		v = json_integer_value(json_object_get(rec, "version"));
		if (!rec || !json_is_integer(json_object_get(rec, "version")) || v < 0) {
			snprintf(err, errlen, "%s: %s", where, rec ? "no version" : jerr.text);
			json_decref(rec);
			rc = -EINVAL;
			goto out;
		}
		if ((uint64_t)v > s->version) {
			rc = replay(s->cfg, rec, where, err, errlen);
			s->version = (uint64_t)v;
		}
		json_decref(rec);
		if (rc)
			goto out;
		s->log_bytes += (size_t)(nl + 1 - p);
	}
	s->saved = sl_config_dup(s->cfg);
	if (!s->saved) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
out:
	free(text);
	return rc;
}

/* A key of `r` in a "del" list. */
static int add_key(json_t *del, const struct sl_resource *r)
{
	return json_array_append_new(del, json_pack("[s, s, s]", sl_resource_kind(r),
						     sl_resource_namespace(r), sl_resource_name(r)));
}

/* The record that takes `from` to `to` at version, as one line:
 * {"version":N,"set":[DOC,...],"del":[[KIND,NS,NAME],...]}, each set
 * document its stored text (copied, not dumped again). */
static char *record(const struct sl_config *from, const struct sl_config *to, uint64_t version)
{
	json_t *del = json_array();
	size_t i = 0, j = 0, nf = sl_config_count(from), nt = sl_config_count(to), len = 0;
	char *line = NULL, *dtext = NULL;
	FILE *m = del ? open_memstream(&line, &len) : NULL;
	int rc = m ? 0 : -ENOMEM, nset = 0;

	if (m)
		fprintf(m, "{\"version\":%llu,\"set\":[", (unsigned long long)version);
	/* both in key order: one walk. A resource is shared by the configs
	 * while it is unchanged, so the same key with another resource is a
	 * change. */
	while (!rc && (i < nf || j < nt)) {
		const struct sl_resource *f = i < nf ? sl_config_at(from, i) : NULL;
		const struct sl_resource *t = j < nt ? sl_config_at(to, j) : NULL;
		int c = !f ? 1 : !t ? -1 : sl_resource_cmp(f, t);

		if (c < 0) {
			rc = add_key(del, f) ? -ENOMEM : 0;
		} else if (c > 0 || f != t) {
			const json_t *text = sl_resource_stored(t);

			if (nset++)
				fputc(',', m);
			fwrite(json_string_value(text), 1, json_string_length(text), m);
		}
		i += c <= 0;
		j += c >= 0;
	}
	dtext = rc ? NULL : json_dumps(del, JSON_COMPACT);
	if (m) {
		bool bad = !dtext;

		if (dtext)
			fprintf(m, "],\"del\":%s}", dtext);
		bad |= ferror(m) != 0;
		bad |= fclose(m) != 0;
		if (bad) {
			free(line);
			line = NULL;
		}
	}
	free(dtext);
	json_decref(del);
	return line;
}

/* A new base at version and no log. */
static int write_base(struct store *s, const struct sl_config *cfg, uint64_t version,
		      char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], lp[PATH_MAX + 16], *text;
	size_t len = 0;
	int rc;

	store_path_of(s, "config.json", cp, sizeof(cp));
	store_path_of(s, "config.log", lp, sizeof(lp));
	text = store_config_text(s, cfg, version, &len);
	rc = text ? file_write_atomic(cp, text, len, 0600) : -ENOMEM;
	free(text);
	if (rc) {
		snprintf(err, errlen, "writing %s: %s", cp, strerror(-rc));
		return rc;
	}
	/* from here the base holds every record: a crash before the log is
	 * gone replays none of them (their versions are not above it) */
	rc = file_remove_sync(lp);
	if (rc) {
		snprintf(err, errlen, "removing %s: %s", lp, strerror(-rc));
		return rc;
	}
	s->base_bytes = len;
	s->log_bytes = 0;
	return 0;
}

int journal_save(struct store *s, const struct sl_config *cfg, uint64_t version, char *err,
		 size_t errlen)
{
	struct sl_config *saved = sl_config_dup(cfg);
	size_t room = s->base_bytes > JOURNAL_MIN_BYTES ? s->base_bytes : JOURNAL_MIN_BYTES;
	char lp[PATH_MAX + 16], *line = NULL;
	size_t len;
	int rc;

	if (!saved) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* the first save writes a base: the trust domain lives there */
	line = s->saved && s->base_bytes ? record(s->saved, cfg, version) : NULL;
	len = line ? strlen(line) : 0;
	if (!line || s->log_bytes + len + 1 > room) {
		rc = write_base(s, cfg, version, err, errlen);
	} else {
		store_path_of(s, "config.log", lp, sizeof(lp));
		line[len] = '\n';   /* over the NUL: the length says where it ends */
		rc = file_append_sync(lp, line, len + 1, 0600);
		if (rc) {
			snprintf(err, errlen, "appending to %s: %s", lp, strerror(-rc));
			/* what part of the line got there must not stay in front
			 * of the next one; if it cannot go, the next save writes
			 * a base (which removes the log) */
			if (truncate(lp, (off_t)s->log_bytes))
				s->log_bytes = room;
		} else {
			s->log_bytes += len + 1;
		}
	}
	free(line);
	if (rc) {
		sl_config_free(saved);
		return rc;
	}
	sl_config_free(s->saved);
	s->saved = saved;
	return 0;
}
