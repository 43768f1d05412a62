#!/usr/bin/python3
"""Scenario: the uplink metrics follow the active uplink, here http mode (issue 14).

A gateway polls a Modbus TCP device every second and posts each reading to an HTTP server,
with `metrics.listen` set and no MQTT at all. Scrapes are parsed with
python3-prometheus-client's text parser. Expected:
- the uplink families carry mode="http" (and no mode="mqtt" sample exists);
- published and acknowledged follow what the server answered 2xx to;
- while the server answers 503 (with Retry-After: 1, so that the test stays short; a 4xx
  would pause sending for 30 s), errors_total{kind="failure"} and failed_total grow, the
  rejected kind stays 0, and the last error time is set; once it answers 200 again the
  last success time moves past it.
"""
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def val(m, name, **labels):
    return m.get((name, frozenset(labels.items())))


def main():
    with harness.Workdir("metrics-http") as wd:
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        rec = servers.HttpRecorder(wd)
        rec.start()
        mport = harness.free_port()
        config = f"""\
gateway: {{ imei: "GW-METRICS-HTTP" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {wd.path}/store.db
  mode: http
http:
  url: {rec.url}
  timeout_ms: 5000
metrics:
  listen: "127.0.0.1:{mport}"
"""
        daemon = harness.Daemon(wd, config)
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"metrics: Prometheus metrics on", 20)
        harness.wait_until(lambda: len(rec.delivered()) >= 3, 20, "3 requests")

        def acked(n):
            m = scrape(mport)
            return m if (val(m, "modbridge_uplink_acknowledged_total", mode="http") or 0) >= n \
                else None
        m1 = harness.wait_until(lambda: acked(3), 20, "3 acknowledged in the metrics")
        assert not [k for k in m1 if ("mode", "mqtt") in k[1]], "an mqtt sample in http mode"
        assert val(m1, "modbridge_uplink_connected", mode="http") == 1
        assert val(m1, "modbridge_uplink_published_total", mode="http") >= 3
        assert val(m1, "modbridge_uplink_errors_total", mode="http", kind="rejected") == 0
        assert val(m1, "modbridge_uplink_reconnects_total", mode="http") == 0
        ok1 = val(m1, "modbridge_uplink_last_success_timestamp_seconds", mode="http")
        assert ok1 > time.time() - 30, ok1

        # The server fails: the failures are counted, with their time.
        t_bad = time.time()
        rec.retry_after = "1"
        rec.status = 503

        def failing():
            m = scrape(mport)
            # The uplink counts an error at once; the forwarder counts the message failed
            # when it takes the uplink's events (in batches): wait for both.
            return m if val(m, "modbridge_uplink_errors_total", mode="http",
                            kind="failure") >= 2 and \
                val(m, "modbridge_uplink_failed_total", mode="http") >= 2 else None
        m2 = harness.wait_until(failing, 60, "failures in the metrics")
        assert val(m2, "modbridge_uplink_errors_total", mode="http", kind="rejected") == 0
        err_t = val(m2, "modbridge_uplink_last_error_timestamp_seconds", mode="http")
        assert err_t >= t_bad - 1, (err_t, t_bad)
        print(f"http 503: errors {val(m2, 'modbridge_uplink_errors_total', mode='http', kind='failure'):.0f}"
              f", failed {val(m2, 'modbridge_uplink_failed_total', mode='http'):.0f}")

        # It accepts again: the last success moves past the last error.
        rec.status = 200
        rec.retry_after = None

        def recovered():
            m = scrape(mport)
            return m if val(m, "modbridge_uplink_last_success_timestamp_seconds",
                            mode="http") > err_t else None
        m3 = harness.wait_until(recovered, 90, "a success after the rejections")
        assert val(m3, "modbridge_uplink_acknowledged_total", mode="http") > \
            val(m1, "modbridge_uplink_acknowledged_total", mode="http")
        print(f"http: acknowledged {val(m3, 'modbridge_uplink_acknowledged_total', mode='http'):.0f}"
              f", published {val(m3, 'modbridge_uplink_published_total', mode='http'):.0f}")
        assert daemon.stop() == 0
    print("metrics (http mode): OK")


if __name__ == "__main__":
    main()
