/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * chain.h - `sluice-cni install-chain` and `uninstall-chain`: what the
 * Kubernetes installer container runs on each node (docs/cni.md), as
 * istio-cni's installer does: copy the plugin into the node's CNI binary
 * directory and chain it into the node's CNI configuration, the file the
 * runtime uses (the lexically first *.conflist, *.conf or *.json of the
 * directory, as libcni picks it).
 *
 * A single-plugin *.conf becomes NAME.conflist with that plugin first; a
 * conflist gets {"type": "sluice-cni", "agentSocket": SOCK} appended, or
 * its existing sluice-cni entry's socket updated, so running it again
 * changes nothing. Every file is replaced atomically; on an error nothing
 * was changed and the message names the file and field.
 *
 * Contract: 0, or 1 with the reason printed on stderr.
 */
#ifndef SL_CNI_CHAIN_H
#define SL_CNI_CHAIN_H

int chain_main(int argc, char **argv);

/* The chained form of one configuration document: takes doc; a new
 * conflist document, or NULL with the reason in err. Shared with the
 * tests. */
#include <jansson.h>
#include <stddef.h>
json_t *chain_add(json_t *doc, const char *file, const char *sock, char *err, size_t errlen);
json_t *chain_remove(json_t *doc);

#endif /* SL_CNI_CHAIN_H */
