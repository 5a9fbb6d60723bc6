// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxylink.c - framing and descriptor passing of the agent-proxy link
 * (proxylink.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/wire/proxylink.h"

_Static_assert(sizeof(struct pl_flow) % 8 == 0, "pl_flow is padded to 8");
_Static_assert(sizeof(struct pl_status) % 8 == 0, "pl_status is padded to 8");
_Static_assert(sizeof(struct pl_hello) % 8 == 0, "pl_hello is padded to 8");

int pl_send(int fd, enum pl_type type, const void *body, size_t body_len,
	    const void *const tail[3], const size_t tail_len[3], const int *fds, int nfds)
{
	struct pl_hdr h = { .type = type };
	struct iovec iov[5] = { { &h, sizeof(h) }, { (void *)body, body_len } };
	union {
		char buf[CMSG_SPACE(sizeof(int) * PL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t len = sizeof(h) + body_len;

	for (int i = 0; tail && i < 3; i++) {
		if (!tail_len[i])
			continue;
		iov[m.msg_iovlen++] = (struct iovec){ (void *)tail[i], tail_len[i] };
		len += tail_len[i];
	}
	if (len > PL_MAX_MSG || nfds < 0 || nfds > PL_MAX_FDS)
		return -EMSGSIZE;
	h.len = (__u32)len;
	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

long pl_recv(int fd, void *buf, int *fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, PL_MAX_MSG };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	const struct pl_hdr *h = buf;
	ssize_t n;

	*nfds = 0;
	n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < PL_MAX_FDS)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	if (n == 0)
		return 0;
	if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(*h) || h->len != (size_t)n) {
		for (int i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return -EPROTO;
	}
	return (long)n;
}

const void *pl_body(const void *msg, long len, enum pl_type type, size_t body_len)
{
	const struct pl_hdr *h = msg;

	if (len < (long)sizeof(*h) || h->type != type || (size_t)len < sizeof(*h) + body_len)
		return NULL;
	return (const char *)msg + sizeof(*h);
}
