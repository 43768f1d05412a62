#!/usr/bin/python3
"""Scenario: the cellular modem's AT port, with a fake modem on a socat pty.

- No gateway.imei: the identity is read from the modem at start-up (AT+CGSN), so the
  AT topic is <modem IMEI>/AT, and AT+CGSN answers with it;
- AT+CSQ is answered by the modem (a read-only query: no permission needed);
- other commands go to the modem only with remote.allow_modem_passthrough; refused
  otherwise, and a PIN never reaches the log;
- with pass-through on: the modem's lines come back with OK; its errors (+CME ERROR) and
  its silence (time-out) come back as ERROR with the reason, and the next command works;
- `modbridge at` is refused the modem while the daemon holds it, and works after.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MODEM_IMEI = "357299070082380"
FAKE_MODEM = os.path.join(harness.REPO, "tests", "sim", "fake_modem.py")


class FakeModem:
    """tests/sim/fake_modem.py on one end of a pty pair; stopped by PID."""

    def __init__(self, wd, device):
        self.log_path = wd.path / "fake-modem.log"
        self.log = open(self.log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [harness.SYSTEM_PYTHON, FAKE_MODEM, "--device", device, "--imei", MODEM_IMEI],
            stdout=self.log, stderr=subprocess.STDOUT)
        harness.wait_until(lambda: "READY" in self.text(), 10, "the fake modem")

    def text(self):
        with open(self.log_path, encoding="utf-8") as fh:
            return fh.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


def config(wd, broker, pty, passthrough):
    return f"""\
modbus:
  enabled: false
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
remote:
  allow_modem_passthrough: {"true" if passthrough else "false"}
modem:
  device: {pty.a}
  timeout_ms: 1000
"""


def main():
    with harness.Workdir("modem") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        modem = FakeModem(wd, pty.b)
        try:
            replies = harness.Subscriber(broker, f"{MODEM_IMEI}/ATR", qos=1)
            replies.start()

            def ask(command):
                n = len(replies.messages())
                broker.publish(f"{MODEM_IMEI}/AT", command)
                return replies.wait_for(n + 1, 20)[n][1]

            # Pass-through off.
            daemon = harness.Daemon(wd, config(wd, broker, pty, False))
            daemon.start()
            daemon.wait_log(rf"identity {MODEM_IMEI} read from the modem", 15)
            daemon.wait_log(rf"subscribed to '{MODEM_IMEI}/AT'", 20)
            assert ask("AT+CGSN") == f"{MODEM_IMEI}\r\nOK\r\n"
            assert ask("AT+CSQ") == "+CSQ: 21,99\r\nOK\r\n"
            assert ask("ATI") == "modbridge 0.1.0\r\nOK\r\n"  # ours, not the modem's
            refused = ("ERROR: not permitted: passing commands to the modem needs "
                       "remote.allow_modem_passthrough: true in the configuration\r\n")
            assert ask("AT+COPS?") == refused
            assert ask('AT+CPIN="4321"') == refused
            assert "AT+COPS?" not in modem.text(), "a refused command reached the modem"
            res = daemon.run_cli("at", "-c", daemon.config_path, "AT+CSQ")
            assert res.returncode == 1 and "in use by another process" in res.stdout, res
            assert daemon.stop() == 0

            # Pass-through on.
            daemon.write_config(config(wd, broker, pty, True))
            daemon.start()
            daemon.wait_log(rf"subscribed to '{MODEM_IMEI}/AT'", 20)
            assert ask("AT+COPS?") == '+COPS: 0,0,"Test Operator",7\r\nOK\r\n'
            assert ask("AT+CPIN=4321") == "OK\r\n"
            assert ask("AT+URC") == "+CREG: 1\r\n+URC: 1\r\nOK\r\n"
            assert ask("AT+CMEE") == "ERROR: the modem answered +CME ERROR: 10\r\n"
            assert ask("AT+FROB") == "ERROR: the modem answered ERROR\r\n"
            t0 = time.time()
            assert ask("AT+SILENT") == \
                f"ERROR: the modem {pty.a} did not answer within 1000 ms\r\n"
            assert time.time() - t0 < 10
            assert ask("AT+CSQ") == "+CSQ: 21,99\r\nOK\r\n"  # the port recovered
            assert daemon.stop() == 0
            log = daemon.log()
            assert "4321" not in log, "a PIN reached the log"
            assert "remote: 'AT+CPIN=***' on" in log, log
            assert "remote: 'AT+COPS?' on" in log

            # Locally, once the daemon is gone: the IMEI comes from the modem as well.
            res = daemon.run_cli("at", "-c", daemon.config_path, "AT+CGSN")
            assert res.returncode == 0 and res.stdout == f"{MODEM_IMEI}\nOK\n", res
            res = daemon.run_cli("at", "-c", daemon.config_path, "AT+COPS?")
            assert res.returncode == 0 and res.stdout == '+COPS: 0,0,"Test Operator",7\nOK\n', res
            replies.stop()
        finally:
            modem.stop()
        pty.stop()
        broker.stop()
    print("modem: OK")


if __name__ == "__main__":
    main()
