/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sltest.h - what the parts of sltest share: limits, the client target and
 * options, the serving loop's state (xfer-serve reuses it) and each part's
 * entry points. The modes and their output are specified at the top of
 * sltest.c. Functions return 0 or -errno unless they say otherwise; errors
 * are printed as errno names (errname()).
 */
#ifndef SLTEST_H
#define SLTEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NAME_LEN	128	/* longest backend name, without "\n" */
#define ADDR_STRLEN	(INET6_ADDRSTRLEN + 16)
#define CONN_BUF	2048	/* echo buffer of one served connection */
#define LISTEN_BACKLOG	4096
#define EPOLL_BATCH	64
#define ACCEPT_BATCH	64	/* accepts per wakeup, for fairness */
#define UDP_BATCH	64	/* datagrams per wakeup */
#define PUMP_ROUNDS	16	/* reads per connection per wakeup */
#define TALLY_MAX	64	/* distinct keys in a JSON count object */
#define HOLD_LINE	16
#define CRR_REQ		64
#define MAX_PARALLEL	1024


/* common.c: errno names, clocks, numbers, addresses, JSON output. */
struct tally {
	int n;
	struct {
		char key[NAME_LEN + 1];
		unsigned long count;
	} e[TALLY_MAX];
};

const char *errname(int err);
long long now_ms(void);
void sleep_ms(long long ms);
bool file_exists(const char *path);
int make_addr(const char *host, int port, struct sockaddr_storage *ss,
	      socklen_t *len);
int parse_num(const char *s, long long min, long long max,
	      long long *out);
int parse_secs(const char *s, long long *ms);
int parse_addr(const char *s, struct sockaddr_storage *ss,
	       socklen_t *len);
char *fmt_addr(const struct sockaddr_storage *ss, char *buf,
	       size_t size);
void json_str(const char *s);
void tally_add(struct tally *t, const char *key, unsigned long n);
void tally_print(const char *field, const struct tally *t);

/* client_io.c: nonblocking client sockets, every wait bounded. */
struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int timeout_ms;
};

int tcp_open(const struct target *t, char *name);
int echo_check(int fd, const char *msg, size_t len, int timeout_ms);
int tcp_ping(const struct target *t, char *name,
	     struct sockaddr_storage *peer);
int tcp_name(const struct target *t, char *name);
int udp_exchange(const struct target *t, char *name,
		 struct sockaddr_storage *from);

/* client.c: the client modes; xfer_client.c: xfer. */
struct opts {
	struct target t;
	bool udp;
	long long count;
	long long duration_ms;
	long long max_ms;
	long long interval_ms;
	long long parallel;
	const char *until;
	long long up;		/* xfer */
	long long down;
	long long msg;		/* 0: random */
	long long seed;
	long long timeout_s;
	long long bind_port;	/* xfer: 0 any */
	bool no_half_close;
	bool verbose;
};

int run_connect(const struct opts *o);
int run_spread(const struct opts *o);
int run_loop(const struct opts *o);
int run_hold(const struct opts *o);
int run_crr(const struct opts *o);
int run_xfer(const struct opts *o);

/* serve.c: the backend, one thread, level-triggered epoll. */
enum src_type { SRC_SIG, SRC_TCP, SRC_UDP, SRC_CONN };

/* What an epoll event points at; first member of struct conn. */
struct src {
	enum src_type type;
	int fd;
};

struct conn;

struct server {
	const char *mode;		/* for messages: "serve" */
	char line[NAME_LEN + 2];	/* "NAME\n" */
	char prefix[NAME_LEN + 2];	/* "NAME " */
	size_t name_len;
	int epfd;
	struct src sig, tcp, udp;
	struct conn *conns;
	bool stop;
};

struct serve_opts {
	const char *name;
	const char *bind;
	const char *ready;
	long long tcp_port;
	long long udp_port;
};

void serve_warn(const char *what, int err);
int open_socket(struct server *s, struct src *src, int type,
		const char *host, int port);
int open_signals(struct server *s);
int touch(const char *path);
void raise_nofile(void);
int run_serve(const struct serve_opts *o);

/* xfer_serve.c: the bulk transfer peer. */
struct xfer_serve_opts {
	const char *bind;
	const char *ready;
	long long tcp_port;
	long long max_ms;
};

int run_xfer_serve(const struct xfer_serve_opts *o);

#endif
