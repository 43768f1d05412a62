#!/usr/bin/python3
"""Scenario: the seed scenario with each shipped script of examples/scripts/.

The router application note's two PLCs on one RTU line (socat pty pair, pymodbus), TLS
with a client certificate to a real mosquitto, and a subscriber on every topic. For each
transformer example (logger.script) a daemon runs until each device was read a few times,
and what the subscriber got is checked against the seed's register values:
  scale.lua          names, scaling and offsets
  deadband.lua       one message per device while nothing changes; the rest "filtered"
  thingsboard.lua    ThingsBoard gateway telemetry on v1/gateway/telemetry
  influx.lua         InfluxDB line protocol through MQTT (the HTTP mode: test_script_http)
  homeassistant.lua  discovery config per register, then states on one state topic
Then the topic script read_on_request.lua: a request on <IMEI>/script/read is answered on
<IMEI>/script/answer (and on an MQTT 5 response topic) with the registers read through the
poller, and a write is refused while remote.allow_writes is off.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "scripts")
IMEI = "357299070082380"
LOGGER = IMEI + "/logger"

# The seed's registers: PLC1 holds its own addresses (identity), PLC2 10..14 = 10,11,12,0,0.
PLC1_BLOCKS = [(1, 1), (10, 3), (55, 2), (69, 2), (72, 9), (100, 10), (120, 5), (130, 4),
               (152, 3), (160, 7), (170, 1)]
PLC1 = {a: a for start, n in PLC1_BLOCKS for a in range(start, start + n)}
PLC2 = {10: 10, 11: 11, 12: 12, 13: 0, 14: 0}


def seed_config(wd, pty, broker, pki, logger_extra="", mqtt_extra="", rest=""):
    return f"""\
gateway:
  imei: "{IMEI}"
serial:
  - name: com2
    device: {pty.a}
    baudrate: 9600
    timeout_ms: 1000
modbus:
  devices:
    - id: "1"
      serial: com2
      address: 1
      command: 3
      start: "1;10;55;69;72;100;120;130;152;160;170"
      count: "1;3;2;2;9;10;5;4;3;7;1"
      period: 2s
    - id: "2"
      serial: com2
      address: 2
      command: 3
      start: 10
      count: 5
      period: 2s
logger:
  id: ID-1234
  store: {wd.path}/store.db
  topic: "[IMEI]/logger"
{logger_extra}mqtt:
  broker: ssl://localhost:{broker.port_tls_cert}
  qos: 1
  ca_file: {pki['ca']}
  cert_file: {pki['client_cert']}
  key_file: {pki['client_key']}
{mqtt_extra}{rest}"""


def run_example(wd, pty, broker, pki, script, want, timeout=40, name=None):
    """Runs the daemon with logger.script = script until want(messages) holds; returns
    (messages, `queue` output)."""
    name = name or os.path.splitext(script)[0]
    daemon = harness.Daemon(wd, seed_config(
        wd, pty, broker, pki, f"  script: {os.path.join(EXAMPLES, script)}\n"), name=name)
    check = daemon.run_cli("check", "-c", daemon.config_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "transformer script: " in check.stdout, check.stdout
    sub = harness.Subscriber(broker, "#", qos=1)
    sub.start()
    daemon.start()
    daemon.wait_log(r"mqtt: connected to ssl://localhost", 20)
    harness.wait_until(lambda: want([m for m in sub.messages() if not m[0].endswith("/status")]),
                       timeout, f"the messages of {script}")
    assert daemon.stop() == 0
    msgs = [m for m in sub.messages() if not m[0].endswith("/status")]
    sub.stop()
    queue = daemon.run_cli("queue", "-c", daemon.config_path)
    assert queue.returncode == 0, queue.stderr
    assert "readings are kept in the default format" not in daemon.log(), daemon.log()
    os.remove(str(wd.path) + "/store.db")
    return msgs, queue.stdout


def by_device(msgs, key="ID"):
    out = {}
    for topic, payload in msgs:
        out.setdefault(json.loads(payload)[key], []).append((topic, json.loads(payload)))
    return out


def example_scale(wd, pty, broker, pki):
    # The Test button shows what the transformer makes of a reading.
    d = harness.Daemon(wd, seed_config(
        wd, pty, broker, pki, f"  script: {os.path.join(EXAMPLES, 'scale.lua')}\n"),
        name="scale-read")
    read = d.run_cli("read", "-c", d.config_path, "2")
    assert read.returncode == 0, read.stdout + read.stderr
    m = json.loads(read.stdout)
    assert (m["ID"], m["voltage_v"], m["current_a"], m["power_kw"]) == ("2", 1.0, 0.11, 0.012), m
    msgs, _ = run_example(wd, pty, broker, pki, "scale.lua",
                          lambda m: len({json.loads(p)["ID"] for _, p in m}) == 2)
    devs = by_device(msgs)
    for topic, m in devs["1"]:
        assert topic == LOGGER, topic
        assert set(m) == {"ID", "TS", "IMEI", "temperature_c", "pressure_bar", "flow_m3h",
                          "level_pct"}, m
        # Rounded to each name's decimals: exact decimals, not binary noise.
        assert m["temperature_c"] == round(PLC1[1] * 0.1 - 40, 1), m
        assert m["pressure_bar"] == round(PLC1[10] * 0.01, 2), m
        assert m["flow_m3h"] == round(PLC1[11] * 0.1, 1), m
        assert m["level_pct"] == PLC1[100], m
    for topic, m in devs["2"]:
        assert (m["voltage_v"], m["current_a"], m["power_kw"]) == (1.0, 0.11, 0.012), m
    # The key order is ours: the router's members first, then the rest by name.
    raw = [p for _, p in msgs if '"ID":"2"' in p][0]
    assert re.match(r'\{"IMEI":"\d+","TS":"[^"]+","ID":"2","current_a":0\.11,"power_kw":0\.012,'
                    r'"voltage_v":1\.0\}$', raw), raw
    raw1 = [p for _, p in msgs if '"ID":"1"' in p][0]
    assert raw1.endswith('"level_pct":100.0,"pressure_bar":0.1,"temperature_c":-39.9}'), raw1
    print(f"  scale.lua: {len(msgs)} messages, e.g. {raw}")


def example_deadband(wd, pty, broker, pki):
    name = "deadband"
    daemon = harness.Daemon(wd, seed_config(
        wd, pty, broker, pki, f"  script: {os.path.join(EXAMPLES, 'deadband.lua')}\n"),
        name=name)
    sub = harness.Subscriber(broker, LOGGER, qos=1)
    sub.start()
    daemon.start()
    daemon.wait_log(r"mqtt: connected to ssl://localhost", 20)
    # Five polls of each device (2 s period): the first of each is sent, four dropped.
    daemon.wait_log(r"device 2: the script dropped the reading", 30)
    since = daemon.log_offset()
    for _ in range(3):
        since = daemon.log_offset()
        daemon.wait_log(r"device 1: the script dropped the reading", 10, since=since)
    assert daemon.stop() == 0
    msgs = sub.messages()
    sub.stop()
    ids = sorted(json.loads(p)["ID"] for _, p in msgs)
    assert ids == ["1", "2"], msgs
    for _, p in msgs:
        assert "V" in json.loads(p), p
    queue = daemon.run_cli("queue", "-c", daemon.config_path)
    filtered = int(re.search(r"filtered (\d+)", queue.stdout).group(1))
    dropped_logged = daemon.log().count("the script dropped the reading")
    assert filtered == dropped_logged and filtered >= 4, (queue.stdout, dropped_logged)
    assert re.search(r"backlog +0", queue.stdout), queue.stdout
    os.remove(str(wd.path) + "/store.db")
    print(f"  deadband.lua: 2 messages, {filtered} readings filtered (queue: filtered {filtered})")


def example_thingsboard(wd, pty, broker, pki):
    key = "modbridge-%s-%s"
    msgs, _ = run_example(wd, pty, broker, pki, "thingsboard.lua",
                          lambda m: len({next(iter(json.loads(p))) for _, p in m}) == 2)
    for topic, payload in msgs:
        assert topic == "v1/gateway/telemetry", topic
        m = json.loads(payload)
        (device, rows), = m.items()
        dev = device.rsplit("-", 1)[1]
        assert device == key % (IMEI, dev), device
        assert len(rows) == 1 and isinstance(rows[0]["ts"], int), m
        regs = PLC1 if dev == "1" else PLC2
        assert rows[0]["values"] == {f"r{a}": v for a, v in regs.items()}, m
    print(f"  thingsboard.lua: {len(msgs)} messages, e.g. {msgs[-1][1][:120]}...")


LINE = re.compile(r"^modbus,imei=(\d+),device=(\w+) ((?:r\d+=\d+i,?)+) (\d+)$")


def example_influx(wd, pty, broker, pki):
    msgs, _ = run_example(wd, pty, broker, pki, "influx.lua",
                          lambda m: len({p.split(" ")[0] for _, p in m}) == 2)
    for topic, payload in msgs:
        assert topic == LOGGER, topic
        m = LINE.match(payload)
        assert m, payload
        assert m.group(1) == IMEI
        regs = PLC1 if m.group(2) == "1" else PLC2
        fields = dict(f.split("=") for f in m.group(3).split(","))
        assert fields == {f"r{a}": f"{v}i" for a, v in regs.items()}, payload
        assert int(m.group(4)) % 2_000_000_000 == 0, payload  # the 2 s instant, in ns
    print(f"  influx.lua: {len(msgs)} lines, e.g. {msgs[0][1][:100]}...")


def example_homeassistant(wd, pty, broker, pki):
    n_regs = len(PLC1) + len(PLC2)

    def want(m):
        return sum(t.endswith("/state") for t, _ in m) >= 4

    msgs, _ = run_example(wd, pty, broker, pki, "homeassistant.lua", want)
    configs = [(t, json.loads(p)) for t, p in msgs if t.endswith("/config")]
    states = [(t, json.loads(p)) for t, p in msgs if t.endswith("/state")]
    assert len(configs) == n_regs, (len(configs), n_regs)  # announced once per register
    for topic, c in configs:
        assert topic == f"homeassistant/sensor/{c['unique_id']}/config", topic
        assert c["state_topic"] in (f"modbridge/{IMEI}/1/state", f"modbridge/{IMEI}/2/state")
        key = re.match(r"\{\{ value_json\.(r\d+) \}\}", c["value_template"]).group(1)
        dev = c["state_topic"].split("/")[2]
        assert int(key[1:]) in (PLC1 if dev == "1" else PLC2), c
    for topic, s in states:
        regs = PLC1 if topic.split("/")[2] == "1" else PLC2
        assert s == {f"r{a}": v for a, v in regs.items()}, s
    print(f"  homeassistant.lua: {len(configs)} discovery configs, {len(states)} states")


def example_read_on_request(wd, pty, broker, pki):
    script = os.path.join(EXAMPLES, "read_on_request.lua")
    daemon = harness.Daemon(wd, seed_config(
        wd, pty, broker, pki,
        mqtt_extra=f"  script_topics:\n    - topic: \"[IMEI]/script/read\"\n"
                   f"      script: {script}\n"), name="read_on_request")
    check = daemon.run_cli("check", "-c", daemon.config_path)
    assert check.returncode == 0 and "topic script: " in check.stdout, check.stdout + check.stderr
    sub = harness.Subscriber(broker, IMEI + "/script/#", qos=1)
    sub.start()
    daemon.start()
    daemon.wait_log(r"mqtt: connected to ssl://localhost", 20)
    daemon.wait_log(r"runs on messages", 20)
    answers = []

    def ask(payload, what):
        sub.clear()
        # The subscription may not be in place at the very first try: ask again.
        def asked():
            broker.publish(IMEI + "/script/read", payload)
            try:
                sub.wait_match(lambda t, p: t.endswith("/answer"), 3, what)
                return True
            except AssertionError:
                return False
        harness.wait_until(asked, 30, what, interval=0.1)
        ans = [json.loads(p) for t, p in sub.messages() if t.endswith("/answer")][0]
        answers.append(ans)
        return ans

    a = ask('{"device":"2","register":10,"count":3}', "the answer to a read")
    assert a == {"device": "2", "register": 10, "values": [10, 11, 12]}, a
    a = ask('{"device":"1","register":160,"count":7}', "the answer to a read of PLC1")
    assert a["values"] == list(range(160, 167)), a
    a = ask('{"device":"1","register":20,"write":1}', "the answer to a write")
    assert a["written"] is False and "needs remote.allow_writes" in a["error"], a
    a = ask('not json', "the answer to nonsense")
    assert "invalid JSON" in a["error"], a
    # An MQTT 5 request's response topic is honoured.
    res_topic = IMEI + "/script/mine"
    sub.clear()
    argv = ["mosquitto_pub"] + broker.client_args("plain") + [
        "-V", "mqttv5", "-t", IMEI + "/script/read", "-q", "1",
        "-D", "publish", "response-topic", res_topic,
        "-m", '{"device":"2","register":12}']
    subprocess.run(argv, check=True, capture_output=True, timeout=15)
    t, p = sub.wait_match(lambda t, p: t == res_topic, 15, "the answer on the response topic")
    assert json.loads(p)["values"] == [12], p
    assert daemon.stop() == 0
    sub.stop()
    print(f"  read_on_request.lua: {len(answers) + 1} answers, e.g. {answers[0]}")


def main():
    with harness.Workdir("script_examples") as wd:
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
        example_scale(wd, pty, broker, pki)
        example_deadband(wd, pty, broker, pki)
        example_thingsboard(wd, pty, broker, pki)
        example_influx(wd, pty, broker, pki)
        example_homeassistant(wd, pty, broker, pki)
        example_read_on_request(wd, pty, broker, pki)
        sim.stop()
        pty.stop()
        broker.stop()
    print("script examples: OK")


if __name__ == "__main__":
    main()
