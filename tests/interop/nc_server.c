/*
 * A small NETCONF server on libnetconf2 2.0.x's server API, for the interop suite: over TLS,
 * over SSH (libssh), or one session on stdin/stdout (for OpenSSH's sshd to run as its
 * `netconf` subsystem); listening, or calling a manager home (RFC 8071).
 *
 *   nc_server --schemas DIR [--data-size BYTES]
 *             [--port PORT --cert server.pem --key server.key --ca ca.pem]       TLS endpoint
 *             [--ssh-port PORT --hostkey KEY --user NAME [--password PW] [--authkey PUB]]
 *                                                                              SSH endpoint
 *   nc_server --schemas DIR --ch-tls-port PORT --cert C --key K --ca CA      call home, TLS
 *   nc_server --schemas DIR --ch-ssh-port PORT --hostkey KEY --user NAME [--password PW]
 *             [--authkey PUB]                                                call home, SSH
 *   nc_server --stdio --user NAME --schemas DIR [--data-size BYTES] [--log FILE]
 *
 * Endpoints listen on 127.0.0.1 only. TLS clients must present a certificate signed by
 * ca.pem; the cert-to-name entry maps the CA's SHA-256 fingerprint to the user "admin".
 * SSH clients log in as NAME with PW (password) or with the key in PUB (publickey); the host
 * key KEY is a private key file (OpenSSH or PEM format: libssh reads both). With --stdio the
 * one session runs on stdin/stdout as NAME (nc_accept_inout) and the program exits when it
 * ends; diagnostics go to FILE, since sshd would hand stderr to the client.
 *
 * Call home: a Call Home client "manager" with one endpoint at 127.0.0.1:PORT (TLS or SSH,
 * with the same certificates, keys and users as the listening endpoints), persistent
 * connection, dispatched with nc_connect_ch_client_dispatch: libnetconf2's own thread dials
 * the manager, hands each established session to ch_session_clb (which adds it to the poll
 * session the main loop serves) and, once the session ends, dials again at once; a failed
 * call is retried after 1 s, for ever. Each established session is logged as
 * "nc_server: call home session N established".
 *
 * Answers:
 *   get            <data> with a small state + config document
 *   get-config     <data> with what the last edit-config on that datastore stored, else a small
 *                  document; with --data-size, a generated document of about BYTES bytes
 *   edit-config, lock, unlock, commit, discard-changes, validate, copy-config, delete-config: <ok/>
 *   get-schema     the YANG text of any module in the context (own callback: the built-in one
 *                  double-frees on a repeated request with libyang 2.1.30)
 *
 * Traps of libnetconf2 2.0.24 handled here (see INTEROP.md at the repository root):
 *   - trusted CA paths alone reject every client: a trusted-cert-list callback is required;
 *   - Debian ships ietf-netconf, ietf-netconf-monitoring and ietf-netconf-acm as no files: the
 *     tests copy tests/interop/yang/ into a scratch directory and pass it as DIR;
 *   - edit-config on running needs the writable-running feature, commit/discard the candidate one;
 *   - without callbacks of ours, SSH password and keyboard-interactive logins are checked
 *     against the system's users: the endpoint allows publickey and password only, and the
 *     password callback checks NAME/PW.
 *
 * Build: gcc -O2 -o nc_server nc_server.c $(pkg-config --cflags --libs libnetconf2 libyang) \
 *            -lssh -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <libyang/libyang.h>
#include <nc_server.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static const char *opt_cert, *opt_key, *opt_ca, *opt_schemas;
static const char *opt_hostkey, *opt_user, *opt_password, *opt_authkey, *opt_log;
static long opt_data_size = 0;
static int opt_port = 0, opt_ssh_port = 0, opt_stdio = 0, opt_ch_tls_port = 0, opt_ch_ssh_port = 0;

static struct ly_ctx *ctx;
static struct nc_pollsession *ps;
static volatile sig_atomic_t stopping = 0;
static pthread_mutex_t ps_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ps_cond = PTHREAD_COND_INITIALIZER;

static char *big_data;                /* generated once for --data-size */
static char *stored_running, *stored_candidate;
static pthread_mutex_t store_mutex = PTHREAD_MUTEX_INITIALIZER;

static const char *SMALL_CONFIG =
    "<interop xmlns=\"urn:example:interop\"><greeting>hello from libnetconf2</greeting></interop>";
static const char *SMALL_STATE =
    "<interop xmlns=\"urn:example:interop\"><greeting>hello from libnetconf2</greeting>"
    "<uptime>42</uptime><server>libnetconf2</server></interop>";

static void die(const char *what)
{
    fprintf(stderr, "nc_server: %s\n", what);
    exit(2);
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* ---- replies ---------------------------------------------------------------------------- */

static struct nc_server_reply *data_reply(const char *rpc_name, const char *xml, int is_string)
{
    char path[128];
    struct lyd_node *tree = NULL;
    snprintf(path, sizeof path, "/%s/data", rpc_name);
    if (lyd_new_path2(NULL, ctx, path, xml, 0, is_string ? LYD_ANYDATA_STRING : LYD_ANYDATA_XML,
                      LYD_NEW_PATH_OUTPUT, &tree, NULL)) {
        return nc_server_reply_err(nc_err(ctx, NC_ERR_OP_FAILED, NC_ERR_TYPE_APP));
    }
    return nc_server_reply_data(tree, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
}

static struct lyd_node *child(const struct lyd_node *node, const char *name)
{
    struct lyd_node *c;
    LY_LIST_FOR(lyd_child(node), c) {
        if (!strcmp(LYD_NAME(c), name)) {
            return c;
        }
    }
    return NULL;
}

/* "running" or "candidate" or NULL: the datastore named inside <source>/<target>. */
static const char *datastore_in(const struct lyd_node *rpc, const char *which)
{
    struct lyd_node *d = child(rpc, which);
    if (!d) {
        return NULL;
    }
    struct lyd_node *c = lyd_child(d);
    return c ? LYD_NAME(c) : NULL;
}

static struct nc_server_reply *get_schema_clb(struct lyd_node *rpc, struct nc_session *session)
{
    (void)session;
    struct lyd_node *id = child(rpc, "identifier"), *ver = child(rpc, "version");
    struct lyd_node *fmt = child(rpc, "format");
    const char *name = id ? lyd_get_value(id) : NULL;
    const char *rev = ver ? lyd_get_value(ver) : NULL;
    fprintf(stderr, "nc_server: rpc get-schema %s@%s (%s)\n", name ? name : "?", rev ? rev : "",
            fmt ? lyd_get_value(fmt) : "yang");
    if (rev && !rev[0]) {
        rev = NULL;
    }
    const struct lys_module *mod = NULL;
    if (name) {
        mod = rev ? ly_ctx_get_module(ctx, name, rev) : ly_ctx_get_module_latest(ctx, name);
    }
    if (!mod) {
        struct lyd_node *e = nc_err(ctx, NC_ERR_INVALID_VALUE, NC_ERR_TYPE_APP);
        nc_err_set_msg(e, "The requested schema was not found.", "en");
        return nc_server_reply_err(e);
    }
    char *text = NULL;
    if (lys_print_mem(&text, mod, LYS_OUT_YANG, 0) || !text) {
        return nc_server_reply_err(nc_err(ctx, NC_ERR_OP_FAILED, NC_ERR_TYPE_APP));
    }
    struct nc_server_reply *reply = data_reply("ietf-netconf-monitoring:get-schema", text, 1);
    free(text);
    return reply;
}

static struct nc_server_reply *global_clb(struct lyd_node *rpc, struct nc_session *session)
{
    (void)session;
    const char *name = LYD_NAME(rpc);
    fprintf(stderr, "nc_server: rpc %s\n", name);

    if (!strcmp(name, "get")) {
        return data_reply("ietf-netconf:get", SMALL_STATE, 0);
    }
    if (!strcmp(name, "get-config")) {
        if (big_data) {
            return data_reply("ietf-netconf:get-config", big_data, 0);
        }
        const char *ds = datastore_in(rpc, "source");
        pthread_mutex_lock(&store_mutex);
        char *stored = ds && !strcmp(ds, "candidate") ? stored_candidate : stored_running;
        char *xml = strdup(stored ? stored : SMALL_CONFIG);
        pthread_mutex_unlock(&store_mutex);
        struct nc_server_reply *r = data_reply("ietf-netconf:get-config", xml, 0);
        free(xml);
        return r;
    }
    if (!strcmp(name, "edit-config")) {
        const char *ds = datastore_in(rpc, "target");
        struct lyd_node *config = child(rpc, "config");
        char *text = NULL;
        if (config && !lyd_any_value_str(config, &text) && text) {
            pthread_mutex_lock(&store_mutex);
            char **slot = ds && !strcmp(ds, "candidate") ? &stored_candidate : &stored_running;
            free(*slot);
            *slot = text;
            pthread_mutex_unlock(&store_mutex);
        }
        return nc_server_reply_ok();
    }
    if (!strcmp(name, "commit")) {
        pthread_mutex_lock(&store_mutex);
        if (stored_candidate) {
            free(stored_running);
            stored_running = strdup(stored_candidate);
        }
        pthread_mutex_unlock(&store_mutex);
        return nc_server_reply_ok();
    }
    if (!strcmp(name, "discard-changes")) {
        pthread_mutex_lock(&store_mutex);
        free(stored_candidate);
        stored_candidate = stored_running ? strdup(stored_running) : NULL;
        pthread_mutex_unlock(&store_mutex);
        return nc_server_reply_ok();
    }
    /* lock, unlock, validate, copy-config, delete-config, cancel-commit, kill-session, ... */
    return nc_server_reply_ok();
}

/* ---- TLS callbacks ----------------------------------------------------------------------- */

static int server_cert_clb(const char *name, void *user_data, char **cert_path, char **cert_data,
                           char **privkey_path, char **privkey_data, NC_SSH_KEY_TYPE *privkey_type)
{
    (void)name; (void)user_data; (void)cert_data; (void)privkey_data; (void)privkey_type;
    *cert_path = strdup(opt_cert);
    *privkey_path = strdup(opt_key);
    return 0;
}

static int trusted_list_clb(const char *name, void *user_data, char ***cert_paths,
                            int *cert_path_count, char ***cert_data, int *cert_data_count)
{
    (void)name; (void)user_data; (void)cert_data; (void)cert_data_count;
    *cert_paths = malloc(sizeof(char *));
    (*cert_paths)[0] = strdup(opt_ca);
    *cert_path_count = 1;
    return 0;
}

/* "04:" (SHA-256, RFC 7407 tls-fingerprint) + the CA certificate's colon-separated digest. */
static char *ca_fingerprint(void)
{
    FILE *f = fopen(opt_ca, "r");
    if (!f) {
        die("cannot open the CA certificate");
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x) {
        die("cannot parse the CA certificate");
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(x, EVP_sha256(), md, &len);
    X509_free(x);
    char *out = malloc(3 + len * 3 + 1), *p = out;
    p += sprintf(p, "04");
    for (unsigned int i = 0; i < len; i++) {
        p += sprintf(p, ":%02x", md[i]);
    }
    return out;
}

/* ---- SSH callbacks ------------------------------------------------------------------------ */

static int hostkey_clb(const char *name, void *user_data, char **privkey_path, char **privkey_data,
                       NC_SSH_KEY_TYPE *privkey_type)
{
    (void)name; (void)user_data; (void)privkey_data; (void)privkey_type;
    *privkey_path = strdup(opt_hostkey);
    return 0;
}

/* 0 accepts: the configured user with the configured password, nobody else. */
static int passwd_clb(const struct nc_session *session, const char *password, void *user_data)
{
    (void)user_data;
    const char *user = nc_session_get_username(session);
    int ok = opt_password && user && password && !strcmp(user, opt_user) &&
             !strcmp(password, opt_password);
    fprintf(stderr, "nc_server: password login as %s %s\n", user ? user : "?",
            ok ? "accepted" : "refused");
    return ok ? 0 : 1;
}

/* ---- session loop ------------------------------------------------------------------------ */

static void *accept_thread(void *arg)
{
    (void)arg;
    while (!stopping) {
        struct nc_session *session = NULL;
        NC_MSG_TYPE r = nc_accept(200, &session);
        if (r == NC_MSG_HELLO) {
            pthread_mutex_lock(&ps_mutex);
            nc_ps_add_session(ps, session);
            pthread_cond_signal(&ps_cond);
            pthread_mutex_unlock(&ps_mutex);
            fprintf(stderr, "nc_server: session %u accepted\n", nc_session_get_id(session));
        }
    }
    pthread_mutex_lock(&ps_mutex);
    pthread_cond_signal(&ps_cond);
    pthread_mutex_unlock(&ps_mutex);
    return NULL;
}

static void make_big_data(void)
{
    const char *head = "<interop xmlns=\"urn:example:interop\"><bulk>";
    const char *tail = "</bulk></interop>";
    size_t cap = (size_t)opt_data_size + 256, len = 0;
    big_data = malloc(cap);
    len += sprintf(big_data + len, "%s", head);
    unsigned long i = 0;
    while (len < (size_t)opt_data_size) { /* at least opt_data_size bytes */
        len += sprintf(big_data + len,
                       "<item><name>item-%08lu</name><value>the quick brown fox jumps over the lazy dog"
                       "</value></item>", i++);
    }
    len += sprintf(big_data + len, "%s", tail);
}

/* libnetconf2's call-home thread hands us each session it established; 0 keeps it. */
static int ch_session_clb(const char *client_name, struct nc_session *session)
{
    pthread_mutex_lock(&ps_mutex);
    nc_ps_add_session(ps, session);
    pthread_cond_signal(&ps_cond);
    pthread_mutex_unlock(&ps_mutex);
    fprintf(stderr, "nc_server: call home session %u established (client %s)\n",
            nc_session_get_id(session), client_name);
    return 0;
}

/* One session on stdin/stdout (sshd's subsystem), polled until it ends. */
static int serve_stdio(void)
{
    struct nc_session *session = NULL;
    NC_MSG_TYPE r = nc_accept_inout(STDIN_FILENO, STDOUT_FILENO, opt_user, &session);
    if (r != NC_MSG_HELLO) {
        fprintf(stderr, "nc_server: stdio session not established (%d)\n", (int)r);
        return 1;
    }
    fprintf(stderr, "nc_server: stdio session %u as %s\n", nc_session_get_id(session), opt_user);
    ps = nc_ps_new();
    nc_ps_add_session(ps, session);
    while (!stopping) {
        struct nc_session *polled = NULL;
        int p = nc_ps_poll(ps, 1000, &polled);
        if (p & (NC_PSPOLL_SESSION_TERM | NC_PSPOLL_ERROR)) {
            break;
        }
    }
    nc_ps_clear(ps, 1, NULL);
    nc_ps_free(ps);
    nc_server_destroy();
    ly_ctx_destroy(ctx);
    fprintf(stderr, "nc_server: stdio session ended\n");
    return 0;
}

int main(int argc, char **argv)
{
    static const char *usage =
        "usage: nc_server --schemas DIR [--data-size BYTES]"
        " [--port P --cert C --key K --ca CA]"
        " [--ssh-port P --hostkey KEY --user NAME [--password PW] [--authkey PUB]]"
        " [--ch-tls-port P] [--ch-ssh-port P]"
        " | nc_server --stdio --user NAME --schemas DIR [--data-size BYTES] [--log FILE]";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--stdio")) {
            opt_stdio = 1;
            continue;
        }
        if (!v) {
            die(usage);
        }
        if (!strcmp(a, "--port")) opt_port = atoi(v);
        else if (!strcmp(a, "--cert")) opt_cert = v;
        else if (!strcmp(a, "--key")) opt_key = v;
        else if (!strcmp(a, "--ca")) opt_ca = v;
        else if (!strcmp(a, "--data-size")) opt_data_size = atol(v);
        else if (!strcmp(a, "--schemas")) opt_schemas = v;
        else if (!strcmp(a, "--ssh-port")) opt_ssh_port = atoi(v);
        else if (!strcmp(a, "--hostkey")) opt_hostkey = v;
        else if (!strcmp(a, "--user")) opt_user = v;
        else if (!strcmp(a, "--password")) opt_password = v;
        else if (!strcmp(a, "--authkey")) opt_authkey = v;
        else if (!strcmp(a, "--log")) opt_log = v;
        else if (!strcmp(a, "--ch-tls-port")) opt_ch_tls_port = atoi(v);
        else if (!strcmp(a, "--ch-ssh-port")) opt_ch_ssh_port = atoi(v);
        else die(usage);
        i++;
    }
    int tls = opt_port != 0, ssh = opt_ssh_port != 0;
    int ch_tls = opt_ch_tls_port != 0, ch_ssh = opt_ch_ssh_port != 0;
    if (!opt_schemas || (!tls && !ssh && !ch_tls && !ch_ssh && !opt_stdio) ||
        (opt_stdio && (tls || ssh || ch_tls || ch_ssh || !opt_user)) || (ch_tls && ch_ssh) ||
        ((tls || ch_tls) && (!opt_cert || !opt_key || !opt_ca)) ||
        ((ssh || ch_ssh) && (!opt_hostkey || !opt_user))) {
        die(usage);
    }
    if (opt_log && !freopen(opt_log, "a", stderr)) {
        die("cannot open the log file");
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* If the test process dies without running its guards (killed by a signal), follow it:
     * never leave a server behind. The test thread that started us outlives our use. */
    if (!opt_stdio) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1) {
            die("parent already gone");
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    nc_verbosity(NC_VERB_WARNING);
    if (opt_data_size > 0) {
        make_big_data();
    }

    if (ly_ctx_new(opt_schemas, LY_CTX_DISABLE_SEARCHDIR_CWD, &ctx)) {
        die("ly_ctx_new failed");
    }
    const char *nc_features[] = {"writable-running", "candidate", "confirmed-commit",
                                 "rollback-on-error", "validate", "startup", "xpath", NULL};
    if (!ly_ctx_load_module(ctx, "ietf-netconf", "2013-09-29", nc_features)) {
        die("cannot load ietf-netconf");
    }
    if (!ly_ctx_load_module(ctx, "ietf-netconf-monitoring", "2010-10-04", NULL)) {
        die("cannot load ietf-netconf-monitoring");
    }

    /* Our own get-schema callback, set before nc_server_init so the built-in one is not. */
    const struct lysc_node *gs = lys_find_path(ctx, NULL, "/ietf-netconf-monitoring:get-schema", 0);
    if (!gs) {
        die("no get-schema node");
    }
    nc_set_rpc_callback(((struct lysc_node *)gs), get_schema_clb);
    nc_set_global_rpc_clb(global_clb);

    if (nc_server_init(ctx)) {
        die("nc_server_init failed");
    }
    if (opt_stdio) {
        return serve_stdio();
    }
    if (tls) {
        if (nc_server_add_endpt("tls", NC_TI_OPENSSL) ||
            nc_server_endpt_set_address("tls", "127.0.0.1") ||
            nc_server_endpt_set_port("tls", (uint16_t)opt_port)) {
            die("cannot listen on 127.0.0.1 (port taken?)");
        }
        char *fp = ca_fingerprint();
        if (nc_server_tls_endpt_set_server_cert("tls", "server") ||
            nc_server_tls_endpt_add_trusted_cert_list("tls", "clients") ||
            nc_server_tls_endpt_add_ctn("tls", 1, fp, NC_TLS_CTN_SPECIFIED, "admin")) {
            die("TLS endpoint configuration failed");
        }
        free(fp);
    }
    if (ssh) {
        if (nc_server_add_endpt("ssh", NC_TI_LIBSSH) ||
            nc_server_endpt_set_address("ssh", "127.0.0.1") ||
            nc_server_endpt_set_port("ssh", (uint16_t)opt_ssh_port)) {
            die("cannot listen on 127.0.0.1 for SSH (port taken?)");
        }
        if (nc_server_ssh_endpt_add_hostkey("ssh", "hostkey", -1) ||
            nc_server_ssh_endpt_set_auth_methods("ssh", NC_SSH_AUTH_PUBLICKEY | NC_SSH_AUTH_PASSWORD)) {
            die("SSH endpoint configuration failed");
        }
    }
    /* Shared by the listening and the call-home endpoints. */
    if (tls || ch_tls) {
        nc_server_tls_set_server_cert_clb(server_cert_clb, NULL, NULL);
        nc_server_tls_set_trusted_cert_list_clb(trusted_list_clb, NULL, NULL);
    }
    if (ssh || ch_ssh) {
        nc_server_ssh_set_hostkey_clb(hostkey_clb, NULL, NULL);
        nc_server_ssh_set_passwd_auth_clb(passwd_clb, NULL, NULL);
        if (opt_authkey && nc_server_ssh_add_authkey_path(opt_authkey, opt_user)) {
            die("cannot load the authorized key");
        }
    }

    ps = nc_ps_new();
    if (ch_tls || ch_ssh) {
        /* Call home: one client (the manager), one endpoint, persistent. */
        const char *endpt = ch_tls ? "tls" : "ssh";
        if (nc_server_ch_add_client("manager") ||
            nc_server_ch_client_add_endpt("manager", endpt, ch_tls ? NC_TI_OPENSSL : NC_TI_LIBSSH) ||
            nc_server_ch_client_endpt_set_address("manager", endpt, "127.0.0.1") ||
            nc_server_ch_client_endpt_set_port("manager", endpt,
                                               (uint16_t)(ch_tls ? opt_ch_tls_port : opt_ch_ssh_port)) ||
            nc_server_ch_client_set_conn_type("manager", NC_CH_PERSIST)) {
            die("call home client configuration failed");
        }
        if (ch_tls) {
            char *fp = ca_fingerprint();
            if (nc_server_tls_ch_client_endpt_set_server_cert("manager", "tls", "server") ||
                nc_server_tls_ch_client_endpt_add_trusted_cert_list("manager", "tls", "clients") ||
                nc_server_tls_ch_client_endpt_add_ctn("manager", "tls", 1, fp, NC_TLS_CTN_SPECIFIED, "admin")) {
                die("call home TLS endpoint configuration failed");
            }
            free(fp);
        } else if (nc_server_ssh_ch_client_endpt_add_hostkey("manager", "ssh", "hostkey", -1) ||
                   nc_server_ssh_ch_client_endpt_set_auth_methods("manager", "ssh",
                                                                  NC_SSH_AUTH_PUBLICKEY | NC_SSH_AUTH_PASSWORD)) {
            die("call home SSH endpoint configuration failed");
        }
        if (nc_connect_ch_client_dispatch("manager", ch_session_clb)) {
            die("nc_connect_ch_client_dispatch failed");
        }
        fprintf(stderr, "nc_server: calling home over %s to 127.0.0.1:%d\n", ch_tls ? "TLS" : "SSH",
                ch_tls ? opt_ch_tls_port : opt_ch_ssh_port);
    }
    /* nc_accept fails at once without a listening endpoint: no acceptor for call home only. */
    pthread_t acceptor;
    int accepting = tls || ssh;
    if (accepting) {
        pthread_create(&acceptor, NULL, accept_thread, NULL);
    }
    if (tls) {
        fprintf(stderr, "nc_server: TLS listening on 127.0.0.1:%d\n", opt_port);
    }
    if (ssh) {
        fprintf(stderr, "nc_server: SSH listening on 127.0.0.1:%d\n", opt_ssh_port);
    }

    while (!stopping) {
        pthread_mutex_lock(&ps_mutex);
        while (!stopping && nc_ps_session_count(ps) == 0) {
            /* Timed: a signal handler cannot wake us, and without a listening endpoint no
             * acceptor thread signals at SIGTERM (call home only): look at `stopping` often. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 200 * 1000 * 1000;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec += 1;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&ps_cond, &ps_mutex, &until);
        }
        pthread_mutex_unlock(&ps_mutex);
        if (stopping) {
            break;
        }
        struct nc_session *session = NULL;
        int r = nc_ps_poll(ps, 100, &session);
        if ((r & NC_PSPOLL_SESSION_TERM) && session) {
            pthread_mutex_lock(&ps_mutex);
            nc_ps_del_session(ps, session);
            pthread_mutex_unlock(&ps_mutex);
            fprintf(stderr, "nc_server: session %u ended\n", nc_session_get_id(session));
            nc_session_free(session, NULL);
        }
    }
    if (accepting) {
        pthread_join(acceptor, NULL);
    }
    if (ch_tls || ch_ssh) {
        nc_server_ch_del_client("manager");
    }
    nc_ps_clear(ps, 1, NULL);
    nc_ps_free(ps);
    nc_server_destroy();
    ly_ctx_destroy(ctx);
    return 0;
}
