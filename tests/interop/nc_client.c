/*
 * A small NETCONF-over-TLS client on libnetconf2 2.0.x's client API (nc_connect_tls), for the
 * interop suite: it talks to OUR blocking and tokio servers.
 *
 *   nc_client --port PORT --cert client.pem --key client.key --ca ca.pem --schemas DIR
 *             [--host H] [--tag TEXT] [--big BYTES]
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

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL, *ca = NULL, *tag = "libnetconf2";
    const char *schemas = NULL;
    int port = 0;
    long big = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--cert")) cert = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--ca")) ca = v;
        else if (!strcmp(a, "--tag")) tag = v;
        else if (!strcmp(a, "--big")) big = atol(v);
        else if (!strcmp(a, "--schemas")) schemas = v;
        else fail("usage", a);
    }
    if (!port || !cert || !key || !ca || !schemas) {
        fail("usage", "nc_client --port P --cert C --key K --ca CA --schemas DIR [--tag T] [--big BYTES]");
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    nc_verbosity(NC_VERB_WARNING);
    nc_client_init();
    /* libnetconf2 looks for a module here first, then asks the server with <get-schema> (when
     * the server announces ietf-netconf-monitoring) and *writes* what it fetched into this
     * directory: it must be a scratch directory of the test's own, never a system one. */
    nc_client_set_schema_searchpath(schemas);
    if (nc_client_tls_set_cert_key_paths(cert, key) || nc_client_tls_set_trusted_ca_paths(ca, NULL)) {
        fail("setup", "TLS paths");
    }

    double t0 = now_s();
    session = nc_connect_tls(host, (uint16_t)port, NULL);
    if (!session) {
        fail("HELLO", "nc_connect_tls failed");
    }
    const char *const *caps = nc_session_get_cpblts(session);
    int ncaps = 0;
    while (caps && caps[ncaps]) {
        ncaps++;
    }
    printf("HELLO session-id=%u capabilities=%d base11=%d seconds=%.3f\n", nc_session_get_id(session),
           ncaps, nc_session_cpblt(session, "urn:ietf:params:netconf:base:1.1") != NULL, now_s() - t0);

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
    printf("CLOSE ok\n");
    nc_client_destroy();
    return 0;
}
