"""Integration-test harness for modbridge: temp dirs, PKI, mosquitto, MQTT subscriber,
socat pty pairs, the Modbus simulator and the modbridge daemon itself.

Scenarios run under Debian's /usr/bin/python3 (the only interpreter that can import
python3-pymodbus) and import this module with:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness as h

Everything binds to 127.0.0.1 on free ports, waits for readiness instead of sleeping, stops
only the processes it started (by PID: SIGTERM, wait, SIGKILL after a timeout) and cleans up at
exit even when a test fails.  Environment knobs:

    MODBRIDGE_BIN              daemon binary (default <repo>/build/modbridge)
    MODBRIDGE_KEEP_TMP=1       keep work dirs even on success
    MODBRIDGE_TIMEOUT_SCALE=N  multiply every harness timeout (slow CI, valgrind, sanitizers)
    MODBRIDGE_SIM_VERBOSE=1    run the Modbus simulator with --verbose (logs every request)
    MODBRIDGE_DUMP_LINES=N     lines of each log printed when a test fails (default 40)

Run as root (as CI is), importing this module sets MODBRIDGE_ALLOW_ROOT=1 for every process
it starts: `modbridge run` refuses to run as root without a user to switch to unless allowed
(docs/operations.md, "Privileges"); test_privdrop.py takes it out where it tests that.

Importing this module also makes `from pymodbus.client import ModbusTcpClient` work without
python3-serial-asyncio (a stub `serial_asyncio` module is registered when it is missing; the
synchronous clients never use it).  Note pymodbus 3.0 clients truncate `timeout` to an int
(use >= 1) and want `slave=`, not `unit=`.

API (see each docstring):
    with Workdir() as wd: ...            wd.path (str, also supports /), wd.write(name, text)
    free_port() -> int
    make_pki(dir_or_workdir) -> dict     ca, ca_key, server_cert, server_key, client_cert,
                                         client_key, wrong_ca (+ wrong_ca_key,
                                         wrong_client_cert, wrong_client_key,
                                         other_server_*, expired_server_*, dir)
    Broker(wd, pki, persistence=False)   .start() .stop() .restart() .port_plain .port_pw
                                         .port_tls .port_tls_cert .port_tls_pw .username
                                         .password .log_path .client_args(listener)
                                         .publish(topic, payload, qos, retain, listener)
    Subscriber(broker, topic, qos=1, client_id=None, clean=True)
                                         .start() .stop() .messages() .wait_for(n, timeout)
                                         .wait_match(pred, timeout) .wait_active() .clear()
    PtyPair(wd, name="tty")              .start() .stop() .a .b
    ModbusSim(wd, config)                .start() .stop() .restart() .stats(server=None)
                                         .requests() .tcp_ports .port
    Daemon(wd, config_yaml, name="modbridge", binary=None)
                                         .start(*args, env=None) .wait_log(regex, timeout,
                                         since=None) .log() .log_offset() .stop(timeout=10)
                                         .kill9() .signal(sig) .run_cli(*args, timeout=30)
                                         .write_config(yaml) .config_path .log_path
    wait_until(predicate, timeout, what)
    fill_disk(path)                      take every free byte of path's file system
"""

import atexit
import copy
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types

__all__ = [
    "Workdir", "free_port", "make_pki", "Broker", "Subscriber", "PtyPair", "ModbusSim",
    "Daemon", "wait_until", "fill_disk", "REPO", "SYSTEM_PYTHON", "SIM_SCRIPT", "TIMEOUT_SCALE",
]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SIM_SCRIPT = os.path.join(REPO, "tests", "sim", "modbus_sim.py")
SYSTEM_PYTHON = "/usr/bin/python3"
LOCALHOST = "127.0.0.1"


def _env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


TIMEOUT_SCALE = max(_env_float("MODBRIDGE_TIMEOUT_SCALE", 1.0), 0.1)
if os.geteuid() == 0:
    os.environ.setdefault("MODBRIDGE_ALLOW_ROOT", "1")
DUMP_LINES = int(_env_float("MODBRIDGE_DUMP_LINES", 40))
PROBE_PREFIX = "__modbridge_harness_probe__"


def _scaled(timeout):
    return timeout * TIMEOUT_SCALE


def _note(msg):
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# pymodbus client import without python3-serial-asyncio
# --------------------------------------------------------------------------- #
def _ensure_serial_asyncio_importable():
    if importlib.util.find_spec("serial_asyncio") is None:
        stub = types.ModuleType("serial_asyncio")

        async def create_serial_connection(*_args, **_kwargs):
            raise NotImplementedError("serial_asyncio stub from harness.py: "
                                      "use pymodbus' synchronous clients")

        stub.create_serial_connection = create_serial_connection
        sys.modules["serial_asyncio"] = stub


_ensure_serial_asyncio_importable()


# --------------------------------------------------------------------------- #
# Generic helpers
# --------------------------------------------------------------------------- #
def wait_until(predicate, timeout, what, interval=0.2):
    """Poll predicate() until it returns something truthy; return that value.

    Raises AssertionError naming `what` (a string, or a callable returning one, evaluated
    only on failure so it can include fresh log tails) after `timeout` seconds (scaled by
    MODBRIDGE_TIMEOUT_SCALE).  Polls quickly at first, then every `interval` seconds.
    """
    deadline = time.monotonic() + _scaled(timeout)
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {_scaled(timeout):.1f}s waiting for {text}")
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, interval)


def _tail(path, lines=None):
    lines = DUMP_LINES if lines is None else lines
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            content = fh.read().splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    if not content:
        return f"<{os.path.basename(path)} is empty>"
    out = content[-lines:]
    head = f"--- last {len(out)} of {len(content)} lines of {path} ---"
    return "\n".join([head] + out)


# A sanitizer's report (ASan, LSan, UBSan, TSan) in a daemon's or CLI's output fails the
# test even when the exit code is not checked (kill9, a CLI run expected to fail, or a report
# in the last moments of a stop).
_SANITIZER_RE = re.compile(r"^(?:==\d+==)?(?:WARNING: ThreadSanitizer|ERROR: \w+Sanitizer)"
                           r"|^\S+:\d+:\d+: runtime error: ", re.M)


def _sanitizer_report(text, where):
    """The first sanitizer report in text (40 lines), or None."""
    m = _SANITIZER_RE.search(text)
    if not m:
        return None
    lines = text[m.start():].splitlines()[:40]
    return "\n".join([f"--- sanitizer report in {where} ---"] + lines)


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path, offset):
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


_handed_ports = set()
_port_lock = threading.Lock()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (never the same one twice)."""
    with _port_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOCALHOST, 0))
                port = sock.getsockname()[1]
            if port not in _handed_ports:
                _handed_ports.add(port)
                return port
    raise RuntimeError("free_port: no free port found")


def _port_open(port, host=LOCALHOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class WorkPath(str):
    """A str path that also supports `/` like pathlib (wd.path / "x.db")."""

    def __truediv__(self, other):
        return WorkPath(os.path.join(self, os.fspath(other)))


# --------------------------------------------------------------------------- #
# Process bookkeeping: only what we started, by PID, cleaned up at exit
# --------------------------------------------------------------------------- #
_live_procs = {}  # pid -> (Popen, description)
_procs_lock = threading.Lock()
_SETPRIV = shutil.which("setpriv")


def _spawn(argv, what, **kwargs):
    """Popen argv; the child gets SIGTERM if this process dies (setpriv --pdeathsig)."""
    exe = shutil.which(argv[0]) if not os.path.sep in argv[0] else argv[0]
    if not exe or not os.access(exe, os.X_OK):
        raise AssertionError(f"cannot start {what}: {argv[0]!r} not found or not executable")
    full = [_SETPRIV, "--pdeathsig", "TERM", "--"] + list(argv) if _SETPRIV else list(argv)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(full, **kwargs)  # pylint: disable=consider-using-with
    with _procs_lock:
        _live_procs[proc.pid] = (proc, what)
    return proc


def _stop_proc(proc, what, timeout=10.0, sig=signal.SIGTERM):
    """Signal one process we started, wait; SIGKILL after timeout.

    Returns (returncode, killed) where killed says SIGKILL was needed.
    """
    if proc is None:
        return None, False
    killed = False
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=_scaled(timeout))
        except subprocess.TimeoutExpired:
            _note(f"{what} (pid {proc.pid}) ignored {signal.Signals(sig).name} for "
                  f"{_scaled(timeout):.1f}s: SIGKILL")
            killed = True
            proc.kill()
            proc.wait()
    with _procs_lock:
        _live_procs.pop(proc.pid, None)
    return proc.returncode, killed


def _cleanup_all_procs():
    with _procs_lock:
        items = list(_live_procs.values())
    for proc, what in items:
        if proc.poll() is None:
            _note(f"atexit: stopping leftover {what} (pid {proc.pid})")
        _stop_proc(proc, what, timeout=5)


_workdirs = []


def _atexit():
    for wd in list(_workdirs):
        wd.close(failed=True, reason="process exiting with the work dir still open")
    _cleanup_all_procs()


atexit.register(_atexit)


def _on_sigterm(signum, _frame):
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _on_sigterm)  # so atexit and `with` cleanup run


# --------------------------------------------------------------------------- #
# Workdir
# --------------------------------------------------------------------------- #
class Workdir:
    """Fresh temp dir per test; context manager.

    On exit, stops every harness object created in it (newest first), then deletes the dir;
    if the block raised (or MODBRIDGE_KEEP_TMP=1) the dir is kept, its path printed, and on
    failure the tail of every *.log / *.out in it is printed.  A sanitizer report in any
    *.log fails a block that did not raise (AssertionError, dir kept).  `.path` is a str
    that also supports `/`.
    """

    def __init__(self, name=None):
        if name is None:
            name = os.path.splitext(os.path.basename(sys.argv[0] or "test"))[0] or "test"
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.path = None
        self._resources = []
        self._closed = False

    def __enter__(self):
        self.path = WorkPath(tempfile.mkdtemp(prefix=f"modbridge-{self.name}-"))
        _workdirs.append(self)
        return self

    def __exit__(self, exc_type, exc, _tb):
        failed = exc_type is not None
        if exc_type is SystemExit and exc is not None and exc.code in (0, None):
            failed = False
        if exc_type is KeyboardInterrupt:
            failed = True
        self.close(failed=failed, reason=f"{exc_type.__name__}: {exc}" if failed else None)
        return False

    def file(self, name):
        return self.path / name

    def write(self, name, text):
        path = self.path / name
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def _register(self, obj):
        self._resources.append(obj)

    def dump_logs(self, lines=None):
        """Tail of every log file in the work dir, as one string."""
        out = []
        for root, _dirs, files in os.walk(self.path):
            for name in sorted(files):
                if name.endswith((".log", ".out")):
                    out.append(_tail(os.path.join(root, name), lines))
        return "\n".join(out)

    def close(self, failed=False, reason=None):
        if self._closed or self.path is None:
            return
        self._closed = True
        for obj in reversed(self._resources):
            try:
                obj._cleanup()  # pylint: disable=protected-access
            except Exception as exc:  # pylint: disable=broad-except
                _note(f"cleanup of {type(obj).__name__} failed: {exc}")
        if self in _workdirs:
            _workdirs.remove(self)
        report = None if failed else self.sanitizer_report()
        if report:
            failed, reason = True, "a sanitizer report in a log"
        keep = os.environ.get("MODBRIDGE_KEEP_TMP", "") not in ("", "0")
        if failed:
            if DUMP_LINES > 0:
                print(self.dump_logs(), file=sys.stderr, flush=True)
            _note(f"FAILED ({reason}); work dir kept: {self.path}")
        elif keep:
            _note(f"work dir kept (MODBRIDGE_KEEP_TMP): {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        if report:
            raise AssertionError(report)

    def sanitizer_report(self):
        """The first sanitizer report in any *.log of the work dir, or None."""
        for root, _dirs, files in os.walk(self.path):
            for name in sorted(f for f in files if f.endswith(".log")):
                path = os.path.join(root, name)
                report = _sanitizer_report(_read_from(path, 0), path)
                if report:
                    return report
        return None


def _wd(workdir):
    """(path, owner) for a Workdir or a plain directory path."""
    if isinstance(workdir, Workdir):
        if workdir.path is None:
            raise AssertionError("Workdir used outside its `with` block")
        return workdir.path, workdir
    path = WorkPath(os.fspath(workdir))
    os.makedirs(path, exist_ok=True)
    return path, None


# --------------------------------------------------------------------------- #
# PKI
# --------------------------------------------------------------------------- #
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[v3_other_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:broker.invalid
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[expired_ca]
database = expired-ca/index.txt
new_certs_dir = expired-ca
serial = expired-ca/serial
default_md = sha256
policy = expired_policy
copy_extensions = none
[expired_policy]
commonName = supplied
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def _openssl(args, cwd):
    res = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, text=True,
                         timeout=_scaled(30), check=False)
    if res.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed ({res.returncode}):\n"
                             f"{res.stdout}{res.stderr}")


def make_pki(dirpath):
    """Make a throw-away PKI with the openssl CLI (EC P-256, valid 2 days) in dirpath.

    Keys of the returned dict (absolute paths): ca, ca_key, server_cert, server_key
    (CN=localhost, SAN DNS:localhost, IP:127.0.0.1), client_cert, client_key
    (CN=modbridge-test, signed by ca), wrong_ca (an unrelated CA), wrong_ca_key,
    wrong_client_cert / wrong_client_key (CN=modbridge-test signed by wrong_ca),
    other_server_cert / other_server_key (signed by ca, but for the name broker.invalid
    only: for host-name verification tests), expired_server_cert / expired_server_key
    (like server_cert, but valid only on 2020-01-01), dir.
    A Workdir puts the files in <workdir>/pki.
    """
    if isinstance(dirpath, Workdir):
        path = _wd(dirpath)[0] / "pki"
    else:
        path = WorkPath(os.path.abspath(os.fspath(dirpath)))
    os.makedirs(path, exist_ok=True)
    cnf = os.path.join(path, "openssl.cnf")
    with open(cnf, "w", encoding="utf-8") as fh:
        fh.write(_OPENSSL_CNF)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ca(name, cn):
        _openssl(["req", "-x509", "-config", cnf, "-extensions", "v3_ca"] + newkey +
                 ["-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                  "-subj", f"/CN={cn}"], path)

    def leaf(name, cn, ext, ca_name):
        _openssl(["req", "-new", "-config", cnf] + newkey +
                 ["-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}"], path)
        _openssl(["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca_name}.crt",
                  "-CAkey", f"{ca_name}.key", "-set_serial", "0x" + secrets.token_hex(8),
                  "-days", "2", "-extfile", cnf, "-extensions", ext, "-out", f"{name}.crt"],
                 path)
        os.unlink(os.path.join(path, f"{name}.csr"))

    def expired_leaf(name, cn, ext, ca_name):
        # `openssl x509 -req` cannot set past dates in OpenSSL 3.0; `openssl ca` can.
        os.makedirs(os.path.join(path, "expired-ca"), exist_ok=True)
        with open(os.path.join(path, "expired-ca", "index.txt"), "w", encoding="utf-8"):
            pass
        with open(os.path.join(path, "expired-ca", "serial"), "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(8) + "\n")
        _openssl(["req", "-new", "-config", cnf] + newkey +
                 ["-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}"], path)
        _openssl(["ca", "-batch", "-config", cnf, "-name", "expired_ca", "-cert",
                  f"{ca_name}.crt", "-keyfile", f"{ca_name}.key", "-in", f"{name}.csr",
                  "-out", f"{name}.crt", "-startdate", "20200101000000Z", "-enddate",
                  "20200102000000Z", "-extfile", cnf, "-extensions", ext, "-notext"], path)
        os.unlink(os.path.join(path, f"{name}.csr"))

    ca("ca", "modbridge-test-ca")
    leaf("server", "localhost", "v3_server", "ca")
    expired_leaf("expired-server", "localhost", "v3_server", "ca")
    leaf("client", "modbridge-test", "v3_client", "ca")
    leaf("other-server", "broker.invalid", "v3_other_server", "ca")
    ca("wrong-ca", "modbridge-wrong-ca")
    leaf("wrong-client", "modbridge-test", "v3_client", "wrong-ca")
    j = lambda n: os.path.join(path, n)  # noqa: E731
    return {
        "dir": path,
        "ca": j("ca.crt"), "ca_key": j("ca.key"),
        "server_cert": j("server.crt"), "server_key": j("server.key"),
        "client_cert": j("client.crt"), "client_key": j("client.key"),
        "wrong_ca": j("wrong-ca.crt"), "wrong_ca_key": j("wrong-ca.key"),
        "wrong_client_cert": j("wrong-client.crt"), "wrong_client_key": j("wrong-client.key"),
        "other_server_cert": j("other-server.crt"), "other_server_key": j("other-server.key"),
        "expired_server_cert": j("expired-server.crt"),
        "expired_server_key": j("expired-server.key"),
    }


# --------------------------------------------------------------------------- #
# Broker (mosquitto)
# --------------------------------------------------------------------------- #
class Broker:
    """mosquitto with five listeners on 127.0.0.1, like test.mosquitto.org.

    .port_plain     plain MQTT, anonymous                       (1883-like)
    .port_pw        plain MQTT, username/password, no anonymous (1884-like; extra)
    .port_tls       TLS server auth only, anonymous             (8883-like)
    .port_tls_cert  TLS, client certificate required            (8884-like)
    .port_tls_pw    TLS + username/password, no anonymous       (8885-like)
    .username / .password ('modbridge' / 's3cret-pw'), .host, .log_path, .conf_path, .pki
    """

    USERNAME = "modbridge"
    PASSWORD = "s3cret-pw"
    LISTENERS = ("plain", "pw", "tls", "tls_cert", "tls_pw")

    def __init__(self, workdir, pki, persistence=False, name="mosquitto", max_inflight=65535):
        self.dir, owner = _wd(workdir)
        self.pki = pki
        self.persistence = persistence
        self.max_inflight = max_inflight  # mosquitto's max_inflight_messages (per client)
        self.name = name
        self.host = LOCALHOST
        self.username = self.USERNAME
        self.password = self.PASSWORD
        self.conf_path = self.dir / f"{name}.conf"
        self.log_path = self.dir / f"{name}.log"
        self.out_path = self.dir / f"{name}.out"
        self.passwd_path = self.dir / f"{name}.passwd"
        self.data_dir = self.dir / f"{name}-data"
        self.ports = {}
        self.proc = None
        self._log_offset = 0
        self._owner = owner
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    # ports as attributes
    port_plain = property(lambda self: self.ports.get("plain"))
    port_pw = property(lambda self: self.ports.get("pw"))
    port_tls = property(lambda self: self.ports.get("tls"))
    port_tls_cert = property(lambda self: self.ports.get("tls_cert"))
    port_tls_pw = property(lambda self: self.ports.get("tls_pw"))

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _write_files(self):
        if not os.path.exists(self.passwd_path):
            res = subprocess.run(["mosquitto_passwd", "-c", "-b", self.passwd_path,
                                  self.username, self.password], capture_output=True, text=True,
                                 timeout=_scaled(30), check=False)
            if res.returncode != 0:
                raise AssertionError(f"mosquitto_passwd failed: {res.stdout}{res.stderr}")
        user = pwd.getpwuid(os.getuid()).pw_name
        pki = self.pki
        tls = (f"cafile {pki['ca']}\ncertfile {pki['server_cert']}\n"
               f"keyfile {pki['server_key']}\n")
        lines = [
            "# generated by tests/integration/harness.py",
            "per_listener_settings true",
            f"user {user}",
            f"log_dest file {self.log_path}",
            "log_type all",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
            "max_queued_messages 1000000",
            f"max_inflight_messages {self.max_inflight}",
        ]
        if self.persistence:
            os.makedirs(self.data_dir, exist_ok=True)
            lines += ["persistence true", f"persistence_location {self.data_dir}/",
                      "autosave_interval 1800"]
        else:
            lines += ["persistence false"]
        p = self.ports
        lines += [
            "", f"listener {p['plain']} {LOCALHOST}", "allow_anonymous true",
            "", f"listener {p['pw']} {LOCALHOST}", "allow_anonymous false",
            f"password_file {self.passwd_path}",
            "", f"listener {p['tls']} {LOCALHOST}", "allow_anonymous true", tls,
            f"listener {p['tls_cert']} {LOCALHOST}", "allow_anonymous true", tls.rstrip(),
            "require_certificate true", "use_identity_as_username false",
            "", f"listener {p['tls_pw']} {LOCALHOST}", "allow_anonymous false",
            f"password_file {self.passwd_path}", tls,
        ]
        with open(self.conf_path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def start(self):
        """Start (first call picks free ports; later calls reuse them) and wait until ready."""
        if self.running:
            raise AssertionError("Broker.start(): already running")
        fresh_ports = not self.ports
        for attempt in range(4):
            if not self.ports:
                self.ports = {name: free_port() for name in self.LISTENERS}
            self._write_files()
            err = self._start_once()
            if err is None:
                return self
            in_use = "Address already in use" in err
            if in_use and fresh_ports and attempt < 3:
                _note(f"broker ports {self.ports} taken meanwhile; picking new ones")
                self.ports = {}
                continue
            if in_use and not fresh_ports and attempt < 3:
                time.sleep(0.5)  # same ports (restart): let the kernel release them
                continue
            raise AssertionError(err)
        raise AssertionError("broker did not start")

    def _start_once(self):
        self._log_offset = _file_size(self.log_path)
        out = open(self.out_path, "ab")  # pylint: disable=consider-using-with
        try:
            self.proc = _spawn(["mosquitto", "-c", self.conf_path], "mosquitto",
                               stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        finally:
            out.close()
        deadline = time.monotonic() + _scaled(15)
        ready = re.compile(r"mosquitto version \S+ running")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = _read_from(self.log_path, self._log_offset) + _read_from(self.out_path, 0)
                rc = self.proc.returncode
                _stop_proc(self.proc, "mosquitto")
                self.proc = None
                return (f"mosquitto exited with {rc} during start:\n{text[-4000:]}\n"
                        f"config {self.conf_path}")
            if ready.search(_read_from(self.log_path, self._log_offset)) and \
                    _port_open(self.port_plain):
                return None
            time.sleep(0.02)
        text = _tail(self.log_path)
        self.stop()
        return f"mosquitto not ready after {_scaled(15):.0f}s\n{text}"

    def stop(self, timeout=10):
        """SIGTERM and wait (persistence is written at exit); SIGKILL + AssertionError after
        timeout."""
        if self.proc is None:
            return None
        rc, killed = _stop_proc(self.proc, "mosquitto", timeout)
        self.proc = None
        if killed:
            raise AssertionError(f"mosquitto did not exit on SIGTERM\n{_tail(self.log_path)}")
        return rc

    def restart(self):
        """Stop and start again on the same ports (and the same persistence files)."""
        self.stop()
        return self.start()

    def _cleanup(self):
        if self.proc is not None:
            _stop_proc(self.proc, "mosquitto", 5)
            self.proc = None

    def log(self):
        return _read_from(self.log_path, 0)

    def wait_log(self, regex, timeout, since=0):
        """Wait for regex (re.M) in the broker log from byte offset `since`; return the match."""
        pat = re.compile(regex, re.M) if isinstance(regex, str) else regex
        return wait_until(lambda: pat.search(_read_from(self.log_path, since)), timeout,
                          lambda: f"/{pat.pattern}/ in {self.log_path}\n{_tail(self.log_path)}")

    def client_args(self, listener="plain", cert=True, auth=True):
        """mosquitto_pub/_sub options (host, port, TLS files, credentials) for one listener.

        cert=False leaves out the client certificate on tls_cert, auth=False the user/password
        on pw/tls_pw (for negative tests)."""
        if listener not in self.ports:
            raise AssertionError(f"unknown listener {listener!r}; have {sorted(self.ports)}")
        args = ["-h", self.host, "-p", str(self.ports[listener])]
        if listener.startswith("tls"):
            args += ["--cafile", self.pki["ca"]]
        if listener == "tls_cert" and cert:
            args += ["--cert", self.pki["client_cert"], "--key", self.pki["client_key"]]
        if listener in ("pw", "tls_pw") and auth:
            args += ["-u", self.username, "-P", self.password]
        return args

    def publish(self, topic, payload, qos=1, retain=False, listener="plain", timeout=15):
        """mosquitto_pub one message; raises AssertionError if it fails."""
        argv = ["mosquitto_pub"] + self.client_args(listener) + ["-t", topic, "-q", str(qos)]
        argv += ["-m", payload] if payload else ["-n"]
        if retain:
            argv.append("-r")
        res = subprocess.run(argv, capture_output=True, text=True, timeout=_scaled(timeout),
                             check=False)
        if res.returncode != 0:
            raise AssertionError(f"mosquitto_pub on {listener} failed ({res.returncode}): "
                                 f"{res.stderr.strip()}\n{_tail(self.log_path, 15)}")


# --------------------------------------------------------------------------- #
# Subscriber (mosquitto_sub on the plain port)
# --------------------------------------------------------------------------- #
def _probe_topic(topic_filter):
    if topic_filter.startswith("$"):
        return None
    return "/".join("__probe__" if lvl in ("+", "#") else lvl for lvl in topic_filter.split("/"))


class Subscriber:
    """mosquitto_sub on the broker's plain port, collecting messages in a thread.

    It always uses a persistent session (-c) under the hood so that a broker restart loses
    nothing (with Broker(persistence=True), even messages published while it was down);
    clean=True gives a fresh session: a new random client id, or, with an explicit
    client_id, the old session of that id is discarded first.  If mosquitto_sub exits
    (it reconnects by itself while it can), it is restarted with the same client id until
    stop().  QoS 1 may redeliver a message after a reconnect: duplicates are kept.
    Probe messages used to detect readiness are never reported.
    """

    def __init__(self, broker, topic, qos=1, client_id=None, clean=True):
        self.broker = broker
        self.topics = [topic] if isinstance(topic, str) else list(topic)
        self.qos = qos
        self.clean = clean
        self.client_id = client_id or f"harness-sub-{secrets.token_hex(5)}"
        self._explicit_id = client_id is not None
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.client_id)
        self.log_path = broker.dir / f"sub-{safe}.log"
        self._records = []
        self._probes = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._proc = None
        self._thread = None
        self.restarts = 0
        owner = getattr(broker, "_owner", None)
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    def start(self, timeout=20):
        if self._thread is not None:
            raise AssertionError("Subscriber.start(): already started")
        if not self.broker.running:
            raise AssertionError("Subscriber.start(): the broker is not running")
        if self.clean and self._explicit_id:
            self._wipe_session()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"sub-{self.client_id}",
                                        daemon=True)
        self._thread.start()
        self.wait_active(timeout)
        return self

    def _wipe_session(self):
        # a clean-session connection with the same id discards the stored session
        subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p",
                        str(self.broker.port_plain), "-i", self.client_id,
                        "-t", "__harness__/wipe", "-n", "-q", "0"],
                       capture_output=True, timeout=_scaled(10), check=False)

    def _argv(self):
        argv = ["mosquitto_sub", "-h", self.broker.host, "-p", str(self.broker.port_plain),
                "-i", self.client_id, "-c", "-q", str(self.qos), "-F", "%j"]
        for topic in self.topics:
            argv += ["-t", topic]
        return argv

    def _run(self):
        backoff = 0.1
        while True:
            started = time.monotonic()
            with self._cond:
                if self._stopping:
                    return
                err = open(self.log_path, "ab")  # pylint: disable=consider-using-with
                try:
                    self._proc = _spawn(self._argv(), f"mosquitto_sub {self.client_id}",
                                        stdout=subprocess.PIPE, stderr=err)
                finally:
                    err.close()
                proc = self._proc
            for raw in proc.stdout:
                self._on_line(raw)
            proc.stdout.close()
            rc, _ = _stop_proc(proc, "mosquitto_sub")
            with self._cond:
                if self._stopping:
                    return
                self.restarts += 1
            # mosquitto_sub reconnects by itself once connected; it exits when the first
            # connection fails (broker down) or is refused
            backoff = 0.1 if time.monotonic() - started > 5 else min(backoff * 2, 1.0)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"[harness] mosquitto_sub exited with {rc}; restarting in "
                         f"{backoff:.1f}s\n")
            time.sleep(backoff)

    def _on_line(self, raw):
        arrival = time.time()
        try:
            rec = json.loads(raw)
        except ValueError:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"[harness] unparsable line: {raw!r}\n")
            return
        payload = rec.get("payload")
        rec["payload"] = "" if payload is None else payload
        rec["arrival"] = arrival
        with self._cond:
            if rec["payload"].startswith(PROBE_PREFIX):
                self._probes.add(rec["payload"])
            else:
                self._records.append(rec)
            self._cond.notify_all()

    def wait_active(self, timeout=20):
        """Return once the subscription delivers: publish probe messages on each topic filter
        until they come back.  Use after a broker restart without persistence."""
        deadline = time.monotonic() + _scaled(timeout)
        for topic_filter in self.topics:
            topic = _probe_topic(topic_filter)
            if topic is None:
                continue
            token = f"{PROBE_PREFIX} {secrets.token_hex(6)}"
            wait = 0.1
            while not self._stopping:
                try:
                    subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p",
                                    str(self.broker.port_plain), "-t", topic, "-m", token,
                                    "-q", "1"], capture_output=True, timeout=_scaled(10),
                                   check=False)
                except subprocess.TimeoutExpired:
                    pass
                with self._cond:
                    self._cond.wait_for(lambda: token in self._probes,
                                        min(wait, max(deadline - time.monotonic(), 0)))
                    if token in self._probes:
                        break
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"subscription {topic_filter!r} (client {self.client_id}) not active "
                        f"after {_scaled(timeout):.0f}s\n{_tail(self.log_path, 20)}\n"
                        f"{_tail(self.broker.log_path, 30)}")
                wait = min(wait * 1.5, 1.0)

    def messages(self):
        """[(topic, payload), ...] received so far, in arrival order."""
        with self._cond:
            return [(r["topic"], r["payload"]) for r in self._records]

    def records(self):
        """Full records: dicts with topic, payload, qos, retain, mid, tst, and arrival (the
        time.time() at which the harness read the line: for latency figures)."""
        with self._cond:
            return [dict(r) for r in self._records]

    def payloads_json(self):
        """[(topic, parsed JSON payload)] (payloads that are not JSON are left as str)."""
        out = []
        for topic, payload in self.messages():
            try:
                out.append((topic, json.loads(payload)))
            except ValueError:
                out.append((topic, payload))
        return out

    def clear(self):
        """Forget the messages received so far (wait_for counts from here)."""
        with self._cond:
            self._records.clear()

    def wait_for(self, count, timeout):
        """Return messages() once at least `count` arrived; AssertionError on timeout."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._records) >= count, _scaled(timeout))
        msgs = self.messages()
        if ok:
            return msgs
        shown = "\n".join(f"  {t} {p[:200]}" for t, p in msgs[-10:]) or "  (none)"
        raise AssertionError(
            f"waited {_scaled(timeout):.1f}s for {count} message(s) on {self.topics} "
            f"(client {self.client_id}), got {len(msgs)}; last ones:\n{shown}\n"
            f"mosquitto_sub restarts: {self.restarts}\n{_tail(self.log_path, 10)}\n"
            f"{_tail(self.broker.log_path, 25)}")

    def wait_match(self, predicate, timeout, what="a matching message"):
        """Wait until predicate(topic, payload) holds for some message; return that message."""
        def find():
            for topic, payload in self.messages():
                if predicate(topic, payload):
                    return (topic, payload)
            return None
        with self._cond:
            self._cond.wait_for(lambda: find() is not None, _scaled(timeout))
        found = find()
        if found:
            return found
        msgs = self.messages()
        shown = "\n".join(f"  {t} {p[:200]}" for t, p in msgs[-10:]) or "  (none)"
        raise AssertionError(f"waited {_scaled(timeout):.1f}s for {what} on {self.topics}; "
                             f"{len(msgs)} message(s), last ones:\n{shown}")

    def stop(self):
        with self._cond:
            self._stopping = True
            proc = self._proc
        if proc is not None:
            _stop_proc(proc, "mosquitto_sub", 5)
        if self._thread is not None:
            self._thread.join(timeout=_scaled(10))
            self._thread = None
        if self.clean and self.broker.running:
            try:
                self._wipe_session()  # do not leave a session queueing messages
            except subprocess.TimeoutExpired:
                pass

    def _cleanup(self):
        if self._thread is not None:
            self.stop()


# --------------------------------------------------------------------------- #
# PtyPair (socat)
# --------------------------------------------------------------------------- #
class PtyPair:
    """Two linked ptys from socat: write to .a, read from .b and vice versa.

    .a / .b are symlinks <workdir>/<name>A and <name>B.  A pty ignores baud rate and parity.
    Bytes written while nobody has the other end open stay queued until someone does.
    """

    def __init__(self, workdir, name="tty"):
        self.dir, owner = _wd(workdir)
        self.name = name
        self.a = self.dir / f"{name}A"
        self.b = self.dir / f"{name}B"
        self.log_path = self.dir / f"socat-{name}.log"
        self.proc = None
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("PtyPair.start(): already running")
        for link in (self.a, self.b):
            if os.path.lexists(link):
                os.unlink(link)
        offset = _file_size(self.log_path)
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        try:
            self.proc = _spawn(["socat", "-d", "-d", f"pty,raw,echo=0,link={self.a}",
                                f"pty,raw,echo=0,link={self.b}"], "socat",
                               stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        finally:
            log.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"socat exited with {self.proc.returncode}\n"
                                     f"{_tail(self.log_path)}")
            return (os.path.exists(self.a) and os.path.exists(self.b) and
                    "starting data transfer loop" in _read_from(self.log_path, offset))
        wait_until(ready, 10, lambda: f"socat pty pair {self.a} {self.b}\n"
                                      f"{_tail(self.log_path)}")
        return self

    def stop(self):
        if self.proc is not None:
            _stop_proc(self.proc, "socat", 5)
            self.proc = None

    def _cleanup(self):
        self.stop()


# --------------------------------------------------------------------------- #
# ModbusSim (tests/sim/modbus_sim.py)
# --------------------------------------------------------------------------- #
class ModbusSim:
    """The Modbus slave simulator in its own process (config as sim.json, see --help).

    Additions: "host:0" in a tcp server picks a free port (read it from .tcp_ports / .port;
    restart() keeps it); a stats file is added when the config has none; per-server stats
    files too (stats(server=i)).  Counters restart from 0 when the sim restarts.
    """

    def __init__(self, workdir, config, name="sim", verbose=None):
        self.dir, owner = _wd(workdir)
        self.name = name
        self.config = copy.deepcopy(config)
        if verbose is None:
            verbose = os.environ.get("MODBRIDGE_SIM_VERBOSE", "") not in ("", "0")
        self.verbose = verbose
        self.config.setdefault("stats_file", f"{name}-stats.json")
        self.config.setdefault("request_log", f"{name}-requests.jsonl")
        for i, server in enumerate(self.config.get("servers", [])):
            server.setdefault("stats_file", f"{name}-stats-{i}.json")
        self.config_path = self.dir / f"{name}.json"
        self.log_path = self.dir / f"{name}.log"
        self.tcp_ports = []
        self.proc = None
        self._ready = threading.Event()
        self._listen = {}
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    @property
    def port(self):
        """Port of the first TCP server."""
        for port in self.tcp_ports:
            if port is not None:
                return port
        raise AssertionError("ModbusSim has no TCP server")

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _stats_path(self, server=None):
        rel = self.config["stats_file"] if server is None else \
            self.config["servers"][server]["stats_file"]
        return rel if os.path.isabs(rel) else os.path.join(self.dir, rel)

    def start(self, timeout=15):
        if self.running:
            raise AssertionError("ModbusSim.start(): already running")
        with open(self.config_path, "w", encoding="utf-8") as fh:
            json.dump(self.config, fh, indent=1)
        for i in [None] + list(range(len(self.config.get("servers", [])))):
            try:
                os.unlink(self._stats_path(i))
            except OSError:
                pass
        argv = [SYSTEM_PYTHON, SIM_SCRIPT, "--config", self.config_path]
        if self.verbose:
            argv.append("--verbose")
        offset = _file_size(self.log_path)
        self._ready.clear()
        self._listen = {}
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        try:
            self.proc = _spawn(argv, f"modbus_sim {self.name}", stdout=subprocess.PIPE,
                               stderr=log, cwd=self.dir, text=True,
                               env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        finally:
            log.close()
        threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True,
                         name=f"sim-{self.name}").start()
        deadline = time.monotonic() + _scaled(timeout)
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                rc = self.proc.poll()
                self.stop()
                state = f"exited with {rc}" if rc is not None else \
                    f"no READY after {_scaled(timeout):.0f}s"
                raise AssertionError(f"modbus_sim {self.name} {state}; config "
                                     f"{self.config_path}\n{_read_from(self.log_path, offset)}")
        servers = self.config.get("servers", [])
        self.tcp_ports = [self._listen.get(i) if "tcp" in s else None
                          for i, s in enumerate(servers)]
        return self

    def _read_stdout(self, proc):
        with open(self.log_path, "a", encoding="utf-8") as log:
            for line in proc.stdout:
                line = line.rstrip("\n")
                m = re.match(r"LISTEN (\d+) tcp .*:(\d+)$", line)
                if m:
                    self._listen[int(m.group(1))] = int(m.group(2))
                if line == "READY":
                    self._ready.set()
                log.write(f"[stdout] {line}\n")
                log.flush()

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        rc, killed = _stop_proc(self.proc, f"modbus_sim {self.name}", timeout)
        self.proc = None
        if killed:
            raise AssertionError(f"modbus_sim did not exit on SIGTERM\n{_tail(self.log_path)}")
        return rc

    def restart(self):
        """Stop and start again with the same configuration and the same TCP ports."""
        self.stop()
        for i, server in enumerate(self.config.get("servers", [])):
            if "tcp" in server and i < len(self.tcp_ports) and self.tcp_ports[i]:
                host = str(server["tcp"]).rpartition(":")[0]
                server["tcp"] = f"{host}:{self.tcp_ports[i]}"
        return self.start()

    def stats(self, server=None):
        """Requests per unit id since the sim (re)started: {"1": n, ...}; int keys work too.
        server=i gives the counts of servers[i] only."""
        try:
            with open(self._stats_path(server), encoding="utf-8") as fh:
                return _UnitCounts(json.load(fh))
        except (OSError, ValueError):
            return _UnitCounts()

    def requests(self):
        """Every request received since the sim (re)started, oldest first: a list of dicts
        {"t": unix time (s), "server": i, "unit": u, "fc": f, "addr": a, "count": n}."""
        rel = self.config["request_log"]
        path = rel if os.path.isabs(rel) else os.path.join(self.dir, rel)
        out = []
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.endswith("\n"):  # a line being written is not complete yet
                        out.append(json.loads(line))
        except OSError:
            pass
        return out

    def log(self):
        return _read_from(self.log_path, 0)

    def _cleanup(self):
        if self.proc is not None:
            _stop_proc(self.proc, f"modbus_sim {self.name}", 5)
            self.proc = None


class _UnitCounts(dict):
    """dict with str unit-id keys that also accepts int keys."""

    def __getitem__(self, key):
        return super().__getitem__(str(key))

    def get(self, key, default=None):
        return super().get(str(key), default)

    def __contains__(self, key):
        return super().__contains__(str(key))


# --------------------------------------------------------------------------- #
# Daemon (the real modbridge binary)
# --------------------------------------------------------------------------- #
def default_binary():
    return os.environ.get("MODBRIDGE_BIN") or os.path.join(REPO, "build", "modbridge")


class Daemon:
    """The modbridge daemon: `BIN run -c <workdir>/<name>.yaml -v`, output in <name>.log.

    binary defaults to $MODBRIDGE_BIN, else <repo>/build/modbridge.
    """

    def __init__(self, workdir, config_yaml, name="modbridge", binary=None):
        self.dir, owner = _wd(workdir)
        self.name = name
        self.binary = binary
        self.config_path = self.dir / f"{name}.yaml"
        self.log_path = self.dir / f"{name}.log"
        self.cli_log_path = self.dir / f"{name}-cli.log"
        self.proc = None
        self.returncode = None
        self._start_offset = 0
        self.write_config(config_yaml)
        if owner:
            owner._register(self)  # pylint: disable=protected-access

    @property
    def bin(self):
        return self.binary or default_binary()

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def write_config(self, config_yaml):
        """(Re)write <name>.yaml (e.g. before a restart or a reload)."""
        with open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write(config_yaml)

    def _check_bin(self):
        if not os.access(self.bin, os.X_OK):
            raise AssertionError(f"modbridge binary {self.bin} not found or not executable "
                                 "(build it, or set MODBRIDGE_BIN)")

    def start(self, *extra_args, env=None):
        """Run `BIN run -c FILE -v *extra_args`; stdout+stderr appended to <name>.log."""
        if self.running:
            raise AssertionError(f"{self.name} already running (pid {self.pid})")
        self._check_bin()
        self._start_offset = _file_size(self.log_path)
        argv = [self.bin, "run", "-c", self.config_path, "-v"] + [str(a) for a in extra_args]
        with open(self.log_path, "ab") as log:
            log.write(f"[harness] start: {' '.join(argv)}\n".encode())
            log.flush()
            self._start_offset = log.tell()
            full_env = dict(os.environ)
            if env:
                full_env.update(env)
            self.proc = _spawn(argv, self.name, stdout=log, stderr=subprocess.STDOUT,
                               cwd=self.dir, env=full_env)
        self.returncode = None
        return self

    def log(self):
        """The whole log (all runs)."""
        return _read_from(self.log_path, 0)

    def log_offset(self):
        """Current end of the log, for wait_log(..., since=offset)."""
        return _file_size(self.log_path)

    def wait_log(self, regex, timeout, since=None):
        """Poll the log until regex (re.M) matches; return the match.

        Searches from the latest start() unless `since` (a byte offset, see log_offset(); 0 =
        whole log) is given.  Fails early, with the log tail, if the daemon exits first.
        """
        pat = re.compile(regex, re.M) if isinstance(regex, str) else regex
        offset = self._start_offset if since is None else since
        deadline = time.monotonic() + _scaled(timeout)
        delay = 0.01
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            m = pat.search(_read_from(self.log_path, offset))
            if m:
                return m
            if exited:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} while waiting for "
                    f"/{pat.pattern}/\n{_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                state = "running" if self.running else "not running"
                raise AssertionError(
                    f"timed out after {_scaled(timeout):.1f}s waiting for /{pat.pattern}/ in "
                    f"{self.log_path} ({self.name} {state})\n{_tail(self.log_path)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def signal(self, sig):
        """Send a signal (e.g. signal.SIGHUP) to the running daemon."""
        if not self.running:
            raise AssertionError(f"{self.name} is not running\n{_tail(self.log_path)}")
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait, return the exit code (negative = killed by that signal).
        If it does not exit within timeout: SIGKILL and AssertionError; AssertionError too
        if this run's log holds a sanitizer report (so does Workdir's close, for any log)."""
        if self.proc is None:
            return self.returncode
        rc, killed = _stop_proc(self.proc, self.name, timeout)
        self.proc = None
        self.returncode = rc
        if killed:
            raise AssertionError(f"{self.name} did not exit within {_scaled(timeout):.0f}s "
                                 f"of SIGTERM (SIGKILLed)\n{_tail(self.log_path)}")
        report = _sanitizer_report(_read_from(self.log_path, self._start_offset), self.log_path)
        if report:
            raise AssertionError(f"{self.name} exited with {rc}\n{report}")
        return rc

    def kill9(self):
        """SIGKILL (simulated crash / power loss) and reap."""
        if self.proc is None:
            return self.returncode
        rc, _ = _stop_proc(self.proc, self.name, 10, sig=signal.SIGKILL)
        self.proc = None
        self.returncode = rc
        return rc

    def run_cli(self, *args, timeout=30, env=None, input=None):  # pylint: disable=redefined-builtin
        """Run `BIN *args` in the work dir; CompletedProcess with text stdout/stderr.
        Also appended to <name>-cli.log."""
        self._check_bin()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        argv = [self.bin] + [str(a) for a in args]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=_scaled(timeout),
                             cwd=self.dir, env=full_env, input=input, check=False)
        with open(self.cli_log_path, "a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}[exit {res.returncode}]\n")
        return res

    def _cleanup(self):
        if self.proc is not None:
            _stop_proc(self.proc, self.name, 10)
            self.proc = None


def fill_disk(path):
    """Create path and write zeros until its file system is full, down to the last byte.

    Unbuffered on purpose: a buffered file keeps the bytes the disk refused and raises
    ENOSPC again when it is closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
