#!/usr/bin/python3
"""Self-check of the integration harness (no modbridge binary needed).

    /usr/bin/python3 tests/integration/selftest_harness.py [-v]

Checks: PKI; a broker with every listener (pub/sub through each with the right certificates
or password, and refusals without them); Subscriber (wildcards, probes hidden, surviving
broker restarts, persistent sessions); socat pty pair; the Modbus simulator on TCP and on
RTU over the pty pair, read back with pymodbus' synchronous clients (exact values, zero-based
addresses, function codes 1-4, writes, unknown unit ids, delay/silent/exception faults,
split TCP frames, request counters, restart on the same port); the Daemon wrapper against
a fake binary; Workdir keep/delete behaviour.

Not named test_*.py on purpose: CTest only picks up test_*.py scenarios.
"""

import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402  pylint: disable=wrong-import-position

from pymodbus.client import ModbusSerialClient, ModbusTcpClient  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

VERBOSE = "-v" in sys.argv[1:]
TIMINGS = []


class Step:
    """Times one named step and records it."""

    def __init__(self, name):
        self.name = name
        self.t0 = 0.0

    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, exc_type, _exc, _tb):
        dt = time.monotonic() - self.t0
        TIMINGS.append((self.name, dt, exc_type is None))
        if exc_type is None:
            print(f"  ok    {dt:6.3f}s  {self.name}", flush=True)
        else:
            print(f"  FAIL  {dt:6.3f}s  {self.name}", flush=True)
        return False


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


# --------------------------------------------------------------------------- #
# PKI + broker
# --------------------------------------------------------------------------- #
def openssl_verify(ca, cert):
    res = subprocess.run(["openssl", "verify", "-CAfile", ca, cert], capture_output=True,
                         text=True, check=False)
    return res.returncode == 0


def test_pki(wd):
    with Step("make_pki (EC P-256, 2 days)") as st:
        pki = h.make_pki(wd)
    check(time.monotonic() - st.t0 < 2.0, "make_pki took longer than 2 s")
    for key in ("ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key",
                "wrong_ca"):
        check(os.path.isfile(pki[key]), f"pki[{key}] missing: {pki[key]}")
    with Step("PKI chains and SAN"):
        check(openssl_verify(pki["ca"], pki["server_cert"]), "server cert not signed by ca")
        check(openssl_verify(pki["ca"], pki["client_cert"]), "client cert not signed by ca")
        check(not openssl_verify(pki["wrong_ca"], pki["server_cert"]),
              "wrong_ca must not verify the server cert")
        check(not openssl_verify(pki["ca"], pki["wrong_client_cert"]),
              "wrong_client_cert must not verify against ca")
        text = subprocess.run(["openssl", "x509", "-in", pki["server_cert"], "-noout", "-text"],
                              capture_output=True, text=True, check=True).stdout
        check("DNS:localhost" in text and "IP Address:127.0.0.1" in text,
              f"server SAN wrong:\n{text}")
        subj = subprocess.run(["openssl", "x509", "-in", pki["client_cert"], "-noout",
                               "-subject"], capture_output=True, text=True, check=True).stdout
        check("CN = modbridge-test" in subj, f"client subject: {subj}")
    return pki


def sub_once(broker, listener, topic, extra=(), timeout=10, **kw):
    argv = ["mosquitto_sub"] + broker.client_args(listener, **kw) + list(extra) + \
        ["-t", topic, "-C", "1", "-W", str(timeout), "-F", "%p"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10,
                          check=False)


def pub_raw(broker, listener, topic, payload, extra=(), **kw):
    argv = ["mosquitto_pub"] + broker.client_args(listener, **kw) + list(extra) + \
        ["-t", topic, "-m", payload, "-q", "1"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_broker(wd, pki):
    broker = h.Broker(wd, pki)
    with Step("Broker.start (5 listeners)") as st:
        broker.start()
    check(time.monotonic() - st.t0 < 2.0, "broker start took longer than 2 s")
    ports = [broker.port_plain, broker.port_pw, broker.port_tls, broker.port_tls_cert,
             broker.port_tls_pw]
    check(len(set(ports)) == 5 and all(ports), f"ports {ports}")
    eq((broker.username, broker.password), ("modbridge", "s3cret-pw"), "credentials")

    with Step("Subscriber on plain port, wildcard 'selftest/#'"):
        sub = h.Subscriber(broker, "selftest/#", qos=1).start()
        eq(sub.messages(), [], "probes must not show up in messages()")

    with Step("pub+sub through every listener with the right credentials"):
        expected = []
        for listener in h.Broker.LISTENERS:
            topic = f"selftest/{listener}"
            payload = f'{{"listener": "{listener}", "n": 1}}'
            broker.publish(topic, payload, qos=1, retain=True, listener=listener)
            expected.append((topic, payload))
            res = sub_once(broker, listener, topic)
            eq((res.returncode, res.stdout.strip()), (0, payload),
               f"retained round trip via {listener} (stderr {res.stderr.strip()!r})")
            broker.publish(topic, "", qos=1, retain=True, listener=listener)  # clear retained
            expected.append((topic, ""))
        got = sub.wait_for(len(expected), 15)
        eq(got, expected, "messages seen by the plain Subscriber")

    with Step("refusals: no/foreign client cert, bad/no password, wrong CA"):
        cases = [
            # TLS 1.3: the server's rejection of the client certificate arrives after the
            # client considers the handshake done: "connection lost" or "protocol error"
            ("tls_cert", (), {"cert": False}, ("connection was lost", "Protocol error")),
            ("tls_cert", ("--cert", pki["wrong_client_cert"], "--key", pki["wrong_client_key"]),
             {"cert": False}, ("connection was lost", "Protocol error")),
            ("tls_pw", ("-u", "modbridge", "-P", "wrong"), {"auth": False}, "not authorised"),
            ("tls_pw", (), {"auth": False}, "not authorised"),
            ("pw", (), {"auth": False}, "not authorised"),
            ("tls", ("--cafile", pki["wrong_ca"]), {}, "TLS error"),
        ]
        for listener, extra, kw, needles in cases:
            needles = (needles,) if isinstance(needles, str) else needles
            res = pub_raw(broker, listener, "selftest/denied", "x", extra, **kw)
            check(res.returncode != 0 and any(nd in res.stderr for nd in needles),
                  f"{listener} {extra} {kw}: expected failure with one of {needles!r}, got "
                  f"rc {res.returncode} {res.stderr.strip()!r}")
        check(not any(t == "selftest/denied" for t, _ in sub.messages()),
              "a refused client got a message through")

    with Step("Broker.restart keeps ports, Subscriber survives it"):
        sub.clear()
        old = dict(broker.ports)
        broker.restart()
        eq(broker.ports, old, "ports after restart")
        sub.wait_active(20)
        broker.publish("selftest/after", '{"after": "restart"}')
        eq(sub.wait_for(1, 15), [("selftest/after", '{"after": "restart"}')],
           "message after restart")
    sub.stop()
    broker.stop()
    return broker


def test_persistence(wd, pki):
    broker = h.Broker(wd, pki, persistence=True, name="mosq-persist")
    with Step("persistent broker: queued QoS1 survive stop/start"):
        broker.start()
        sub = h.Subscriber(broker, "persist/+/data", qos=1, client_id="selftest-persist",
                           clean=False).start()
        sub.stop()  # offline; the session stays and queues
        sent = [(f"persist/{i}/data", f'{{"seq": {i}}}') for i in range(5)]
        for topic, payload in sent:
            broker.publish(topic, payload, qos=1)
        broker.stop()
        check(os.path.exists(os.path.join(broker.data_dir, "mosquitto.db")),
              "no mosquitto.db after stop")
        broker.start()
        sub2 = h.Subscriber(broker, "persist/+/data", qos=1, client_id="selftest-persist",
                            clean=False).start()
        eq(sub2.wait_for(5, 15)[:5], sent, "queued messages after broker restart")
    with Step("persistent session: nothing lost while the broker restarts"):
        sub2.clear()
        broker.restart()
        broker.publish("persist/9/data", '{"seq": 9}', qos=1)
        # QoS 1: messages in flight at the restart may come again (dup) before it
        sub2.wait_match(lambda t, p: (t, p) == ("persist/9/data", '{"seq": 9}'), 20,
                        "persist/9/data after the restart")
        allowed = sent + [("persist/9/data", '{"seq": 9}')]
        check(all(m in allowed for m in sub2.messages()), f"unexpected: {sub2.messages()}")
    with Step("clean=True with explicit id drops the old session"):
        sub2.stop()
        broker.publish("persist/10/data", '{"seq": 10}', qos=1)  # queued for the session
        sub3 = h.Subscriber(broker, "persist/+/data", client_id="selftest-persist",
                            clean=True).start()
        # a kept session would have delivered its queue on connect, before start()'s probe
        eq(sub3.messages(), [], "clean subscriber got old queued messages")
        sub3.stop()
    broker.stop()


# --------------------------------------------------------------------------- #
# Modbus
# --------------------------------------------------------------------------- #
def sim_config(pty_b):
    return {"servers": [
        {"tcp": "127.0.0.1:0",
         "units": {
             "1": {"holding": {"identity": 2000}, "input": {"identity": 2000},
                   "coils": {"values": {"0": [1, 0, 1, 1]}}, "discrete": {"identity_bits": 64}},
             "7": {"holding": {"values": {"100": [7, 70, 700]}}},
             "20": {"holding": {"identity": 100},
                    "exception_at": {"holding": [[40, 49]], "input": [[0, 0]]}},
             "21": {"holding": {"identity": 100}, "delay_ms": 400},
             "22": {"silent": True},
             "23": {"holding": {"identity": 10}, "exception_at": {"holding": [[5, 5]]},
                    "exception_code": 6}}},
        {"rtu": pty_b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
         "units": {
             "1": {"holding": {"identity": 2000}},
             "2": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}},
             "3": {"coils": {"values": {"0": [1, 0, 1, 1]}}, "discrete": {"identity_bits": 64},
                   "input": {"values": {"5": [500, 501]}}}}},
        {"tcp": "127.0.0.1:0", "any_unit": True,
         "units": {"1": {"holding": {"values": {"0": [4242, 65535, -1]}}}}},
    ]}


def regs(resp, what):
    check(not resp.isError(), f"{what}: error {resp}")
    return list(resp.registers)


def bits(resp, n, what):
    check(not resp.isError(), f"{what}: error {resp}")
    return [bool(b) for b in resp.bits[:n]]


def exc_code(resp, what):
    check(resp.isError() and hasattr(resp, "exception_code"),
          f"{what}: expected an exception response, got {resp}")
    return resp.exception_code


def raw_mbap(port, unit, fc, addr, count, chunks=None, timeout=0.8, tid=0x1234):
    """Send one read request over a raw socket, optionally split into chunks; return the
    reply bytes or None if nothing came back within timeout."""
    pdu = struct.pack(">BHH", fc, addr, count)
    frame = struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if chunks:
            pos = 0
            for size in chunks:
                sock.sendall(frame[pos:pos + size])
                pos += size
                time.sleep(0.05)
            sock.sendall(frame[pos:])
        else:
            sock.sendall(frame)
        sock.settimeout(timeout)
        try:
            data = sock.recv(512)
        except socket.timeout:
            return None
        return data or None


def test_modbus(wd):
    pty = h.PtyPair(wd)
    with Step("PtyPair.start (socat)") as st:
        pty.start()
    check(time.monotonic() - st.t0 < 2.0, "socat start took longer than 2 s")
    check(os.path.realpath(pty.a).startswith("/dev/pts/") and
          os.path.realpath(pty.b).startswith("/dev/pts/"), f"links {pty.a} {pty.b}")

    sim = h.ModbusSim(wd, sim_config(pty.b))
    with Step("ModbusSim.start (2 TCP + 1 RTU servers)") as st:
        sim.start()
    check(time.monotonic() - st.t0 < 3.0, "sim start took longer than 3 s")
    tcp_port, any_port = sim.tcp_ports[0], sim.tcp_ports[2]
    check(sim.tcp_ports[1] is None and tcp_port and any_port, f"tcp_ports {sim.tcp_ports}")
    eq(sim.port, tcp_port, "sim.port")
    count = {}

    def n(unit, k=1):
        count[unit] = count.get(unit, 0) + k

    with Step("TCP: fc 1-4 exact values, zero-based addresses"):
        cli = ModbusTcpClient("127.0.0.1", port=tcp_port, timeout=2, retries=1)
        check(cli.connect(), "TCP connect")
        eq(regs(cli.read_holding_registers(10, 5, slave=1), "fc3"), [10, 11, 12, 13, 14],
           "holding 10..14")
        eq(regs(cli.read_holding_registers(0, 3, slave=1), "fc3@0"), [0, 1, 2], "holding 0..2")
        eq(regs(cli.read_holding_registers(1999, 1, slave=1), "fc3@1999"), [1999],
           "last holding")
        eq(regs(cli.read_holding_registers(0, 125, slave=1), "fc3 x125"), list(range(125)),
           "125 registers")
        eq(regs(cli.read_input_registers(300, 4, slave=1), "fc4"), [300, 301, 302, 303],
           "input 300..303")
        eq(bits(cli.read_coils(0, 6, slave=1), 6, "fc1"), [True, False, True, True, False,
                                                            False], "coils 0..5")
        eq(bits(cli.read_discrete_inputs(60, 6, slave=1), 6, "fc2"),
           [False, True, False, True, False, False], "discrete 60..65 (identity_bits 64)")
        eq(regs(cli.read_holding_registers(99, 5, slave=7), "unit 7"), [0, 7, 70, 700, 0],
           "unit 7 explicit values")
        n(1, 7)
        n(7)
        eq(exc_code(cli.read_holding_registers(1999, 2, slave=1), "beyond size"), 2,
           "read past the end of the table")
        n(1)
        check(not cli.write_register(5, 4321, slave=7).isError(), "fc6 write")
        eq(regs(cli.read_holding_registers(4, 3, slave=7), "readback"), [0, 4321, 0],
           "write read back")
        check(not cli.write_coil(1, True, slave=1).isError(), "fc5 write")
        eq(bits(cli.read_coils(0, 2, slave=1), 2, "coil readback"), [True, True],
           "coil read back")
        n(7, 2)
        n(1, 2)

    with Step("TCP: exception_at (code 2 and custom 6), neighbours fine"):
        eq(exc_code(cli.read_holding_registers(40, 1, slave=20), "exc"), 2, "inside range")
        eq(exc_code(cli.read_holding_registers(35, 10, slave=20), "exc"), 2, "overlapping")
        eq(exc_code(cli.read_holding_registers(49, 3, slave=20), "exc"), 2, "overlapping end")
        eq(regs(cli.read_holding_registers(30, 10, slave=20), "below"), list(range(30, 40)),
           "just below range")
        eq(regs(cli.read_holding_registers(50, 2, slave=20), "above"), [50, 51],
           "just above range")
        eq(exc_code(cli.read_input_registers(0, 1, slave=20), "exc input"), 2, "input range")
        eq(exc_code(cli.read_holding_registers(0, 10, slave=23), "exc 6"), 6, "custom code")
        eq(regs(cli.read_holding_registers(0, 5, slave=23), "below 5"), [0, 1, 2, 3, 4],
           "custom code neighbours")
        n(20, 6)
        n(23, 2)

    with Step("TCP: delay_ms 400"):
        t0 = time.monotonic()
        eq(regs(cli.read_holding_registers(3, 2, slave=21), "delayed"), [3, 4], "delayed read")
        dt = time.monotonic() - t0
        check(0.38 <= dt < 1.9, f"delayed answer after {dt:.3f}s, want about 0.4s")
        n(21)
        cli.close()

    with Step("TCP raw: silent unit and unknown unit never answer; split frames work"):
        eq(raw_mbap(tcp_port, 22, 3, 0, 1), None, "silent unit answered")
        n(22)
        eq(raw_mbap(tcp_port, 99, 3, 0, 1), None, "unknown unit answered")
        want = struct.pack(">HHHBBB", 0x1234, 0, 7, 1, 3, 4) + struct.pack(">HH", 20, 21)
        eq(raw_mbap(tcp_port, 1, 3, 20, 2, chunks=[3]), want, "split after 3 bytes")
        eq(raw_mbap(tcp_port, 1, 3, 20, 2, chunks=[7]), want, "split after MBAP")
        eq(raw_mbap(tcp_port, 1, 3, 20, 2, chunks=[2, 4, 3, 2]), want, "many chunks")
        n(1, 3)

    with Step("TCP any_unit: every unit id answers, negative values stored 16-bit"):
        cli = ModbusTcpClient("127.0.0.1", port=any_port, timeout=2, retries=1)
        for unit in (1, 17, 247, 0):
            eq(regs(cli.read_holding_registers(0, 4, slave=unit), f"any unit {unit}"),
               [4242, 65535, 65535, 0], f"any_unit unit {unit}")
        cli.close()
        st2 = sim.stats(server=2)
        eq((st2[17], st2["247"], st2.get(0)), (1, 1, 1), "any_unit per-server counts")

    with Step("RTU over the pty pair: units 1/2/3, fc 1-4, unknown unit"):
        ser = ModbusSerialClient(port=pty.a, baudrate=9600, bytesize=8, parity="N", stopbits=1,
                                 timeout=1, retries=1)
        check(ser.connect(), "serial connect")
        eq(regs(ser.read_holding_registers(10, 5, slave=1), "rtu u1"), [10, 11, 12, 13, 14],
           "rtu unit 1 holding 10..14")
        eq(regs(ser.read_holding_registers(10, 5, slave=2), "rtu u2"), [10, 11, 12, 0, 0],
           "rtu unit 2 holding")
        eq(regs(ser.read_holding_registers(8, 3, slave=2), "rtu u2 b"), [0, 0, 10],
           "rtu unit 2 zero-based")
        eq(bits(ser.read_coils(0, 4, slave=3), 4, "rtu fc1"), [True, False, True, True],
           "rtu coils")
        eq(bits(ser.read_discrete_inputs(0, 4, slave=3), 4, "rtu fc2"),
           [False, True, False, True], "rtu discrete")
        eq(regs(ser.read_input_registers(5, 2, slave=3), "rtu fc4"), [500, 501], "rtu input")
        t0 = time.monotonic()
        check(ser.read_holding_registers(0, 1, slave=9).isError(), "unknown rtu unit answered")
        check(time.monotonic() - t0 >= 0.9, "unknown unit: no timeout?")
        eq(regs(ser.read_holding_registers(1, 2, slave=1), "after timeout"), [1, 2],
           "bus usable after an unanswered request")
        ser.close()
        rtu_stats = sim.stats(server=1)
        eq(dict(rtu_stats), {"1": 2, "2": 2, "3": 3}, "rtu per-server counts")

    with Step("stats_file counts every request per unit (all servers)"):
        total = sim.stats()
        want = dict(count)
        want[1] = want.get(1, 0) + 2 + 1  # rtu unit 1 (2) + any_unit server unit 1 (1)
        want[2] = 2
        want[3] = 3
        want[17] = want[247] = want[0] = 1
        for unit, cnt in want.items():
            eq(total.get(unit), cnt, f"stats for unit {unit} (all: {dict(total)})")
        check("99" not in total and "9" not in total, f"unknown units counted: {dict(total)}")

    with Step("ModbusSim.restart: same port, counters reset"):
        sim.restart()
        eq(sim.tcp_ports[0], tcp_port, "port after restart")
        cli = ModbusTcpClient("127.0.0.1", port=tcp_port, timeout=2, retries=1)
        eq(regs(cli.read_holding_registers(10, 2, slave=1), "after restart"), [10, 11],
           "read after restart")
        cli.close()
        eq(sim.stats()[1], 1, "counter after restart")
        ser = ModbusSerialClient(port=pty.a, baudrate=9600, timeout=1, retries=1)
        eq(regs(ser.read_holding_registers(10, 2, slave=1), "rtu after restart"), [10, 11],
           "rtu read after sim restart")
        ser.close()

    with Step("ModbusSim config errors are reported"):
        bad = h.ModbusSim(wd, {"servers": [{"tcp": "127.0.0.1:0",
                                            "units": {"1": {"holdings": {}}}}]}, name="badsim")
        try:
            bad.start()
        except AssertionError as exc:
            check("unknown key" in str(exc) and "holdings" in str(exc), f"message: {exc}")
        else:
            raise AssertionError("bad config started")
    sim.stop()
    pty.stop()


# --------------------------------------------------------------------------- #
# Daemon wrapper (fake binary) and Workdir
# --------------------------------------------------------------------------- #
FAKE_DAEMON = r"""#!/bin/sh
# fake modbridge for the harness self-test
case "$1" in
  run)
    echo "fake modbridge pid $$ args: $*"
    [ "$FAKE_MODE" = "fail" ] && { echo "fatal: bad config" >&2; exit 3; }
    [ "$FAKE_MODE" = "tsan" ] && printf '==================\nWARNING: ThreadSanitizer: data race (pid=%s)\n  Write of size 4 at 0x7b04 by thread T2:\n' $$ >&2
    if [ "$FAKE_MODE" = "stubborn" ]; then trap '' TERM; else trap 'echo "got SIGTERM"; exit 0' TERM; fi
    echo "config first line: $(head -n 1 "$3")"
    echo "ready"
    while :; do sleep 0.05; done ;;
  check)
    echo "checked $3"; echo "warning: none" >&2; exit 0 ;;
  ubsan)
    echo "src/decode.c:12:5: runtime error: signed integer overflow" >&2; exit 2 ;;
  *) exit 64 ;;
esac
"""


def test_daemon(wd):
    fake = wd.write("fake-modbridge", FAKE_DAEMON)
    os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
    with Step("Daemon: start, wait_log, stop, restart, kill9, run_cli (fake binary)"):
        d = h.Daemon(wd, "mqtt:\n  host: 127.0.0.1\n", binary=fake)
        d.start("--extra")
        m = d.wait_log(r"fake modbridge pid (\d+) args: (.*)$", 10)
        eq(int(m.group(1)), d.pid, "pid in log")
        eq(m.group(2), f"run -c {d.config_path} -v --extra", "argv")
        d.wait_log(r"^config first line: mqtt:$", 10)
        d.wait_log(r"^ready$", 10)
        eq(d.stop(), 0, "exit code after SIGTERM")
        check("got SIGTERM" in d.log(), "trap output missing")
        d.start()
        d.wait_log(r"^ready$", 10)
        check(d.log().count("ready") == 2, "second run")
        eq(d.kill9(), -signal.SIGKILL, "kill9 exit code")
        res = d.run_cli("check", "-c", d.config_path)
        eq((res.returncode, res.stdout.strip(), res.stderr.strip()),
           (0, f"checked {d.config_path}", "warning: none"), "run_cli")
        check(os.path.exists(d.cli_log_path), "cli log missing")
    with Step("Daemon: early exit and SIGTERM-ignoring daemon are reported"):
        d2 = h.Daemon(wd, "x: 1\n", name="failing", binary=fake)
        d2.start(env={"FAKE_MODE": "fail"})
        try:
            d2.wait_log("never printed", 20)
        except AssertionError as exc:
            check("exited with 3" in str(exc) and "fatal: bad config" in str(exc), str(exc))
        else:
            raise AssertionError("wait_log did not fail")
        eq(d2.stop(), 3, "exit code of the failed daemon")
        d3 = h.Daemon(wd, "x: 1\n", name="stubborn", binary=fake)
        d3.start(env={"FAKE_MODE": "stubborn"})
        d3.wait_log("^ready$", 10)
        try:
            d3.stop(timeout=0.5 / h.TIMEOUT_SCALE)
        except AssertionError as exc:
            check("did not exit" in str(exc), str(exc))
        else:
            raise AssertionError("stop() of a stubborn daemon did not fail")
        check(not d3.running, "stubborn daemon still running")
    with Step("Daemon: a sanitizer report fails stop(), and any log's fails the Workdir"):
        d4 = h.Daemon(wd, "x: 1\n", name="racy", binary=fake)
        d4.start(env={"FAKE_MODE": "tsan"})
        d4.wait_log("^ready$", 10)
        try:
            d4.stop()
        except AssertionError as exc:
            check("WARNING: ThreadSanitizer: data race" in str(exc) and "racy.log" in str(exc),
                  str(exc))
        else:
            raise AssertionError("stop() of a daemon with a TSan report did not fail")
        # Only the run's own log counts: a clean second start stops cleanly.
        d4.start()
        d4.wait_log("^ready$", 10)
        eq(d4.stop(), 0, "clean run after a reported one")
        saved = h.DUMP_LINES
        h.DUMP_LINES = 0
        kept = None
        try:
            with h.Workdir("selftest-ubsan") as wd2:
                kept = wd2.path
                d5 = h.Daemon(wd2, "x: 1\n", binary=fake)
                eq(d5.run_cli("ubsan").returncode, 2, "fake CLI exit code")
        except AssertionError as exc:
            check("runtime error: signed integer overflow" in str(exc), str(exc))
        else:
            raise AssertionError("a UBSan report in a CLI log did not fail the Workdir")
        finally:
            h.DUMP_LINES = saved
        check(kept and os.path.isdir(kept), "workdir with a sanitizer report not kept")
        subprocess.run(["rm", "-rf", kept], check=True)
        # the racy.log of the first run would fail the self-test's own Workdir: drop it
        os.remove(d4.log_path)
    with Step("wait_until helper"):
        eq(h.wait_until(lambda: 42, 1, "x"), 42, "wait_until value")
        try:
            h.wait_until(lambda: False, 0.2, lambda: "the impossible")
        except AssertionError as exc:
            check("the impossible" in str(exc), str(exc))
        else:
            raise AssertionError("wait_until did not time out")


def test_workdir():
    with Step("Workdir: deleted on success, kept on failure"):
        with h.Workdir("selftest-ok") as wd:
            path = wd.path
            check(os.path.isdir(path / "."), "workdir missing")
        if os.environ.get("MODBRIDGE_KEEP_TMP", "") in ("", "0"):
            check(not os.path.exists(path), "workdir of a passing test not deleted")
        kept = None
        saved = h.DUMP_LINES
        h.DUMP_LINES = 0  # keep the output of this expected failure short
        try:
            with h.Workdir("selftest-fail") as wd:
                kept = wd.path
                raise ValueError("expected")
        except ValueError:
            pass
        finally:
            h.DUMP_LINES = saved
        check(kept and os.path.isdir(kept), "workdir of a failing test not kept")
        subprocess.run(["rm", "-rf", kept], check=True)


def leftover_children():
    res = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())],
                         capture_output=True, text=True, check=False)
    return [line.strip() for line in res.stdout.splitlines()
            if line.strip() and "ps -o" not in line]


def main():
    t0 = time.monotonic()
    failed = False
    try:
        with h.Workdir("selftest") as wd:
            print(f"harness self-test in {wd.path}", flush=True)
            pki = test_pki(wd)
            test_broker(wd, pki)
            test_persistence(wd, pki)
            test_modbus(wd)
            test_daemon(wd)
        test_workdir()
        with Step("no child process left running"):
            eq(leftover_children(), [], "children still running")
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        failed = True
    total = time.monotonic() - t0
    passed = sum(1 for _, _, ok in TIMINGS if ok)
    print(f"harness self-test: {total:.2f}s total")
    print(f"{passed} passed, {1 if failed else 0} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
