// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * request.c - replies and request bodies for the control plane's route
 * handlers (request.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/request.h"

void reply(struct h2_conn *c, int32_t id, int status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	size_t n;

	json_decref(j);
	if (!text) {
		const char *oom = "{\"error\": \"out of memory\"}\n";

		h2_respond(c, id, 500, "application/json", oom, strlen(oom));
		return;
	}
	n = strlen(text);
	text[n] = '\n';  /* replaces the NUL; length n + 1 */
	h2_respond(c, id, status, "application/json", text, n + 1);
	free(text);
}

void reply_err(struct h2_conn *c, int32_t id, int status, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply(c, id, status, json_pack("{s:s}", "error", msg));
}

const char *req_header(const struct h2_req *r, const char *name)
{
	for (size_t i = 0; i < r->nhdrs; i++)
		if (strcmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

json_t *parse_body(struct h2_conn *c, const struct h2_req *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);

	if (!j)
		reply_err(c, r->stream_id, 400, "body: line %d column %d: %s", e.line, e.column, e.text);
	else if (!json_is_object(j)) {
		reply_err(c, r->stream_id, 400, "body: a JSON object is expected");
		json_decref(j);
		j = NULL;
	}
	return j;
}
