#!/usr/bin/python3
"""Scenario: SETPARAM, REBOOT and SIGHUP restart the daemon in place, keeping the store.

A Modbus TCP device is polled every second at QoS 1. Over MQTT:
- SETPARAM,logger.id,P2 is validated, written into the file (comments and layout kept),
  and applied by a restart: readings then carry "P":"P2";
- REBOOT restarts it again; SIGHUP reloads the file too; a SIGHUP while the file is
  invalid leaves the running configuration in place, and the daemon keeps answering;
- the store is the same file throughout: its "sent" count goes on growing, nothing is
  left behind at the end, and every reading that was stored reached the subscriber.
"""
import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

IMEI = "GW-RESTART"


def main():
    with harness.Workdir("restart") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        config = f"""\
# the gateway under test
gateway: {{ imei: "{IMEI}" }}
modbus:
  devices:
    - {{ id: plc, address: "127.0.0.1:{tcp_port}", start: 10, count: 2, period: 1s }}
logger:
  id: P1        # sent as "P"
  send_mode: fifo
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  qos: 1
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
remote:
  allow_setparam: true
  allow_reboot: true
"""
        data = harness.Subscriber(broker, f"{IMEI}/logger", qos=1, client_id="restart-data",
                                  clean=True)
        data.start()
        replies = harness.Subscriber(broker, f"{IMEI}/ATR", qos=1)
        replies.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 20)
        data.wait_for(2, 20)

        def ask(command):
            n = len(replies.messages())
            broker.publish(f"{IMEI}/AT", command)
            return replies.wait_for(n + 1, 20)[n][1]

        def sent():
            q = daemon.run_cli("queue", "-c", daemon.config_path)
            return int(re.search(r"^sent\s+(\d+)", q.stdout, re.M).group(1))

        def restarted(count, timeout=30):
            daemon.wait_log(r"(?s)(restarting with the configuration.*?subscribed to "
                            rf"'{IMEI}/AT'.*?){{{count}}}", timeout)

        # SETPARAM: validated, written in place, applied by a restart.
        assert ask("AT^MTXTUNNEL=SETPARAM,logger.id,P2") == \
            "logger.id=P2\r\nsaved; the gateway restarts to apply it\r\nOK\r\n"
        restarted(1)
        with open(daemon.config_path, encoding="utf-8") as fh:
            text = fh.read()
        assert "  id: P2        # sent as \"P\"\n" in text, text
        assert text.startswith("# the gateway under test\n"), text
        data.wait_match(lambda t, p: json.loads(p)["P"] == "P2", 20, "a reading with P2")
        sent_1 = sent()

        # REBOOT and SIGHUP: the same restart, the same store.
        assert ask("AT^MTXTUNNEL=REBOOT") == "restarting\r\nOK\r\n"
        restarted(2)
        daemon.signal(signal.SIGHUP)
        restarted(3)
        n = len(data.messages())
        data.wait_for(n + 2, 20)
        assert sent() > sent_1, "the store's sent count restarted: not the same store"

        # An invalid file: SIGHUP keeps the running configuration.
        with open(daemon.config_path, encoding="utf-8") as fh:
            good = fh.read()
        daemon.write_config(good.replace("qos: 1", "qos: 5"))
        offset = daemon.log_offset()
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(r"mqtt.qos: 5 is out of range", 10, since=offset)
        daemon.wait_log(r"not restarting, the running configuration stays", 10, since=offset)
        assert ask("AT") == "OK\r\n"
        daemon.write_config(good)
        n = len(data.messages())
        data.wait_for(n + 2, 20)

        assert daemon.stop() == 0
        # Nothing left behind, and every stored reading arrived (duplicates allowed).
        q = daemon.run_cli("queue", "-c", daemon.config_path)
        assert "backlog  0" in q.stdout, q.stdout
        total = sent()

        def stamps():
            return {json.loads(p)["TS"] for _, p in data.messages()}
        # The broker may still be passing the last ones on.
        harness.wait_until(lambda: len(stamps()) >= total, 20,
                           lambda: f"{total} distinct readings, got {len(stamps())}")
        assert len(stamps()) == total, (len(stamps()), total)
        log = daemon.log()
        assert log.count("stopped for a restart") == 3, log
        assert "ERROR" not in "".join(p for _, p in replies.messages())

        data.stop()
        replies.stop()
        sim.stop()
        broker.stop()
    print("remote restart: OK")


if __name__ == "__main__":
    main()
