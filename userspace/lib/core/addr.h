/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * addr.h - addresses as the maps hold them: 16 bytes, network order, IPv4
 * as ::ffff:a.b.c.d (see headers/sluice_lb.h), and prefixes as the
 * identity LPM trie keys them (struct sl_ipcache_key, headers/sluice_policy.h).
 */
#ifndef SL_ADDR_H
#define SL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "sluice_policy.h"

#define SL_ADDRSTRLEN 46 /* INET6_ADDRSTRLEN */

/* Parse a literal IPv4 or IPv6 address. 0 or -EINVAL. */
int addr_parse(const char *s, __be32 out[4]);
bool addr_is_v4(const __be32 a[4]);
/* Format as dotted quad for IPv4-mapped, RFC 5952 otherwise. */
const char *addr_fmt(const __be32 a[4], char buf[SL_ADDRSTRLEN]);
/* "IPv4:PORT" or "[IPv6]:PORT" (port 1..65535); either output may be
 * NULL. 0 or -EINVAL. */
int addr_hostport_parse(const char *s, __be32 out[4], uint16_t *port);
const char *proto_name(uint8_t proto);
int proto_parse(const char *s, uint8_t *out);

/* A non-blocking listening TCP socket on "ADDR:PORT" or "[V6]:PORT"
 * (SO_REUSEADDR); -EINVAL for a bad spec, else -errno. */
int addr_listen(const char *spec, int backlog);

/* Parse "10.0.0.0/8", "fd00::/8" or a bare address (a /32 or /128) into a
 * sl_ipcache key. Host bits must be zero. 0 or -EINVAL. */
int cidr_parse(const char *s, struct sl_ipcache_key *out);
/* "10.0.0.0/8" from a key; buf of at least SL_ADDRSTRLEN + 5 bytes. */
const char *cidr_fmt(const struct sl_ipcache_key *k, char *buf, size_t len);
/* Does prefix `outer` contain prefix `inner` (equal counts)? */
bool cidr_contains(const struct sl_ipcache_key *outer, const struct sl_ipcache_key *inner);

#endif /* SL_ADDR_H */
