/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xfer.h - the xfer modes' wire format (specified at the top of sltest.c),
 * their streams, blocking I/O and SHA-256, shared by xfer-serve and xfer.
 */
#ifndef SLTEST_XFER_H
#define SLTEST_XFER_H

#include "sltest.h"

#define XFER_MAGIC	"SLX1"
#define XFER_F_NO_HALF_CLOSE 1U	/* header flags */
#define XFER_HDR_LEN	32
#define XFER_TRL_LEN	64
#define XFER_SERVER_XOR	0x5a5a5a5aU	/* server stream: seed ^ this */
#define XFER_RANDOM_MAX	262144		/* --msg random: 1..this */
#define XFER_MSG_MAX	(16 << 20)	/* largest fixed message */
#define XFER_BYTES_MAX	(1LL << 50)
#define XFER_RBUF	(128 << 10)	/* recv() size */
#define XFER_SINK	4096		/* recv() size where EOF is due */
#define XFER_STACK	(256 << 10)

struct xfer_hdr {
	uint32_t flags;		/* XFER_F_* */
	uint64_t up;		/* bytes client to server */
	uint64_t down;		/* bytes server to client */
	uint32_t seed;
	uint32_t msg;		/* send() size, 0: random */
};

enum xfer_status {
	XFER_OK,
	XFER_MISMATCH,		/* a byte differed from the stream */
	XFER_SHORT,		/* EOF or an error before all the bytes */
	XFER_EOF_ERROR,		/* recv() failed where EOF was due */
	XFER_EXTRA,		/* recv() returned bytes where EOF was due */
};

extern const char *const xfer_status_names[XFER_EXTRA + 1];	/* by status */

struct xfer_trailer {
	unsigned char sha[32];	/* of the bytes received, at most up */
	uint64_t count;		/* bytes received, at most up */
	uint32_t status;	/* enum xfer_status */
};

/* sha256.c: SHA-256 (FIPS 180-4). */
struct sha256 {
	uint32_t h[8];
	uint64_t len;			/* bytes hashed so far */
	unsigned char buf[64];		/* partial block: len % 64 bytes */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, unsigned char out[32]);
void sha256_hex(const unsigned char sha[32], char hex[65]);

/* One direction, sending: total bytes of a stream in msg-sized send()s. */
struct xfer_tx {
	int fd;
	uint64_t total;
	uint32_t seed;
	uint32_t msg;
	bool shut_wr;		/* shutdown(SHUT_WR) once all is sent */
	struct sha256 *sha;	/* of what was sent, or NULL */
	uint64_t sent;		/* atomic: for the alarm handler */
	int err;		/* -errno */
	long long done_ms;
};

/* One direction, receiving: total bytes, each checked, all hashed. */
struct xfer_rx {
	int fd;
	uint64_t total;
	uint32_t seed;
	struct sha256 sha;
	uint64_t received;	/* atomic: for the alarm handler */
	uint64_t bad_at;	/* offset of the first wrong byte, or UINT64_MAX */
	long long done_ms;
};

void xfer_hdr_put(unsigned char *p, const struct xfer_hdr *h);
int xfer_hdr_get(const unsigned char *p, struct xfer_hdr *h);
void xfer_trl_put(unsigned char *p, const struct xfer_trailer *t);
void xfer_trl_get(const unsigned char *p, struct xfer_trailer *t);
int bsend_all(int fd, const void *buf, size_t len);
ssize_t brecv(int fd, void *buf, size_t len);
int brecv_exact(int fd, void *buf, size_t len);
enum xfer_status xfer_eof(int fd, int *err);
int xfer_thread(pthread_t *tid, void *(*fn)(void *), void *arg,
		bool detach);
void *xfer_tx_run(void *arg);
int xfer_recv(struct xfer_rx *rx);

#endif
