#!/usr/bin/python3
"""Scenario: remote AT commands over MQTT against a real broker and real Modbus peers.

One RTU line (socat pty, PLC1 polled every 500 ms) and one Modbus TCP device. Commands go
to GW-REMOTE/AT with mosquitto_pub; replies come back on GW-REMOTE/ATR.

- standard commands, the router family's commands and the status command answer;
- an MQTT 5 request with a response topic and correlation data is answered there, with
  the correlation data; a response topic on a command topic is refused;
- GETMODBUS on the RTU line, fired many times while the line is polled, returns the right
  values and no poll fails (requests queue behind the polls, never interleave);
- SETMODBUS writes a holding register and a coil; pymodbus reads them back;
- every bad input of the issue is answered with ERROR and a reason, the configuration file
  stays as it was, and the daemon keeps polling and answering;
- the audit log has a line per command, and never the secret of a SETPARAM;
- `modbridge at` runs the same commands locally, and is refused the serial line the
  daemon holds;
- the retained status topic says online, offline after a clean stop, and the broker's LWT
  says offline after kill -9.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from pymodbus.client import ModbusTcpClient  # noqa: E402  (after harness: serial_asyncio stub)

IMEI = "GW-REMOTE"
CANARY = "pw-canary-7f3a"


class Sub5(harness.Subscriber):
    """The harness subscriber, speaking MQTT 5 so properties come through (%j has them)."""

    def _argv(self):
        return super()._argv() + ["-V", "mqttv5"]

    def props(self):
        return [(r["topic"], r["payload"], r.get("properties", {})) for r in self.records()]


def main():
    with harness.Workdir("remote") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600,
             "units": {"1": {"holding": {"identity": 1000, "size": 1200}, "coils": {"size": 100}}}},
            {"tcp": "127.0.0.1:%d" % tcp_port,
             "units": {"1": {"holding": {"identity": 1000}, "coils": {"size": 100}}}},
        ]})
        sim.start()
        config = f"""\
gateway: {{ imei: "{IMEI}" }}
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600, timeout_ms: 500 }}
modbus:
  devices:
    - {{ id: plc1, address: 1, start: "0;10", count: "2;3", period: 500ms }}
    - {{ id: plc2, address: "127.0.0.1:{tcp_port}", start: 20, count: 2, period: 1s }}
logger:
  id: P1
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  qos: 1
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
    - {{ topic: "fleet/+/AT", response: "fleet/ATR" }}
remote:
  allow_writes: true
  allow_setparam: true
"""
        replies = harness.Subscriber(broker, [f"{IMEI}/ATR", "fleet/ATR"], qos=1)
        replies.start()
        data = harness.Subscriber(broker, f"{IMEI}/logger", qos=1)
        data.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 20)
        daemon.wait_log(r"subscribed to 'fleet/\+/AT'", 5)

        def ask(payload=None, topic=f"{IMEI}/AT", raw=None):
            """Publish one command; return the reply's lines (the reply arrives in order)."""
            n = len(replies.messages())
            argv = ["mosquitto_pub"] + broker.client_args() + ["-t", topic, "-q", "1"]
            if raw is not None:
                path = wd.path / "payload.bin"
                with open(path, "wb") as fh:
                    fh.write(raw)
                argv += ["-f", path]
            elif payload:
                argv += ["-m", payload]
            else:
                argv += ["-n"]
            subprocess.run(argv, check=True, timeout=30)
            msgs = replies.wait_for(n + 1, 20)
            assert len(msgs) == n + 1, msgs[n:]
            topic_r, text = msgs[n]
            assert text.endswith("\r\n"), repr(text)
            return text[:-2].split("\r\n")

        # ---- standard and family commands
        assert ask("AT") == ["OK"]
        assert ask("at\r\n") == ["OK"]
        assert ask("ATI") == ["modbridge 0.1.0", "OK"]
        assert ask("AT+CGSN") == [IMEI, "OK"]
        assert ask("AT+CSQ") == ["+CSQ: 99,99", "OK"]
        assert ask("AT^MTXTUNNEL=VERSION") == ["modbridge 0.1.0", "OK"]
        assert ask("AT^MTXTUNNEL=GETPARAM,logger.id") == ["P1", "OK"]
        assert ask("AT^MTXTUNNEL=GETPARAM,modbus.devices[1].count") == ["2", "OK"]
        cfg_lines = ask("AT^MTXTUNNEL=GETCONFIG")
        assert cfg_lines[-1] == "OK" and "  allow_writes: true" in cfg_lines, cfg_lines
        # The second AT topic (a wildcard) answers on its own pair.
        n = len(replies.messages())
        broker.publish("fleet/site7/AT", "AT+CGSN")
        assert replies.wait_for(n + 1, 20)[n] == ("fleet/ATR", f"{IMEI}\r\nOK\r\n")

        # ---- MQTT 5 request/response
        private = Sub5(broker, "client/42/reply", qos=1)
        private.start()
        subprocess.run(["mosquitto_pub"] + broker.client_args() +
                       ["-V", "mqttv5", "-t", f"{IMEI}/AT", "-q", "1", "-m", "AT+CGSN",
                        "-D", "publish", "response-topic", "client/42/reply",
                        "-D", "publish", "correlation-data", "req-42"], check=True, timeout=30)
        private.wait_for(1, 20)
        topic, payload, props = private.props()[0]
        assert (topic, payload) == ("client/42/reply", f"{IMEI}\r\nOK\r\n"), (topic, payload)
        assert props.get("correlation-data") == "req-42", props
        # A response topic that is one of our command topics would loop: refused.
        n = len(replies.messages())
        subprocess.run(["mosquitto_pub"] + broker.client_args() +
                       ["-V", "mqttv5", "-t", f"{IMEI}/AT", "-q", "1", "-m", "AT",
                        "-D", "publish", "response-topic", "fleet/x/AT"], check=True, timeout=30)
        assert replies.wait_for(n + 1, 20)[n] == (f"{IMEI}/ATR", "OK\r\n")
        daemon.wait_log(r"response topic was not used: it is a command topic", 5)
        private.stop()

        # ---- status
        status = ask("AT+MBSTATUS")
        assert status[-1] == "OK" and "mqtt: connected" in status, status
        assert any(l.startswith("device plc1: ok (last read ") for l in status), status
        assert any(l.startswith("backlog: ") for l in status), status

        # ---- GETMODBUS on the polled RTU line, many times in a row
        data.clear()
        t0 = time.time()
        for i in range(20):
            reg = 100 + i
            assert ask(f"AT^MTXTUNNEL=GETMODBUS,1;{reg};3") == [f"{reg},{reg + 1},{reg + 2}", "OK"]
        assert ask("AT^MTXTUNNEL=GETMODBUS,com2/1;5;4;0x03") == ["5,6,7,8", "OK"]
        elapsed = time.time() - t0
        polled = [json.loads(p) for _, p in data.messages() if json.loads(p)["ID"] == "plc1"]
        assert polled, "no PLC1 reading during %.1f s of remote reads" % elapsed
        assert all("ERR" not in m and m["V"] == [0, 1, 10, 11, 12] for m in polled), polled
        assert ask(f"AT^MTXTUNNEL=GETMODBUS,127.0.0.1:{tcp_port};20;2") == ["20,21", "OK"]
        assert ask(f"AT^MTXTUNNEL=GETMODBUS,127.0.0.1:{tcp_port}/1;0;4;1") == ["0,0,0,0", "OK"]

        # ---- SETMODBUS: a register on RTU, a register and a coil on TCP; read back
        assert ask("AT^MTXTUNNEL=SETMODBUS,1;100;4242") == ["OK"]
        assert ask("AT^MTXTUNNEL=GETMODBUS,1;100") == ["4242", "OK"]
        assert ask(f"AT^MTXTUNNEL=SETMODBUS,127.0.0.1:{tcp_port};30;-2") == ["OK"]
        assert ask(f"AT^MTXTUNNEL=SETMODBUS,127.0.0.1:{tcp_port};3;1;5") == ["OK"]
        client = ModbusTcpClient("127.0.0.1", port=tcp_port, timeout=3)
        assert client.connect()
        rr = client.read_holding_registers(30, 1, slave=1)
        assert not rr.isError() and rr.registers == [65534], rr
        rc = client.read_coils(3, 1, slave=1)
        assert not rc.isError() and rc.bits[0] is True, rc
        client.close()
        assert ask(f"AT^MTXTUNNEL=GETMODBUS,127.0.0.1:{tcp_port};2;3;1") == ["0,1,0", "OK"]

        # ---- bad input: each an ERROR with a reason; the file and the daemon unaffected
        with open(daemon.config_path, "rb") as fh:
            config_before = fh.read()
        bad = [
            (dict(payload=""), "ERROR: empty command"),
            (dict(raw=b"A" * (1 << 20)), "ERROR: command too long (1048576 bytes; at most 4096)"),
            (dict(raw=b"\x00\xff\x10garbage\x80\x81"), "ERROR: not a command: binary data"),
            (dict(payload="CSQ"), "ERROR: not an AT command"),
            (dict(payload="AT+FROB"), "ERROR: unknown command 'AT+FROB'"),
            (dict(payload="AT^MTXTUNNEL=FROB"), "ERROR: unknown command AT^MTXTUNNEL=FROB"),
            (dict(payload="AT^MTXTUNNEL=GETMODBUS,1"), "ERROR: GETMODBUS needs <address>;<register>"),
            (dict(payload="AT^MTXTUNNEL=SETMODBUS,1;2"), "ERROR: SETMODBUS needs"),
            (dict(payload="AT^MTXTUNNEL=VERSION,2"), "ERROR: VERSION takes no arguments"),
            (dict(payload="AT^MTXTUNNEL=GETPARAM"), "ERROR: GETPARAM needs a key"),
            (dict(payload="AT^MTXTUNNEL=GETMODBUS,1;70000"), "ERROR: register '70000' is not 0..65535"),
            (dict(payload="AT^MTXTUNNEL=GETMODBUS,1;1500;2"),
             "ERROR: slave 1 on com2: exception 2 illegal data address"),
            (dict(payload="AT^MTXTUNNEL=GETMODBUS,300;0"), "ERROR: address '300': the slave address must be 1..247"),
            (dict(payload="AT^MTXTUNNEL=GETMODBUS,9;0"), "ERROR: slave 9 on com2: timeout"),
            (dict(payload="AT^MTXTUNNEL=GETMODBUS,10.1.2.3:502;0"),
             "ERROR: 10.1.2.3:502 is not the address of a configured Modbus TCP device"),
            (dict(payload="AT^MTXTUNNEL=SETPARAM,mqtt.qos,9"),
             "ERROR: configuration not changed: mqtt.qos=9 would make it invalid (1 error)"),
            (dict(payload=f"AT^MTXTUNNEL=SETPARAM,mqtt.password,{CANARY}"),
             "ERROR: configuration not changed: mqtt.password=*** would make it invalid (1 error)"),
            (dict(payload="AT^MTXTUNNEL=SETPARAM,remote.allow_reboot,true"),
             "ERROR: remote.allow_reboot can only be changed in the configuration file on the gateway"),
            (dict(payload="AT^MTXTUNNEL=REBOOT"),
             "ERROR: not permitted: REBOOT needs remote.allow_reboot: true in the configuration"),
        ]
        for kwargs, want in bad:
            lines = ask(**kwargs)
            assert lines[-1].startswith(want), (kwargs if "raw" not in kwargs else "raw", lines, want)
        invalid_qos = ask("AT^MTXTUNNEL=SETPARAM,mqtt.qos,9")
        assert invalid_qos[0].endswith("mqtt.qos: 9 is out of range (allowed: 0..2)"), invalid_qos
        with open(daemon.config_path, "rb") as fh:
            assert fh.read() == config_before, "a refused SETPARAM changed the file"
        assert ask("AT") == ["OK"]
        data.clear()
        data.wait_for(2, 10)
        assert daemon.running

        # ---- audit lines: one per command, secrets hidden
        log = daemon.log()
        assert CANARY not in log, "the password of a SETPARAM reached the log"
        assert "remote: 'AT^MTXTUNNEL=SETPARAM,mqtt.password,***' on GW-REMOTE/AT -> ERROR: configuration not changed" in log
        assert "remote: '<1048576 bytes>' on GW-REMOTE/AT -> ERROR: command too long" in log
        assert "remote: '\\x00\\xff\\x10garbage\\x80\\x81' on GW-REMOTE/AT -> ERROR: not a command" in log
        assert log.count("remote: '") >= 50, log.count("remote: '")

        # ---- modbridge at: the same path, locally
        res = daemon.run_cli("at", "-c", daemon.config_path, f"AT^MTXTUNNEL=GETMODBUS,127.0.0.1:{tcp_port};20;2")
        assert res.returncode == 0 and res.stdout == "20,21\nOK\n", res
        res = daemon.run_cli("at", "-c", daemon.config_path, "AT^MTXTUNNEL=GETMODBUS,1;0;2")
        assert res.returncode == 1 and "in use by another process" in res.stdout, res
        res = daemon.run_cli("at", "-c", daemon.config_path, "AT^MTXTUNNEL=REBOOT")
        assert res.returncode == 1 and "not permitted" in res.stdout, res
        assert "local: 'AT^MTXTUNNEL=REBOOT' -> ERROR: not permitted" in res.stderr, res

        # ---- a broker restart: the daemon reconnects, subscribes again, says online again
        offset = daemon.log_offset()
        broker.restart()
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 30, since=offset)
        replies.wait_active()
        assert ask("AT+CGSN") == [IMEI, "OK"]

        # ---- availability: retained online; offline after a clean stop
        status_sub = harness.Subscriber(broker, f"{IMEI}/status", qos=1)
        status_sub.start()
        status_sub.wait_match(lambda t, p: p == "online", 10, "a retained 'online'")
        assert daemon.stop() == 0
        status_sub.wait_match(lambda t, p: p == "offline", 10, "'offline' after a clean stop")
        status_sub.stop()
        res = daemon.run_cli("at", "-c", daemon.config_path, "AT^MTXTUNNEL=GETMODBUS,1;0;2")
        assert res.returncode == 0 and res.stdout == "0,1\nOK\n", res

        # The broker publishes the will when the daemon dies without a word.
        daemon.start()
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 20)
        online = harness.Subscriber(broker, f"{IMEI}/status", qos=1)
        online.start()
        online.wait_match(lambda t, p: p == "online", 10, "'online' again")
        online.clear()
        daemon.kill9()
        online.wait_match(lambda t, p: p == "offline", 20, "the LWT 'offline' after kill -9")
        online.stop()

        replies.stop()
        data.stop()
        sim.stop()
        pty.stop()
        broker.stop()
    print("remote commands: OK")


if __name__ == "__main__":
    main()
