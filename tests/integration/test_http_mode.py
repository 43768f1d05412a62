#!/usr/bin/python3
"""Scenario: the seed in http mode (issue 11), against an HTTPS recorder that wants a client
certificate.

The router's application note, PLC1 and PLC2 on one RTU line, with logger.mode: http and
the MQTT client kept for the AT commands. Then the server answers, in turn:
- 200: the messages arrive byte-exact (apart from TS), as JSON bodies, over one kept-alive
  connection, with the configured header ([IMEI] replaced) and no secret in the log;
- 500: retried with back-off, nothing lost;
- 429 with Retry-After: 4: nothing is sent again before 4 s;
- 400: logged once with the status and the reply's first bytes, counted as refused in
  `queue` and AT+MBSTATUS, the readings kept and offered at the slowest back-off (30 s);
- a hang past http.timeout_ms: the time-out is a failure like a network error.
Finally every reading of both devices arrived once, in order, with no gap.
"""
import calendar
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
import test_seed_scenario as seed  # noqa: E402

IMEI = seed.IMEI
TOKEN = "s3cret-token-never-logged"


def http_config(wd, pty, broker, pki, rec):
    text = seed.seed_config(wd, pty, broker, pki).replace("  mode: mqtt\n", "  mode: http\n")
    # MQTT stays for the AT commands and the status topic (plain listener).
    text = re.sub(r"mqtt:\n(  .*\n)+", "", text)
    return text + f"""\
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  client_id: gw-http
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
http:
  url: {rec.url}
  method: post
  headers:
    X-Gateway: "gw-[IMEI]"
  bearer_token: {TOKEN}
  ca_file: {pki['ca']}
  cert_file: {pki['client_cert']}
  key_file: {pki['client_key']}
  timeout_ms: 1500
"""


def ts_of(body):
    return calendar.timegm(time.strptime(json.loads(body)["TS"], "%Y-%m-%dT%H:%M:%SZ"))


def main():
    with harness.Workdir("http-mode") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
             "units": {"1": {"holding": {"identity": 2000}},
                       "2": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}}}}]})
        sim.start()
        rec = servers.HttpRecorder(wd, pki, require_cert=True)
        rec.start()
        daemon = harness.Daemon(wd, http_config(wd, pty, broker, pki, rec))

        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "send mode: http, POST https://localhost" in check.stdout, check.stdout
        assert re.search(r"http.ca_file .*SHA1 ([0-9A-F]{2}:){19}[0-9A-F]{2}", check.stdout), check.stdout
        assert re.search(r"http.cert_file .*SHA1 ", check.stdout), check.stdout

        replies = harness.Subscriber(broker, IMEI + "/ATR", qos=1)
        replies.start()
        status_sub = harness.Subscriber(broker, IMEI + "/status", qos=1)
        status_sub.start()
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"http: sending to https://localhost", 20)

        # ---- 200: byte-exact, keep-alive, header, JSON content type
        harness.wait_until(lambda: len(rec.delivered()) >= 4, 30, "4 requests")
        for r in list(rec.requests)[:4]:
            body = r["body"].decode()
            dev = json.loads(body)["ID"]
            want = seed.golden("seed_plc1.json" if dev == "1" else "seed_plc2.json")
            assert seed.without_ts(body) == seed.without_ts(want), (body, want)
            assert r["headers"].get("Content-Type") == "application/json", r["headers"]
            assert r["headers"].get("X-Gateway") == "gw-" + IMEI, r["headers"]
            assert r["headers"].get("Authorization") == "Bearer " + TOKEN, r["headers"]
            assert r["method"] == "POST" and r["path"] == "/ingest", r
        # MQTT still serves the status topic and the AT commands.
        status_sub.wait_match(lambda _t, p: p == "online", 20, "the retained 'online'")
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 20)

        # ---- 500: retried with back-off
        rec.status = 500
        daemon.wait_log(r"http: https://localhost\S* HTTP 500", 20)
        time.sleep(3)
        rec.status = 200
        daemon.wait_log(r"accepts readings again", 30)

        # ---- 429 with Retry-After: nothing before the pause is over
        n = len(rec.requests)
        rec.status, rec.retry_after = 429, "4"
        harness.wait_until(lambda: rec.count(429) >= 1, 20, "a 429")
        t429 = [r["t"] for r in rec.requests[n:] if r["status"] == 429][0]
        rec.status, rec.retry_after = 200, None
        harness.wait_until(lambda: any(r["t"] > t429 and r["status"] == 200 for r in rec.requests),
                           30, "a request after the 429")
        t_next = min(r["t"] for r in rec.requests if r["t"] > t429)
        assert t_next - t429 >= 3.8, "sent again %.1f s after a Retry-After of 4 s" % (t_next - t429)

        # ---- 400: refused, logged once, counted, kept, retried at 30 s
        off = daemon.log_offset()
        rec.status = 400
        harness.wait_until(lambda: rec.count(400) >= 1, 20, "a 400")
        daemon.wait_log(r"refuses what we send: HTTP 400 '\{\"error\":\"refused: bad payload\"\}'", 10)
        time.sleep(6)
        assert rec.count(400) == 1, "a refused message was sent again within 6 s: %d" % rec.count(400)
        queue = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        assert "uplink   mode: http, to https://localhost" in queue, queue
        assert re.search(r"last error: .*HTTP 400", queue), queue
        assert re.search(r"[1-9]\d* refused by the server", queue), queue
        assert int(re.search(r"backlog\s+(\d+)", queue).group(1)) >= 4, queue
        subprocess.run(["mosquitto_pub"] + broker.client_args() +
                       ["-t", IMEI + "/AT", "-q", "1", "-m", "AT+MBSTATUS"], check=True, timeout=30)
        status = replies.wait_for(1, 20)[0][1]
        assert "mode: http" in status and "HTTP 400" in status, status
        rec.status = 200
        daemon.wait_log(r"accepts readings again", 45, since=off)
        assert len(re.findall(r"refuses what we send", daemon.log()[off:])) == 1, "logged more than once"

        # ---- a hang past the time-out
        rec.hang_s = 3
        daemon.wait_log(r"http: https://localhost\S*: (Operation timed out|.*timed out)", 20)
        rec.hang_s = 0
        daemon.wait_log(r"accepts readings again", 45)
        time.sleep(4)
        assert daemon.stop() == 0
        assert TOKEN not in daemon.log(), "the bearer token is in the log"

        # ---- every reading once, in order, no gap (2 s period, per device)
        bodies = [b.decode() for b in rec.delivered()]
        for dev in ("1", "2"):
            ts = [ts_of(b) for b in bodies if json.loads(b)["ID"] == dev]
            assert ts == sorted(ts), "device %s: order broken: %r" % (dev, ts)
            assert len(ts) == len(set(ts)), "device %s: duplicates" % dev
            missing = sorted(set(range(ts[0], ts[-1] + 1, 2)) - set(ts))
            assert not missing, "device %s: lost %r" % (dev, missing)
        queue = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        backlog = int(re.search(r"backlog\s+(\d+)", queue).group(1))
        assert backlog <= 2, queue  # polled after the last delivery, before the stop
        assert rec.connections <= 12, "%d connections for %d requests: no keep-alive?" % (
            rec.connections, len(rec.requests))
        print("http mode: %d requests, %d delivered over %d connection(s); 500, 429 "
              "(Retry-After honoured), 400 (logged once, kept), time-out: nothing lost"
              % (len(rec.requests), len(bodies), rec.connections))
        replies.stop()
        status_sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
    print("http mode: OK")


if __name__ == "__main__":
    main()
