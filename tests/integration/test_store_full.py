#!/usr/bin/python3
"""Scenario: a bounded store drops its oldest readings, counts them and says so once.

logger.max_messages is 20; the gateway polls every 250 ms while no broker listens, so the
store fills and keeps only the 20 newest readings. `modbridge queue` shows the backlog of
20 and the dropped count; the log says "is full" once for the whole episode. After a
restart with the broker up, exactly the 20 newest readings arrive.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    with harness.Workdir("full") as wd:
        pki = harness.make_pki(wd.path)
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        template = f"""\
gateway: {{ imei: "FULL" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 250ms }}
logger:
  store: {wd.path}/store.db
  time_format: unix
  max_messages: 20
  full_policy: drop_oldest
mqtt:
  broker: tcp://127.0.0.1:PORT
  qos: 1
"""
        daemon = harness.Daemon(wd, template.replace("PORT", str(harness.free_port())))
        daemon.start()
        daemon.wait_log(r"store .* is full", 20)
        time.sleep(3)
        assert daemon.stop() == 0
        log = daemon.log()
        assert len(re.findall(r"is full", log)) == 1, "the full store must be logged once per episode"
        out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        assert re.search(r"backlog\s+20\n", out), out
        dropped = int(re.search(r"dropped\s+(\d+)", out).group(1))
        assert dropped >= 10, out
        assert "limits   20 readings" in out, out

        broker = harness.Broker(wd, pki)
        broker.start()
        sub = harness.Subscriber(broker, "FULL/logger", qos=1)
        sub.start()
        daemon.write_config(template.replace("PORT", str(broker.port_plain))
                            .replace("period: 250ms", "period: 250ms, logger: false"))
        t_restart = time.time()
        daemon.start()
        msgs = sub.wait_for(20, 20)
        time.sleep(1)
        assert daemon.stop() == 0
        stamps = [int(json.loads(p)["TS"]) for _, p in sub.messages()]
        assert len(stamps) == 20, stamps
        # All from before the restart, and the newest ones: the last came right before it.
        assert max(stamps) >= t_restart - 3 and max(stamps) <= t_restart, (stamps, t_restart)
        assert stamps == sorted(stamps)
        print("store full: 20 kept, %d dropped and counted" % dropped)
        sub.stop()
        broker.stop()
        sim.stop()
    print("store full: OK")


if __name__ == "__main__":
    main()
