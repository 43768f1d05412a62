#!/usr/bin/python3
"""A pyftpdlib server for the FTP and FTPS tests (tests/integration/servers.py FtpServer).

    ftp_server.py --port P --root DIR --user U --password PW
                  [--tls-cert CRT --tls-key KEY] [--throttle BYTES_PER_S]

--tls-cert makes it explicit FTPS (AUTH TLS required on the control and data connections).
--throttle slows uploads down (a "mid-upload" moment a test can kill the daemon in).
Prints "ready <port>" on stdout once it listens; logs every command on stderr.
"""
import argparse
import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--throttle", type=int, default=0)
    a = ap.parse_args()

    auth = DummyAuthorizer()
    auth.add_user(a.user, a.password, a.root, perm="elradfmwMT")
    if a.tls_cert:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler  # needs python3-openssl

        class DTPHandler(TLS_DTPHandler):
            """pyftpdlib 1.5.7 closes a TLS data connection that becomes readable before
            the transfer command (DTPHandler.readable): libcurl starts the data channel's
            handshake as soon as it connects, before STOR. Let the handshake run, then
            wait for the command without closing."""

            def readable(self):
                if self._ssl_accepting or (self._ssl_requested and not self._ssl_established):
                    return True
                if not self.receive and not self._initialized:
                    return False
                return super().readable()

        handler = TLS_FTPHandler
        handler.dtp_handler = DTPHandler
        handler.certfile = a.tls_cert
        handler.keyfile = a.tls_key
        handler.tls_control_required = True
        handler.tls_data_required = True
    else:
        handler = FTPHandler
    handler.authorizer = auth
    handler.passive_ports = None
    if a.throttle:
        if a.tls_cert:
            raise SystemExit("--throttle is for plain FTP only")
        dtp = ThrottledDTPHandler
        dtp.read_limit = a.throttle
        handler.dtp_handler = dtp
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(message)s")
    server = FTPServer(("127.0.0.1", a.port), handler)
    print("ready %d" % a.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
