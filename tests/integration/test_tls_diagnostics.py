#!/usr/bin/python3
"""Scenario: MQTT connection problems are reported with their cause (issue 9, items 1, 3, 6).

- TLS files that exist but do not hold what their keys say (a key that does not belong to
  the certificate, a CA file that is no certificate, a certificate file holding a key, an
  encrypted key): `check` names each with file:line and exits 1; `run` refuses to start
  with the same message and exits 2 (docs/operations.md), instead of retrying for ever.
- A tcp:// broker URL pointed at a TLS listener: the log says the port speaks TLS and
  that the URL must be ssl://, instead of "The connection was lost.".
- A broker that accepted us, then (while restarting) accepts TLS connections but closes
  them before CONNACK: the log must not blame our client certificate.
"""
import os
import re
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def config(wd, name, mqtt):
    return f"""\
gateway: {{ imei: "{name}" }}
modbus:
  enabled: false
logger:
  store: {wd.path}/{name}.db
mqtt:
{mqtt}"""


def bad_tls_files(wd, pki):
    """Each bad file: check exits 1 and run exits 2, both naming file:line and the key."""
    encrypted = wd.path / "encrypted.key"
    harness._openssl(["pkey", "-in", pki["client_key"], "-aes-128-cbc", "-passout",
                      "pass:secret", "-out", encrypted], wd.path)
    not_pem = wd.write("notes.txt", "not a certificate\n")
    cases = [
        # (name, mqtt keys, line, key, message regex)
        ("key-mismatch", f"  cert_file: {pki['client_cert']}\n  key_file: {pki['wrong_client_key']}\n",
         9, "mqtt.key_file", r"the key in '.*wrong-client\.key' does not belong to the "
                             r"certificate in '.*client\.crt' \(cert_file, line 8\)"),
        ("ca-not-pem", f"  ca_file: {not_pem}\n", 8, "mqtt.ca_file", r"holds no PEM certificate"),
        ("cert-is-key", f"  cert_file: {pki['client_key']}\n  key_file: {pki['client_key']}\n",
         8, "mqtt.cert_file", r"holds a private key, not a certificate"),
        ("key-encrypted", f"  cert_file: {pki['client_cert']}\n  key_file: {encrypted}\n",
         9, "mqtt.key_file", r"holds an encrypted private key"),
    ]
    for name, keys, line, key, message in cases:
        d = harness.Daemon(wd, config(wd, name, "  broker: ssl://localhost:8884\n" + keys),
                           name=name)
        want = re.compile(rf"^{re.escape(d.config_path)}:{line}: {re.escape(key)}: .*{message}",
                          re.M)
        check = d.run_cli("check", "-c", d.config_path)
        assert check.returncode == 1, (name, check.returncode, check.stdout, check.stderr)
        assert want.search(check.stderr), (name, check.stderr)
        started = time.monotonic()
        run = d.run_cli("run", "-c", d.config_path, timeout=20)
        took = time.monotonic() - started
        assert run.returncode == 2, (name, run.returncode, run.stderr)
        assert want.search(run.stderr), (name, run.stderr)
        assert "cannot connect" not in run.stderr, run.stderr
        print(f"  {name}: check exit 1, run exit 2 after {took:.1f} s")


def tcp_url_at_tls_port(wd, broker):
    d = harness.Daemon(wd, config(wd, "tcp-at-tls", f"  broker: tcp://localhost:{broker.port_tls}\n"),
                       name="tcp-at-tls")
    d.start()
    d.wait_log(rf"cannot connect to tcp://localhost:{broker.port_tls}: .*port {broker.port_tls} "
               rf"speaks TLS, so the broker URL must be ssl://localhost:{broker.port_tls}", 20)
    assert "mqtt: connected" not in d.log()
    assert d.stop() == 0


class ClosingTlsServer:
    """Accepts TLS connections on a port, reads the CONNECT and closes without CONNACK (with
    a close_notify), like a broker that is still starting or going down."""

    def __init__(self, port, pki):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop_event = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
                self.accepted += 1
                tls.settimeout(1)
                try:
                    tls.recv(256)
                    tls.unwrap()
                except (OSError, ssl.SSLError):
                    pass
                tls.close()
            except (OSError, ssl.SSLError):
                conn.close()

    def stop(self):
        self.stop_event.set()
        self.thread.join()
        self.sock.close()


def broker_restarting(wd, pki, broker):
    d = harness.Daemon(wd, config(wd, "restart", f"  broker: ssl://localhost:{broker.port_tls}\n"
                                                 f"  ca_file: {pki['ca']}\n"), name="restart")
    d.start()
    d.wait_log(r"mqtt: connected to ", 20)
    offset = d.log_offset()
    port = broker.port_tls
    broker.stop()
    fake = ClosingTlsServer(port, pki)
    try:
        m = d.wait_log(r"cannot connect to .*", 20, since=offset)
        harness.wait_until(lambda: fake.accepted >= 1, 10, "a connection to the fake broker")
    finally:
        fake.stop()
    line = m.group(0)
    assert "client certificate" not in line, line
    assert re.search(r"closed the connection before accepting it .*it accepted this client "
                     r"with the same settings before, so it is probably restarting", line), line
    broker.start()
    d.wait_log(r"mqtt: connected to ", 40, since=offset)
    assert d.stop() == 0


def main():
    with harness.Workdir("tls-diagnostics") as wd:
        pki = harness.make_pki(wd.path)
        bad_tls_files(wd, pki)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_url_at_tls_port(wd, broker)
        broker_restarting(wd, pki, broker)
        broker.stop()
    print("TLS diagnostics: OK")


if __name__ == "__main__":
    main()
