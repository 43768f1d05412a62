"""Servers for the HTTP and FTP send-mode tests (logger.mode: http | ftp), on 127.0.0.1.

    HttpRecorder(wd, pki=None, require_cert=True)
        An HTTP/1.1 server (keep-alive) in a thread of the test process; with pki it speaks
        TLS with pki's server certificate and, with require_cert, wants a client
        certificate signed by pki's CA. What it answers is set on the fly:
            .status = 200 | 204 | 500 | 429 | 400 ...   (default 200)
            .retry_after = "3" or an HTTP date           (sent with the status; None: no header)
            .hang_s = 0                                  (sleep, then close without answer)
            .basic = ("user", "password")                (others get 401)
            .delay_s = 0                                 (sleep, then answer; the request
                                                          counts as taken from its arrival)
        It records every request: .requests (dicts: method, path, query, headers, body,
        status, t) and .delivered() (the bodies answered 2xx); .connections counts TCP
        connections. .start() / .stop() (an outage) / .start() again on the same port.
    FtpServer(wd, tls_pki=None, throttle=0)
        pyftpdlib (tests/sim/ftp_server.py) in a subprocess: user "gw", password "ftp-pw",
        its root .root with a directory "in"; tls_pki makes it explicit FTPS.
        .start() / .stop() / .port / .files() (name -> bytes, in .root/in)
    SshServer(wd)
        sshd from openssh-server on a free port (root only: tests exit 77 otherwise), with
        its own host key, key authentication for root with .client_key, and .known_hosts
        listing its host key; .wrong_known_hosts lists another key. .dir is writable.
"""
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NO_PROXY_ENV = {"no_proxy": "*", "NO_PROXY": "*"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.rec.lock:
            self.server.rec.connections += 1
            self.server.rec.open_sockets.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.rec.lock:
                self.server.rec.open_sockets.discard(self.connection)

    def log_message(self, fmt, *args):  # quiet
        pass

    def _serve(self):
        rec = self.server.rec
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        url = urllib.parse.urlsplit(self.path)
        with rec.lock:
            status, retry_after, hang, delay = rec.status, rec.retry_after, rec.hang_s, rec.delay_s
        if rec.basic is not None:
            import base64  # pylint: disable=import-outside-toplevel
            want = "Basic " + base64.b64encode(("%s:%s" % rec.basic).encode()).decode()
            if self.headers.get("Authorization") != want:
                status, hang, delay = 401, 0, 0
        entry = {"method": self.command, "path": url.path,
                 "query": urllib.parse.parse_qs(url.query), "headers": dict(self.headers),
                 "body": body, "status": status, "t": time.time(), "hung": hang > 0}
        with rec.lock:
            rec.requests.append(entry)
        if hang:
            time.sleep(hang)
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        reply = b"" if status == 204 else (b'{"error":"refused: bad payload"}' if status >= 400
                                           else b'{"ok":true}')
        try:
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if reply:
                self.wfile.write(reply)
        except OSError:
            self.close_connection = True  # the client is gone (killed mid-request)

    do_POST = do_PUT = do_GET = _serve


class _Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # TLS handshakes refused on purpose, clients that time out


class HttpRecorder:
    def __init__(self, wd, pki=None, require_cert=True):
        self.pki = pki
        self.require_cert = require_cert
        self.port = None
        self.status = 200
        self.retry_after = None
        self.hang_s = 0
        self.delay_s = 0
        self.basic = None  # (user, password): anything else gets 401
        self.requests = []
        self.connections = 0
        self.open_sockets = set()
        self.lock = threading.Lock()
        self._server = None
        self._thread = None
        owner = wd if isinstance(wd, harness.Workdir) else None
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    @property
    def url(self):
        return "%s://localhost:%d/ingest" % ("https" if self.pki else "http", self.port)

    def start(self):
        if self.port is None:
            self.port = harness.free_port()
        deadline = time.monotonic() + harness._scaled(10)  # pylint: disable=protected-access
        while True:
            try:
                server = _Server(("127.0.0.1", self.port), _Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        server.rec = self
        if self.pki:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.pki["server_cert"], self.pki["server_key"])
            if self.require_cert:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(self.pki["ca"])
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        # An outage: the kept-alive connections go too, not only the listener.
        with self.lock:
            socks, self.open_sockets = list(self.open_sockets), set()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None

    def _cleanup(self):
        self.stop()

    def delivered(self):
        with self.lock:
            return [r["body"] for r in self.requests if 200 <= r["status"] < 300 and not r["hung"]]

    def count(self, status):
        with self.lock:
            return sum(1 for r in self.requests if r["status"] == status and not r["hung"])


class FtpServer:
    USER = "gw"
    PASSWORD = "ftp-pw"

    def __init__(self, wd, tls_pki=None, throttle=0, name="ftp"):
        self.dir, owner = harness._wd(wd)  # pylint: disable=protected-access
        self.root = os.path.join(self.dir, name + "-root")
        os.makedirs(os.path.join(self.root, "in"), exist_ok=True)
        self.tls_pki = tls_pki
        self.throttle = throttle
        self.name = name
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, name + ".log")
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    def url(self, path="in/"):
        return "%s://127.0.0.1:%d/%s" % ("ftps" if self.tls_pki else "ftp", self.port, path)

    def start(self, timeout=15):
        if self.port is None:
            self.port = harness.free_port()
        argv = ["/usr/bin/python3", os.path.join(ROOT, "tests", "sim", "ftp_server.py"),
                "--port", str(self.port), "--root", self.root, "--user", self.USER,
                "--password", self.PASSWORD]
        if self.tls_pki:
            argv += ["--tls-cert", self.tls_pki["server_cert"],
                     "--tls-key", self.tls_pki["server_key"]]
        if self.throttle:
            argv += ["--throttle", str(self.throttle)]
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log)
        log.close()
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            raise AssertionError("ftp server did not start: %r\n%s" % (line, open(self.log_path).read()[-2000:]))
        harness.wait_until(lambda: harness._port_open(self.port), timeout,  # pylint: disable=protected-access
                           "the FTP server's port")
        return self

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def _cleanup(self):
        self.stop()

    def files(self, sub="in"):
        d = os.path.join(self.root, sub)
        out = {}
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as fh:
                out[n] = fh.read()
        return out

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()


def _run(argv):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if res.returncode != 0:
        raise AssertionError("%s failed: %s%s" % (argv[0], res.stdout, res.stderr))
    return res.stdout


class SshServer:
    def __init__(self, wd, name="sshd"):
        self.dir, owner = harness._wd(wd)  # pylint: disable=protected-access
        self.name = name
        self.base = os.path.join(self.dir, name)
        self.upload = os.path.join(self.base, "upload")
        os.makedirs(self.upload, exist_ok=True)
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, name + ".log")
        b = lambda n: os.path.join(self.base, n)  # noqa: E731
        self.host_key, self.other_host_key = b("host_key"), b("other_host_key")
        self.client_key, self.wrong_client_key = b("client_key"), b("wrong_client_key")
        self.known_hosts, self.wrong_known_hosts = b("known_hosts"), b("wrong_known_hosts")
        for key in (self.host_key, self.other_host_key, self.client_key, self.wrong_client_key):
            if not os.path.exists(key):
                # PEM: libssh2's OpenSSL back end reads it whatever its version.
                _run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "",
                      "-f", key])
        with open(b("authorized_keys"), "w", encoding="utf-8") as fh:
            fh.write(open(self.client_key + ".pub", encoding="utf-8").read())
        os.chmod(b("authorized_keys"), 0o600)
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    def url(self, path=None):
        return "sftp://127.0.0.1:%d%s/" % (self.port, path or self.upload)

    def _write_known_hosts(self):
        for path, key in ((self.known_hosts, self.host_key),
                          (self.wrong_known_hosts, self.other_host_key)):
            pub = open(key + ".pub", encoding="utf-8").read().split()
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("[127.0.0.1]:%d %s %s\n" % (self.port, pub[0], pub[1]))

    def start(self, timeout=15):
        if self.port is None:
            self.port = harness.free_port()
        self._write_known_hosts()
        os.makedirs("/run/sshd", exist_ok=True)
        conf = os.path.join(self.base, "sshd_config")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write("\n".join([
                "ListenAddress 127.0.0.1:%d" % self.port,
                "HostKey %s" % self.host_key,
                "PidFile %s" % os.path.join(self.base, "sshd.pid"),
                "AuthorizedKeysFile %s" % os.path.join(self.base, "authorized_keys"),
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "UsePAM no",
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                ""]))
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                     stdout=log, stderr=log)
        log.close()
        harness.wait_until(lambda: self.proc.poll() is None and
                           harness._port_open(self.port), timeout,  # pylint: disable=protected-access
                           lambda: "sshd to listen\n" + open(self.log_path).read()[-2000:])
        return self

    def _sessions(self):
        """The session processes this sshd forked (they outlive the listener)."""
        kids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid, encoding="utf-8") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid:
                kids.append(int(pid))
        return kids

    def stop(self):
        """An outage: the listener and every session it forked."""
        if self.proc is None:
            return
        sessions = self._sessions()
        self.proc.send_signal(signal.SIGTERM)
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _cleanup(self):
        self.stop()

    def files(self):
        out = {}
        for n in sorted(os.listdir(self.upload)):
            with open(os.path.join(self.upload, n), "rb") as fh:
                out[n] = fh.read()
        return out


def wait_port_closed(port, timeout=10):
    def closed():
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) != 0
    harness.wait_until(closed, timeout, "port %d to close" % port)
