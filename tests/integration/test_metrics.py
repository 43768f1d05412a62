#!/usr/bin/python3
"""Scenario: Prometheus metrics, scraped during a run and parsed with a real parser.

The daemon polls a serial device and two Modbus TCP devices, publishes to a broker and
answers remote commands, with `metrics.listen` set. Every scrape is parsed with
python3-prometheus-client's text parser (prometheus_client.parser). Expected:
- the text exposition format (Content-Type version=0.0.4), every family named modbridge_*,
  and the families of the issue: per device polls, failures by reason, a read-duration
  histogram and the last success; per bus busy time, its ratio and the planned scan time;
  store backlog, bytes, oldest age, dropped; uplink published, acknowledged, in flight,
  reconnects, last error time; remote commands received and refused; process CPU and RSS;
- counters that move as they should: polls go on; when one TCP device dies, its failures
  (connection) go up, its up gauge goes to 0 and its last success stops, while the other
  devices' failures stay 0; when it comes back, up is 1 again and its last success moves;
- the uplink's published and acknowledged counts grow, and a broker restart counts one
  reconnection and sets the last error time;
- one allowed and one refused remote command give 2 received, 1 refused;
- every modbridge_* name that examples/grafana-dashboard.json queries is served.
"""
import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

IMEI = "GW-METRICS"
FAMILIES = [
    "modbridge_device_polls", "modbridge_device_failures", "modbridge_device_skipped",
    "modbridge_device_read_duration_seconds", "modbridge_device_last_success_timestamp_seconds",
    "modbridge_device_up", "modbridge_bus_busy_seconds", "modbridge_bus_busy_ratio",
    "modbridge_bus_planned_scan_seconds", "modbridge_store_backlog_readings",
    "modbridge_store_backlog_bytes", "modbridge_store_file_bytes",
    "modbridge_store_oldest_age_seconds", "modbridge_store_sent", "modbridge_store_dropped",
    "modbridge_uplink_connected", "modbridge_uplink_published", "modbridge_uplink_acknowledged",
    "modbridge_uplink_in_flight", "modbridge_uplink_reconnects",
    "modbridge_uplink_errors", "modbridge_uplink_last_success_timestamp_seconds",
    "modbridge_uplink_last_error_timestamp_seconds", "modbridge_remote_commands",
    "modbridge_remote_commands_refused", "modbridge_process_cpu_seconds",
    "modbridge_process_resident_memory_bytes",
]


class Scraper:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"

    def scrape(self):
        """{(sample name, frozenset(labels)): value}, checked for the format on the way."""
        with urllib.request.urlopen(self.url, timeout=10) as resp:
            ctype = resp.headers["Content-Type"]
            text = resp.read().decode()
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        out, families = {}, set()
        for fam in text_string_to_metric_families(text):
            assert fam.name.startswith("modbridge_"), fam.name
            families.add(fam.name)
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        out[("__families__", frozenset())] = families
        return out


def val(m, name, **labels):
    return m.get((name, frozenset(labels.items())))


def main():
    with harness.Workdir("metrics") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        port_a, port_b = harness.free_port(), harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "units": {"1": {"holding": {"identity": 2000}}}},
            {"tcp": "127.0.0.1:%d" % port_a, "units": {"1": {"holding": {"identity": 2000}}}},
        ]})
        sim.start()
        dying = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % port_b, "units": {"1": {"holding": {"identity": 2000}}}},
        ]}, name="dying")
        dying.start()
        mport = harness.free_port()
        config = f"""\
gateway: {{ imei: "{IMEI}" }}
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600, timeout_ms: 300 }}
modbus:
  devices:
    - {{ id: rtu1, address: 1, start: "0;10", count: "2;4", period: 1s }}
    - {{ id: tcp1, address: "127.0.0.1:{port_a}", start: 0, count: 2, period: 1s, timeout_ms: 300 }}
    - {{ id: dying, address: "127.0.0.1:{port_b}", start: 0, count: 2, period: 1s, timeout_ms: 300, retries: 0 }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  qos: 1
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
metrics:
  listen: "127.0.0.1:{mport}"
"""
        data = harness.Subscriber(broker, f"{IMEI}/logger", qos=1)
        data.start()
        replies = harness.Subscriber(broker, f"{IMEI}/ATR", qos=1)
        replies.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(r"metrics: Prometheus metrics on http://127\.0\.0\.1:%d/metrics" % mport, 20)
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 20)
        s = Scraper(mport)
        data.wait_for(6, 20)

        m1 = s.scrape()
        families = m1[("__families__", frozenset())]
        missing = [f for f in FAMILIES if f not in families]
        assert not missing, f"families missing: {missing}"
        print(f"{len(families)} families, every one modbridge_*")
        for dev in ("rtu1", "tcp1", "dying"):
            assert val(m1, "modbridge_device_polls_total", device=dev) >= 1, dev
            assert val(m1, "modbridge_device_up", device=dev) == 1, dev
            count = val(m1, "modbridge_device_read_duration_seconds_count", device=dev)
            inf = val(m1, "modbridge_device_read_duration_seconds_bucket", device=dev, le="+Inf")
            assert count == inf == val(m1, "modbridge_device_polls_total", device=dev), dev
        planned = val(m1, "modbridge_bus_planned_scan_seconds", bus=f"com2 ({pty.a})")
        assert planned and 0.001 < planned < 1, planned
        busy = [v for (n, _), v in m1.items() if n == "modbridge_bus_busy_seconds_total"]
        assert len(busy) == 3 and all(v > 0 for v in busy), busy
        assert val(m1, "modbridge_uplink_connected", mode="mqtt") == 1
        assert val(m1, "modbridge_uplink_reconnects_total", mode="mqtt") == 0
        assert val(m1, "modbridge_process_resident_memory_bytes") > 1e6
        assert val(m1, "modbridge_process_cpu_seconds_total") > 0
        print(f"rtu1 planned scan {planned * 1e3:.1f} ms; busy {busy}")

        # The dashboard asks only for what is served.
        dash = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                            "grafana-dashboard.json")
        with open(dash, encoding="utf-8") as f:
            wanted = set(re.findall(r"modbridge_[a-z_]+", f.read()))
        served = {n for (n, _) in m1 if n.startswith("modbridge_")}
        assert wanted and wanted <= served, f"the dashboard queries {wanted - served}"
        print(f"the dashboard's {len(wanted)} names are all served")

        # Remote commands: one allowed, one not.
        for cmd in ("AT", "AT^MTXTUNNEL=REBOOT"):
            n = len(replies.messages())
            broker.publish(f"{IMEI}/AT", cmd)
            replies.wait_for(n + 1, 20)
        m = s.scrape()
        assert (val(m, "modbridge_remote_commands_total"),
                val(m, "modbridge_remote_commands_refused_total")) == (2, 1), m

        # A device dies: its failures go up, the others' do not.
        t0 = time.time()
        dying.stop()
        def dead():
            m = s.scrape()
            # Three failed polls, then it is backed off: instants "not polled".
            return m if val(m, "modbridge_device_up", device="dying") == 0 and \
                val(m, "modbridge_device_failures_total", device="dying",
                    reason="connection") >= 3 and \
                val(m, "modbridge_device_skipped_total", device="dying",
                    reason="not_polled") >= 1 else None
        m2 = harness.wait_until(dead, 30, "the dead device's failures in the metrics")
        last_ok = val(m2, "modbridge_device_last_success_timestamp_seconds", device="dying")
        assert last_ok <= t0 + 1, (last_ok, t0)
        for dev in ("rtu1", "tcp1"):
            fails = sum(v for (n, l), v in m2.items()
                        if n == "modbridge_device_failures_total" and ("device", dev) in l)
            assert fails == 0 and val(m2, "modbridge_device_up", device=dev) == 1, (dev, fails)
            assert val(m2, "modbridge_device_polls_total", device=dev) > \
                val(m1, "modbridge_device_polls_total", device=dev), dev
        print("dying down: failures (connection) "
              f"{val(m2, 'modbridge_device_failures_total', device='dying', reason='connection')},"
              " not polled "
              f"{val(m2, 'modbridge_device_skipped_total', device='dying', reason='not_polled')},"
              f" last success {time.time() - last_ok:.1f} s ago")

        # It comes back.
        dying.start()
        def back():
            m = s.scrape()
            return m if val(m, "modbridge_device_up", device="dying") == 1 and \
                val(m, "modbridge_device_last_success_timestamp_seconds",
                    device="dying") > last_ok else None
        m3 = harness.wait_until(back, 90, "the device back in the metrics")
        print(f"dying back: up 1, polls {val(m3, 'modbridge_device_polls_total', device='dying')}"
              f", last success {time.time() - val(m3, 'modbridge_device_last_success_timestamp_seconds', device='dying'):.1f} s ago")

        # The uplink: counts grow; a broker restart is one reconnection and an error time.
        pub, ack = (val(m1, "modbridge_uplink_published_total", mode="mqtt"),
                    val(m1, "modbridge_uplink_acknowledged_total", mode="mqtt"))
        assert val(m3, "modbridge_uplink_published_total", mode="mqtt") > pub > 0
        assert val(m3, "modbridge_uplink_acknowledged_total", mode="mqtt") > ack > 0
        assert val(m3, "modbridge_store_sent_total") > 0
        t_restart = time.time()
        broker.restart()
        def reconnected():
            m = s.scrape()
            return m if val(m, "modbridge_uplink_reconnects_total", mode="mqtt") == 1 and \
                val(m, "modbridge_uplink_connected", mode="mqtt") == 1 else None
        m4 = harness.wait_until(reconnected, 60, "one reconnection in the metrics")
        err_t = val(m4, "modbridge_uplink_last_error_timestamp_seconds", mode="mqtt")
        assert err_t >= t_restart - 1, (err_t, t_restart)
        print(f"uplink: published {val(m4, 'modbridge_uplink_published_total', mode='mqtt'):.0f}, "
              f"acknowledged {val(m4, 'modbridge_uplink_acknowledged_total', mode='mqtt'):.0f}, "
              f"reconnects 1, last error {time.time() - err_t:.1f} s ago")

        # Only /metrics, only GET.
        for path, code in (("/", 404), ("/metrics/x", 404)):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{mport}{path}", timeout=10)
                raise AssertionError(f"{path}: 200")
            except urllib.error.HTTPError as exc:
                assert exc.code == code, (path, exc.code)
        rc = daemon.stop()
        assert rc == 0, rc
    print("metrics: OK")


if __name__ == "__main__":
    main()
