// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice-control - the control plane: validation, discovery and push, CA
 * (docs/control-plane.md).
 *
 *   sluice-control [--state-dir DIR] [--listen ADDR:PORT] [--trust-domain TD]
 *                  [--ca-cert F --ca-key F] [--san NAME]... [--log-level L]
 *                  [--store etcd://H:P,... --store-key FILE [--store-prefix P]]
 *   sluice-control token create [--state-dir DIR | --store URL] --node NAME [--ttl 1h]
 *   sluice-control store-key create FILE
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/server.h"
#include "control/store.h"
#include "lib/core/cli.h"
#include "lib/core/heap.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"

/* The shared store's options: sluice-control's and `token create`'s. */
#define STORE_OPTIONS \
	{ "store", required_argument, 'E', "URL", \
	  "keep the shared state (config, identities, CA, node addresses, join tokens) " \
	  "in etcd v3: etcd://HOST:PORT[,HOST:PORT...], or etcds:// for HTTPS; several " \
	  "replicas can then run at once (the state dir keeps this replica's credentials)" }, \
	{ "store-prefix", required_argument, 'P', "PREFIX", \
	  "the etcd key prefix of the shared state (default " STORE_PREFIX ")" }, \
	{ "etcd-ca", required_argument, 'A', "FILE", "etcds://: the CA of etcd's certificates" }, \
	{ "etcd-cert", required_argument, 'B', "FILE", \
	  "etcds://: a client certificate for etcd, with --etcd-key" }, \
	{ "etcd-key", required_argument, 'Z', "FILE", "the key of --etcd-cert" }

static const struct cli_opt control_options[] = {
	{ "state-dir", required_argument, 'd', "DIR",
	  "config, identities, CA and credentials (default " SL_CONTROL_DIR "); created "
	  "0700 on first start" },
	{ "listen", required_argument, 'L', "ADDR:PORT",
	  "the API (HTTP/2 over mutual TLS 1.3; default 127.0.0.1:15012)" },
	{ "trust-domain", required_argument, 'T', "TD",
	  "SPIFFE trust domain (default cluster.local; fixed once stored)" },
	{ "ca-cert", required_argument, 'C', "FILE",
	  "use this CA instead of creating one, with --ca-key (copied into DIR)" },
	{ "ca-key", required_argument, 'K', "FILE", "the key of --ca-cert" },
	{ "san", required_argument, 'S', "NAME",
	  "another DNS name or IP for the API's certificate (repeatable)" },
	{ "stall-timeout", required_argument, 's', "MS",
	  "cut off a client that stops reading for MS (default 30000)" },
	{ "workload-cert-ttl", required_argument, 'W', "D",
	  "lifetime of the workload certificates signed for agents (POST /v1/certs), "
	  "N[smhd] (default 24h)" },
	{ "push", required_argument, 'u', "MODE",
	  "delta: send agents what changed since the version they have (default); "
	  "full: the whole snapshot at every change" },
	STORE_OPTIONS,
	{ "store-key", required_argument, 'Y', "FILE",
	  "with --store: 32 bytes (raw or hex) that encrypt the CA key in etcd (AES-256-GCM); "
	  "every replica needs the same (sluice-control store-key create FILE)" },
	{ "log-level", required_argument, 'l', "L", "error|warn|info|debug (default info)" },
	{ "version", no_argument, 'V', NULL, "print the version and exit" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help and exit" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

/* `token create`'s options: its help string below documents them. */
static const struct cli_opt token_options[] = {
	{ "state-dir", required_argument, 'd', "DIR", NULL },
	{ "node", required_argument, 'n', "NAME", NULL },
	{ "ttl", required_argument, 't', "DURATION", NULL },
	STORE_OPTIONS,
	{ "help", no_argument | CLI_SHORT, 'h', NULL, NULL },
	{}
};

static const struct cli_prog control_cli = {
	.name = "sluice-control",
	.section = 8,
	.summary = "the sluice control plane: validation, discovery and push, CA",
	.usage = (const char *const[]){
		"[options]",
		"token create [--state-dir DIR | --store URL] --node NAME [--ttl DURATION]",
		"store-key create FILE",
		NULL },
	.description =
		"The control plane takes Istio and Kubernetes YAML (sluicectl apply), "
		"validates it, compiles one snapshot per node and pushes it over HTTP/2 "
		"with mutual TLS 1.3 to each agent, which ACKs or NACKs it. Its CA issues "
		"node certificates for single-use join tokens and signs the workload "
		"certificates of the agents' proxies (docs/control-plane.md).",
	.opts = control_options,
	.cmds_title = "commands",
	.cmds = (const char *const[]){
		"token create [--state-dir DIR | --store URL] --node NAME [--ttl DURATION]\n"
		"                       print a single-use join token for node NAME, valid for\n"
		"                       DURATION (N[smhd], default 1h); only its hash is stored\n"
		"                       (in etcd with --store, --store-prefix and --etcd-*)",
		"store-key create FILE  write a new store key (32 random bytes, hex) to FILE,\n"
		"                       mode 0600, for --store-key; an existing FILE is never\n"
		"                       replaced",
		NULL },
};

/* N[smhd] in seconds (> 0), or -EINVAL. */
static long parse_duration(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (v <= 0 || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': v *= 60; break;
	case 'h': v *= 3600; break;
	case 'd': v *= 86400; break;
	default: return -EINVAL;
	}
	return end[0] && end[1] ? -EINVAL : v;
}

/* The etcd options want --store: 0, or -EINVAL (said on stderr). */
static int store_opts_check(const struct store_opts *o)
{
	if (!o->etcd_url && (o->prefix || o->store_key || o->etcd.ca_file || o->etcd.cert_file ||
			     o->etcd.key_file)) {
		fprintf(stderr, "sluice-control: --store-prefix, --store-key and --etcd-* go with "
			"--store etcd://...\n");
		return -EINVAL;
	}
	return 0;
}

static int store_key_main(int argc, char **argv)
{
	char err[512];

	if (argc != 3 || strcmp(argv[1], "create") != 0) {
		fprintf(stderr, "sluice-control: usage: store-key create FILE\n");
		return 2;
	}
	if (store_key_create(argv[2], err, sizeof(err))) {
		fprintf(stderr, "sluice-control: store-key create: %s\n", err);
		return 1;
	}
	return 0;
}

static int token_main(int argc, char **argv)
{
	struct store_opts so = { .dir = SL_CONTROL_DIR };
	const char *node = NULL;
	char token[STORE_TOKEN_MAX], err[512];
	struct cli_getopt g;
	long ttl = 3600;
	int c;

	if (argc < 2 || strcmp(argv[1], "create") != 0) {
		fprintf(stderr, "sluice-control: token: only 'token create' exists\n");
		return 2;
	}
	if (cli_getopt_init(&g, token_options, ""))
		return 2;
	optind = 2;
	while ((c = cli_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'd': so.dir = optarg; break;
		case 'n': node = optarg; break;
		case 'E': so.etcd_url = optarg; break;
		case 'P': so.prefix = optarg; break;
		case 'A': so.etcd.ca_file = optarg; break;
		case 'B': so.etcd.cert_file = optarg; break;
		case 'Z': so.etcd.key_file = optarg; break;
		case 't':
			ttl = parse_duration(optarg);
			if (ttl < 0) {
				fprintf(stderr, "sluice-control: --ttl '%s': N[smhd], N > 0\n", optarg);
				return 2;
			}
			break;
		case 'h': cli_help(stdout, &control_cli); return 0;
		default: cli_help(stderr, &control_cli); return 2;
		}
	}
	if (!node) {
		fprintf(stderr, "sluice-control: token create: --node NAME is required\n");
		return 2;
	}
	if (store_opts_check(&so))
		return 2;
	if (store_token_new(&so, node, ttl, token, sizeof(token), err, sizeof(err))) {
		fprintf(stderr, "sluice-control: token create: %s\n", err);
		return 1;
	}
	printf("%s\n", token);
	return 0;
}

int main(int argc, char **argv)
{
	struct server_opts so = { .listen = "127.0.0.1:15012", .workload_cert_ttl = 24 * 3600 };
	struct store_opts sto = { .dir = SL_CONTROL_DIR };
	const char *sans[16] = {};
	enum log_level level = LOG_INFO;
	size_t nsans = 0;
	struct cli_getopt g;
	struct store st;
	char err[1024];
	int c, rc;

	if (argc > 1 && strcmp(argv[1], "token") == 0) {
		log_init("sluice-control", LOG_WARN);
		return token_main(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "store-key") == 0)
		return store_key_main(argc - 1, argv + 1);
	if (cli_getopt_init(&g, control_options, ""))
		return 2;
	while ((c = cli_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'd': sto.dir = optarg; break;
		case 'L': so.listen = optarg; break;
		case 'T': sto.td = optarg; break;
		case 'C': sto.ca_cert = optarg; break;
		case 'K': sto.ca_key = optarg; break;
		case 'E': sto.etcd_url = optarg; break;
		case 'P': sto.prefix = optarg; break;
		case 'Y': sto.store_key = optarg; break;
		case 'A': sto.etcd.ca_file = optarg; break;
		case 'B': sto.etcd.cert_file = optarg; break;
		case 'Z': sto.etcd.key_file = optarg; break;
		case 'S':
			if (nsans == 15) {
				fprintf(stderr, "sluice-control: --san: at most 15\n");
				return 2;
			}
			sans[nsans++] = optarg;
			break;
		case 's':
			so.stall_ms = (unsigned int)strtoul(optarg, NULL, 10);
			if (!so.stall_ms) {
				fprintf(stderr, "sluice-control: --stall-timeout: milliseconds > 0\n");
				return 2;
			}
			break;
		case 'W':
			so.workload_cert_ttl = parse_duration(optarg);
			if (so.workload_cert_ttl < 10) {
				fprintf(stderr, "sluice-control: --workload-cert-ttl '%s': N[smhd], "
					"at least 10 s\n", optarg);
				return 2;
			}
			break;
		case 'u':
			if (strcmp(optarg, "delta") && strcmp(optarg, "full")) {
				fprintf(stderr, "sluice-control: --push: delta or full, not '%s'\n",
					optarg);
				return 2;
			}
			so.push_full = strcmp(optarg, "full") == 0;
			break;
		case 'l':
			if (log_level_parse(optarg, &level)) {
				fprintf(stderr, "sluice-control: --log-level: unknown level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'V': printf("sluice-control %s\n", sluice_version); return 0;
		case 'h': cli_help(stdout, &control_cli); return 0;
		case 'M': cli_man(stdout, &control_cli); return 0;
		default: cli_help(stderr, &control_cli); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-control: unexpected argument '%s'\n", argv[optind]);
		cli_help(stderr, &control_cli);
		return 2;
	}
	if (store_opts_check(&sto))
		return 2;
	so.sans = sans;
	log_init("sluice-control", level);
	/* A change makes and frees JSON trees of every document and service
	 * it touches: millions of small blocks at 10,000 services. glibc's
	 * fast bins defer their merging to the next large request, which then
	 * walks them all; without fast bins a free merges at once (the thread
	 * cache still serves the small sizes): loading 10,000 services takes
	 * some 12-15% less CPU. */
	mallopt(M_MXFAST, 0);
	/* Nor is the heap given back and taken again within a change (page
	 * faults are dear on a virtual machine): blocks up to 32 MiB come
	 * from the heap, which shrinks only when changes pause (server.c's
	 * malloc_trim). Loading 10,000 services into a control plane
	 * with no nodes: some 7% less CPU. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	heap_huge_init();
	if (store_open_opts(&st, &sto, err, sizeof(err))) {
		if (sto.etcd_url)
			log_err("store %s (state dir %s): %s", sto.etcd_url, sto.dir, err);
		else
			log_err("state dir %s: %s", sto.dir, err);
		return 1;
	}
	rc = server_run(&st, &so);
	store_close(&st);
	return rc;
}
