#!/usr/bin/python3
"""Scenario: remote commands over MQTT 3.1.1.

1. A broker that only speaks MQTT 3.1.1 (a minimal one written here: it answers an MQTT 5
   CONNECT with the 3.1.1 "unacceptable protocol version" CONNACK, as such brokers do):
   the daemon says so once, connects again with 3.1.1, subscribes, and answers a command.
2. The real mosquitto with `persistence: true`: the link uses MQTT 3.1.1 (a persistent
   MQTT 5 session needs a session expiry that libmosquitto 2.0 cannot send on an
   asynchronous connect); commands work, and the reply to a request that names an MQTT 5
   response topic goes to the paired topic, as documented.
"""
import os
import socket
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

IMEI = "GW-311"


def read_packet(sock):
    """(first byte, body) of one MQTT packet, or None at end of stream."""
    head = sock.recv(1)
    if not head:
        return None
    length, shift = 0, 0
    while True:
        b = sock.recv(1)
        if not b:
            return None
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return head[0], body


def mqtt_string(data, pos):
    n = struct.unpack(">H", data[pos:pos + 2])[0]
    return data[pos + 2:pos + 2 + n].decode(), pos + 2 + n


def packet(first, body):
    return bytes([first, len(body)]) + body  # bodies here are < 128 bytes


class Broker311:
    """Accepts MQTT 3.1.1 clients only; sends one command after the subscription."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.levels = []       # protocol level of every CONNECT
        self.replies = []      # (topic, payload) published by the client
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        with conn:
            conn.settimeout(30)
            try:
                while True:
                    p = read_packet(conn)
                    if p is None:
                        return
                    kind, body = p[0] >> 4, p[1]
                    if kind == 1:  # CONNECT
                        _, pos = mqtt_string(body, 0)
                        self.levels.append(body[pos])
                        if body[pos] != 4:
                            conn.sendall(bytes([0x20, 2, 0, 1]))  # unacceptable protocol version
                            return
                        conn.sendall(bytes([0x20, 2, 0, 0]))
                    elif kind == 8:  # SUBSCRIBE
                        filters = []
                        pos = 2
                        while pos < len(body):
                            topic, pos = mqtt_string(body, pos)
                            filters.append(topic)
                            pos += 1
                        conn.sendall(packet(0x90, body[:2] + bytes([1] * len(filters))))
                        if f"{IMEI}/AT" in filters:
                            topic = f"{IMEI}/AT".encode()
                            conn.sendall(packet(0x30, struct.pack(">H", len(topic)) + topic + b"AT+CGSN"))
                    elif kind == 3:  # PUBLISH from the client
                        qos = (p[0] >> 1) & 3
                        topic, pos = mqtt_string(body, 0)
                        if qos:
                            conn.sendall(packet(0x40, body[pos:pos + 2]))
                            pos += 2
                        self.replies.append((topic, body[pos:].decode("utf-8", "replace")))
                    elif kind == 12:  # PINGREQ
                        conn.sendall(bytes([0xD0, 0]))
                    elif kind == 14:  # DISCONNECT
                        return
            except (OSError, struct.error, IndexError):
                return

    def close(self):
        self.done.set()
        self.sock.close()


def main():
    with harness.Workdir("mqtt311") as wd:
        # 1. A broker without MQTT 5.
        old = Broker311()
        daemon = harness.Daemon(wd, f"""\
gateway: {{ imei: "{IMEI}" }}
modbus: {{ enabled: false }}
logger: {{ store: {wd.path}/store.db }}
mqtt:
  broker: tcp://127.0.0.1:{old.port}
  status_topic: ""
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
""", name="old-broker")
        daemon.start()
        daemon.wait_log(r"does not support MQTT 5; connecting with MQTT 3\.1\.1", 20)
        daemon.wait_log(r"connected to .* \(MQTT 3\.1\.1\)", 20)
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 10)
        harness.wait_until(lambda: (f"{IMEI}/ATR", f"{IMEI}\r\nOK\r\n") in old.replies, 20,
                           lambda: f"the reply to AT+CGSN, got {old.replies}")
        assert old.levels[:2] == [5, 4], old.levels
        assert daemon.stop() == 0
        old.close()

        # 2. mosquitto, persistent session: MQTT 3.1.1 by choice.
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        replies = harness.Subscriber(broker, [f"{IMEI}/ATR", "me/reply"], qos=1)
        replies.start()
        daemon = harness.Daemon(wd, f"""\
gateway: {{ imei: "{IMEI}" }}
modbus: {{ enabled: false }}
logger: {{ store: {wd.path}/store.db }}
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  persistence: true
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
""", name="persistent")
        daemon.start()
        daemon.wait_log(r"connected to .* \(MQTT 3\.1\.1\)", 20)
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 10)
        subprocess.run(["mosquitto_pub"] + broker.client_args() +
                       ["-V", "mqttv5", "-t", f"{IMEI}/AT", "-q", "1", "-m", "AT",
                        "-D", "publish", "response-topic", "me/reply"], check=True, timeout=30)
        assert replies.wait_for(1, 20) == [(f"{IMEI}/ATR", "OK\r\n")]
        assert daemon.stop() == 0
        replies.stop()
        broker.stop()
    print("MQTT 3.1.1: OK")


if __name__ == "__main__":
    main()
