// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/etcd.h"
#include "etcd_cluster.h"
#include "lib/wire/pki.h"
#include "tls_pair.h"

static const char *etcd_bin(void)
{
	static const char *const paths[] = { "/usr/bin/etcd", "/usr/local/bin/etcd", NULL };

	for (int i = 0; paths[i]; i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

const char *ec_missing(void)
{
	return etcd_bin() ? NULL : "etcd is not installed (Debian: etcd-server; scripts/install-deps.sh)";
}

int ec_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static pid_t spawn(struct etcd_cluster *c, int i, const char *cluster)
{
	char name[8], ddir[128], log[128], curl[64], purl[64];
	pid_t parent = getpid(), pid;

	snprintf(name, sizeof(name), "m%d", i);
	snprintf(ddir, sizeof(ddir), "%s/%s", c->dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", c->dir, name);
	snprintf(curl, sizeof(curl), "%s://127.0.0.1:%d", c->tls ? "https" : "http", c->m[i].cport);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", c->m[i].pport);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		/* never outlive the test, whatever ends it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (c->tls)
			execl(etcd_bin(), "etcd", "--name", name, "--data-dir", ddir,
			      "--listen-client-urls", curl, "--advertise-client-urls", curl,
			      "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
			      "--initial-cluster", cluster, "--initial-cluster-state", "new",
			      "--initial-cluster-token", c->dir,
			      "--heartbeat-interval", "50", "--election-timeout", "500",
			      "--cert-file", c->srv_cert, "--key-file", c->srv_key,
			      "--trusted-ca-file", c->ca, "--client-cert-auth",
			      "--log-level", "warn", (char *)NULL);
		else
			execl(etcd_bin(), "etcd", "--name", name, "--data-dir", ddir,
			      "--listen-client-urls", curl, "--advertise-client-urls", curl,
			      "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
			      "--initial-cluster", cluster, "--initial-cluster-state", "new",
			      "--initial-cluster-token", c->dir,
			      "--heartbeat-interval", "50", "--election-timeout", "500",
			      "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	return pid;
}

struct etcd_opts ec_opts(const struct etcd_cluster *c, unsigned int timeout_ms)
{
	return (struct etcd_opts){ .timeout_ms = timeout_ms, .ca_file = c->tls ? c->ca : NULL,
				   .cert_file = c->tls ? c->cert : NULL,
				   .key_file = c->tls ? c->key : NULL };
}

/* A leaf for 127.0.0.1 from ca into DIR/NAME.crt and .key. */
static void leaf(struct pki_ca *ca, const char *dir, const char *name, char *cp, char *kp)
{
	static const char *const ips[] = { "127.0.0.1", NULL };
	struct pki_names n = { .cn = name, .uri = "spiffe://test/etcd", .ips = ips };
	EVP_PKEY *key = pki_key_new();
	char err[256];
	X509 *cert;

	sprintf(cp, "%s/%s.crt", dir, name);
	sprintf(kp, "%s/%s.key", dir, name);
	cr_assert_not_null(key);
	cert = pki_issue(ca, key, &n, 3600, err, sizeof(err));
	cr_assert_not_null(cert, "%s", err);
	cr_assert_eq(pki_cert_save(cp, cert), 0);
	cr_assert_eq(pki_key_save(kp, key), 0);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void start(struct etcd_cluster *c, int n);

void ec_start(struct etcd_cluster *c, int n)
{
	memset(c, 0, sizeof(*c));
	tp_tmpdir(c->dir, sizeof(c->dir), "etcd");
	start(c, n);
}

void ec_start_tls(struct etcd_cluster *c)
{
	struct pki_ca ca;

	memset(c, 0, sizeof(*c));
	tp_tmpdir(c->dir, sizeof(c->dir), "etcd");
	c->tls = true;
	tp_ca(&ca, c->dir, "ca");
	sprintf(c->ca, "%s/ca.crt", c->dir);
	leaf(&ca, c->dir, "server", c->srv_cert, c->srv_key);
	leaf(&ca, c->dir, "client", c->cert, c->key);
	pki_ca_close(&ca);
	start(c, 1);
}

static void start(struct etcd_cluster *c, int n)
{
	char cluster[512] = "", err[512];
	struct etcd_opts o = ec_opts(c, 1000);
	struct etcd *e = NULL;
	int rc = -1;

	cr_assert(n >= 1 && n <= EC_MAX);
	c->n = n;
	snprintf(c->url, sizeof(c->url), c->tls ? "etcds://" : "etcd://");
	for (int i = 0; i < n; i++) {
		c->m[i].cport = ec_free_port();
		do
			c->m[i].pport = ec_free_port();
		while (c->m[i].pport == c->m[i].cport);
		snprintf(cluster + strlen(cluster), sizeof(cluster) - strlen(cluster),
			 "%sm%d=http://127.0.0.1:%d", i ? "," : "", i, c->m[i].pport);
		snprintf(c->url + strlen(c->url), sizeof(c->url) - strlen(c->url), "%s127.0.0.1:%d",
			 i ? "," : "", c->m[i].cport);
	}
	for (int i = 0; i < n; i++)
		c->m[i].pid = spawn(c, i, cluster);
	cr_assert_eq(etcd_open(&e, c->url, &o, err, sizeof(err)), 0, "%s", err);
	for (int t = 0; t < 60 && rc; t++) {
		rc = etcd_put(e, "/ec/ready", "1", 1, NULL, err, sizeof(err));
		if (rc)
			usleep(250 * 1000);
	}
	etcd_close(e);
	if (rc) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "tail -n 20 %s/m*.log >&2", c->dir);
		if (system(cmd) < 0)
			perror("system");
		ec_stop(c);
		cr_assert_fail("etcd did not come up in 15 s: %s", err);
	}
}

void ec_kill(struct etcd_cluster *c, int i)
{
	if (c->m[i].pid > 0) {
		kill(c->m[i].pid, SIGKILL);
		waitpid(c->m[i].pid, NULL, 0);
		c->m[i].pid = 0;
	}
}

void ec_stop(struct etcd_cluster *c)
{
	for (int i = 0; i < c->n; i++)
		ec_kill(c, i);
	if (c->dir[0])
		tp_rmdir(c->dir);
	c->dir[0] = '\0';
}
