// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control plane's API request bodies, through its own handlers
 * (api_config.c is included for its static parse_files()): the first byte
 * picks the endpoint, the rest is the body.
 *
 *   0  POST /v1/apply, YAML body          parse_files() and sl_config_check()
 *   1  POST /v1/apply, JSON {files: [...]}  the same
 *   2  POST /v1/join {node, token, csr}    h_join()
 *   3  POST /v1/certs {csr}                h_certs() for node1
 *   4  POST /v1/ack {version, status}      h_ack() for node1
 *   5  POST /v1/delete, YAML body          the same parse h_delete() runs
 *
 * Apply and delete stop before the change is made (compiling, saving and
 * pushing are not input parsing and would make runs depend on each other).
 * The state dir is a fresh temporary one whose config places one workload
 * on node1, so a CSR for its identity reaches the CA.
 */
#include "control/api_config.c"

#include <stdint.h>
#include <sys/socket.h>

#include "control/api_certs.h"

#include "fuzz.h"

static struct store st;
static struct server_opts sopts = { .workload_cert_ttl = 3600 };
static struct server srv = { .st = &st, .o = &sopts };
static struct conn cn = { .kind = SRC_CONN, .srv = &srv, .addr = "fuzz" };
static SSL_CTX *ctx;

static const char seed_config[] =
	"apiVersion: networking.istio.io/v1\n"
	"kind: WorkloadEntry\n"
	"metadata:\n"
	"  name: web-1\n"
	"  namespace: shop\n"
	"  annotations:\n"
	"    sluice.io/node: node1\n"
	"    sluice.io/netns: /run/netns/web-1\n"
	"    sluice.io/interface: veth-web1\n"
	"spec:\n"
	"  address: 10.1.0.5\n"
	"  serviceAccount: web\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/sluice-fuzz-api.XXXXXX", err[512];
	struct sl_config *nc = sl_config_new();
	struct sl_diags d = {};
	int sp[2];

	fuzz_quiet();
	ctx = fuzz_server_ctx();
	if (!mkdtemp(dir) || store_open(&st, dir, NULL, NULL, NULL, err, sizeof(err)) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) {
		fprintf(stderr, "fuzz_api: setup: %s\n", err);
		abort();
	}
	/* replies go to a connection whose streams do not exist: dropped */
	cn.h = h2_server_conn(sp[0], ctx, NULL, NULL, NULL);
	if (!cn.h || !nc || sl_config_parse(nc, "seed.yaml", seed_config, strlen(seed_config), &d))
		abort();
	config_change(&srv, cn.h, 1, nc, NULL, &d, "fuzz setup");
	sl_diags_free(&d);
	if (st.version != 1)
		abort();
	return 0;
}

static void apply_body(const struct h2_req *r)
{
	struct sl_config *nc = sl_config_dup(st.cfg);
	struct sl_diags d = {};
	char file[256];

	if (!nc)
		abort();
	if (parse_files(&cn, r, nc, &d, file, sizeof(file)) == 0)
		sl_config_check(nc, &d);
	sl_diags_free(&d);
	sl_config_free(nc);
}

static void delete_body(const struct h2_req *r)
{
	struct sl_config *del = sl_config_new();
	struct sl_diags d = {};

	if (!del)
		abort();
	sl_config_parse(del, "request", r->body, r->body_len, &d);
	sl_diags_free(&d);
	sl_config_free(del);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2_req r = { .stream_id = 1, .method = "POST", .query = "" };
	char *body;

	if (size < 1)
		return 0;
	/* as h2.c hands it over: NUL-terminated, body_len without the NUL */
	body = malloc(size);
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	r.body = body;
	r.body_len = size - 1;
	r.content_type = data[0] % 6 == 1 ? "application/json" : "application/yaml";
	switch (data[0] % 6) {
	case 0: case 1: r.path = "/v1/apply"; apply_body(&r); break;
	case 2: r.path = "/v1/join"; h_join(&srv, &cn, &r, NULL); break;
	case 3: r.path = "/v1/certs"; h_certs(&srv, &cn, &r, "node1"); break;
	case 4: r.path = "/v1/ack"; h_ack(&srv, &cn, &r, "node1"); break;
	default: r.path = "/v1/delete"; delete_body(&r); break;
	}
	free(body);
	return 0;
}
