// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * hbone.c - HTTP/2 CONNECT tunnels over mutual TLS 1.3 (hbone.h).
 *
 * One file of about 1,700 lines on purpose: it is the proxy's hot path
 * (every mTLS byte crosses it), and the tunnel, the connection's I/O
 * pump and the nghttp2 callbacks call each other per record; kept in one
 * translation unit they inline into each other and share static state,
 * split they would not.
 *
 * Data flow of one tunnel:
 *   TCP -> recv into t->up (at most tcp_buf) -> nghttp2 data provider
 *   (NO_COPY) -> each DATA frame, its header written in front of the
 *   payload, is one SSL_write, one record into c->tlsout (our BIO) -> one
 *   send() for up to OUT_BATCH of records;
 *   socket -> SSL_read into the loop's stage buffer (read-ahead: many
 *   records per read()) -> nghttp2_session_mem_recv -> on_data_chunk keeps
 *   a slice of the stage -> after the read batch, one sendmsg() per tunnel,
 *   what it does not take copied to t->down; nghttp2_session_consume only
 *   for what was sent, so the peer's window closes while our TCP reader is
 *   slow.
 *
 * Why the batching (perf, 2-core VM, veth between the nodes): the proxy's
 * time goes mostly to the kernel's per-packet work, which every send() of
 * a TCP_NODELAY socket pays at once; a send() per 16 KiB TLS record or per
 * DATA chunk cost 3-4x the syscalls and packets of one per batch.
 *
 * Lifetimes: a connection or tunnel that ends inside a callback is only
 * marked; it is unlinked at once but freed after the current epoll batch,
 * so an event already fetched for it never touches freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "lib/core/buf.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/wire/pki.h"
#include "proxy/hbone.h"

#define CONN_MAGIC   0x68626331u   /* "hbc1" */
#define TUN_MAGIC    0x68627431u   /* "hbt1" */
#define OUT_BATCH    (128 * 1024)   /* records encrypted before one send() */
#define READ_BUDGET  (512 * 1024)   /* plaintext per read batch */
#define TLS_RBUF     (64 * 1024)    /* OpenSSL's read-ahead buffer */
#define TICK_MS      100
#define STAGE_LEN    (READ_BUDGET + TLS_RBUF + 16384)   /* plaintext of one read batch */
#define MAX_SLICES   64             /* per tunnel and read batch */
#define UP_HEAD      16             /* room before t->up's bytes for a frame header */
#define TLS_RECORD   16384          /* TLS 1.3's largest record plaintext */

const struct hb_limits hb_default_limits = {
	.handshake_ms = 10000,
	.stall_ms = 30000,
	.connect_ms = 10000,
	.max_streams = 100,
	.stream_window = 1u << 20,
	.conn_window = 16u << 20,
	.tcp_buf = 256u << 10,
};

static const char *const close_names[HB_CLOSE_MAX] = {
	"normal", "tls", "handshake_timeout", "peer_identity", "http2", "stream_flood",
	"stall", "io",
};

const char *hb_close_name(enum hb_close r)
{
	return r < HB_CLOSE_MAX ? close_names[r] : "?";
}

struct hb_tunnel {
	struct loop_handler h;
	uint32_t magic;
	struct hb_conn *c;
	struct hb_tunnel *prev, *next;   /* in c->tunnels, or the loop's graveyard */
	int32_t sid;                     /* 0: the stream is gone */
	int32_t sid_saved;
	int fd;                          /* -1: closed */
	uint32_t ev;                     /* registered epoll events; 0: not in the set */
	void *targ;
	bool connecting;                 /* server: connect() to the destination */
	bool established;                /* 200 sent or received */
	bool tcp_eof;                    /* recv() returned 0 */
	bool eof_sent;                   /* END_STREAM handed to nghttp2 */
	bool h2_eof;                     /* END_STREAM received */
	bool shut_wr;                    /* shutdown(SHUT_WR) done */
	bool deferred;                   /* the data provider is waiting for bytes */
	bool dead;
	bool dirty;                      /* on c->dirty: t->down to send after the batch */
	struct hb_tunnel *dirty_next;
	uint8_t *up;                     /* TCP -> HTTP/2: UP_HEAD + lim.tcp_buf bytes,
					  * the data from up_off (>= UP_HEAD) to up_len */
	size_t up_off, up_len;
	struct buf down;                 /* HTTP/2 -> TCP, not yet written */
	/* HTTP/2 -> TCP bytes of the current read batch, after those in
	 * `down`: DATA payloads still in the loop's stage buffer, sent from
	 * there; what the socket does not take goes into `down` before the
	 * stage is used again (tunnel_flush) */
	struct iovec sl[MAX_SLICES];
	unsigned int nsl;
	size_t sl_bytes;
	struct hb_tunnel_stats st;
};

struct hb_conn {
	struct loop_handler h;
	uint32_t magic;
	struct hb_loop *l;
	struct hb_conn *prev, *next;
	struct hb_conn *hs_prev, *hs_next;   /* server, in its handshake: l->hs, oldest first */
	int fd;
	uint32_t ev;
	SSL *ssl;
	nghttp2_session *ng;
	struct hb_limits lim;
	const struct hb_ops *ops;
	void *arg, *user;
	bool server, connecting, handshaken, dead, retired, in_io;
	bool rx_drained;                 /* the last read() was short or failed */
	struct buf obuf;                 /* non-DATA frames for one SSL_write */
	struct buf tlsout;               /* TLS records not yet sent (our write BIO) */
	uint64_t created_ms, progress_ms;
	struct hb_tunnel *tunnels;
	struct hb_tunnel *dirty;         /* tunnels given bytes in this read batch */
	struct req *reqs;                /* server: requests whose headers are arriving */
	unsigned int ntunnels, refused;
	uint32_t goaway_error;           /* nghttp2 ended the session: our GOAWAY's code */
	char peer[256], local[256], addr[64];
	char **expect;                   /* client: the URI SANs accepted, NULL-terminated */
	enum hb_close why;
	char msg[640];                   /* may name three SPIFFE IDs */
};

struct hb_loop {
	struct loop base;
	struct hb_conn *conns;
	size_t nconns;
	size_t nhandshaking;             /* server connections in their TLS handshake, */
	struct hb_conn *hs, *hs_last;    /* oldest first (eviction) */
	struct hb_conn *dead_conns;
	struct hb_tunnel *dead_tunnels;
	uint64_t last_tick;
	uint8_t *stage;                  /* pump_in() decrypts into it: STAGE_LEN */
};

/* ---- the loop ----------------------------------------------------------- */

struct hb_loop *hb_loop_new(void)
{
	struct hb_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	if (loop_init(&l->base)) {
		free(l);
		return NULL;
	}
	return l;
}

struct loop *hb_loop_base(struct hb_loop *l) { return &l->base; }
size_t hb_loop_conns(const struct hb_loop *l) { return l->nconns; }
size_t hb_loop_handshaking(const struct hb_loop *l) { return l->nhandshaking; }

/* Register exactly `want` for fd; none at all when 0, so that a hung-up
 * socket we do not want to hear from cannot spin the loop. */
static void set_events(struct hb_loop *l, int fd, uint32_t *cur, uint32_t want,
		       struct loop_handler *h)
{
	if (fd < 0 || *cur == want)
		return;
	if (!want)
		loop_del(&l->base, fd);
	else if (!*cur)
		loop_add(&l->base, fd, want, h);
	else
		loop_mod(&l->base, fd, want, h);
	*cur = want;
}

/* ---- tunnels ------------------------------------------------------------ */

static void conn_update(struct hb_conn *c);
static void conn_die(struct hb_conn *c, enum hb_close why, const char *msg);
static int session_new(struct hb_conn *c);
static int pump_out(struct hb_conn *c);
static ssize_t up_read(nghttp2_session *ng, int32_t sid, uint8_t *dst, size_t len,
		       uint32_t *flags, nghttp2_data_source *src, void *ud);

static void tunnel_update(struct hb_tunnel *t)
{
	uint32_t want = 0;

	if (t->fd < 0 || t->dead)
		return;
	if (t->connecting)
		want = EPOLLOUT;
	else {
		if (t->established && !t->tcp_eof && t->up_len < UP_HEAD + t->c->lim.tcp_buf)
			want |= EPOLLIN;
		if (buf_avail(&t->down))
			want |= EPOLLOUT;
	}
	set_events(t->c->l, t->fd, &t->ev, want, &t->h);
}

/* Give the peer its window back for `n` bytes we are done with. */
static void consume(struct hb_tunnel *t, size_t n)
{
	if (!n || !t->c->ng)
		return;
	nghttp2_session_consume_connection(t->c->ng, n);
	if (t->sid)
		nghttp2_session_consume_stream(t->c->ng, t->sid, n);
}

static void tunnel_close_fd(struct hb_tunnel *t, bool rst)
{
	if (t->fd < 0)
		return;
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (t->ev)
		loop_del(&t->c->l->base, t->fd);
	t->ev = 0;
	close(t->fd);
	t->fd = -1;
	/* what we never wrote is given back, or the connection window shrinks */
	consume(t, buf_avail(&t->down) + t->sl_bytes);
	buf_free(&t->down);
	t->nsl = 0;
	t->sl_bytes = 0;
}

/* The slices into `down` (copied): before the stage is reused, or before a
 * byte that is not in the stage is queued after them. 0 or -ENOMEM. */
static int spill(struct hb_tunnel *t)
{
	int err = 0;

	for (unsigned int i = 0; i < t->nsl && !err; i++)
		err = buf_add(&t->down, t->sl[i].iov_base, t->sl[i].iov_len);
	t->nsl = 0;
	t->sl_bytes = 0;
	return err;
}

/* Queue `n` bytes for the TCP side: a slice when they are in the stage
 * buffer of the read batch under way, else a copy. -1: out of memory. */
static int queue_down(struct hb_tunnel *t, const uint8_t *d, size_t n)
{
	const uint8_t *st = t->c->l->stage;
	struct iovec *last = t->nsl ? &t->sl[t->nsl - 1] : NULL;

	if (!t->c->in_io || !st || d < st || d + n > st + STAGE_LEN)
		return spill(t) ?: buf_add(&t->down, d, n);
	if (last && (const uint8_t *)last->iov_base + last->iov_len == d) {
		last->iov_len += n;   /* a payload that went on in the next record */
	} else {
		if (t->nsl == MAX_SLICES && spill(t))
			return -ENOMEM;
		t->sl[t->nsl++] = (struct iovec){ .iov_base = (void *)d, .iov_len = n };
	}
	t->sl_bytes += n;
	return 0;
}

/* Both halves gone: report, unlink, free after this batch. */
static void tunnel_maybe_done(struct hb_tunnel *t)
{
	struct hb_conn *c = t->c;

	if (t->dead || t->sid || t->fd >= 0)
		return;
	t->dead = true;
	t->st.closed_ms = loop_now_ms();
	if (t->prev)
		t->prev->next = t->next;
	else
		c->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	c->ntunnels--;
	if (c->ops && c->ops->on_tunnel_close)
		c->ops->on_tunnel_close(c, &t->st, t->targ, c->arg);
	t->prev = NULL;
	t->next = c->l->dead_tunnels;
	c->l->dead_tunnels = t;
	if (c->retired && !c->ntunnels && !c->dead)
		conn_die(c, HB_CLOSE_NORMAL, "retired");
}

/* Reset both sides (either side failed or reset). */
static void tunnel_reset(struct hb_tunnel *t, uint32_t h2_code)
{
	t->st.reset = true;
	if (t->sid && t->c->ng && !t->c->dead)
		nghttp2_submit_rst_stream(t->c->ng, NGHTTP2_FLAG_NONE, t->sid, h2_code);
	tunnel_close_fd(t, true);
	/* the stream's close callback detaches it (sid = 0) */
}

/* Writing side of TCP: flush t->down, then the slices, in one sendmsg();
 * what the socket does not take is copied into t->down. Shut down once the
 * peer ended. */
static void tunnel_flush(struct hb_tunnel *t)
{
	while (t->fd >= 0 && (buf_avail(&t->down) || t->nsl)) {
		struct iovec iov[1 + MAX_SLICES];
		struct msghdr m = { .msg_iov = iov };
		size_t w, k;
		ssize_t r;

		if (buf_avail(&t->down))
			iov[m.msg_iovlen++] = (struct iovec){ t->down.d + t->down.off,
							      buf_avail(&t->down) };
		for (unsigned int i = 0; i < t->nsl; i++)
			iov[m.msg_iovlen++] = t->sl[i];
		r = sendmsg(t->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			tunnel_reset(t, NGHTTP2_CONNECT_ERROR);
			return;
		}
		w = (size_t)r;
		t->st.bytes_to_tcp += w;
		consume(t, w);
		k = w < buf_avail(&t->down) ? w : buf_avail(&t->down);
		t->down.off += k;
		w -= k;
		t->sl_bytes -= w;
		for (k = 0; k < t->nsl && w >= t->sl[k].iov_len; k++)
			w -= t->sl[k].iov_len;
		if (k < t->nsl) {   /* part of slice k went */
			t->sl[k].iov_base = (uint8_t *)t->sl[k].iov_base + w;
			t->sl[k].iov_len -= w;
		}
		memmove(t->sl, t->sl + k, (t->nsl - k) * sizeof(t->sl[0]));
		t->nsl -= (unsigned int)k;
	}
	if (t->nsl && spill(t)) {
		tunnel_reset(t, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	if (t->fd >= 0 && t->h2_eof && !buf_avail(&t->down) && !t->shut_wr) {
		shutdown(t->fd, SHUT_WR);
		t->shut_wr = true;
	}
	if (t->fd >= 0 && t->shut_wr && t->tcp_eof && t->eof_sent)
		tunnel_close_fd(t, false);
}

static void tunnel_read(struct hb_tunnel *t)
{
	size_t cap = UP_HEAD + t->c->lim.tcp_buf;

	if (t->up_off > UP_HEAD && cap - t->up_len < 65536) {
		/* room at the end only now and then: a window-limited stream
		 * keeps most of the buffer, moved on every read otherwise */
		memmove(t->up + UP_HEAD, t->up + t->up_off, t->up_len - t->up_off);
		t->up_len -= t->up_off - UP_HEAD;
		t->up_off = UP_HEAD;
	}
	while (t->fd >= 0 && !t->tcp_eof && t->up_len < cap) {
		ssize_t r = recv(t->fd, t->up + t->up_len, cap - t->up_len, MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			tunnel_reset(t, NGHTTP2_CONNECT_ERROR);
			return;
		}
		if (r == 0)
			t->tcp_eof = true;
		t->up_len += (size_t)r;
		if (r < 65536)
			break;   /* most likely drained; level-triggered anyway */
	}
	if (t->deferred && t->sid) {
		t->deferred = false;
		nghttp2_session_resume_data(t->c->ng, t->sid);
	}
}

static void tunnel_event(struct loop_handler *h, uint32_t events)
{
	struct hb_tunnel *t = (struct hb_tunnel *)h;
	struct hb_conn *c = t->c;

	if (t->magic != TUN_MAGIC || t->dead || t->fd < 0)
		return;
	if (t->connecting) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			/* the destination refused: answer 503, no tunnel */
			nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"503", 7, 3,
					  NGHTTP2_NV_FLAG_NONE };

			t->connecting = false;
			t->st.status = 503;
			tunnel_close_fd(t, false);
			if (t->sid)
				nghttp2_submit_response(c->ng, t->sid, &nv, 1, NULL);
			conn_update(c);
			return;
		}
		t->connecting = false;
		t->established = true;
		t->st.established = true;
		t->st.status = 200;
		{
			nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"200", 7, 3,
					  NGHTTP2_NV_FLAG_NONE };
			nghttp2_data_provider prd = { .source.ptr = t, .read_callback = up_read };

			if (t->sid && nghttp2_submit_response(c->ng, t->sid, &nv, 1, &prd))
				tunnel_reset(t, NGHTTP2_INTERNAL_ERROR);
		}
	} else {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			tunnel_read(t);
		if (t->fd >= 0 && (events & (EPOLLOUT | EPOLLERR)))
			tunnel_flush(t);
	}
	tunnel_update(t);
	tunnel_maybe_done(t);
	conn_update(c);
}

static struct hb_tunnel *tunnel_new(struct hb_conn *c, int fd, void *targ)
{
	struct hb_tunnel *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->up = malloc(UP_HEAD + c->lim.tcp_buf);
	t->up_off = t->up_len = UP_HEAD;
	if (!t->up) {
		free(t);
		return NULL;
	}
	t->h.fn = tunnel_event;
	t->magic = TUN_MAGIC;
	t->c = c;
	t->fd = fd;
	t->targ = targ;
	t->st.opened_ms = loop_now_ms();
	t->next = c->tunnels;
	if (c->tunnels)
		c->tunnels->prev = t;
	c->tunnels = t;
	c->ntunnels++;
	return t;
}

/* What a DATA frame took from t->up; the read buffer has room again. */
static void up_taken(struct hb_tunnel *t, size_t n)
{
	bool was_full = t->up_len >= UP_HEAD + t->c->lim.tcp_buf;

	t->up_off += n;
	t->st.bytes_from_tcp += n;
	if (t->up_off == t->up_len)
		t->up_off = t->up_len = UP_HEAD;
	if (was_full)
		tunnel_update(t);
}

/*
 * nghttp2's data provider for a tunnel: TCP bytes out as DATA. The bytes
 * are not copied into nghttp2's frame buffer (NO_COPY): send_data() puts
 * the frame header in the 9 bytes before the payload in t->up and hands
 * the frame to SSL_write from there, so the only copy on the way out is
 * OpenSSL's into its record. A DATA frame is one TLS record (data_len()).
 */
static ssize_t up_read(nghttp2_session *ng, int32_t sid, uint8_t *dst, size_t len,
		       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct hb_tunnel *t = src->ptr;
	size_t avail = t->up_len - t->up_off, n = avail < len ? avail : len;

	if (!avail && !t->tcp_eof) {
		t->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n)
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (n == avail && t->tcp_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		t->eof_sent = true;
		tunnel_update(t);
		tunnel_flush(t);   /* may close the fd; t->up stays until reaped */
	}
	return (ssize_t)n;
}

static int seal_obuf(struct hb_conn *c);
static int seal(struct hb_conn *c, const uint8_t *d, size_t n);

/* The 9 bytes before the payload were encrypted already (frames go out
 * in order) or are the headroom: the header overwrites them. Frames
 * nghttp2 produced before this one (in c->obuf) are encrypted first. */
static int send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
		     size_t len, nghttp2_data_source *src, void *ud)
{
	struct hb_conn *c = ud;
	struct hb_tunnel *t = src->ptr;
	uint8_t *frame = t->up + t->up_off - 9;

	if (f->data.padlen || len > t->up_len - t->up_off || t->up_off < 9)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (seal_obuf(c))
		return NGHTTP2_ERR_CALLBACK_FAILURE;   /* c->msg says why; the connection ends */
	memcpy(frame, framehd, 9);
	if (seal(c, frame, 9 + len))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	up_taken(t, len);
	return 0;
}

/* DATA payloads of at most a record less the frame header: each frame is
 * one record, never a full one and a 9-byte one. */
static ssize_t data_len(nghttp2_session *ng, uint8_t type, int32_t sid, int32_t conn_window,
			int32_t stream_window, uint32_t max_frame, void *ud)
{
	ssize_t n = TLS_RECORD - 9;

	if (conn_window < n)
		n = conn_window;
	if (stream_window < n)
		n = stream_window;
	if ((ssize_t)max_frame < n)
		n = (ssize_t)max_frame;
	return n > 0 ? n : 1;
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static struct hb_tunnel *stream_tunnel(struct hb_conn *c, int32_t sid)
{
	struct hb_tunnel *t = nghttp2_session_get_stream_user_data(c->ng, sid);

	return t && t->magic == TUN_MAGIC && !t->dead ? t : NULL;
}

/* A request whose header block is being received. It is kept in the
 * connection's list, not as the stream's user data: that is always a
 * tunnel, so bytes the peer chose (the method) are never read as one.
 * Header blocks do not interleave and a request leaves the list when its
 * headers end (server_request) or its stream closes, so the list is short. */
struct req {
	struct req *next;
	int32_t sid;
	char method[16];
	char authority[128];
	bool bad;
};

static struct req *req_of(struct hb_conn *c, int32_t sid)
{
	struct req *r = c->reqs;

	while (r && r->sid != sid)
		r = r->next;
	return r;
}

static void req_free(struct hb_conn *c, struct req *r)
{
	for (struct req **pp = &c->reqs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	free(r);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct hb_conn *c = ud;
	struct req *r;

	if (!c->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (c->retired || c->ntunnels >= c->lim.max_streams) {
		/* past what we allow: refused (counted in on_frame_send, with
		 * the streams nghttp2 refuses by itself) */
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
					  NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	r->sid = f->hd.stream_id;
	r->next = c->reqs;
	c->reqs = r;
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t nl, const uint8_t *val, size_t vl, uint8_t flags, void *ud)
{
	struct hb_conn *c = ud;

#define IS(lit) (nl == sizeof(lit) - 1 && memcmp(name, lit, nl) == 0)
	if (c->server) {
		struct req *r = req_of(c, f->hd.stream_id);

		if (!r || f->headers.cat != NGHTTP2_HCAT_REQUEST)
			return 0;
		if (IS(":method")) {
			if (vl >= sizeof(r->method))
				r->bad = true;
			else
				memcpy(r->method, val, vl);
		} else if (IS(":authority")) {
			if (vl >= sizeof(r->authority))
				r->bad = true;
			else
				memcpy(r->authority, val, vl);
		}
		return 0;
	}
	if (IS(":status") && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
		struct hb_tunnel *t = stream_tunnel(c, f->hd.stream_id);

		if (t && vl == 3)
			t->st.status = (val[0] - '0') * 100 + (val[1] - '0') * 10 + (val[2] - '0');
	}
#undef IS
	return 0;
}

static void server_request(struct hb_conn *c, int32_t sid, struct req *r)
{
	nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"400", 7, 3, NGHTTP2_NV_FLAG_NONE };
	struct hb_tunnel *t;
	void *targ = NULL;
	char st[4];
	int fd;

	/* flooded() ends the connection after this record: no more connect()s
	 * for it meanwhile */
	if (r->bad || strcmp(r->method, "CONNECT") != 0 || !r->authority[0] ||
	    c->refused > c->lim.max_streams) {
		req_free(c, r);
		nghttp2_submit_response(c->ng, sid, &nv, 1, NULL);
		return;
	}
	fd = c->ops && c->ops->on_connect ? c->ops->on_connect(c, sid, r->authority, &targ, c->arg)
					  : -503;
	req_free(c, r);
	if (fd < 0) {
		snprintf(st, sizeof(st), "%03d", -fd > 999 ? 503 : -fd);
		nv.value = (uint8_t *)st;
		nghttp2_submit_response(c->ng, sid, &nv, 1, NULL);
		c->refused++;   /* a peer that asks for nothing but refusals is cut off */
		return;
	}
	t = tunnel_new(c, fd, targ);
	if (!t) {
		struct hb_tunnel_stats s = { .status = 503, .opened_ms = loop_now_ms(), .closed_ms = loop_now_ms() };

		close(fd);
		if (c->ops && c->ops->on_tunnel_close)
			c->ops->on_tunnel_close(c, &s, targ, c->arg);
		nv.value = (uint8_t *)"503";
		nghttp2_submit_response(c->ng, sid, &nv, 1, NULL);
		return;
	}
	t->sid = t->sid_saved = sid;
	t->connecting = true;
	nghttp2_session_set_stream_user_data(c->ng, sid, t);
	tunnel_update(t);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct hb_conn *c = ud;
	struct hb_tunnel *t;

	if (c->server && f->hd.type == NGHTTP2_RST_STREAM) {
		/* a CONNECT cancelled before our answer cost us a connect() to
		 * the destination and nothing to the peer: counted with the
		 * refusals (rapid reset, CVE-2023-44487) */
		t = stream_tunnel(c, f->hd.stream_id);
		if (t && !t->established)
			c->refused++;
		return 0;
	}
	if (!c->server && f->hd.type == NGHTTP2_GOAWAY) {
		/* the server is going away (a proxy draining for its successor):
		 * no new tunnels here; the ones open finish, then it closes */
		c->retired = true;
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	if (c->server && f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		struct req *r = req_of(c, f->hd.stream_id);

		if (r && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			/* a CONNECT that ends at once has nothing to carry */
			r->bad = true;
		}
		if (r)
			server_request(c, f->hd.stream_id, r);
		return 0;
	}
	t = stream_tunnel(c, f->hd.stream_id);
	if (!t)
		return 0;
	if (!c->server && f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
		if (t->st.status != 200) {
			tunnel_reset(t, NGHTTP2_CANCEL);
			return 0;
		}
		t->established = t->st.established = true;
		tunnel_update(t);
	}
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		t->h2_eof = true;
		tunnel_flush(t);
		tunnel_update(t);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *d,
			 size_t n, void *ud)
{
	struct hb_conn *c = ud;
	struct hb_tunnel *t = stream_tunnel(c, sid);

	if (!t || t->fd < 0 || !t->established) {
		nghttp2_session_consume_connection(ng, n);
		nghttp2_session_consume_stream(ng, sid, n);
		return 0;
	}
	/* Held, not sent: flush_dirty() sends each tunnel's bytes once per
	 * read batch. t->down stays within the stream window: the window
	 * is handed back only for what send() took. */
	if (queue_down(t, d, n)) {
		nghttp2_session_consume_connection(ng, n);
		nghttp2_session_consume_stream(ng, sid, n);
		tunnel_reset(t, NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	if (!t->dirty) {
		t->dirty = true;
		t->dirty_next = c->dirty;
		c->dirty = t;
	}
	return 0;
}

/* After a read batch: each tunnel that got bytes sends them in one go. */
static void flush_dirty(struct hb_conn *c)
{
	while (c->dirty) {
		struct hb_tunnel *t = c->dirty;

		c->dirty = t->dirty_next;
		t->dirty = false;
		t->dirty_next = NULL;
		if (t->dead || t->fd < 0) {
			t->nsl = 0;   /* given back when the fd closed */
			t->sl_bytes = 0;
			continue;
		}
		tunnel_flush(t);
		tunnel_update(t);
		tunnel_maybe_done(t);
	}
}

/* Streams refused (by us or by nghttp2 past SETTINGS_MAX_CONCURRENT_STREAMS). */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct hb_conn *c = ud;

	if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR &&
	    !c->goaway_error) {
		/* nghttp2 found the peer breaking the protocol: say what */
		c->goaway_error = f->goaway.error_code;
		snprintf(c->msg, sizeof(c->msg), "HTTP/2: %.*s (GOAWAY %s)",
			 (int)(f->goaway.opaque_data_len < 200 ? f->goaway.opaque_data_len : 200),
			 (const char *)f->goaway.opaque_data,
			 nghttp2_http2_strerror(f->goaway.error_code));
	}
	if (c->server && f->hd.type == NGHTTP2_RST_STREAM &&
	    f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		c->refused++;
	return 0;
}

/* A peer that keeps opening streams we refuse, or cancels them before
 * our answer, is cut off: an open-and-refuse loop costs us as much as a
 * stream. The count drains by one a tick (10 a second, tick()), so a
 * long-lived connection is not cut off for refusals spread over time. */
static bool flooded(struct hb_conn *c)
{
	if (!c->server || c->dead || c->refused <= c->lim.max_streams)
		return false;
	conn_die(c, HB_CLOSE_STREAM_FLOOD,
		 "streams refused or cancelled before their answer, past the limit again and again");
	return true;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct hb_conn *c = ud;
	struct hb_tunnel *t = stream_tunnel(c, sid);
	struct req *r = c->server ? req_of(c, sid) : NULL;

	if (r)
		req_free(c, r);   /* a request that never got (valid) headers */
	if (!t)
		return 0;
	nghttp2_session_set_stream_user_data(ng, sid, NULL);
	/* consume(t) after this only gives the connection window back */
	t->sid = 0;
	if (code != NGHTTP2_NO_ERROR || !t->established || !t->eof_sent || !t->h2_eof) {
		t->st.reset = true;
		tunnel_close_fd(t, true);
	}
	if (t->fd >= 0)
		tunnel_flush(t);   /* what arrived is still written out */
	tunnel_update(t);
	tunnel_maybe_done(t);
	return 0;
}

/* ---- connections -------------------------------------------------------- */

/* A server connection leaves the handshake list (done, or dying in it). */
static void handshake_over(struct hb_conn *c)
{
	struct hb_loop *l = c->l;

	if (!c->server || c->handshaken)
		return;
	if (c->hs_prev)
		c->hs_prev->hs_next = c->hs_next;
	else
		l->hs = c->hs_next;
	if (c->hs_next)
		c->hs_next->hs_prev = c->hs_prev;
	else
		l->hs_last = c->hs_prev;
	c->hs_prev = c->hs_next = NULL;
	l->nhandshaking--;
}

static void conn_die(struct hb_conn *c, enum hb_close why, const char *msg)
{
	struct hb_loop *l = c->l;

	if (c->dead)
		return;
	c->dead = true;
	c->why = why;
	if (msg != c->msg)   /* callers pass c->msg itself: no overlapping copy */
		snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : hb_close_name(why));
	/* the TLS alert saying why, if the socket takes it now */
	if (buf_avail(&c->tlsout))
		(void)!send(c->fd, c->tlsout.d + c->tlsout.off, buf_avail(&c->tlsout),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
	c->dirty = NULL;   /* its tunnels are closed below */
	while (c->tunnels) {
		struct hb_tunnel *t = c->tunnels;

		t->st.reset = t->st.reset || !t->shut_wr || !t->eof_sent;
		tunnel_close_fd(t, t->st.reset);
		t->sid = 0;
		tunnel_maybe_done(t);
	}
	if (c->ev)
		loop_del(&l->base, c->fd);
	c->ev = 0;
	if (c->ops && c->ops->on_conn_close)
		c->ops->on_conn_close(c, why, c->msg, c->arg);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->nconns--;
	handshake_over(c);
	c->prev = NULL;
	c->next = l->dead_conns;
	l->dead_conns = c;
}

static void conn_free(struct hb_conn *c)
{
	for (char **e = c->expect; e && *e; e++)
		free(*e);
	free(c->expect);
	while (c->reqs)   /* a header block the session ended in */
		req_free(c, c->reqs);
	nghttp2_session_del(c->ng);
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->obuf);
	buf_free(&c->tlsout);
	c->magic = 0;
	free(c);
}

static void conn_update(struct hb_conn *c)
{
	uint32_t want = EPOLLIN;

	if (c->dead)
		return;
	if (c->handshaken && !c->in_io) {
		/* output produced by a tunnel event goes out now */
		if (pump_out(c)) {
			conn_die(c, HB_CLOSE_IO, c->msg[0] ? c->msg : "write failed");
			return;
		}
		if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
		    !buf_avail(&c->tlsout)) {
			if (c->goaway_error)
				conn_die(c, HB_CLOSE_HTTP2, c->msg);
			else
				conn_die(c, HB_CLOSE_NORMAL, "HTTP/2 session ended");
			return;
		}
	}
	if (c->connecting || buf_avail(&c->tlsout) ||
	    (c->handshaken && nghttp2_session_want_write(c->ng)))
		want |= EPOLLOUT;
	set_events(c->l, c->fd, &c->ev, want, &c->h);
}

/* A TLS failure into c->msg: -ECONNRESET when the peer closed, a failed
 * read's or write's -errno, else -EPROTO. */
static int tls_error(struct hb_conn *c, const char *what, int ret)
{
	int e = SSL_get_error(c->ssl, ret), err = errno;
	char msg[200] = "";

	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(c->msg, sizeof(c->msg), "%s: %s", what,
			 ret == 0 || !err ? "connection closed by peer" : strerror(err));
		return ret == 0 || !err ? -ECONNRESET : -err;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		snprintf(c->msg, sizeof(c->msg), "%s: connection closed by peer", what);
		return -ECONNRESET;
	}
	pki_log_errors_at(LOG_DEBUG, what, msg, sizeof(msg));
	snprintf(c->msg, sizeof(c->msg), "%s: %s", what, msg[0] ? msg : "failed");
	return -EPROTO;
}

/* Send what TLS wrote into c->tlsout; 0 also when the socket is full
 * (what is left waits for EPOLLOUT), -errno on an error. */
static int tls_flush(struct hb_conn *c)
{
	while (buf_avail(&c->tlsout)) {
		ssize_t w = send(c->fd, c->tlsout.d + c->tlsout.off, buf_avail(&c->tlsout),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			w = -errno;
			snprintf(c->msg, sizeof(c->msg), "TLS write: %s", strerror((int)-w));
			return (int)w;
		}
		c->tlsout.off += (size_t)w;
		c->progress_ms = loop_now_ms();
	}
	c->tlsout.off = c->tlsout.len = 0;
	return 0;
}

/* Encrypt n bytes into records in c->tlsout (our BIO takes them all):
 * 0, or -errno with c->msg set. */
static int seal(struct hb_conn *c, const uint8_t *d, size_t n)
{
	while (n) {
		int w;

		ERR_clear_error();
		w = SSL_write(c->ssl, d, (int)(n < INT_MAX ? n : INT_MAX));
		if (w <= 0)
			return tls_error(c, "TLS write", w);
		d += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The frames gathered in c->obuf, encrypted; obuf is empty after. */
static int seal_obuf(struct hb_conn *c)
{
	int err = buf_avail(&c->obuf) ? seal(c, c->obuf.d + c->obuf.off, buf_avail(&c->obuf)) : 0;

	c->obuf.off = c->obuf.len = 0;
	return err;
}

/*
 * Frames out: up to OUT_BATCH of nghttp2's output encrypted into
 * c->tlsout, one send(). Nothing new is encrypted while records wait for
 * the socket, so a peer that does not read holds at most OUT_BATCH plus a
 * record here; the rest stays behind the HTTP/2 flow control (and in the
 * tunnels' bounded buffers).
 */
static int pump_out(struct hb_conn *c)
{
	int rc;

	for (;;) {
		rc = tls_flush(c);
		if (rc)
			return rc;
		if (buf_avail(&c->tlsout))
			return 0;
		/* DATA frames go to tlsout as they come (send_data), the
		 * other frames gather in obuf */
		while (c->obuf.len + buf_avail(&c->tlsout) < OUT_BATCH) {
			const uint8_t *d;
			ssize_t n = nghttp2_session_mem_send(c->ng, &d);

			if (n < 0) {
				snprintf(c->msg, sizeof(c->msg), "HTTP/2: %s", nghttp2_strerror((int)n));
				return -EPROTO;
			}
			if (n == 0)
				break;
			if (buf_add(&c->obuf, d, (size_t)n)) {
				snprintf(c->msg, sizeof(c->msg), "out of memory");
				return -ENOMEM;
			}
		}
		rc = seal_obuf(c);
		if (rc)
			return rc;
		if (!buf_avail(&c->tlsout))
			return 0;
	}
}

/* Read a batch: plaintext into the loop's stage buffer, where the DATA
 * payloads stay (as slices of their tunnels) until flush_dirty() sends
 * them, so most bytes are not copied again on their way to TCP. */
static int pump_in(struct hb_conn *c, enum hb_close *why)
{
	size_t total = 0, used = 0;

	if (!c->l->stage) {
		c->l->stage = malloc(STAGE_LEN);
		if (!c->l->stage) {
			snprintf(c->msg, sizeof(c->msg), "out of memory");
			return -ENOMEM;
		}
	}

	/* past the budget only what OpenSSL already holds (read-ahead): the
	 * socket may be empty, so no event would bring us back for it */
	while ((total < READ_BUDGET || SSL_has_pending(c->ssl)) && !c->dead) {
		ssize_t taken;
		uint8_t *b;
		int r;

		if (STAGE_LEN - used < 16384) {
			/* only past the budget, with records OpenSSL holds */
			flush_dirty(c);
			used = 0;
			if (c->dead)
				return 0;
		}
		b = c->l->stage + used;
		ERR_clear_error();
		r = SSL_read(c->ssl, b, 16384);
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			if (e == SSL_ERROR_WANT_READ)
				return 0;
			*why = e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0)
			       ? HB_CLOSE_NORMAL : HB_CLOSE_IO;
			return tls_error(c, "TLS read", r);
		}
		total += (size_t)r;
		used += (size_t)r;
		taken = nghttp2_session_mem_recv(c->ng, b, (size_t)r);
		if (taken < 0) {
			snprintf(c->msg, sizeof(c->msg), "HTTP/2: %s", nghttp2_strerror((int)taken));
			*why = HB_CLOSE_HTTP2;
			return -EPROTO;
		}
		if (c->server && c->refused > c->lim.max_streams)
			break;   /* flooded(): not a record more */
		if (c->rx_drained && !SSL_has_pending(c->ssl))
			break;   /* the socket was empty: no read() just for EAGAIN */
	}
	return 0;
}

static int do_handshake(struct hb_conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned int alen = 0;
	int r, rc;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);

		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			rc = tls_flush(c);
			if (rc)
				conn_die(c, HB_CLOSE_IO, c->msg);
			return rc;
		}
		rc = tls_error(c, "TLS handshake", r);
		conn_die(c, HB_CLOSE_TLS, c->msg);   /* sends the alert if it can */
		return rc;
	}
	rc = tls_flush(c);
	if (rc) {
		conn_die(c, HB_CLOSE_IO, c->msg);
		return rc;
	}
	SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
	if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
		conn_die(c, HB_CLOSE_TLS, "the peer did not negotiate ALPN h2");
		return -EPROTO;
	}
	if (pki_peer_uri(c->ssl, c->peer, sizeof(c->peer))) {
		conn_die(c, HB_CLOSE_TLS, "the peer's certificate has no URI SAN or did not verify");
		return -EACCES;
	}
	if (!c->server && !hb_peer_expected(c->peer, (const char *const *)c->expect)) {
		size_t n = (size_t)snprintf(c->msg, sizeof(c->msg), "the server presented %s, expected",
					   c->peer);

		for (char **e = c->expect; *e && n < sizeof(c->msg); e++)
			n += (size_t)snprintf(c->msg + n, sizeof(c->msg) - n, "%s %s",
					      e == c->expect ? "" : " or", *e);
		conn_die(c, HB_CLOSE_PEER, c->msg);
		return -EACCES;
	}
	if (!SSL_get_certificate(c->ssl) ||
	    pki_cert_uri(SSL_get_certificate(c->ssl), c->local, sizeof(c->local)))
		c->local[0] = 0;
	if (c->server && c->ops && c->ops->on_peer && c->ops->on_peer(c, c->peer, c->arg)) {
		conn_die(c, HB_CLOSE_PEER, "the peer's identity is refused");
		return -EACCES;
	}
	if (c->server && session_new(c)) {
		conn_die(c, HB_CLOSE_IO, "out of memory for the HTTP/2 session");
		return -ENOMEM;
	}
	handshake_over(c);
	c->handshaken = true;
	c->progress_ms = loop_now_ms();
	/* authenticated: a larger read buffer (from the next one on), and
	 * buffers kept between messages instead of freed and allocated again
	 * for each (a malloc and free of 64 KiB per round trip) */
	SSL_set_default_read_buffer_len(c->ssl, TLS_RBUF);
	SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

static void conn_event(struct loop_handler *h, uint32_t events)
{
	struct hb_conn *c = (struct hb_conn *)h;
	enum hb_close why = HB_CLOSE_IO;

	if (c->magic != CONN_MAGIC || c->dead)
		return;
	if (c->connecting) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			char m[128];

			snprintf(m, sizeof(m), "connect: %s", strerror(soerr ? soerr : errno));
			conn_die(c, HB_CLOSE_IO, m);
			return;
		}
		c->connecting = false;
	}
	if (!c->handshaken) {
		if (do_handshake(c) || c->dead)
			return;
		if (!c->handshaken) {
			conn_update(c);
			return;
		}
	}
	c->in_io = true;
	if (pump_in(c, &why)) {
		c->in_io = false;
		conn_die(c, why, c->msg);
		return;
	}
	c->in_io = false;
	flush_dirty(c);
	if (c->dead || flooded(c))
		return;
	if (pump_out(c)) {
		conn_die(c, HB_CLOSE_IO, c->msg);
		return;
	}
	if (!flooded(c))
		conn_update(c);
}

/* ---- the TLS transport: our BIO over the socket ----------------------------- */

/* OpenSSL writes every record (16 KiB at most) with its own write() to a
 * socket BIO; ours collects them, and tls_flush() sends them together. */
static int bio_write(BIO *b, const char *d, int n)
{
	struct hb_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	return buf_add(&c->tlsout, d, (size_t)n) ? -1 : n;
}

/* Reads as a socket BIO does, and notes a short read: the socket was
 * drained then, so pump_in() stops without another read() that would only
 * say EAGAIN (the loop is level-triggered: bytes arriving later wake it). */
static int bio_read(BIO *b, char *d, int n)
{
	struct hb_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	do
		r = recv(c->fd, d, (size_t)n, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN)
			BIO_set_retry_read(b);
		c->rx_drained = true;
		return -1;
	}
	c->rx_drained = r < n;
	return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct hb_conn *c = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;   /* tls_flush() sends, never blocking */
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = c->fd;
		return c->fd;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "hbone socket");

	if (m && BIO_meth_set_write(m, bio_write) == 1 && BIO_meth_set_read(m, bio_read) == 1 &&
	    BIO_meth_set_ctrl(m, bio_ctrl) == 1 && BIO_meth_set_create(m, bio_create) == 1)
		bio_method = m;
	else
		BIO_meth_free(m);
}

/* The server's certificate is chosen after the ClientHello: on_sni may
 * put another one on this SSL than the context's. */
static int cert_cb(SSL *ssl, void *arg)
{
	struct hb_conn *c = arg;

	if (!c->ops || !c->ops->on_sni)
		return 1;
	return c->ops->on_sni(c, ssl, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
			      c->arg) ? 0 : 1;
}

/* Reads from the socket with read-ahead (many records per read()), writes
 * into c->tlsout. 0 or -ENOMEM. */
static int tls_set_bios(struct hb_conn *c)
{
	BIO *b;

	pthread_once(&bio_once, bio_init);
	b = bio_method ? BIO_new(bio_method) : NULL;
	if (!b)
		return -ENOMEM;
	BIO_set_data(b, c);
	SSL_set_bio(c->ssl, b, b);   /* one reference, both directions */
	SSL_set_read_ahead(c->ssl, 1);
	/* one SSL_write encrypts all it is given (the BIO never blocks) */
	SSL_clear_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* a handshake that never completes holds no TLS buffers between
	 * events; do_handshake() keeps them for authenticated peers */
	SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/* The HTTP/2 session, with our SETTINGS queued. 0 or -1. */
static int session_new(struct hb_conn *c)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[3];
	int rc = -1;

	if (nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt))
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, data_len);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_settings(opt, 32);
	if (c->server ? nghttp2_session_server_new2(&c->ng, cbs, c, opt)
		      : nghttp2_session_client_new2(&c->ng, cbs, c, opt))
		goto out;
	iv[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
					  c->server ? c->lim.max_streams : 0 };
	iv[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->lim.stream_window };
	iv[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 };
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 3) ||
	    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)c->lim.conn_window))
		goto out;
	rc = 0;
out:
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	return rc;
}

static struct hb_conn *conn_new(struct hb_loop *l, int fd, SSL_CTX *ctx,
				const struct hb_limits *lim, const struct hb_ops *ops,
				void *arg, bool server)
{
	struct hb_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1;

	if (!c || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	c->h.fn = conn_event;
	c->magic = CONN_MAGIC;
	c->l = l;
	c->fd = fd;
	c->server = server;
	c->connecting = !server;
	c->lim = *(lim ? lim : &hb_default_limits);
	c->ops = ops;
	c->arg = arg;
	c->created_ms = c->progress_ms = loop_now_ms();
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		char a[INET6_ADDRSTRLEN] = "?";

		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
			snprintf(c->addr, sizeof(c->addr), "%s:%u", a,
				 ntohs(((struct sockaddr_in *)&ss)->sin_port));
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
			snprintf(c->addr, sizeof(c->addr), "[%s]:%u", a,
				 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		}
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || tls_set_bios(c)) {
		pki_log_errors("creating a TLS session", NULL, 0);
		goto fail;
	}
	if (server) {
		SSL_set_accept_state(c->ssl);
		SSL_set_cert_cb(c->ssl, cert_cb, c);
	} else
		SSL_set_connect_state(c->ssl);
	/* a server's session waits for the handshake: a peer that never
	 * finishes one does not hold it (26 KiB) */
	if (!server && session_new(c))
		goto fail;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	l->nconns++;
	if (server) {
		c->hs_prev = l->hs_last;
		if (l->hs_last)
			l->hs_last->hs_next = c;
		else
			l->hs = c;
		l->hs_last = c;
		l->nhandshaking++;
	}
	conn_update(c);
	return c;
fail:
	if (c) {
		c->fd = fd;
		conn_free(c);
	} else {
		close(fd);
	}
	return NULL;
}

struct hb_conn *hb_server_conn(struct hb_loop *l, int fd, SSL_CTX *ctx,
			       const struct hb_limits *lim, const struct hb_ops *ops, void *arg)
{
	return conn_new(l, fd, ctx, lim, ops, arg, true);
}

bool hb_peer_expected(const char *presented, const char *const *expect)
{
	for (; presented && expect && *expect; expect++)
		if (!strcmp(presented, *expect))
			return true;
	return false;
}

struct hb_conn *hb_client_conn(struct hb_loop *l, int fd, SSL_CTX *ctx,
			       const struct hb_limits *lim, const char *sni,
			       const char *const *expect, const struct hb_ops *ops, void *arg)
{
	struct hb_conn *c = conn_new(l, fd, ctx, lim, ops, arg, false);
	size_t n = 0;
	bool ok;

	if (!c)
		return NULL;
	while (expect && expect[n])
		n++;
	/* the handshake starts once connect() completes: not before this */
	c->expect = calloc(n + 1, sizeof(*c->expect));
	ok = c->expect != NULL;
	for (size_t i = 0; ok && i < n; i++)
		ok = (c->expect[i] = strdup(expect[i])) != NULL;
	if (!ok || (sni && !SSL_set_tlsext_host_name(c->ssl, sni))) {
		conn_die(c, HB_CLOSE_IO, "out of memory");
		return NULL;
	}
	return c;
}

bool hb_loop_evict_handshaking(struct hb_loop *l)
{
	if (!l->hs)
		return false;
	conn_die(l->hs, HB_CLOSE_HANDSHAKE_TIMEOUT,
		 "TLS handshake unfinished at the connection limit: the oldest such made room");
	return true;
}

void hb_conn_close(struct hb_conn *c)
{
	if (c && !c->dead)
		conn_die(c, HB_CLOSE_NORMAL, "closed");
}

void hb_conn_retire(struct hb_conn *c)
{
	if (!c || c->dead || c->retired)
		return;
	c->retired = true;
	if (!c->ntunnels)
		conn_die(c, HB_CLOSE_NORMAL, "retired");
}

void hb_conn_drain(struct hb_conn *c)
{
	if (!c || c->dead || !c->server || !c->handshaken || !c->ng)
		return;
	nghttp2_submit_shutdown_notice(c->ng);
	conn_update(c);
}

bool hb_conn_retired(const struct hb_conn *c) { return c->retired; }
bool hb_conn_usable(const struct hb_conn *c)
{
	return !c->dead && !c->retired && c->ntunnels < c->lim.max_streams &&
	       (!c->handshaken || nghttp2_session_get_remote_settings(
			c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) > c->ntunnels);
}
unsigned int hb_conn_tunnels(const struct hb_conn *c) { return c->ntunnels; }
const char *hb_conn_peer(const struct hb_conn *c) { return c->peer[0] ? c->peer : NULL; }
const char *hb_conn_local(const struct hb_conn *c) { return c->local[0] ? c->local : NULL; }
enum hb_close hb_conn_why(const struct hb_conn *c) { return c->why; }
const char *hb_conn_addr(const struct hb_conn *c) { return c->addr; }
void hb_conn_set_user(struct hb_conn *c, void *u) { c->user = u; }
void *hb_conn_user(const struct hb_conn *c) { return c->user; }

int hb_tunnel_open(struct hb_conn *c, const char *authority, int fd, void *targ)
{
	nghttp2_nv nv[2] = {
		{ (uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority),
		  NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider prd = { .read_callback = up_read };
	struct hb_tunnel *t;
	int32_t sid;
	int rc;

	if (c->dead || c->retired) {
		rc = -ENOTCONN;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	t = tunnel_new(c, fd, targ);
	if (!t) {
		rc = -ENOMEM;
		goto fail;
	}
	prd.source.ptr = t;
	sid = nghttp2_submit_request(c->ng, NULL, nv, 2, &prd, t);
	if (sid < 0) {
		/* undo: not reported, the caller learns it from the -errno */
		c->tunnels = t->next;
		if (t->next)
			t->next->prev = NULL;
		c->ntunnels--;
		free(t->up);
		free(t);
		rc = sid == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
		goto fail;
	}
	t->sid = t->sid_saved = sid;
	{
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	tunnel_update(t);
	conn_update(c);
	return 0;
fail:
	{
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	return rc;
}

/* ---- timers and dispatch ------------------------------------------------- */

static void tick(struct hb_loop *l)
{
	uint64_t now = loop_now_ms();
	struct hb_conn *c, *next;

	for (c = l->conns; c; c = next) {
		next = c->next;
		if (!c->handshaken && now - c->created_ms > c->lim.handshake_ms) {
			conn_die(c, c->connecting ? HB_CLOSE_IO : HB_CLOSE_HANDSHAKE_TIMEOUT,
				 c->connecting ? "connect timed out" : "TLS handshake timed out");
			continue;
		}
		if (buf_avail(&c->tlsout) && now - c->progress_ms > c->lim.stall_ms) {
			conn_die(c, HB_CLOSE_STALL, "peer stopped reading: no write progress");
			continue;
		}
		if (c->refused)
			c->refused--;   /* flooded(): refusals spread over time are forgiven */
		for (struct hb_tunnel *t = c->tunnels, *tn; t; t = tn) {
			tn = t->next;
			if (t->connecting && now - t->st.opened_ms > c->lim.connect_ms) {
				nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)"504", 7, 3,
						  NGHTTP2_NV_FLAG_NONE };

				t->connecting = false;
				t->st.status = 504;
				tunnel_close_fd(t, false);
				if (t->sid)
					nghttp2_submit_response(c->ng, t->sid, &nv, 1, NULL);
			}
		}
		conn_update(c);
	}
}

static void reap(struct hb_loop *l)
{
	while (l->dead_tunnels) {
		struct hb_tunnel *t = l->dead_tunnels;

		l->dead_tunnels = t->next;
		buf_free(&t->down);
		free(t->up);
		t->magic = 0;
		free(t);
	}
	while (l->dead_conns) {
		struct hb_conn *c = l->dead_conns;

		l->dead_conns = c->next;
		conn_free(c);
	}
}

int hb_loop_run(struct hb_loop *l, int timeout_ms)
{
	uint64_t now;
	int n = loop_wait(&l->base, timeout_ms);

	if (n < 0)
		return n;
	now = loop_now_ms();
	if (now - l->last_tick >= TICK_MS) {
		l->last_tick = now;
		tick(l);
	}
	reap(l);
	return 0;
}

void hb_loop_drain(struct hb_loop *l)
{
	for (struct hb_conn *c = l->conns; c; c = c->next) {
		if (c->server)
			hb_conn_drain(c);
		else
			hb_conn_retire(c);
	}
}

void hb_loop_close_conns(struct hb_loop *l)
{
	while (l->conns)
		conn_die(l->conns, HB_CLOSE_NORMAL, "shutting down");
	reap(l);
}

void hb_loop_free(struct hb_loop *l)
{
	if (!l)
		return;
	hb_loop_close_conns(l);
	free(l->stage);
	loop_fini(&l->base);
	free(l);
}
