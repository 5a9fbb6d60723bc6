// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent-proxy link's framing (lib/wire/proxylink.h) over a real
 * SOCK_SEQPACKET pair, and the node proxy's credential store
 * (proxy/certs.h) with certificates of a real CA.
 */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lib/wire/pki.h"
#include "lib/wire/proxylink.h"
#include "proxy/certs.h"

static int sp[2];
static char buf[PL_MAX_MSG] __attribute__((aligned(8)));

static void pair(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
}

static void unpair(void)
{
	close(sp[0]);
	close(sp[1]);
}

TestSuite(proxylink, .init = pair, .fini = unpair);

Test(proxylink, body_and_tail_in_one_message)
{
	struct pl_node b = { .ca_len = 3, .cert_len = 4, .key_len = 5 };
	const void *t[3] = { "CA!", "CERT", "KEY!!" };
	const size_t tl[3] = { 3, 4, 5 };
	int fds[PL_MAX_FDS], nfds;
	const struct pl_node *got;
	long n;

	cr_assert_eq(pl_send(sp[0], PL_NODE, &b, sizeof(b), t, tl, NULL, 0), 0);
	n = pl_recv(sp[1], buf, fds, &nfds);
	cr_assert_eq(n, (long)(sizeof(struct pl_hdr) + sizeof(b) + 12));
	cr_assert_eq(nfds, 0);
	got = pl_body(buf, n, PL_NODE, sizeof(b));
	cr_assert_not_null(got);
	cr_assert_eq(got->key_len, 5);
	cr_assert_eq(memcmp((const char *)(got + 1), "CA!CERTKEY!!", 12), 0);
	/* the wrong type, or a body longer than the message: no body */
	cr_assert_null(pl_body(buf, n, PL_CERT, sizeof(b)));
	cr_assert_null(pl_body(buf, n, PL_NODE, (size_t)n));
}

Test(proxylink, descriptors_travel_and_stay_open)
{
	struct pl_hello h = { .pid = 42, .fds = 3 };
	int p[2], fds[PL_MAX_FDS], nfds;
	char c = 0;
	long n;

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pl_send(sp[0], PL_HELLO, &h, sizeof(h), NULL, NULL, p, 2), 0);
	close(p[0]);
	n = pl_recv(sp[1], buf, fds, &nfds);
	cr_assert_gt(n, 0);
	cr_assert_eq(nfds, 2);
	cr_assert(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, "received descriptors are close-on-exec");
	/* the received read end is the pipe the sender still writes to */
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(read(fds[0], &c, 1), 1);
	cr_assert_eq(c, 'x');
	close(p[1]);
	close(fds[0]);
	close(fds[1]);
}

Test(proxylink, too_big_is_refused_before_sending)
{
	static char big[PL_MAX_MSG];
	const void *t[3] = { big, NULL, NULL };
	const size_t tl[3] = { sizeof(big), 0, 0 };
	int fds[PL_MAX_FDS], nfds;

	cr_assert_eq(pl_send(sp[0], PL_SNAPSHOT, "x", 1, t, tl, NULL, 0), -EMSGSIZE);
	cr_assert_eq(pl_recv(sp[1], buf, fds, &nfds), -EAGAIN, "nothing was sent");
}

Test(proxylink, a_packet_that_is_not_a_message_is_a_protocol_error)
{
	struct pl_hdr h = { .type = PL_STATUS, .len = 999 };   /* lies about its length */
	int p[2], fds[PL_MAX_FDS], nfds;
	struct iovec iov = { &h, sizeof(h) };
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } u = {};
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	struct stat st;

	cr_assert_eq(pipe(p), 0);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
	cr_assert_gt(sendmsg(sp[0], &m, 0), 0);
	cr_assert_eq(pl_recv(sp[1], buf, fds, &nfds), -EPROTO);
	cr_assert_eq(nfds, 0, "descriptors of a bad message are closed, not handed out");
	/* the only descriptors open on the pipe are ours */
	close(p[0]);
	close(p[1]);
	cr_assert_eq(fstat(p[0], &st), -1);
}

Test(proxylink, eof_is_zero)
{
	int fds[PL_MAX_FDS], nfds;

	close(sp[0]);
	sp[0] = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	cr_assert_eq(pl_recv(sp[1], buf, fds, &nfds), 0);
}

/* ---- the proxy's credential store ------------------------------------------ */

struct creds {
	char *ca, *cert, *key;
};

static struct creds issue(const struct pki_ca *ca, const char *uri)
{
	EVP_PKEY *k = pki_key_new();
	struct pki_names n = { .cn = "x", .uri = uri };
	X509 *c = pki_issue(ca, k, &n, 3600, NULL, 0);
	struct creds r = { pki_cert_pem(ca->cert), pki_cert_pem(c), pki_key_pem(k) };

	cr_assert(r.ca && r.cert && r.key);
	X509_free(c);
	EVP_PKEY_free(k);
	return r;
}

static void creds_free(struct creds *c)
{
	free(c->ca);
	free(c->cert);
	free(c->key);
}

Test(pcerts, node_then_workloads_with_unique_generations)
{
	char dir[] = "/tmp/sluice-pcerts.XXXXXX", crt[64], key[64], err[256];
	struct pki_ca ca = {};
	struct pcerts pc = {};
	struct creds node, w1, w1b, other;
	const struct pcert *got;
	unsigned int g1;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(crt, sizeof(crt), "%s/ca.crt", dir);
	snprintf(key, sizeof(key), "%s/ca.key", dir);
	cr_assert_eq(pki_ca_open(&ca, crt, key, "test CA", true, err, sizeof(err)), 0, "%s", err);
	node = issue(&ca, "spiffe://cluster.local/sluice/node/n1");
	w1 = issue(&ca, "spiffe://cluster.local/ns/default/sa/a");
	w1b = issue(&ca, "spiffe://cluster.local/ns/default/sa/a");

	/* a workload certificate needs the CA first */
	cr_assert_eq(pcerts_set(&pc, 7, "spiffe://cluster.local/ns/default/sa/a", w1.key,
				strlen(w1.key), w1.cert, strlen(w1.cert)), -EINVAL);
	cr_assert_eq(pcerts_set_node(&pc, node.ca, strlen(node.ca), node.cert, strlen(node.cert),
				     node.key, strlen(node.key)), 0);
	cr_assert_str_eq(pc.td, "cluster.local");
	cr_assert_not_null(pc.server_ctx);
	/* a key that is not the certificate's, and a certificate of another
	 * identity, change nothing */
	cr_assert_eq(pcerts_set_node(&pc, node.ca, strlen(node.ca), node.cert, strlen(node.cert),
				     w1.key, strlen(w1.key)), -EINVAL);
	cr_assert_eq(pcerts_set(&pc, 7, "spiffe://cluster.local/ns/default/sa/b", w1.key,
				strlen(w1.key), w1.cert, strlen(w1.cert)), -EINVAL);
	cr_assert_null(pcerts_get(&pc, 7));

	cr_assert_eq(pcerts_set(&pc, 7, "spiffe://cluster.local/ns/default/sa/a", w1.key,
				strlen(w1.key), w1.cert, strlen(w1.cert)), 0);
	got = pcerts_get(&pc, 7);
	cr_assert_not_null(got);
	cr_assert_not_null(got->ctx);
	g1 = got->gen;
	/* a renewal replaces it with a new generation */
	cr_assert_eq(pcerts_set(&pc, 7, "spiffe://cluster.local/ns/default/sa/a", w1b.key,
				strlen(w1b.key), w1b.cert, strlen(w1b.cert)), 0);
	cr_assert_neq(pcerts_get(&pc, 7)->gen, g1);
	/* forgotten and given again: still a generation never seen */
	g1 = pcerts_get(&pc, 7)->gen;
	pcerts_forget(&pc, 7);
	cr_assert_null(pcerts_get(&pc, 7));
	cr_assert_eq(pcerts_set(&pc, 7, "spiffe://cluster.local/ns/default/sa/a", w1.key,
				strlen(w1.key), w1.cert, strlen(w1.cert)), 0);
	cr_assert_gt(pcerts_get(&pc, 7)->gen, g1);
	/* garbage PEM */
	other = (struct creds){ strdup("x"), strdup("not a certificate"), strdup("not a key") };
	cr_assert_eq(pcerts_set(&pc, 8, "spiffe://cluster.local/ns/default/sa/c", other.key,
				strlen(other.key), other.cert, strlen(other.cert)), -EINVAL);
	creds_free(&other);
	pcerts_free(&pc);
	creds_free(&node);
	creds_free(&w1);
	creds_free(&w1b);
	pki_ca_close(&ca);
	unlink(crt);
	unlink(key);
	rmdir(dir);
}
