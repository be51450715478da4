#!/usr/bin/env python3
"""A NETCONF client run by the interop suite against OUR servers, over TLS or SSH, on one of
two independent Python libraries from PyPI:

  --lib ncclient        ncclient 0.7.x   TLS: manager.connect_tls(..., protocol=ssl.PROTOCOL_TLS_CLIENT)
                                         SSH: manager.connect(...) (paramiko)
  --lib netconf-client  netconf-client 3.6.x  connect_tls(...) / connect_ssh(...) + Manager(session)

  py_client.py --lib LIB --port P --cert client.pem --key client.key --ca ca.pem
               [--host H] [--tag TEXT] [--big BYTES] [--timeout SECONDS]
  py_client.py --lib LIB --transport ssh --port P --user NAME --password PW --hostkey-b64 KEY
               [--host H] [--tag TEXT] [--big BYTES] [--timeout SECONDS]

Over SSH the server's host key must be KEY (the base64 field of its OpenSSH public key): ncclient
checks it itself (hostkey_b64, with hostkey_verify on); netconf-client 3.6 accepts a hostkey_b64
argument but never compares it, so this script compares the key paramiko saw. Neither library
may look at an agent, ~/.ssh keys or ~/.ssh/config.

Without --big: hello, get-config, edit-config (a greeting naming TEXT), get-config again,
lock, unlock, close. With --big: hello, one get-config whose reply must be >= BYTES, close.
One line per step, as the C client prints them:
  HELLO session-id=N capabilities=N base11=0|1 seconds=S
  GET-CONFIG <the reply>       EDIT-CONFIG ok      GET-CONFIG-AFTER <the reply>
  LOCK ok    UNLOCK ok         BIG bytes=N seconds=S     CLOSE ok
A failure prints "FAIL <step>: <why>" and exits 1.
"""
import argparse
import ssl
import sys
import time

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE11 = "urn:ietf:params:netconf:base:1.1"


def say(line):
    print(line, flush=True)


def one_line(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())


class Step:
    """Prints FAIL <step>: <why> and exits on any exception inside the block."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if value is not None:
            say("FAIL %s: %s: %s" % (self.name, kind.__name__, one_line(str(value))[:2000]))
            sys.exit(1)
        return False


def ssh_algorithms(transport):
    """ cipher=... mac=... of a paramiko Transport (server to client), for the HELLO line."""
    if transport is None:
        return ""
    return " cipher=%s mac=%s" % (transport.remote_cipher, transport.remote_mac)


def edit_payload(tag):
    return ('<config xmlns="%s"><interop xmlns="urn:example:interop">'
            "<greeting>set by %s</greeting></interop></config>" % (BASE_NS, tag))


def run_ncclient(args):
    from ncclient import manager

    t0 = time.monotonic()
    with Step("HELLO"):
        if args.transport == "ssh":
            m = manager.connect(host=args.host, port=args.port, username=args.user,
                                password=args.password, hostkey_verify=True,
                                hostkey_b64=args.hostkey_b64, allow_agent=False,
                                look_for_keys=False, ssh_config=None, timeout=args.timeout)
            m.timeout = args.timeout
        else:
            m = manager.connect_tls(host=args.host, port=args.port, certfile=args.cert,
                                    keyfile=args.key, ca_certs=args.ca,
                                    protocol=ssl.PROTOCOL_TLS_CLIENT, timeout=args.timeout)
        caps = list(m.server_capabilities)
    transport = getattr(m._session, "_transport", None) if args.transport == "ssh" else None
    say("HELLO session-id=%s capabilities=%d base11=%d seconds=%.3f%s"
        % (m.session_id, len(caps), int(BASE11 in caps), time.monotonic() - t0,
           ssh_algorithms(transport)))
    if args.big:
        with Step("BIG"):
            t = time.monotonic()
            reply = m.get_config(source="running")
            size = len(reply.xml)
            secs = time.monotonic() - t
        say("BIG bytes=%d seconds=%.3f" % (size, secs))
        if size < args.big:
            say("FAIL BIG: reply of %d bytes, expected at least %d" % (size, args.big))
            sys.exit(1)
    else:
        with Step("GET-CONFIG"):
            say("GET-CONFIG " + one_line(m.get_config(source="running").xml))
        with Step("EDIT-CONFIG"):
            reply = m.edit_config(target="running", config=edit_payload(args.tag))
            if not reply.ok:
                raise RuntimeError(reply.xml)
        say("EDIT-CONFIG ok")
        with Step("GET-CONFIG-AFTER"):
            say("GET-CONFIG-AFTER " + one_line(m.get_config(source="running").xml))
        with Step("LOCK"):
            if not m.lock(target="running").ok:
                raise RuntimeError("not ok")
        say("LOCK ok")
        with Step("UNLOCK"):
            if not m.unlock(target="running").ok:
                raise RuntimeError("not ok")
        say("UNLOCK ok")
    with Step("CLOSE"):
        m.close_session()
    say("CLOSE ok")


def run_netconf_client(args):
    from netconf_client.connect import connect_ssh, connect_tls
    from netconf_client.ncclient import Manager

    t0 = time.monotonic()
    with Step("HELLO"):
        if args.transport == "ssh":
            session = connect_ssh(host=args.host, port=args.port, username=args.user,
                                  password=args.password, hostkey_b64=args.hostkey_b64,
                                  initial_timeout=args.timeout, general_timeout=args.timeout)
            seen = session.sock.transport.get_remote_server_key().get_base64()
            if seen != args.hostkey_b64:
                raise RuntimeError("host key %s is not the expected %s" % (seen, args.hostkey_b64))
        else:
            session = connect_tls(host=args.host, port=args.port, keyfile=args.key,
                                  certfile=args.cert, ca_certs=args.ca,
                                  initial_timeout=args.timeout, general_timeout=args.timeout)
        m = Manager(session, timeout=args.timeout)
        caps = list(session.server_capabilities)
    transport = session.sock.transport if args.transport == "ssh" else None
    say("HELLO session-id=%s capabilities=%d base11=%d seconds=%.3f%s"
        % (session.session_id, len(caps), int(BASE11 in caps), time.monotonic() - t0,
           ssh_algorithms(transport)))
    if args.big:
        with Step("BIG"):
            t = time.monotonic()
            reply = m.get_config(source="running")
            size = len(reply.raw_reply)
            secs = time.monotonic() - t
        say("BIG bytes=%d seconds=%.3f" % (size, secs))
        if size < args.big:
            say("FAIL BIG: reply of %d bytes, expected at least %d" % (size, args.big))
            sys.exit(1)
    else:
        with Step("GET-CONFIG"):
            say("GET-CONFIG " + one_line(m.get_config(source="running").raw_reply))
        with Step("EDIT-CONFIG"):
            m.edit_config(edit_payload(args.tag), target="running")
        say("EDIT-CONFIG ok")
        with Step("GET-CONFIG-AFTER"):
            say("GET-CONFIG-AFTER " + one_line(m.get_config(source="running").raw_reply))
        with Step("LOCK"):
            m.lock("running")
        say("LOCK ok")
        with Step("UNLOCK"):
            m.unlock("running")
        say("UNLOCK ok")
    with Step("CLOSE"):
        m.close_session()
        session.close()
    say("CLOSE ok")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True, choices=["ncclient", "netconf-client"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--transport", default="tls", choices=["tls", "ssh"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--hostkey-b64")
    p.add_argument("--tag", default=None)
    p.add_argument("--big", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    if args.transport == "ssh":
        if not (args.user and args.password and args.hostkey_b64):
            p.error("--transport ssh needs --user, --password and --hostkey-b64")
    elif not (args.cert and args.key and args.ca):
        p.error("TLS needs --cert, --key and --ca")
    if args.tag is None:
        args.tag = args.lib
    if args.lib == "ncclient":
        run_ncclient(args)
    else:
        run_netconf_client(args)


if __name__ == "__main__":
    main()
