/*
 * A small NETCONF client on libnetconf2 2.0.x's client API, for the interop suite: it talks to
 * OUR servers over TLS (nc_connect_tls) or SSH (nc_connect_ssh, libssh), or waits for them to
 * call home (RFC 8071: nc_client_{tls,ssh}_ch_add_bind_listen + nc_accept_callhome).
 *
 *   nc_client --port PORT --cert client.pem --key client.key --ca ca.pem --schemas DIR
 *             [--host H] [--tag TEXT] [--big BYTES]
 *   nc_client --transport ssh --port PORT --user NAME --hostkey-sha256 SHA256:... --schemas DIR
 *             [--password PW | --pubkey KEY.pub --privkey KEY] [--host H] [--tag TEXT] [--big BYTES]
 *
 *   nc_client --listen-port PORT [--accept N] ...the TLS or SSH options above...
 *
 * With --listen-port it dials nobody: it listens on 127.0.0.1:PORT for servers calling home
 * (call-home options: nc_client_tls_ch_* / nc_client_ssh_ch_*, the same certificates, keys and
 * host-key check), prints "LISTENING port=PORT" once bound (or "FAIL LISTEN: ..."), then
 * accepts N sessions (default 1) one after the other with nc_accept_callhome, and runs the
 * operations below on each, every session's lines preceded by
 *   ACCEPTED n=I host=H port=P
 * (H and P: where libnetconf2 says the call came from).
 *
 * Over SSH the server's host key must have the given fingerprint (checked by our own callback,
 * so libssh never reads or writes a known_hosts file), and only publickey (with --privkey) or
 * password (with --password) is tried: libnetconf2's keyboard-interactive default would prompt
 * on the terminal.
 *
 * DIR is libnetconf2's schema search path, which it also writes the schemas it fetches with
 * <get-schema> into: always a scratch directory of the test's own.
 *
 * Without --big it runs hello, get-config, edit-config (storing a greeting with TEXT),
 * get-config again, lock, unlock, close, and prints one line per step:
 *   HELLO session-id=N capabilities=N base11=0|1
 *   GET-CONFIG <the data>
 *   EDIT-CONFIG ok
 *   GET-CONFIG-AFTER <the data>
 *   LOCK ok / UNLOCK ok
 *   CLOSE ok
 * With --big it runs one get-config and prints  BIG bytes=N seconds=S  (then CLOSE ok).
 * Any failure prints "FAIL <step>: <why>" and exits 1.
 *
 * Build: gcc -O2 -o nc_client nc_client.c $(pkg-config --cflags --libs libnetconf2 libyang) \
 *            -lssh -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libssh/libssh.h>
#include <libyang/libyang.h>
#include <nc_client.h>

#define TIMEOUT_MS 60000

static struct nc_session *session;

static void fail(const char *step, const char *why)
{
    printf("FAIL %s: %s\n", step, why);
    fflush(stdout);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *opt_password, *opt_hostkey_sha256;

static char *password_clb(const char *username, const char *hostname, void *priv)
{
    (void)username; (void)hostname; (void)priv;
    return strdup(opt_password ? opt_password : "");
}

/* 0 accepts: the server's host key has the fingerprint we were given. Prints
 *   HOSTKEY host=H port=P match=0|1
 * with the host name and port libssh checks the key for (what a known_hosts lookup would use). */
static int hostkey_clb(const char *hostname, ssh_session ssh, void *priv)
{
    (void)priv;
    unsigned int kport = 0;
    ssh_options_get_port(ssh, &kport);
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t len = 0;
    int ok = 0;
    if (ssh_get_server_publickey(ssh, &key) == SSH_OK &&
        ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) == 0) {
        char *fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
        ok = fp && opt_hostkey_sha256 && !strcmp(fp, opt_hostkey_sha256);
        fprintf(stderr, "nc_client: host key %s %s\n", fp ? fp : "?", ok ? "matches" : "does NOT match");
        printf("HOSTKEY host=%s port=%u match=%d\n", hostname ? hostname : "?", kport, ok);
        ssh_string_free_char(fp);
        ssh_clean_pubkey_hash(&hash);
    }
    ssh_key_free(key);
    return ok ? 0 : -1;
}

/* Sends rpc, waits for its reply. Returns the reply's operation tree (may be NULL for <ok/>). */
static struct lyd_node *call(const char *step, struct nc_rpc *rpc, int want_ok)
{
    uint64_t msgid;
    struct lyd_node *envp = NULL, *op = NULL;
    if (!rpc) {
        fail(step, "cannot build the rpc");
    }
    if (nc_send_rpc(session, rpc, TIMEOUT_MS, &msgid) != NC_MSG_RPC) {
        fail(step, "nc_send_rpc failed");
    }
    NC_MSG_TYPE r;
    do {
        r = nc_recv_reply(session, rpc, msgid, TIMEOUT_MS, &envp, &op);
    } while (r == NC_MSG_NOTIF);
    if (r != NC_MSG_REPLY) {
        fail(step, r == NC_MSG_WOULDBLOCK ? "timed out" : "nc_recv_reply failed");
    }
    /* The envelope holds <ok/> or <rpc-error>s (opaque nodes) for replies without data. */
    if (!op) {
        const struct lyd_node *c = envp ? lyd_child(envp) : NULL;
        if (c && !strcmp(LYD_NAME(c), "rpc-error")) {
            char *text = NULL;
            lyd_print_mem(&text, envp, LYD_XML, LYD_PRINT_SHRINK);
            fail(step, text ? text : "rpc-error");
        }
        if (want_ok && !(c && !strcmp(LYD_NAME(c), "ok"))) {
            fail(step, "no <ok/> in the reply");
        }
    }
    lyd_free_tree(envp);
    nc_rpc_free(rpc);
    return op;
}

/* The content of <data> in a get-config reply, as a string the caller frees. */
static char *data_of(const char *step, struct lyd_node *op)
{
    if (!op) {
        fail(step, "no <data> in the reply");
    }
    struct lyd_node *c;
    LY_LIST_FOR(lyd_child(op), c) {
        if (!strcmp(LYD_NAME(c), "data")) {
            char *s = NULL;
            if (lyd_any_value_str(c, &s) || !s) {
                return strdup("");
            }
            return s;
        }
    }
    fail(step, "no <data> in the reply");
    return NULL;
}

static void oneline(char *s)
{
    for (char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
}

/* The operations of one session, then its close. */
static void run_session(const char *tag, long big)
{
    const char *const *caps = nc_session_get_cpblts(session);
    int ncaps = 0;
    while (caps && caps[ncaps]) {
        ncaps++;
    }
    printf("HELLO session-id=%u capabilities=%d base11=%d\n", nc_session_get_id(session), ncaps,
           nc_session_cpblt(session, "urn:ietf:params:netconf:base:1.1") != NULL);

    if (big) {
        double t = now_s();
        struct lyd_node *op = call("BIG", nc_rpc_getconfig(NC_DATASTORE_RUNNING, NULL, NC_WD_UNKNOWN,
                                                           NC_PARAMTYPE_CONST), 0);
        char *d = data_of("BIG", op);
        double secs = now_s() - t;
        printf("BIG bytes=%zu seconds=%.3f\n", strlen(d), secs);
        if ((long)strlen(d) < big) {
            fail("BIG", "reply smaller than expected");
        }
        free(d);
        lyd_free_tree(op);
    } else {
        struct lyd_node *op = call("GET-CONFIG", nc_rpc_getconfig(NC_DATASTORE_RUNNING, NULL,
                                                                  NC_WD_UNKNOWN, NC_PARAMTYPE_CONST), 0);
        char *d = data_of("GET-CONFIG", op);
        oneline(d);
        printf("GET-CONFIG %s\n", d);
        free(d);
        lyd_free_tree(op);

        char edit[512];
        snprintf(edit, sizeof edit,
                 "<interop xmlns=\"urn:example:interop\"><greeting>set by %s</greeting></interop>", tag);
        call("EDIT-CONFIG", nc_rpc_edit(NC_DATASTORE_RUNNING, NC_RPC_EDIT_DFLTOP_MERGE,
                                        NC_RPC_EDIT_TESTOPT_UNKNOWN, NC_RPC_EDIT_ERROPT_UNKNOWN, edit,
                                        NC_PARAMTYPE_CONST), 1);
        printf("EDIT-CONFIG ok\n");

        op = call("GET-CONFIG-AFTER", nc_rpc_getconfig(NC_DATASTORE_RUNNING, NULL, NC_WD_UNKNOWN,
                                                        NC_PARAMTYPE_CONST), 0);
        d = data_of("GET-CONFIG-AFTER", op);
        oneline(d);
        printf("GET-CONFIG-AFTER %s\n", d);
        free(d);
        lyd_free_tree(op);

        call("LOCK", nc_rpc_lock(NC_DATASTORE_RUNNING), 1);
        printf("LOCK ok\n");
        call("UNLOCK", nc_rpc_unlock(NC_DATASTORE_RUNNING), 1);
        printf("UNLOCK ok\n");
    }

    /* nc_session_free sends <close-session> and waits for its reply. */
    nc_session_free(session, NULL);
    session = NULL;
    printf("CLOSE ok\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL, *ca = NULL, *tag = "libnetconf2";
    const char *schemas = NULL, *transport = "tls", *user = NULL, *pubkey = NULL, *privkey = NULL;
    int port = 0, listen_port = 0, accept_count = 1;
    long big = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--listen-port")) listen_port = atoi(v);
        else if (!strcmp(a, "--accept")) accept_count = atoi(v);
        else if (!strcmp(a, "--cert")) cert = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--ca")) ca = v;
        else if (!strcmp(a, "--tag")) tag = v;
        else if (!strcmp(a, "--big")) big = atol(v);
        else if (!strcmp(a, "--schemas")) schemas = v;
        else if (!strcmp(a, "--transport")) transport = v;
        else if (!strcmp(a, "--user")) user = v;
        else if (!strcmp(a, "--password")) opt_password = v;
        else if (!strcmp(a, "--pubkey")) pubkey = v;
        else if (!strcmp(a, "--privkey")) privkey = v;
        else if (!strcmp(a, "--hostkey-sha256")) opt_hostkey_sha256 = v;
        else fail("usage", a);
    }
    int ssh = !strcmp(transport, "ssh");
    if (!(port || listen_port) || (port && listen_port) || accept_count < 1 || !schemas ||
        (ssh ? !user || !opt_hostkey_sha256 || (!opt_password && !privkey) : !cert || !key || !ca)) {
        fail("usage", "nc_client --port P --cert C --key K --ca CA --schemas DIR [--tag T] [--big BYTES]"
                      " | nc_client --transport ssh --port P --user U --hostkey-sha256 FP --schemas DIR"
                      " [--password PW | --pubkey PUB --privkey KEY] [--tag T] [--big BYTES]"
                      " | either with --listen-port P [--accept N] instead of --port P");
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    nc_verbosity(NC_VERB_WARNING);
    nc_client_init();
    /* libnetconf2 looks for a module here first, then asks the server with <get-schema> (when
     * the server announces ietf-netconf-monitoring) and *writes* what it fetched into this
     * directory: it must be a scratch directory of the test's own, never a system one. */
    nc_client_set_schema_searchpath(schemas);

    if (listen_port) {
        /* Call home: the same settings, in libnetconf2's separate call-home option set. */
        int bound;
        if (ssh) {
            nc_client_ssh_ch_set_username(user);
            nc_client_ssh_ch_set_auth_hostkey_check_clb(hostkey_clb, NULL);
            nc_client_ssh_ch_set_auth_password_clb(password_clb, NULL);
            nc_client_ssh_ch_set_auth_pref(NC_SSH_AUTH_INTERACTIVE, -1);
            nc_client_ssh_ch_set_auth_pref(NC_SSH_AUTH_PASSWORD, opt_password ? 2 : -1);
            nc_client_ssh_ch_set_auth_pref(NC_SSH_AUTH_PUBLICKEY, privkey ? 3 : -1);
            if (privkey && nc_client_ssh_ch_add_keypair(pubkey ? pubkey : "", privkey)) {
                fail("setup", "SSH key pair");
            }
            bound = nc_client_ssh_ch_add_bind_listen(host, (uint16_t)listen_port);
        } else {
            if (nc_client_tls_ch_set_cert_key_paths(cert, key) ||
                nc_client_tls_ch_set_trusted_ca_paths(ca, NULL)) {
                fail("setup", "TLS paths");
            }
            bound = nc_client_tls_ch_add_bind_listen(host, (uint16_t)listen_port);
        }
        if (bound) {
            fail("LISTEN", "cannot bind the call-home port (taken?)");
        }
        printf("LISTENING port=%d\n", listen_port);
        for (int n = 1; n <= accept_count; n++) {
            int r = nc_accept_callhome(TIMEOUT_MS, NULL, &session);
            if (r != 1) {
                fail("ACCEPT", r == 0 ? "no server called within the timeout" : "nc_accept_callhome failed");
            }
            printf("ACCEPTED n=%d host=%s port=%u\n", n, nc_session_get_host(session),
                   nc_session_get_port(session));
            char n_tag[256];
            snprintf(n_tag, sizeof n_tag, "%s-%d", tag, n);
            run_session(n_tag, big);
        }
        nc_client_destroy();
        return 0;
    }

    if (ssh) {
        nc_client_ssh_set_username(user);
        nc_client_ssh_set_auth_hostkey_check_clb(hostkey_clb, NULL);
        nc_client_ssh_set_auth_password_clb(password_clb, NULL);
        nc_client_ssh_set_auth_pref(NC_SSH_AUTH_INTERACTIVE, -1);
        nc_client_ssh_set_auth_pref(NC_SSH_AUTH_PASSWORD, opt_password ? 2 : -1);
        nc_client_ssh_set_auth_pref(NC_SSH_AUTH_PUBLICKEY, privkey ? 3 : -1);
        if (privkey && nc_client_ssh_add_keypair(pubkey ? pubkey : "", privkey)) {
            fail("setup", "SSH key pair");
        }
    } else if (nc_client_tls_set_cert_key_paths(cert, key) ||
               nc_client_tls_set_trusted_ca_paths(ca, NULL)) {
        fail("setup", "TLS paths");
    }

    double t0 = now_s();
    session = ssh ? nc_connect_ssh(host, (uint16_t)port, NULL) : nc_connect_tls(host, (uint16_t)port, NULL);
    if (!session) {
        fail("HELLO", ssh ? "nc_connect_ssh failed" : "nc_connect_tls failed");
    }
    printf("CONNECTED seconds=%.3f\n", now_s() - t0);
    run_session(tag, big);
    nc_client_destroy();
    return 0;
}
