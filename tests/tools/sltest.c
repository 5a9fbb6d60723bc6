// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sltest.c - the test and benchmark peer of the end-to-end tests.
 *
 * Contract:
 *   sltest serve --name NAME [--tcp PORT] [--udp PORT] [--bind ADDR]
 *                [--ready FILE]
 *	A backend. TCP: write "NAME\n" on accept, then echo every byte until
 *	the peer closes. UDP: answer each datagram, to its source, with
 *	"NAME " followed by the payload. Binds to :: with IPV6_V6ONLY=0 unless
 *	--bind gives an IPv4 or IPv6 literal. One thread, epoll, nonblocking
 *	sockets, a fixed buffer per connection: a connection is not read while
 *	its echo is blocked. Creates FILE once listening; exits 0 on SIGTERM
 *	or SIGINT. Prints nothing on stdout, errors on stderr.
 *   sltest connect|spread|loop|hold|crr --to ADDR ...
 *	Clients. Each prints exactly one JSON object on one line on stdout;
 *	see usage() for the modes and their output.
 *   sltest xfer-serve --tcp PORT [--bind ADDR] [--ready FILE]
 *                     [--max-seconds S]
 *   sltest xfer --to ADDR --up BYTES --down BYTES [--msg SPEC] [--seed N]
 *               [--parallel P] [--timeout-s S] [--verbose]
 *	Bulk transfer both ways at once with a half-close, for the socket
 *	fast path (sockmap/sk_msg redirection): every byte must arrive,
 *	intact and in order, and a blocking recv() must return 0 at EOF,
 *	never fail with EAGAIN. Both ends use BLOCKING sockets, plain
 *	blocking send()/recv() (only EINTR is retried), no poll(), no
 *	SO_RCVTIMEO; two threads per connection, one sending, one receiving.
 *	xfer-serve binds like serve, runs until SIGTERM/SIGINT or S seconds
 *	(default 300) and exits 0; it reports bad connections on stderr.
 *	xfer runs P (default 1) connections at once, connection i with seed
 *	N+i (default N 1), and is bounded by alarm(S) (default 120), which
 *	prints a failure line and exits 1. The protocol, per connection:
 *
 *	client -> server, header, 32 bytes, integers big-endian:
 *	   0  4  magic "SLX1"
 *	   4  4  u32 flags: bit 0 NO_HALF_CLOSE (below); others must be 0
 *	   8  8  u64 up: bytes client -> server
 *	  16  8  u64 down: bytes server -> client
 *	  24  4  u32 seed
 *	  28  4  u32 msg: send() size, 1..16777216; 0: random, 1..262144
 *	Then, at once: the client sends up bytes of stream(seed) and shuts
 *	down SHUT_WR; the server sends down bytes of stream(seed ^
 *	0x5a5a5a5a). Each side checks every byte it receives against the
 *	stream as it arrives and hashes it (SHA-256). The server then expects
 *	EOF: its next recv() must return 0. It sends the
 *	server -> client trailer, 64 bytes, big-endian:
 *	   0 32  SHA-256 of the bytes received (at most up)
 *	  32  8  u64 count of bytes received (at most up)
 *	  40  4  u32 status: 0 ok, 1 mismatch (a byte differed), 2 short (EOF
 *	         or an error before up bytes), 3 EOF error (recv() failed
 *	         where EOF was due), 4 extra (bytes where EOF was due); the
 *	         first that applies, in this order
 *	  44 20  zero
 *	then shuts down SHUT_WR, reads until recv() returns 0 (the client's
 *	FIN, already read unless status is 3 or 4: this drains, so that
 *	close() cannot reset the connection under the trailer) and closes. The
 *	client reads down bytes, the trailer, then recv() must return 0;
 *	then it closes. A header with a bad magic, flags or msg gets no
 *	trailer: the server closes the connection.
 *
 *	With NO_HALF_CLOSE (xfer --no-half-close) nobody shuts down a
 *	writing side: the server reads exactly up bytes, sends the trailer
 *	and closes; the client reads down bytes, the trailer and EOF (0).
 *
 *	stream(s) is the bytes of the outputs of xorshift64* (x ^= x >> 12;
 *	x ^= x << 25; x ^= x >> 27; output x * 0x2545f4914f6cdd1d), each
 *	least significant byte first, with x = splitmix64(s) (or 1 if that
 *	is 0). The random message sizes of the side sending stream(s) are
 *	1 + output % 262144 of the same generator started at
 *	splitmix64(1 << 32 | s): independent of the data. The sizes apply to
 *	the send() calls; each message is sent whole before the next (send()
 *	is repeated until it is).
 *
 * ADDR is IP:PORT or [IPv6]:PORT. The socket has the family of the address,
 * so [::ffff:a.b.c.d]:PORT is the dual-stack case: IPv4 through an AF_INET6
 * socket. Errors are errno names ("ECONNREFUSED", or "E<n>" when the name is
 * not in the table). The protocol's own failures are also errno names: the
 * peer closing early is EPIPE, a malformed name line is EPROTO and a wrong
 * echo or UDP payload is EBADMSG. UDP client sockets set IP_RECVERR, so a
 * port unreachable reply is ECONNREFUSED rather than ETIMEDOUT.
 *
 * Every client step (connect, each read, each echo) has a deadline of
 * --timeout ms (default 2000) and every client mode has a bound on its
 * total run time, so no client blocks forever. xfer alone blocks without
 * a deadline per step, by design, inside its --timeout-s bound.
 *
 * Exit status: 0 success, 1 failure (as defined per mode), 2 usage error.
 */
#include "xfer.h"

/* -------------------------------------------------------------------------
 * Command line.
 */

static void usage(FILE *f)
{
	fprintf(f,
"usage: sltest MODE [OPTIONS]\n"
"\n"
"  serve   --name NAME [--tcp PORT] [--udp PORT] [--bind ADDR] [--ready FILE]\n"
"          Backend. TCP: send \"NAME\\n\", then echo until the peer closes.\n"
"          UDP: reply \"NAME <payload>\" to each datagram's source. Binds ::\n"
"          dual-stack unless --bind gives an IP literal. Creates FILE once\n"
"          listening; runs until SIGTERM/SIGINT, then exits 0.\n"
"  connect --to ADDR [--udp] [--timeout MS]\n"
"          One exchange: {\"ok\":true,\"backend\":N,\"peer\":A,\"echo\":true}\n"
"          (TCP: name line, getpeername(), \"ping\\n\" echoed) or\n"
"          {\"ok\":true,\"backend\":N,\"from\":A,\"payload_ok\":true} (UDP:\n"
"          unconnected socket, sendto(), recvfrom()), or\n"
"          {\"ok\":false,\"error\":\"ECONNREFUSED\"}.\n"
"  spread  --to ADDR -n N [--udp] [--timeout MS] [--max-seconds S]\n"
"          N sequential exchanges, each on a fresh socket:\n"
"          {\"total\":N,\"ok\":K,\"backends\":{..},\"errors\":{..}}.\n"
"          Attempts not made within S seconds (default 60) count as ETIME.\n"
"  loop    --to ADDR (--duration SEC | --until FILE) [--max-seconds S]\n"
"          [--timeout MS]\n"
"          Back-to-back connections (connect, name line, close) until SEC\n"
"          passed or FILE exists (at most S seconds, default 60):\n"
"          {\"ok\":K,\"failed\":F,\"max_ms\":M,\"errors\":{..},\"backends\":{..},\n"
"          \"stopped\":..}; M is the longest connection's time, from connect() to close\n"
"  hold    --to ADDR --until FILE [--interval-ms MS] [--max-seconds S]\n"
"          [--timeout MS]\n"
"          One connection; a checked 16-byte echo every MS (default 50)\n"
"          until FILE exists (at most S seconds, default 60); stops at the\n"
"          first failure: {\"backend\":N,\"exchanges\":X,\"failed\":F,..}\n"
"  crr     --to ADDR --duration SEC [--parallel P] [--timeout MS]\n"
"          P threads (default 1) of connect, name line, 64-byte echo, close:\n"
"          {\"connections\":N,\"errors\":E,\"seconds\":S,\"rate\":R}\n"
"  xfer-serve --tcp PORT [--bind ADDR] [--ready FILE] [--max-seconds S]\n"
"          Bulk transfer peer (protocol: top comment of sltest.c). Per\n"
"          connection: read the header, then at once check the client's\n"
"          stream and its EOF and send our own; then a 64-byte trailer\n"
"          (SHA-256, count, status of what was received), SHUT_WR, close.\n"
"          Blocking sockets, a thread per direction. Binds like serve;\n"
"          runs until SIGTERM/SIGINT or S seconds (default 300): exit 0.\n"
"  xfer    --to ADDR --up BYTES --down BYTES [--msg SPEC] [--seed N]\n"
"          [--parallel P] [--timeout-s S] [--verbose] [--no-half-close]\n"
"          [--bind-port PORT]\n"
"          P connections at once (default 1; connection i uses seed N+i,\n"
"          default N 1), each sending BYTES up while receiving BYTES down,\n"
"          every byte checked, on blocking sockets: SHUT_WR after the\n"
"          upload (not with --no-half-close: the server closes after\n"
"          up bytes), then down bytes, the trailer and recv() == 0 (EOF).\n"
"          --bind-port: the client's own port (with --parallel 1).\n"
"          BYTES: N, NK, NM or NG (powers of 1024). SPEC: the send() size,\n"
"          1..16777216 (default 65536), or random (1..262144). The run is\n"
"          bounded by S seconds (default 120). --verbose: a line per\n"
"          connection on stderr. Prints\n"
"          {\"ok\":true,\"connections\":P,\"up\":B,\"down\":B,\"sha256_up\":H,\n"
"          \"sha256_down\":H,\"server_sha256_ok\":true,\"eof\":\"ok\",\n"
"          \"seconds\":S,\"mbps_up\":X,\"mbps_down\":Y} (hashes of connection\n"
"          0; megabits/s of all connections) or {\"ok\":false,\n"
"          \"connections\":P,\"failed\":F,\"connection\":I,\"stage\":G,\n"
"          \"error\":E,..} for the first failed connection: G is connect,\n"
"          header, up, down, trailer, eof (E: errno name, or extra: bytes\n"
"          instead of EOF) or server (E: the server's status: mismatch,\n"
"          short, eof-error, extra; or count, sha256); a wrong byte is down\n"
"          EBADMSG with \"offset\". At the time bound: \"error\":\"ETIMEDOUT\"\n"
"          with the first unfinished connection and its stage.\n"
"\n"
"ADDR is IP:PORT or [IPv6]:PORT; [::ffff:a.b.c.d]:PORT uses an AF_INET6\n"
"socket. Client steps time out after --timeout ms (default 2000; xfer has\n"
"no step timeout, only --timeout-s). Errors are errno names; EPIPE: peer\n"
"closed early, EPROTO: bad name line or header, EBADMSG: bad echo, payload\n"
"or stream byte. Client modes print one JSON line on stdout.\n"
"Exit status: 0 success (crr: no errors; xfer: every connection ok),\n"
"1 failure, 2 usage error.\n");
}

static const struct option serve_options[] = {
	{ "name", required_argument, NULL, 'N' },
	{ "tcp", required_argument, NULL, 'c' },
	{ "udp", required_argument, NULL, 'u' },
	{ "bind", required_argument, NULL, 'b' },
	{ "ready", required_argument, NULL, 'r' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct option client_options[] = {
	{ "to", required_argument, NULL, 't' },
	{ "udp", no_argument, NULL, 'u' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "duration", required_argument, NULL, 'd' },
	{ "until", required_argument, NULL, 'U' },
	{ "max-seconds", required_argument, NULL, 'M' },
	{ "interval-ms", required_argument, NULL, 'i' },
	{ "parallel", required_argument, NULL, 'P' },
	{ "up", required_argument, NULL, 'W' },
	{ "down", required_argument, NULL, 'R' },
	{ "msg", required_argument, NULL, 'm' },
	{ "seed", required_argument, NULL, 's' },
	{ "timeout-s", required_argument, NULL, 'S' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "no-half-close", no_argument, NULL, 'H' },
	{ "bind-port", required_argument, NULL, 'B' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct option xfer_serve_options[] = {
	{ "tcp", required_argument, NULL, 'c' },
	{ "bind", required_argument, NULL, 'b' },
	{ "ready", required_argument, NULL, 'r' },
	{ "max-seconds", required_argument, NULL, 'M' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct mode {
	const char *name;
	const char *opts;	/* the client options it takes, by val */
	const char *need;	/* and those it requires */
	int (*run)(const struct opts *o);
};

static const struct mode modes[] = {
	{ "connect", "tuT", "t", run_connect },
	{ "spread", "tuTnM", "tn", run_spread },
	{ "loop", "tTdUM", "t", run_loop },
	{ "hold", "tTUMi", "tU", run_hold },
	{ "crr", "tTdP", "td", run_crr },
	{ "xfer", "tWRmsPSvHB", "tWR", run_xfer },
};

/* "--to", or "-n" for the one short option; in a static buffer. */
static const char *opt_flag(int val)
{
	static char buf[32];
	const struct option *p;

	if (val == 'n')
		return "-n";
	for (p = client_options; p->name && p->val != val; p++)
		;
	snprintf(buf, sizeof(buf), "--%.24s", p->name ? p->name : "?");
	return buf;
}

static int bad_value(const char *flag, const char *arg)
{
	fprintf(stderr, "sltest: invalid value '%s' for %s\n", arg, flag);
	return 2;
}

/* N, NK, NM or NG (powers of 1024). */
static int parse_bytes(const char *s, long long *out)
{
	unsigned long long v;
	int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	}
	if (shift)
		end++;
	if (*end || v > (unsigned long long)XFER_BYTES_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

static int set_client_opt(struct opts *o, int c, const char *arg)
{
	int err = 0;

	switch (c) {
	case 't':
		err = parse_addr(arg, &o->t.ss, &o->t.len);
		break;
	case 'u':
		o->udp = true;
		break;
	case 'T': {
		long long ms;

		err = parse_num(arg, 1, 600000, &ms);
		o->t.timeout_ms = ms;
		break;
	}
	case 'n':
		err = parse_num(arg, 1, 100000000, &o->count);
		break;
	case 'd':
		err = parse_secs(arg, &o->duration_ms);
		break;
	case 'U':
		o->until = arg;
		break;
	case 'M':
		err = parse_secs(arg, &o->max_ms);
		break;
	case 'i':
		err = parse_num(arg, 1, 60000, &o->interval_ms);
		break;
	case 'P':
		err = parse_num(arg, 1, MAX_PARALLEL, &o->parallel);
		break;
	case 'W':
		err = parse_bytes(arg, &o->up);
		break;
	case 'R':
		err = parse_bytes(arg, &o->down);
		break;
	case 'm':
		if (!strcmp(arg, "random"))
			o->msg = 0;
		else
			err = parse_num(arg, 1, XFER_MSG_MAX, &o->msg);
		break;
	case 's':
		err = parse_num(arg, 0, UINT32_MAX, &o->seed);
		break;
	case 'S':
		err = parse_num(arg, 1, 86400, &o->timeout_s);
		break;
	case 'v':
		o->verbose = true;
		break;
	case 'H':
		o->no_half_close = true;
		break;
	case 'B':
		err = parse_num(arg, 1, 65535, &o->bind_port);
		break;
	}
	return err;
}

static int client_main(const struct mode *m, int argc, char **argv)
{
	struct opts o = {
		.t.timeout_ms = 2000,
		.max_ms = 60000,
		.interval_ms = 50,
		.parallel = 1,
		.msg = 65536,
		.seed = 1,
		.timeout_s = 120,
	};
	bool seen[128] = { false };
	const char *p;
	int c;

	while ((c = getopt_long(argc, argv, "n:h", client_options, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?')
			return 2;
		if (!strchr(m->opts, c)) {
			fprintf(stderr, "sltest: %s: %s does not apply\n",
				m->name, opt_flag(c));
			return 2;
		}
		if (set_client_opt(&o, c, optarg))
			return bad_value(opt_flag(c), optarg);
		seen[c] = true;
	}
	if (optind < argc) {
		fprintf(stderr, "sltest: %s: unexpected '%s'\n", m->name,
			argv[optind]);
		return 2;
	}
	for (p = m->need; *p; p++) {
		if (!seen[(int)*p]) {
			fprintf(stderr, "sltest: %s: %s is required\n", m->name,
				opt_flag(*p));
			return 2;
		}
	}
	if (m->run == run_loop && seen['d'] == seen['U']) {
		fprintf(stderr, "sltest: loop: give one of --duration, --until\n");
		return 2;
	}
	return m->run(&o);
}

static int serve_main(int argc, char **argv)
{
	struct serve_opts o = { .bind = "::" };
	long long *port;
	int c;

	while ((c = getopt_long(argc, argv, "h", serve_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'N':
			o.name = optarg;
			break;
		case 'c':
		case 'u':
			port = c == 'c' ? &o.tcp_port : &o.udp_port;
			if (parse_num(optarg, 1, 65535, port))
				return bad_value(c == 'c' ? "--tcp" : "--udp",
						 optarg);
			break;
		case 'b':
			o.bind = optarg;
			break;
		case 'r':
			o.ready = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sltest: serve: unexpected '%s'\n", argv[optind]);
		return 2;
	}
	if (!o.name || !*o.name || strlen(o.name) > NAME_LEN ||
	    strpbrk(o.name, "\n\r\t ")) {
		fprintf(stderr, "sltest: serve: --name: 1 to %d characters, no whitespace\n",
			NAME_LEN);
		return 2;
	}
	if (!o.tcp_port && !o.udp_port) {
		fprintf(stderr, "sltest: serve: give --tcp PORT and/or --udp PORT\n");
		return 2;
	}
	return run_serve(&o);
}

static int xfer_serve_main(int argc, char **argv)
{
	struct xfer_serve_opts o = { .bind = "::", .max_ms = 300000 };
	int c;

	while ((c = getopt_long(argc, argv, "h", xfer_serve_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'c':
			if (parse_num(optarg, 1, 65535, &o.tcp_port))
				return bad_value("--tcp", optarg);
			break;
		case 'b':
			o.bind = optarg;
			break;
		case 'r':
			o.ready = optarg;
			break;
		case 'M':
			if (parse_secs(optarg, &o.max_ms))
				return bad_value("--max-seconds", optarg);
			break;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sltest: xfer-serve: unexpected '%s'\n",
			argv[optind]);
		return 2;
	}
	if (!o.tcp_port) {
		fprintf(stderr, "sltest: xfer-serve: --tcp PORT is required\n");
		return 2;
	}
	return run_xfer_serve(&o);
}

int main(int argc, char **argv)
{
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "serve"))
		return serve_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "xfer-serve"))
		return xfer_serve_main(argc - 1, argv + 1);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			return client_main(&modes[i], argc - 1, argv + 1);
	fprintf(stderr, "sltest: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

