#!/usr/bin/python3
"""Scenario: TLS and authentication against listeners like test.mosquitto.org's.

- 8883-like (server TLS only): works with the right CA; with the wrong CA the daemon logs a
  clear verification error and never connects; allow_all_certificates connects but warns.
  A broker whose certificate is signed by the right CA but for another host name is
  refused too: host-name verification is on by default. Each refusal names its cause:
  "not signed by the CA in ca_file", "is for host broker.invalid, not localhost", and for
  a certificate that is past its end date "expired on 2020-01-02".
- 8884-like (client certificate required): works with our certificate; without one, a clear
  error and no connection.
- 8885-like (TLS + password): works with the right password; the wrong one is refused with
  a clear error, and the password never appears in the log.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD_LEAK_CANARY = "wrong-Pa55-canary"


def config(wd, tcp_port, name, mqtt):
    return f"""\
gateway: {{ imei: "{name}" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {wd.path}/{name}.db
mqtt:
  qos: 1
{mqtt}"""


def expect_delivery(broker, wd, tcp_port, name, mqtt, warn=None):
    sub = harness.Subscriber(broker, name + "/logger", qos=1)
    sub.start()
    d = harness.Daemon(wd, config(wd, tcp_port, name, mqtt), name=name)
    d.start()
    d.wait_log(r"mqtt: connected to ", 20)
    sub.wait_for(1, 20)
    if warn:
        d.wait_log(warn, 5)
    assert d.stop() == 0
    sub.stop()
    return d


def expect_refusal(broker, wd, tcp_port, name, mqtt, reason_regex):
    sub = harness.Subscriber(broker, name + "/logger", qos=1)
    sub.start()
    d = harness.Daemon(wd, config(wd, tcp_port, name, mqtt), name=name)
    d.start()
    d.wait_log(reason_regex, 20)
    time.sleep(2)  # readings are taken meanwhile; none may get through
    assert "mqtt: connected" not in d.log(), d.log()
    assert sub.messages() == [], sub.messages()
    # The failure is logged once per change of reason, not once per retry.
    assert len([l for l in d.log().splitlines() if "cannot connect" in l]) == 1, d.log()
    assert d.stop() == 0
    queue = d.run_cli("queue", "-c", d.config_path)
    assert "backlog" in queue.stdout and "backlog  0" not in queue.stdout, queue.stdout
    sub.stop()
    return d


def main():
    with harness.Workdir("tls") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        p = pki

        expect_delivery(broker, wd, tcp_port, "tls-ok",
                        f"  broker: ssl://localhost:{broker.port_tls}\n  ca_file: {p['ca']}\n")
        expect_refusal(broker, wd, tcp_port, "tls-wrong-ca",
                       f"  broker: ssl://localhost:{broker.port_tls}\n  ca_file: {p['wrong_ca']}\n",
                       r"cannot connect to .*: TLS: the broker's certificate is not signed by "
                       r"the CA in ca_file '.*wrong-ca\.crt'")
        other = harness.Broker(wd, dict(pki, server_cert=p["other_server_cert"],
                                        server_key=p["other_server_key"]), name="mosquitto-other")
        other.start()
        expect_refusal(other, wd, tcp_port, "tls-wrong-name",
                       f"  broker: ssl://localhost:{other.port_tls}\n  ca_file: {p['ca']}\n",
                       r"cannot connect to .*: TLS: the broker's certificate is for host "
                       r"broker\.invalid, not localhost")
        other.stop()
        expired = harness.Broker(wd, dict(pki, server_cert=p["expired_server_cert"],
                                          server_key=p["expired_server_key"]),
                                 name="mosquitto-expired")
        expired.start()
        expect_refusal(expired, wd, tcp_port, "tls-expired",
                       f"  broker: ssl://localhost:{expired.port_tls}\n  ca_file: {p['ca']}\n",
                       r"cannot connect to .*: TLS: the broker's certificate expired on "
                       r"2020-01-02 00:00 UTC")
        expired.stop()
        d = expect_delivery(broker, wd, tcp_port, "tls-insecure",
                            f"  broker: ssl://localhost:{broker.port_tls}\n  ca_file: {p['wrong_ca']}\n"
                            "  allow_all_certificates: true\n", warn=r"INSECURE")
        check = d.run_cli("check", "-c", d.config_path)
        assert "verification are disabled" in check.stderr, check.stderr

        expect_delivery(broker, wd, tcp_port, "cert-ok",
                        f"  broker: ssl://localhost:{broker.port_tls_cert}\n  ca_file: {p['ca']}\n"
                        f"  cert_file: {p['client_cert']}\n  key_file: {p['client_key']}\n")
        expect_refusal(broker, wd, tcp_port, "cert-missing",
                       f"  broker: ssl://localhost:{broker.port_tls_cert}\n  ca_file: {p['ca']}\n",
                       r"cannot connect to .*client certificate")

        expect_delivery(broker, wd, tcp_port, "pw-ok",
                        f"  broker: ssl://localhost:{broker.port_tls_pw}\n  ca_file: {p['ca']}\n"
                        f"  username: {broker.username}\n  password: {broker.password}\n")
        d = expect_refusal(broker, wd, tcp_port, "pw-wrong",
                           f"  broker: ssl://localhost:{broker.port_tls_pw}\n  ca_file: {p['ca']}\n"
                           f"  username: {broker.username}\n  password: {PASSWORD_LEAK_CANARY}\n",
                           r"cannot connect to .*(not authori[sz]ed|bad user name or password)")
        assert PASSWORD_LEAK_CANARY not in d.log()
        check = d.run_cli("check", "-c", d.config_path, "-v")
        assert PASSWORD_LEAK_CANARY not in check.stdout + check.stderr

        sim.stop()
        broker.stop()
    print("TLS and authentication: OK")


if __name__ == "__main__":
    main()
