#!/usr/bin/python3
"""Scenario: the web UI's API and its security, as a script or an attacker would use it.

- Without a session every /api/ path answers 401 and every page redirects to /login.
- A change without the session's CSRF token is refused (403) and changes nothing.
- Session fixation: a session id planted before the login is never used; each login makes a
  new id, and the id of the session before it stops working.
- Uploads: a name with a path ("../../x.crt") is refused and nothing is written anywhere; an
  oversized body is refused (413); a malformed multipart body is refused (400); a key that
  does not belong to its certificate is refused and nothing is stored.
- Brute force: failed logins get slower, and after 5 the user and the address are locked
  (429), even for the right password.
- A configuration that the checker rejects is never written (file unchanged, no backup);
  errors come back with their keys. A valid save keeps comments and writes FILE.bak.
- No password, hash or key content is ever sent back. `check` warns about a listener
  beyond loopback without TLS; HTTPS works with web.tls_cert_file/tls_key_file.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from webclient import WebClient, password_hash, web_config  # noqa: E402

PW = "correct horse 42"


def base_config(wd, port, h, tcp_port, extra=""):
    return web_config(port, [("admin", h)], extra) + f"""\
# hand-written comment that must survive a save
gateway: {{ imei: "webapi" }}
modbus:
  devices:
    - {{ id: "m1", address: "127.0.0.1:{tcp_port}", start: 10, count: 3, period: 1s }}
mqtt:
  enabled: false   # readings are kept in the store
logger:
  store: {wd.path}/store.db
"""


def check_no_session(c):
    api = ["/api/session", "/api/status", "/api/log", "/api/config", "/api/plan", "/api/certs",
           "/api/nonexistent"]
    for p in api:
        st, _, _ = c.get(p)
        assert st == 401, (p, st)
        st, _, _ = c.post(p, [("x", "1")], csrf=False)
        assert st == 401, ("POST", p, st)
    for p in ["/api/test", "/api/at", "/api/certs/delete", "/api/config"]:
        st, _, _ = c.post(p, [("command", "AT")], csrf=False)
        assert st == 401, ("POST", p, st)
    for p in ["/", "/status", "/serial", "/devices", "/logger", "/mqtt", "/certs", "/console",
              "/log", "/elsewhere"]:
        st, h, _ = c.get(p)
        assert st == 303 and h.get("location") == "/login", (p, st, h)
    st, _, body = c.get("/login")
    assert st == 200 and b"<form" in body
    st, _, _ = c.post("/logout", csrf=False)
    assert st == 303


def main():
    binary = os.path.abspath(harness.default_binary())
    with harness.Workdir("web_api") as wd:
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        port = harness.free_port()
        h = password_hash(binary, PW)
        d = harness.Daemon(wd, base_config(wd, port, h, tcp_port))
        d.start()
        d.wait_log(r"web: listening on http://127\.0\.0\.1:%d/" % port, 20)
        c = WebClient(port)
        checks = 0

        # 1. No access without a session, on every route.
        check_no_session(c)
        checks += 1

        # 2. Session fixation: a planted id is ignored; login rotates.
        planted = "a" * 64
        st, _, set_cookie = c.login("admin", PW, planted=planted)
        assert st == 303 and c.cookie and c.cookie != planted, (st, set_cookie)
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie, set_cookie
        first = c.cookie
        st, _ = c.json("GET", "/api/session")
        assert st == 200
        old = WebClient(port)
        old.cookie = first
        c2 = WebClient(port)
        st, _, _ = c2.login("admin", PW, planted=first)  # log in again from that session
        assert c2.cookie != first
        st, _, _ = old.get("/api/status")
        assert st == 401, "the session before a login must end at the login"
        c = c2
        checks += 1

        # 3. CSRF: without the token, or with another session's, a change is refused.
        before = open(d.config_path, "rb").read()
        st, cfgj = c.json("GET", "/api/config")
        assert st == 200 and cfgj["ok"]
        for bad in (None, "0" * 64):
            hdr = {"X-CSRF-Token": bad} if bad else {}
            st, _, body = c.post("/api/config", [("version", cfgj["version"]),
                                                 ("set:mqtt.qos", "2")], csrf=False, headers=hdr)
            assert st == 403, (st, body)
            st, _, _ = c.post("/api/at", [("command", "AT+CGSN")], csrf=False, headers=hdr)
            assert st == 403
        assert open(d.config_path, "rb").read() == before
        checks += 1

        # 4. A configuration the checker rejects is never written.
        st, r = c.json("POST", "/api/config", [("version", cfgj["version"]),
                                                ("set:modbus.devices[0].period", "soon"),
                                                ("set:mqtt.qos", "7")])
        assert st == 422 and not r["ok"], r
        keys = {x["key"] for x in r["diagnostics"]}
        assert "modbus.devices[0].period" in keys and "mqtt.qos" in keys, r
        assert open(d.config_path, "rb").read() == before
        assert not os.path.exists(d.config_path + ".bak")
        assert not [f for f in os.listdir(wd.path) if f.startswith(".modbridge.yaml.new")]
        # The permissions and the logins are not the UI's to change (as for SETPARAM).
        for key, val in (("remote.allow_writes", "true"), ("web.users[0].password_hash", "x"),
                         ("web.enabled", "false")):
            st, r = c.json("POST", "/api/config", [("version", cfgj["version"]), (f"set:{key}", val)])
            assert st == 422 and r["diagnostics"][0]["key"] == key, (key, st, r)
        assert open(d.config_path, "rb").read() == before
        # A stale form (the file changed since) is refused too.
        st, r = c.json("POST", "/api/config", [("version", "0123456789abcdef"),
                                                ("set:mqtt.qos", "2")])
        assert st == 409, r
        checks += 1

        # 5. A valid save: comments kept, backup written, applied by a restart.
        off = d.log_offset()
        st, r = c.json("POST", "/api/config", [("version", cfgj["version"]),
                                                ("set:mqtt.qos", "2"),
                                                ("set:mqtt.password", "")])
        assert st == 200 and r["ok"] and r["changed"], r
        after = open(d.config_path).read()
        assert "# hand-written comment that must survive a save" in after
        assert "enabled: false   # readings are kept in the store\n  qos: 2" in after, after
        assert open(d.config_path + ".bak", "rb").read() == before
        d.wait_log(r"web: user 'admin' from 127\.0\.0\.1: saved .*mqtt\.qos=2", 10, since=off)
        d.wait_log(r"restarting with the configuration", 10, since=off)
        d.wait_log(r"running: 1 device", 10, since=off)
        checks += 1

        # 6. Uploads: traversal, size, malformed multipart, mismatched key.
        pki = harness.make_pki(wd.path)
        cert_dir = os.path.join(wd.path, "certs")
        ca = open(pki["ca"], "rb").read()
        for name in ("../../evil.crt", "/etc/evil.crt", "..", ".hidden.crt", "a/b.crt"):
            st, r = c.json("POST", "/api/certs", files=[("ca", name, ca)])
            assert st == 400 and "not a plain name" in r["error"], (name, st, r)
        assert not os.path.exists(os.path.join(wd.path, "evil.crt"))
        assert not os.path.exists(os.path.join(os.path.dirname(wd.path), "evil.crt"))
        assert not os.path.isdir(cert_dir) or os.listdir(cert_dir) == []
        st, _, _ = c.post("/api/certs", files=[("ca", "big.crt", b"x" * (300 * 1024))])
        assert st == 413, st
        st, r = c.json("POST", "/api/certs", files=[("ca", "big.crt", b"-----BEGIN " + b"x" * (100 * 1024))])
        assert st == 413, (st, r)
        body = b"--XYZ\r\nContent-Disposition: form-data; name=\"ca\"\r\n\r\nno end"
        st, _, resp, _ = c.request("POST", "/api/certs", body=body, headers={
            "Content-Type": "multipart/form-data; boundary=XYZ", "X-CSRF-Token": c.csrf})
        assert st == 400 and b"malformed" in resp, (st, resp)
        st, _, resp, _ = c.request("POST", "/api/certs", body=b"garbage", headers={
            "Content-Type": "multipart/form-data", "X-CSRF-Token": c.csrf})
        assert st == 400, st
        st, r = c.json("POST", "/api/certs", files=[
            ("cert", "client.crt", open(pki["client_cert"], "rb").read()),
            ("key", "wrong.key", open(pki["wrong_client_key"], "rb").read())])
        assert st == 422 and "does not belong" in r["error"], (st, r)
        assert os.listdir(cert_dir) == [], os.listdir(cert_dir)
        st, r = c.json("POST", "/api/certs", files=[("ca", "ca.key", open(pki["ca_key"], "rb").read())])
        assert st == 422, (st, r)
        assert os.listdir(cert_dir) == []
        assert oct(os.stat(cert_dir).st_mode & 0o777) == "0o700"
        # The right files are stored with safe modes, and their fingerprints shown.
        off = d.log_offset()
        key_pem = open(pki["client_key"], "rb").read()
        st, r = c.json("POST", "/api/certs", files=[
            ("ca", "ca.crt", ca), ("cert", "client.crt", open(pki["client_cert"], "rb").read()),
            ("key", "client.key", key_pem)])
        assert st == 200 and r["ok"], r
        d.wait_log(r"running: 1 device", 15, since=off)
        assert os.stat(os.path.join(cert_dir, "client.key")).st_mode & 0o777 == 0o600
        assert os.stat(os.path.join(cert_dir, "ca.crt")).st_mode & 0o777 == 0o644
        st, certs = c.json("GET", "/api/certs")
        assert certs["slots"]["ca"]["info"].startswith("SHA1 "), certs
        assert certs["pair_ok"] is True
        checks += 1

        # 7. Nothing secret comes back: hashes, passwords, key content.
        everything = b""
        for p in ["/api/config", "/api/certs", "/api/status", "/api/session", "/api/log?level=debug"]:
            everything += c.get(p)[2]
        assert h.encode() not in everything and b"$y$" not in everything
        assert PW.encode() not in everything
        assert b"PRIVATE KEY" not in everything and key_pem[40:80] not in everything
        st, r = c.json("POST", "/api/at", [("command", "AT^MTXTUNNEL=GETCONFIG")])
        assert "$y$" not in r["reply"], r
        checks += 1

        # 8. Brute force: slower, then locked (the right password too), per user and address.
        t0 = time.monotonic()
        codes = []
        for _ in range(5):
            st, _, _ = WebClient(port).login("admin", "wrong")
            codes.append(st)
        slow = time.monotonic() - t0
        assert codes == [303] * 5, codes  # back to the form with ?failed=1
        assert slow >= 3.0, f"5 failures took only {slow:.2f} s"
        st, hdrs, _ = WebClient(port).login("admin", PW)
        assert st == 303 and hdrs.get("location") == "/login?failed=locked", (st, hdrs)
        st, r = WebClient(port).json("POST", "/login", [("user", "admin"), ("password", PW)],
                                     csrf=False, headers={"Accept": "application/json"})
        assert st == 429, (st, r)
        st, r = WebClient(port).json("POST", "/login", [("user", "nobody"), ("password", PW)],
                                     csrf=False, headers={"Accept": "application/json"})
        assert st == 429, "the address is locked too"
        d.wait_log(r"login of 'admin' from 127\.0\.0\.1 refused: locked", 5, since=0)
        # The session made before the attack still works.
        assert c.get("/api/status")[0] == 200
        checks += 1
        assert d.stop() == 0

        # 9. `check` warns beyond loopback without TLS; HTTPS with the TLS files.
        port2 = harness.free_port()
        d2 = harness.Daemon(wd, base_config(wd, port2, h, tcp_port).replace(
            f"listen: 127.0.0.1:{port2}", f"listen: 0.0.0.0:{port2}"), name="open")
        res = d2.run_cli("check", "-c", d2.config_path)
        assert "listens beyond this gateway without TLS" in res.stderr, res.stderr
        tls = base_config(wd, port2, h, tcp_port, extra="") .replace(
            "  users:", f"  tls_cert_file: {pki['server_cert']}\n  tls_key_file: {pki['server_key']}\n  users:")
        d3 = harness.Daemon(wd, tls, name="tls")
        res = d3.run_cli("check", "-c", d3.config_path)
        assert res.returncode == 0 and "https://127.0.0.1" in res.stdout, res.stdout + res.stderr
        d3.start()
        d3.wait_log(r"web: listening on https://", 20)
        ct = WebClient(port2, tls_ca=pki["ca"])
        st, _, set_cookie = ct.login("admin", PW)
        assert st == 303 and "Secure" in set_cookie, set_cookie
        assert ct.json("GET", "/api/status")[1]["identity"] == "webapi"
        assert d3.stop() == 0
        checks += 1
        print(f"web API and security: {checks} of 9 checks passed")


if __name__ == "__main__":
    main()
