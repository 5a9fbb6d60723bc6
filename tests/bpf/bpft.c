// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpft.c - the shared parts of the skeleton-driven BPF tests (bpft.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "bpft.h"
#include "lib/core/sys.h"
#include "sluice_policy.h"

void bpft_private_maps(struct bpf_object *obj, unsigned int max_entries)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		cr_assert_eq(bpf_map__set_pin_path(m, NULL), 0);
		switch (bpf_map__type(m)) {
		case BPF_MAP_TYPE_ARRAY:
		case BPF_MAP_TYPE_PERCPU_ARRAY:
			break;
		case BPF_MAP_TYPE_RINGBUF:
			cr_assert_eq(bpf_map__set_max_entries(m, 1 << 16), 0);
			break;
		default:
			if (bpf_map__max_entries(m) > max_entries)
				cr_assert_eq(bpf_map__set_max_entries(m, max_entries), 0);
		}
	}
}

void bpft_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
	close(fd);
}

static int join(const char *dir)
{
	char path[PATH_MAX + 16], pid[16];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, pid, strlen(pid)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void bpft_cg_enter(struct bpft_cg *cg, const char *tag)
{
	int err;

	cg->fd = -1;
	cg->made = false;
	cr_assert_eq(sys_cgroup2_root(cg->root, sizeof(cg->root)), 0, "no cgroup2 mount");
	snprintf(cg->path, sizeof(cg->path), "%s/sluice-bpft-%s-%d", cg->root, tag, getpid());
	cr_assert(mkdir(cg->path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", cg->path,
		  strerror(errno));
	cg->made = true;
	err = join(cg->path);
	cr_assert_eq(err, 0, "join %s: %s", cg->path, strerror(-err));
	cg->fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(cg->fd, 0, "open %s: %s", cg->path, strerror(errno));
}

void bpft_cg_leave(struct bpft_cg *cg)
{
	if (cg->fd >= 0)
		close(cg->fd);
	cg->fd = -1;
	if (!cg->made)
		return;
	join(cg->root);
	rmdir(cg->path);
	cg->made = false;
}

void bpft_addr16(const char *addr, uint32_t out[4])
{
	struct in_addr a4;

	memset(out, 0, 16);
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		out[2] = htonl(0xffff);
		out[3] = a4.s_addr;
		return;
	}
	cr_assert_eq(inet_pton(AF_INET6, addr, out), 1, "bad address %s", addr);
}

bool bpft_metric(struct bpf_map *metrics, const struct sl_metric_key *key,
		 struct sl_metric_val *out)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sl_metric_val v[ncpu > 0 ? ncpu : 1];

	cr_assert_gt(ncpu, 0);
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(bpf_map__fd(metrics), key, v))
		return false;
	for (int i = 0; i < ncpu; i++) {
		out->opened += v[i].opened;
		out->closed += v[i].closed;
		out->denied += v[i].denied;
		out->bytes_sent += v[i].bytes_sent;
		out->bytes_received += v[i].bytes_received;
	}
	return true;
}

uint64_t bpft_drops(struct bpf_map *drops, uint32_t reason)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t v[ncpu > 0 ? ncpu : 1], sum = 0;

	cr_assert_gt(ncpu, 0);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(drops), &reason, v), 0);
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

struct ev_buf {
	struct sl_event *out;
	int max, n;
};

static int on_event(void *ctx, void *data, size_t len)
{
	struct ev_buf *b = ctx;

	cr_assert_eq(len, sizeof(struct sl_event));
	if (b->n < b->max)
		memcpy(&b->out[b->n++], data, sizeof(struct sl_event));
	return 0;
}

int bpft_events(struct bpf_map *events, struct sl_event *out, int max)
{
	struct ev_buf b = { .out = out, .max = max };
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(events), on_event, &b, NULL);

	cr_assert_not_null(rb, "ring_buffer__new: %s", strerror(errno));
	cr_assert_geq(ring_buffer__consume(rb), 0);
	ring_buffer__free(rb);
	return b.n;
}

socklen_t bpft_sockaddr(const char *ip, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "bad address %s", ip);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	return sizeof(*s6);
}

int bpft_listen(const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len = bpft_sockaddr(ip, 0, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind %s: %s", ip, strerror(errno));
	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

int bpft_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

int bpft_client(const char *from_ip, int listener)
{
	struct sockaddr_storage to, from;
	socklen_t len = sizeof(to), flen;
	int fd;

	cr_assert_eq(getsockname(listener, (struct sockaddr *)&to, &len), 0);
	flen = bpft_sockaddr(from_ip, 0, &from);
	fd = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&from, flen), 0, "bind %s: %s", from_ip,
		     strerror(errno));
	return fd;
}

void bpft_connect(int fd, int listener)
{
	struct sockaddr_storage to;
	socklen_t len = sizeof(to);

	cr_assert_eq(getsockname(listener, (struct sockaddr *)&to, &len), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&to, len), 0, "connect: %s", strerror(errno));
}

int bpft_accept(int listener)
{
	int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

	cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
	return fd;
}

static void wait_io(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	cr_assert_eq(poll(&p, 1, 2000), 1, "fd %d not ready in 2 s", fd);
}

void bpft_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		wait_io(fd, POLLOUT);
		n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		cr_assert_gt(n, 0, "send: %s", strerror(errno));
		p += n;
		len -= n;
	}
}

void bpft_recv(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		wait_io(fd, POLLIN);
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		cr_assert_gt(n, 0, "recv: %s with %zu bytes to come",
			     n ? strerror(errno) : "EOF", len);
		p += n;
		len -= n;
	}
}

void bpft_eof(int fd)
{
	char c;
	ssize_t n;

	for (;;) {
		wait_io(fd, POLLIN);
		n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		cr_assert_eq(n, 0, "want EOF, got %s", n > 0 ? "data" : strerror(errno));
		return;
	}
}

uint64_t bpft_cookie(int fd)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);

	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len), 0,
		     "SO_COOKIE: %s", strerror(errno));
	return cookie;
}

void bpft_ipcache(struct bpf_map *ipcache, const char *addr, uint32_t id, uint32_t flags)
{
	struct sl_ipcache_key k = { .prefixlen = 128 };
	struct sl_ipcache_val v = { .identity = id, .flags = flags };

	bpft_addr16(addr, k.addr);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(ipcache), &k, &v, BPF_ANY), 0);
}

void bpft_config(struct bpf_map *config, uint32_t policy_gen, uint32_t fastpath)
{
	struct sl_config c = { .policy_gen = policy_gen, .fastpath = fastpath };
	uint32_t zero = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(config), &zero, &c, BPF_ANY), 0);
}

/* ss's address in the maps' form; its port in host order. */
static int addr16(const struct sockaddr_storage *ss, uint32_t out[4])
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	memset(out, 0, 16);
	if (ss->ss_family == AF_INET) {
		out[2] = htonl(0xffff);
		out[3] = s4->sin_addr.s_addr;
		return ntohs(s4->sin_port);
	}
	memcpy(out, &s6->sin6_addr, 16);
	return ntohs(s6->sin6_port);
}

void bpft_conn_recorded(struct bpf_map *conns, int fd, int listener, uint32_t src_id,
			uint32_t dst_id)
{
	struct sl_conn c = { .key = { .src_id = src_id, .dst_id = dst_id, .proto = IPPROTO_TCP,
				      .reporter = SL_REPORTER_SOURCE } };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint64_t cookie = bpft_cookie(fd);

	cr_assert_eq(getsockname(listener, (struct sockaddr *)&ss, &len), 0);
	c.key.port = addr16(&ss, c.daddr);
	c.dport = htons(c.key.port);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(conns), &cookie, &c, BPF_ANY), 0);
}

struct sl_sock_key bpft_sock_key(int fd)
{
	struct sl_sock_key k = {};
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	k.lport = addr16(&ss, k.local);
	len = sizeof(ss);
	cr_assert_eq(getpeername(fd, (struct sockaddr *)&ss, &len), 0);
	k.rport = addr16(&ss, k.remote);
	return k;
}

unsigned int bpft_map_count(struct bpf_map *m)
{
	unsigned char key[64], next[64];
	unsigned int n = 0;
	void *prev = NULL;

	cr_assert_leq(bpf_map__key_size(m), sizeof(key));
	while (bpf_map_get_next_key(bpf_map__fd(m), prev, next) == 0) {
		memcpy(key, next, bpf_map__key_size(m));
		prev = key;
		n++;
	}
	return n;
}
