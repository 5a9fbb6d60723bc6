// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xfer.c - sltest: the xfer streams, the wire format (top of sltest.c) and
 * the blocking I/O both xfer ends use.
 */
#include "xfer.h"


enum xgen_kind { XGEN_DATA, XGEN_SIZES };

/* xorshift64* seeded through splitmix64; bytes are outputs, LSB first. */
struct xgen {
	uint64_t x;
	uint64_t word;		/* the rest of the current output */
	unsigned int left;	/* bytes in word */
};

static uint64_t splitmix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ z >> 27) * 0x94d049bb133111ebULL;
	return z ^ z >> 31;
}

static void xgen_init(struct xgen *g, uint32_t seed, enum xgen_kind kind)
{
	g->x = splitmix64((uint64_t)kind << 32 | seed);
	if (!g->x)
		g->x = 1;
	g->left = 0;
}

static uint64_t xgen_next(struct xgen *g)
{
	g->x ^= g->x >> 12;
	g->x ^= g->x << 25;
	g->x ^= g->x >> 27;
	return g->x * 0x2545f4914f6cdd1dULL;
}

/* The next len bytes of the stream. */
static void xgen_fill(struct xgen *g, unsigned char *p, size_t len)
{
	uint64_t v;
	int i;

	for (; len && g->left; len--, g->left--) {
		*p++ = g->word;
		g->word >>= 8;
	}
	for (; len >= 8; len -= 8, p += 8) {
		v = xgen_next(g);
		for (i = 0; i < 8; i++)
			p[i] = v >> (8 * i);
	}
	if (!len)
		return;
	g->word = xgen_next(g);
	for (g->left = 8; len; len--, g->left--) {
		*p++ = g->word;
		g->word >>= 8;
	}
}

/* Size of the next send(): msg, or random when msg is 0; at most left. */
static size_t xfer_msg_size(struct xgen *sizes, uint32_t msg, uint64_t left)
{
	uint64_t m = msg ? msg : 1 + xgen_next(sizes) % XFER_RANDOM_MAX;

	return m < left ? m : left;
}


const char *const xfer_status_names[XFER_EXTRA + 1] = {
	"ok", "mismatch", "short", "eof-error", "extra",
};


static void put_be(unsigned char *p, uint64_t v, int n)
{
	while (n--) {
		p[n] = v;
		v >>= 8;
	}
}

static uint64_t get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

void xfer_hdr_put(unsigned char *p, const struct xfer_hdr *h)
{
	memcpy(p, XFER_MAGIC, 4);
	put_be(p + 4, h->flags, 4);
	put_be(p + 8, h->up, 8);
	put_be(p + 16, h->down, 8);
	put_be(p + 24, h->seed, 4);
	put_be(p + 28, h->msg, 4);
}

int xfer_hdr_get(const unsigned char *p, struct xfer_hdr *h)
{
	if (memcmp(p, XFER_MAGIC, 4))
		return -EPROTO;
	h->flags = get_be(p + 4, 4);
	h->up = get_be(p + 8, 8);
	h->down = get_be(p + 16, 8);
	h->seed = get_be(p + 24, 4);
	h->msg = get_be(p + 28, 4);
	if (h->flags & ~XFER_F_NO_HALF_CLOSE)
		return -EPROTO;
	return h->msg > XFER_MSG_MAX ? -EMSGSIZE : 0;
}

void xfer_trl_put(unsigned char *p, const struct xfer_trailer *t)
{
	memset(p, 0, XFER_TRL_LEN);
	memcpy(p, t->sha, 32);
	put_be(p + 32, t->count, 8);
	put_be(p + 40, t->status, 4);
}

void xfer_trl_get(const unsigned char *p, struct xfer_trailer *t)
{
	memcpy(t->sha, p, 32);
	t->count = get_be(p + 32, 8);
	t->status = get_be(p + 40, 4);
}

/*
 * Blocking I/O: no timeouts, no poll(). Only EINTR is retried; EAGAIN from
 * a blocking socket is a failure and is reported as such.
 */
int bsend_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

ssize_t brecv(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Exactly len bytes: 0, -errno, or -EPIPE when the stream ends first. */
int brecv_exact(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = brecv(fd, p, len);
		if (n <= 0)
			return n ? (int)n : -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

/* The recv() after a stream: XFER_OK at EOF, XFER_EXTRA, XFER_EOF_ERROR. */
enum xfer_status xfer_eof(int fd, int *err)
{
	char sink[XFER_SINK];
	ssize_t n;

	n = brecv(fd, sink, sizeof(sink));
	*err = n < 0 ? (int)-n : 0;
	return n < 0 ? XFER_EOF_ERROR : n ? XFER_EXTRA : XFER_OK;
}

int xfer_thread(pthread_t *tid, void *(*fn)(void *), void *arg,
		bool detach)
{
	pthread_attr_t attr;
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	err = pthread_attr_setstacksize(&attr, XFER_STACK);
	if (!err && detach)
		err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!err)
		err = pthread_create(tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return -err;
}


static int xfer_send(struct xfer_tx *tx)
{
	struct xgen data, sizes;
	unsigned char *buf;
	uint64_t left;
	size_t cap, m;
	int err = 0;

	cap = tx->msg ? tx->msg : XFER_RANDOM_MAX;
	if (cap > tx->total)
		cap = tx->total;
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return -ENOMEM;
	xgen_init(&data, tx->seed, XGEN_DATA);
	xgen_init(&sizes, tx->seed, XGEN_SIZES);
	for (left = tx->total; left; left -= m) {
		m = xfer_msg_size(&sizes, tx->msg, left);
		xgen_fill(&data, buf, m);
		err = bsend_all(tx->fd, buf, m);
		if (err)
			break;
		if (tx->sha)
			sha256_update(tx->sha, buf, m);
		__atomic_add_fetch(&tx->sent, m, __ATOMIC_RELAXED);
	}
	free(buf);
	return err;
}

/*
 * A failed sender shuts the socket down both ways, so that its receiver,
 * blocked in recv(), gets EOF instead of waiting for the deadline.
 */
void *xfer_tx_run(void *arg)
{
	struct xfer_tx *tx = arg;

	tx->err = xfer_send(tx);
	if (tx->err)
		shutdown(tx->fd, SHUT_RDWR);
	else if (tx->shut_wr && shutdown(tx->fd, SHUT_WR))
		tx->err = -errno;
	tx->done_ms = now_ms();
	return NULL;
}


/* 0 once total bytes arrived (right or wrong), else -errno, -EPIPE at EOF. */
int xfer_recv(struct xfer_rx *rx)
{
	unsigned char *buf, *want;
	struct xgen data;
	uint64_t got = 0;
	ssize_t n;
	size_t i;
	int err = 0;

	sha256_init(&rx->sha);
	rx->bad_at = UINT64_MAX;
	buf = malloc(2 * XFER_RBUF);
	if (!buf)
		return -ENOMEM;
	want = buf + XFER_RBUF;
	xgen_init(&data, rx->seed, XGEN_DATA);
	while (got < rx->total) {
		n = brecv(rx->fd, buf, rx->total - got < XFER_RBUF ?
					rx->total - got : XFER_RBUF);
		if (n <= 0) {
			err = n ? (int)n : -EPIPE;
			break;
		}
		if (rx->bad_at == UINT64_MAX) {
			xgen_fill(&data, want, n);
			if (memcmp(buf, want, n)) {
				for (i = 0; buf[i] == want[i]; i++)
					;
				rx->bad_at = got + i;
			}
		}
		sha256_update(&rx->sha, buf, n);
		got += n;
		__atomic_store_n(&rx->received, got, __ATOMIC_RELAXED);
	}
	rx->done_ms = now_ms();
	free(buf);
	return err;
}

