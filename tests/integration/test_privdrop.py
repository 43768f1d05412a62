#!/usr/bin/python3
"""Scenario: started as root, the daemon becomes gateway.user for good, and goes on working.

Root starts `modbridge run` with `gateway.user: nobody`, a serial device (a pty that the user
may open, as dialout would allow), a store in directories that do not exist yet, and MQTT
over TLS with a client certificate. Expected:
- while the client key is root's alone (0600), the daemon refuses to start and says which
  file the user cannot read (libmosquitto reads it at every connection);
- once the user may read it: the real, effective and saved uids and gids of the process and
  of every thread are nobody's, no group of root's is kept, and readings are polled from
  the serial device, stored and published over TLS;
- the store, its -wal/-shm and lock files, and the directories the daemon created for them
  belong to the user;
- a remote SETPARAM (the configuration file is the user's, in a directory it may write) is
  written, and the restart that applies it opens the store again as the user;
- with no gateway.user and no `modbridge` user on the machine, root is refused unless
  allowed; `gateway.example: true` is refused by `check`.
Needs root (exits 77 otherwise).
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

IMEI = "GW-PRIV"
NOBODY = 65534
NO_ALLOW = {"MODBRIDGE_ALLOW_ROOT": ""}  # the harness allows root for the other tests


def ids(pid, task=None):
    """{'Uid': [...], 'Gid': [...], 'Groups': [...]} from /proc."""
    path = f"/proc/{pid}/status" if task is None else f"/proc/{pid}/task/{task}/status"
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in value.split()]
    return out


def main():
    if os.geteuid() != 0:
        print("needs root: skipped")
        sys.exit(77)
    with harness.Workdir("privdrop") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "units": {"1": {"holding": {"identity": 2000}}}},
        ]})
        sim.start()
        # The user may open the serial device (what membership in dialout gives on a real
        # port), and the work dir is its: SETPARAM writes the new file beside the old one.
        os.chown(os.path.realpath(pty.a), NOBODY, -1)
        os.chown(wd.path, NOBODY, NOBODY)
        os.chmod(wd.path, 0o755)
        store = wd.path / "state" / "sub" / "store.db"
        config = f"""\
gateway:
  imei: "{IMEI}"
  user: nobody
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600, timeout_ms: 500 }}
modbus:
  devices:
    - {{ id: plc1, address: 1, start: 0, count: 2, period: 1s }}
logger:
  id: P1
  store: {store}
mqtt:
  broker: ssl://localhost:{broker.port_tls_cert}
  ca_file: {pki["ca"]}
  cert_file: {pki["client_cert"]}
  key_file: {pki["client_key"]}
  qos: 1
  at_topics:
    - {{ topic: "[IMEI]/AT", response: "[IMEI]/ATR" }}
remote:
  allow_setparam: true
"""
        daemon = harness.Daemon(wd, config)
        os.chown(daemon.config_path, NOBODY, NOBODY)
        os.chmod(daemon.config_path, 0o640)
        os.chmod(pki["dir"], 0o755)

        # 1. A key only root may read: refused, with the file named.
        os.chmod(pki["client_key"], 0o600)
        res = daemon.run_cli("run", "-c", daemon.config_path, timeout=30, env=NO_ALLOW)
        print(f"key root's alone: exit {res.returncode}: {res.stderr.strip()[-300:]}")
        assert res.returncode == 2, res
        assert re.search(r"mqtt\.key_file \S+client\.key: user nobody cannot read it "
                         r"\(Permission denied\).*chgrp nogroup FILE", res.stderr), res.stderr

        # 2. Readable by the user's group: it runs, as the user.
        os.chown(pki["client_key"], 0, NOBODY)
        os.chmod(pki["client_key"], 0o640)
        data = harness.Subscriber(broker, f"{IMEI}/logger", qos=1)
        data.start()
        replies = harness.Subscriber(broker, f"{IMEI}/ATR", qos=1)
        replies.start()
        daemon.start(env=NO_ALLOW)
        daemon.wait_log(r"running as user nobody \(uid 65534, gid 65534", 20)
        daemon.wait_log(rf"subscribed to '{IMEI}/AT'", 20)
        status = ids(daemon.pid)
        print(f"/proc/{daemon.pid}/status: {status}")
        assert status["Uid"] == [NOBODY] * 4, status
        assert status["Gid"] == [NOBODY] * 4, status
        assert 0 not in status["Groups"], status
        tasks = os.listdir(f"/proc/{daemon.pid}/task")
        for task in tasks:
            t = ids(daemon.pid, task)
            assert t["Uid"] == [NOBODY] * 4 and t["Gid"] == [NOBODY] * 4, (task, t)
        print(f"{len(tasks)} threads, every one as nobody")

        msgs = data.wait_for(3, 20)
        readings = [json.loads(p) for _, p in msgs]
        assert all(r.get("V") == [0, 1] and r.get("P") == "P1" for r in readings), readings
        print(f"{len(readings)} readings from the serial device, published over TLS")
        for path in (os.path.dirname(os.path.dirname(store)), os.path.dirname(store), store, f"{store}-wal", f"{store}-shm",
                     f"{store}.lock"):
            st = os.stat(path)
            assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY), (path, st.st_uid, st.st_gid)
        print("store, -wal, -shm, lock and the two directories made for them: nobody's")

        # 3. SETPARAM, and the restart that applies it, as the user.
        n = len(replies.messages())
        broker.publish(f"{IMEI}/AT", "AT^MTXTUNNEL=SETPARAM,logger.id,P2")
        reply = replies.wait_for(n + 1, 20)[n][1]
        assert reply == "logger.id=P2\r\nsaved; the gateway restarts to apply it\r\nOK\r\n", \
            reply
        daemon.wait_log(r"restarting with the configuration", 20)
        daemon.wait_log(r"(?s)restarting with the configuration.*running: ", 20)
        data.wait_match(lambda _t, p: json.loads(p).get("P") == "P2", 20, "a reading with P2")
        st = os.stat(daemon.config_path)
        assert (st.st_uid, st.st_mode & 0o777) == (NOBODY, 0o640), (st.st_uid, oct(st.st_mode))
        assert ids(daemon.pid)["Uid"] == [NOBODY] * 4
        print("SETPARAM written and applied; the store opened again as nobody")
        rc = daemon.stop()
        assert rc == 0, f"exit status {rc}"
        errors = [l for l in daemon.log().splitlines() if " error: " in l]
        assert not errors, errors

        # 4. Root with nobody to become: refused, unless allowed.
        try:
            import pwd  # pylint: disable=import-outside-toplevel
            pwd.getpwnam("modbridge")
            print("a 'modbridge' user exists here: the refusal without a user is not checked")
        except KeyError:
            bare = wd.write("bare.yaml", f"logger: {{ store: {wd.path}/bare.db }}\n"
                            "mqtt: { enabled: false }\n")
            res = daemon.run_cli("run", "-c", bare, timeout=30, env=NO_ALLOW)
            print(f"root, no user: exit {res.returncode}: {res.stderr.strip()[-200:]}")
            assert res.returncode == 2 and "has no user to become" in res.stderr, res
            assert not os.path.exists(wd.path / "bare.db"), "the store was created"

        # 5. The package's example file is refused, and says what to do.
        example = wd.write("example.yaml", "gateway:\n  example: true\n")
        res = daemon.run_cli("check", "-c", example)
        print(f"example: exit {res.returncode}: {res.stderr.strip()}")
        assert res.returncode == 1, res
        assert "example.yaml:2: gateway.example: this is the example configuration" in \
            res.stderr, res.stderr
    print("privilege drop: OK")


if __name__ == "__main__":
    main()
