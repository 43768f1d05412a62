#!/usr/bin/python3
"""Scenario: another client connects with our client id (issue 9, item 3).

- MQTT 5: a broker that takes our session away sends DISCONNECT with reason 0x8E ("session
  taken over"). mosquitto 2.0.11 closes the socket before that packet leaves, so a small
  fake broker plays the part of brokers that do send it; the log must say that another
  client connected with our client id.
- MQTT 3.1.1 (persistence: true) against the real mosquitto, with mosquitto_sub using our
  client id: the broker only closes the connection, and both clients keep reconnecting
  and throwing each other out. The log must hint at a shared client id once sessions keep
  dying right after being accepted, and say it once, not at every reconnection.
"""
import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CONNACK_V5 = bytes([0x20, 0x03, 0x00, 0x00, 0x00])  # session present 0, success, no props
DISCONNECT_TAKEN_OVER = bytes([0xE0, 0x02, 0x8E, 0x00])  # reason 0x8E, no properties


def read_packet(conn):
    """One MQTT packet (fixed header, remaining length, body), or None at EOF."""
    head = conn.recv(1)
    if not head:
        return None
    length, shift = 0, 0
    while True:
        b = conn.recv(1)
        if not b:
            return None
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return head + body


class TakeoverBroker:
    """Accepts MQTT 5 connections, CONNACKs them, and after a moment sends DISCONNECT 0x8E,
    as a broker does when a second client connects with the same client id."""

    def __init__(self):
        self.port = harness.free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop_event = threading.Event()
        self.taken = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(2)
            try:
                connect = read_packet(conn)
                if connect and connect[0] == 0x10:
                    conn.sendall(CONNACK_V5)
                    self.stop_event.wait(0.3)
                    conn.sendall(DISCONNECT_TAKEN_OVER)
                    self.taken += 1
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.stop_event.set()
        self.thread.join()
        self.sock.close()


def config(wd, name, broker_url, extra=""):
    return f"""\
gateway: {{ imei: "{name}" }}
modbus:
  enabled: false
logger:
  store: {wd.path}/{name}.db
mqtt:
  broker: {broker_url}
{extra}"""


def mqtt5_reason(wd):
    fake = TakeoverBroker()
    try:
        d = harness.Daemon(wd, config(wd, "gw-v5", f"tcp://127.0.0.1:{fake.port}"), name="gw-v5")
        d.start()
        m = d.wait_log(r"mqtt: connection to .* lost: .*", 20)
        line = m.group(0)
        assert ("another client that connected with our client id 'gw-v5' (MQTT 5 reason "
                "0x8E, session taken over)") in line, line
        assert d.stop() == 0
    finally:
        fake.stop()


def mqtt311_shared_id(wd, broker):
    name = "gw-v311"
    d = harness.Daemon(wd, config(wd, name, f"tcp://127.0.0.1:{broker.port_plain}",
                                  "  persistence: true\n"), name=name)
    d.start()
    d.wait_log(r"mqtt: connected to .*\(MQTT 3\.1\.1\)", 20)
    rival = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port_plain),
                              "-V", "mqttv311", "-i", name, "-t", "rival/none"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        m = d.wait_log(r"mqtt: connection to .* lost: .*is another client connecting with "
                       r"our client id 'gw-v311'\?.*", 40)
        # The fight goes on; it was said once.
        harness.wait_until(lambda: d.log().count("lost again") >= 2, 30,
                           lambda: "two more quiet losses\n" + d.log()[-3000:])
    finally:
        rival.terminate()
        rival.wait(10)
    log = d.log()
    hints = [l for l in log.splitlines() if "is another client connecting" in l and
             "warning:" in l]
    assert len(hints) == 1, hints
    lost_warnings = [l for l in log.splitlines() if "warning: mqtt: connection to" in l]
    print(f"  MQTT 3.1.1: {len(lost_warnings)} warnings for "
          f"{len(lost_warnings) + log.count('lost again')} lost sessions; hint: {m.group(0)[:60]}...")
    assert d.stop() == 0


def main():
    with harness.Workdir("session-takeover") as wd:
        mqtt5_reason(wd)
        broker = harness.Broker(wd, harness.make_pki(wd.path))
        broker.start()
        mqtt311_shared_id(wd, broker)
        broker.stop()
    print("session takeover: OK")


if __name__ == "__main__":
    main()
