// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/core/addr.h"

int addr_parse(const char *s, __be32 out[4])
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		out[0] = 0;
		out[1] = 0;
		out[2] = htonl(0xffff);
		out[3] = v4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6) == 1) {
		memcpy(out, &v6, 16);
		return 0;
	}
	return -EINVAL;
}

bool addr_is_v4(const __be32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == htonl(0xffff);
}

const char *addr_fmt(const __be32 a[4], char buf[SL_ADDRSTRLEN])
{
	if (addr_is_v4(a))
		return inet_ntop(AF_INET, &a[3], buf, SL_ADDRSTRLEN);
	return inet_ntop(AF_INET6, a, buf, SL_ADDRSTRLEN);
}

const char *proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP: return "TCP";
	case IPPROTO_UDP: return "UDP";
	default: return "?";
	}
}

int proto_parse(const char *s, uint8_t *out)
{
	if (strcasecmp(s, "TCP") == 0)
		*out = IPPROTO_TCP;
	else if (strcasecmp(s, "UDP") == 0)
		*out = IPPROTO_UDP;
	else
		return -EINVAL;
	return 0;
}

int addr_hostport_parse(const char *s, __be32 out[4], uint16_t *port)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	__be32 bin[4];
	size_t hl;
	char *end;
	long p;

	if (!colon || strlen(s) >= sizeof(host) || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	p = strtol(colon + 1, &end, 10);
	if (*end || p <= 0 || p > 65535)
		return -EINVAL;
	hl = (size_t)(colon - s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		if (addr_parse(host + 1, bin) || addr_is_v4(bin))
			return -EINVAL;
	} else if (addr_parse(host, bin) || !addr_is_v4(bin)) {
		return -EINVAL;
	}
	if (out)
		memcpy(out, bin, sizeof(bin));
	if (port)
		*port = (uint16_t)p;
	return 0;
}

int addr_listen(const char *spec, int backlog)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_storage ss = {};
	socklen_t len;
	int fd, one = 1, port;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	port = atoi(colon + 1);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int cidr_parse(const char *s, struct sl_ipcache_key *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	unsigned long len;
	char *end;
	__be32 a[4];
	bool v4;

	if (!slash) {
		if (addr_parse(s, a))
			return -EINVAL;
		out->prefixlen = 128;
		memcpy(out->addr, a, sizeof(a));
		return 0;
	}
	if ((size_t)(slash - s) >= sizeof(addr))
		return -EINVAL;
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - s), s);
	if (addr_parse(addr, a) || !slash[1])
		return -EINVAL;
	v4 = addr_is_v4(a);
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (*end || errno || len > (v4 ? 32u : 128u) || !(slash[1] >= '0' && slash[1] <= '9'))
		return -EINVAL;
	out->prefixlen = (uint32_t)len + (v4 ? 96 : 0);
	/* host bits must be zero */
	for (unsigned int bit = out->prefixlen; bit < 128; bit++) {
		const uint8_t *b = (const uint8_t *)a;

		if (b[bit / 8] & (0x80 >> (bit % 8)))
			return -EINVAL;
	}
	memcpy(out->addr, a, sizeof(a));
	return 0;
}

const char *cidr_fmt(const struct sl_ipcache_key *k, char *buf, size_t len)
{
	char a[SL_ADDRSTRLEN];
	bool v4 = addr_is_v4(k->addr) && k->prefixlen >= 96;

	snprintf(buf, len, "%s/%u", addr_fmt(k->addr, a), v4 ? k->prefixlen - 96 : k->prefixlen);
	return buf;
}

bool cidr_contains(const struct sl_ipcache_key *outer, const struct sl_ipcache_key *inner)
{
	const uint8_t *a = (const uint8_t *)outer->addr, *b = (const uint8_t *)inner->addr;

	if (outer->prefixlen > inner->prefixlen)
		return false;
	for (unsigned int bit = 0; bit < outer->prefixlen; bit++)
		if ((a[bit / 8] ^ b[bit / 8]) & (0x80 >> (bit % 8)))
			return false;
	return true;
}
