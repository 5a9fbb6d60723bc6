// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * client.c - sltest: the client modes connect, spread, loop, hold and crr.
 */
#include "sltest.h"


int run_connect(const struct opts *o)
{
	char name[NAME_LEN + 1] = "", addr[ADDR_STRLEN];
	struct sockaddr_storage ss = { .ss_family = AF_UNSPEC };
	int err;

	if (o->udp)
		err = udp_exchange(&o->t, name, &ss);
	else
		err = tcp_ping(&o->t, name, &ss);

	printf("{\"ok\":%s", err ? "false" : "true");
	if (err)
		printf(",\"error\":\"%s\"", errname(-err));
	if (ss.ss_family != AF_UNSPEC) {
		printf(",\"backend\":");
		json_str(name);
		printf(",\"%s\":", o->udp ? "from" : "peer");
		json_str(fmt_addr(&ss, addr, sizeof(addr)));
		printf(",\"%s\":%s", o->udp ? "payload_ok" : "echo",
		       err ? "false" : "true");
	}
	printf("}\n");
	return err ? 1 : 0;
}

int run_spread(const struct opts *o)
{
	static struct tally backends, errors;
	long long end = now_ms() + o->max_ms, i, ok = 0;
	struct sockaddr_storage from;
	char name[NAME_LEN + 1];
	int err;

	for (i = 0; i < o->count; i++) {
		if (now_ms() >= end) {
			/* Out of time: the attempts not made count as ETIME. */
			tally_add(&errors, errname(ETIME), o->count - i);
			break;
		}
		if (o->udp)
			err = udp_exchange(&o->t, name, &from);
		else
			err = tcp_name(&o->t, name);
		if (err) {
			tally_add(&errors, errname(-err), 1);
			continue;
		}
		ok++;
		tally_add(&backends, name, 1);
	}
	printf("{\"total\":%lld,\"ok\":%lld", o->count, ok);
	tally_print("backends", &backends);
	tally_print("errors", &errors);
	printf("}\n");
	return ok == o->count ? 0 : 1;
}

int run_loop(const struct opts *o)
{
	static struct tally backends, errors;
	long long end = now_ms() + (o->until ? o->max_ms : o->duration_ms);
	const char *stopped = o->until ? "max-seconds" : "duration";
	unsigned long ok = 0, failed = 0;
	long long t0, max = 0;
	char name[NAME_LEN + 1];
	int err;

	while ((t0 = now_ms()) < end) {
		if (o->until && file_exists(o->until)) {
			stopped = "file";
			break;
		}
		err = tcp_name(&o->t, name);
		if (now_ms() - t0 > max)
			max = now_ms() - t0;
		if (err) {
			failed++;
			tally_add(&errors, errname(-err), 1);
			continue;
		}
		ok++;
		tally_add(&backends, name, 1);
	}
	printf("{\"ok\":%lu,\"failed\":%lu,\"max_ms\":%lld", ok, failed, max);
	tally_print("errors", &errors);
	tally_print("backends", &backends);
	printf(",\"stopped\":\"%s\"}\n", stopped);
	return failed ? 1 : 0;
}

/*
 * One connection, one 16-byte exchange per interval. The first failure ends
 * the run: a stream that lost or reordered bytes cannot be trusted after.
 */
int run_hold(const struct opts *o)
{
	long long end = now_ms() + o->max_ms, left;
	const char *stopped = "max-seconds";
	unsigned long exchanges = 0;
	char name[NAME_LEN + 1] = "", line[HOLD_LINE + 1];
	int fd, err;

	fd = tcp_open(&o->t, name);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	for (;;) {
		snprintf(line, sizeof(line), "hold %010u\n",
			 (unsigned int)(exchanges % 1000000000));
		err = echo_check(fd, line, HOLD_LINE, o->t.timeout_ms);
		if (err)
			break;
		exchanges++;
		if (file_exists(o->until)) {
			stopped = "file";
			break;
		}
		left = end - now_ms();
		if (left <= 0)
			break;
		sleep_ms(o->interval_ms < left ? o->interval_ms : left);
	}
	close(fd);
out:
	printf("{\"backend\":");
	if (name[0])
		json_str(name);
	else
		printf("null");
	printf(",\"exchanges\":%lu,\"failed\":%d", exchanges, err ? 1 : 0);
	if (err)
		printf(",\"error\":\"%s\"", errname(-err));
	else
		printf(",\"stopped\":\"%s\"", stopped);
	printf("}\n");
	return !err && exchanges ? 0 : 1;
}

struct crr_worker {
	pthread_t tid;
	const struct target *t;
	long long end;
	unsigned long conns;
	unsigned long errs;
	int first_err;
};

static const char crr_req[CRR_REQ + 1] =
	"crr 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW\n";
_Static_assert(sizeof(crr_req) == CRR_REQ + 1, "request is 64 bytes");

static int crr_once(const struct target *t)
{
	char name[NAME_LEN + 1];
	int fd, err;

	fd = tcp_open(t, name);
	if (fd < 0)
		return fd;
	err = echo_check(fd, crr_req, CRR_REQ, t->timeout_ms);
	close(fd);
	return err;
}

static void *crr_run(void *arg)
{
	struct crr_worker *w = arg;
	int err;

	while (now_ms() < w->end) {
		err = crr_once(w->t);
		if (!err) {
			w->conns++;
			continue;
		}
		w->errs++;
		if (!w->first_err)
			w->first_err = err;
	}
	return NULL;
}

int run_crr(const struct opts *o)
{
	unsigned long conns = 0, errs = 0;
	struct crr_worker *w;
	long long start, i, started;
	int err = 0, first_err = 0;
	double secs;

	w = calloc(o->parallel, sizeof(*w));
	if (!w) {
		fprintf(stderr, "sltest: crr: %s\n", errname(ENOMEM));
		return 1;
	}
	start = now_ms();
	for (started = 0; started < o->parallel; started++) {
		w[started].t = &o->t;
		w[started].end = start + o->duration_ms;
		err = pthread_create(&w[started].tid, NULL, crr_run, &w[started]);
		if (err) {
			fprintf(stderr, "sltest: crr: pthread_create: %s\n",
				errname(err));
			break;
		}
	}
	for (i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		conns += w[i].conns;
		errs += w[i].errs;
		if (!first_err)
			first_err = w[i].first_err;
	}
	secs = (now_ms() - start) / 1000.0;
	free(w);
	if (err)
		return 1;

	printf("{\"connections\":%lu,\"errors\":%lu,\"seconds\":%.3f,\"rate\":%.1f",
	       conns, errs, secs, secs > 0 ? conns / secs : 0.0);
	if (first_err)
		printf(",\"first_error\":\"%s\"", errname(-first_err));
	printf("}\n");
	return !errs && conns ? 0 : 1;
}

