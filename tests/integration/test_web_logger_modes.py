#!/usr/bin/python3
"""Scenario: the Logger page's "Communication mode" through the web API (issues 11 and 12).

A daemon in the default mqtt mode (MQTT disabled: the readings wait in the store), with a
web UI. Through POST /api/config, as the Logger page sends it:
- GET /api/config shows the real logger.mode and the http and ftp sections, secrets only as
  *_set;
- logger.mode: http with a URL that is not http(s):// is refused with the key http.url, and
  the file is not touched;
- logger.mode: http to a real HTTPS recorder wanting a client certificate, with a bearer
  token: saved (backup, audit line with the token as ***), applied by a restart, and the
  readings arrive there with the token;
- the token is never sent back: not by /api/config, /api/status or /api/log;
- GET /api/status shows the uplink that carries the readings: mode http, its URL, state ok,
  the last success; once the recorder is gone, state failing and the last error.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
from webclient import WebClient, password_hash, web_config  # noqa: E402

PW = "correct horse 42"
TOKEN = "tok-never-echoed-7f3a"


def config(wd, port, h, tcp_port):
    return web_config(port, [("admin", h)]) + f"""\
gateway: {{ imei: "webmodes" }}
modbus:
  devices:
    - {{ id: "m1", address: "127.0.0.1:{tcp_port}", start: 10, count: 2, period: 1s }}
mqtt:
  enabled: false
logger:
  store: {wd.path}/store.db
"""


def main():
    binary = os.path.abspath(harness.default_binary())
    with harness.Workdir("web_logger_modes") as wd:
        pki = harness.make_pki(wd.path)
        rec = servers.HttpRecorder(wd, pki, require_cert=True)
        rec.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        port = harness.free_port()
        d = harness.Daemon(wd, config(wd, port, password_hash(binary, PW), tcp_port))
        d.start(env=servers.NO_PROXY_ENV)
        d.wait_log(r"web: listening on http://127\.0\.0\.1:%d/" % port, 20)
        c = WebClient(port)
        st, _, _ = c.login("admin", PW)
        assert st == 303, st

        # 1. The real mode, and the sections of the other modes.
        st, cfg = c.json("GET", "/api/config")
        assert st == 200 and cfg["logger"]["mode"] == "mqtt", cfg["logger"]
        assert cfg["http"]["url"] == "" and cfg["http"]["method"] == "post", cfg["http"]
        assert cfg["http"]["bearer_token_set"] is False and "bearer_token" not in cfg["http"]
        assert cfg["ftp"]["format"] == "jsonl" and cfg["ftp"]["password_set"] is False, cfg["ftp"]
        st, status = c.json("GET", "/api/status")
        assert status["uplink"]["mode"] == "mqtt", status["uplink"]

        # 2. A bad URL: refused, named by its key, nothing written.
        before = open(d.config_path, "rb").read()
        st, r = c.json("POST", "/api/config", [("version", cfg["version"]),
                                               ("set:logger.mode", "http"),
                                               ("set:http.url", "ftp://collector/x")])
        assert st == 422 and not r["ok"], (st, r)
        keys = [x["key"] for x in r["diagnostics"] if not x["warning"]]
        assert "http.url" in keys, r
        assert open(d.config_path, "rb").read() == before
        assert not os.path.exists(d.config_path + ".bak")

        # 3. Switch to http, with a bearer token and the HTTPS client certificate.
        off = d.log_offset()
        st, r = c.json("POST", "/api/config", [
            ("version", cfg["version"]), ("set:logger.mode", "http"), ("set:http.url", rec.url),
            ("set:http.bearer_token", TOKEN), ("set:http.ca_file", pki["ca"]),
            ("set:http.cert_file", pki["client_cert"]), ("set:http.key_file", pki["client_key"]),
            ("set:http.timeout_ms", "2000")])
        assert st == 200 and r["ok"] and r["changed"], (st, r)
        assert TOKEN.encode() not in open(d.config_path + ".bak", "rb").read()
        d.wait_log(r"saved .*http\.bearer_token=\*\*\*", 10, since=off)
        d.wait_log(r"http: sending to https://localhost", 20, since=off)
        harness.wait_until(lambda: len(rec.delivered()) >= 2, 20, "2 readings at the recorder")
        first = [x for x in list(rec.requests) if x["status"] == 200][0]
        assert first["headers"].get("Authorization") == "Bearer " + TOKEN, first["headers"]
        assert b'"ID":"m1"' in first["body"].replace(b" ", b""), first["body"]

        # 4. The token never comes back; the page learns only that it is set.
        st, cfg = c.json("GET", "/api/config")
        assert cfg["logger"]["mode"] == "http" and cfg["http"]["url"] == rec.url, cfg["http"]
        assert cfg["http"]["bearer_token_set"] is True, cfg["http"]
        assert cfg["http"]["ca_file"] == pki["ca"], cfg["http"]
        for p in ["/api/config", "/api/status", "/api/log?level=debug"]:
            _, _, body = c.get(p)
            assert TOKEN.encode() not in body, p
        assert TOKEN not in d.log()

        # 5. The status shows the http uplink: ok with its last success, then failing.
        st, status = c.json("GET", "/api/status")
        u = status["uplink"]
        assert u["mode"] == "http" and u["target"] == rec.url, u
        assert u["state"] == "ok" and u["last_success_at"] and u["readings"] >= 1, u
        rec.stop()

        def failing():
            _, s = c.json("GET", "/api/status")
            return s["uplink"]["state"] == "failing" and s["uplink"]["last_error"]
        harness.wait_until(failing, 20, "the status saying the http uplink fails")
        _, status = c.json("GET", "/api/status")
        assert status["uplink"]["last_error_at"], status["uplink"]
        d.stop()
    print("test_web_logger_modes: OK")


if __name__ == "__main__":
    main()
