// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * common.c - sltest: helpers shared by all modes.
 */
#include "sltest.h"

const char *errname(int err)
{
#define E(x) { x, #x }
	static const struct {
		int err;
		const char *name;
	} tab[] = {
		E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(EBADF), E(EAGAIN),
		E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST),
		E(EINVAL), E(ENFILE), E(EMFILE), E(ENOSPC), E(EPIPE),
		E(ENODATA), E(ETIME), E(EPROTO), E(EBADMSG), E(ENOTSOCK),
		E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
		E(EPROTONOSUPPORT), E(EOPNOTSUPP), E(EAFNOSUPPORT),
		E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH),
		E(ENETRESET), E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS),
		E(EISCONN), E(ENOTCONN), E(ETIMEDOUT), E(ECONNREFUSED),
		E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS),
	};
#undef E
	static __thread char buf[16];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].err == err)
			return tab[i].name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void sleep_ms(long long ms)
{
	if (ms > 0)
		poll(NULL, 0, ms > INT_MAX ? INT_MAX : (int)ms);
}

bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Fills ss from an address literal (IPv6 if it has a ':') and a port. */
int make_addr(const char *host, int port, struct sockaddr_storage *ss,
	      socklen_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!strchr(host, ':')) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -EINVAL;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*len = sizeof(*sin6);
	return inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1 ? 0 : -EINVAL;
}

int parse_num(const char *s, long long min, long long max,
	      long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Seconds, possibly fractional, to milliseconds. */
int parse_secs(const char *s, long long *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0 && v <= 86400))
		return -EINVAL;
	*ms = (long long)(v * 1000 + 0.5);
	return 0;
}

/* "IP:PORT" or "[IPv6]:PORT". */
int parse_addr(const char *s, struct sockaddr_storage *ss,
	       socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *h = s, *colon;
	long long port;
	size_t hlen;

	if (*s == '[') {
		colon = strchr(s, ']');
		if (!colon || colon[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = colon - h;
		colon++;
		if (!memchr(h, ':', hlen))
			return -EINVAL;
	} else {
		colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return -EINVAL;
		hlen = colon - s;
	}
	if (hlen >= sizeof(host) || parse_num(colon + 1, 1, 65535, &port))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return make_addr(host, port, ss, len);
}

char *fmt_addr(const struct sockaddr_storage *ss, char *buf,
	       size_t size)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "family-%u", ss->ss_family);
	}
	return buf;
}

void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Counts per name, printed as a JSON object; overflow goes to "(other)". */

static int tally_find(const struct tally *t, const char *key)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].key, key))
			return i;
	return -1;
}

void tally_add(struct tally *t, const char *key, unsigned long n)
{
	int i = tally_find(t, key);

	if (i < 0 && t->n == TALLY_MAX - 1) {
		key = "(other)";
		i = tally_find(t, key);
	}
	if (i < 0) {
		i = t->n++;
		snprintf(t->e[i].key, sizeof(t->e[i].key), "%s", key);
		t->e[i].count = 0;
	}
	t->e[i].count += n;
}

void tally_print(const char *field, const struct tally *t)
{
	int i;

	printf(",\"%s\":{", field);
	for (i = 0; i < t->n; i++) {
		printf("%s", i ? "," : "");
		json_str(t->e[i].key);
		printf(":%lu", t->e[i].count);
	}
	printf("}");
}

