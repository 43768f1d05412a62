#!/usr/bin/python3
"""Scenario: every data type in every byte order, round trip against a real peer.

The peer (pymodbus over Modbus TCP) serves registers that this test encodes itself with
Python's struct module (big-endian bytes, then permuted into ABCD, CDAB, BADC or DCBA as
docs/modbus.md describes). `modbridge read` must decode each device's registers back into
the same values: integers exactly (uint64 above 2^63 included), floats to the same bits,
NaN and infinities as null. A device with several typed blocks must keep NX in registers
and give PX as positions in V. A block that is not a whole number of values is a
configuration error naming the key.
"""
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# type -> (struct format, registers per value, values)
TYPES = {
    "word": (">H", 1, [0, 1, 65535, 4660]),
    "int16": (">h", 1, [-32768, -1, 0, 32767]),
    "uint32": (">I", 2, [0, 1, 4294967295, 305419896]),
    "int32": (">i", 2, [-2147483648, -1, 2147483647, -123456789]),
    "float32": (">f", 2, [1.5, -0.1, 3.4028234663852886e38, 1e-45, float("nan"), float("-inf")]),
    "uint64": (">Q", 4, [0, 18446744073709551615, 72623859790382856]),
    "int64": (">q", 4, [-9223372036854775808, -1, 9223372036854775807]),
    "float64": (">d", 4, [-1.2345678, 1e-300, 2.5, float("nan")]),
}
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def registers(fmt, value, order):
    """The registers that carry value in the given order, lowest address first."""
    be = struct.pack(fmt, value)
    words = [be[i:i + 2] for i in range(0, len(be), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def same(fmt, expected, got):
    if isinstance(expected, float) and not math.isfinite(expected):
        return got is None  # JSON has no NaN or infinity
    if fmt in (">f", ">d"):
        return isinstance(got, float) and struct.pack(fmt, got) == struct.pack(fmt, expected)
    return got == expected and isinstance(got, int)


def main():
    with harness.Workdir("types") as wd:
        values = {}
        devices = []
        addr = 0
        for tname, (fmt, width, vals) in TYPES.items():
            for order in ORDERS:
                regs = [r for v in vals for r in registers(fmt, v, order)]
                values[str(addr)] = regs
                devices.append((f"{tname}-{order}", tname, order, addr, len(regs)))
                addr += len(regs) + 3  # a gap, so no device reads another's registers
        # Several typed blocks: two float32 CDAB blocks (2 and 1 values).
        f32 = [r for v in (1.5, -2.0, 0.25) for r in registers(">f", v, "CDAB")]
        values["1000"] = f32[:4]
        values["1010"] = f32[4:]

        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:0", "units": {"1": {"holding": {"values": values}}}}]})
        sim.start()
        lines = [f'    - {{ id: "{i}", address: "127.0.0.1:{sim.port}", start: {a}, count: {n}, '
                 f'type: {t}, byte_order: {o} }}' for i, t, o, a, n in devices]
        lines.append(f'    - {{ id: multi, address: "127.0.0.1:{sim.port}", start: "1000;1010", '
                     f'count: "4;2", type: float32, byte_order: CDAB }}')
        config = ("gateway: { imei: \"TYPES\" }\nmodbus:\n  devices:\n" + "\n".join(lines) +
                  "\nmqtt:\n  enabled: false\nlogger:\n  store: %s/store.db\n" % wd.path)
        daemon = harness.Daemon(wd, config)

        for dev_id, tname, order, start, count in devices:
            fmt, _width, vals = TYPES[tname]
            out = daemon.run_cli("read", "-c", daemon.config_path, dev_id)
            assert out.returncode == 0, (dev_id, out.stdout, out.stderr)
            msg = json.loads(out.stdout)
            assert msg["ST"] == str(start) and msg["N"] == str(count), msg  # N counts registers
            assert len(msg["V"]) == len(vals), (dev_id, msg["V"])
            for want, got in zip(vals, msg["V"]):
                assert same(fmt, want, got), "%s: %r read as %r (%s)" % (dev_id, want, got,
                                                                         out.stdout.strip())
            if tname.startswith("float"):
                assert '"V":[' in out.stdout and "null" in out.stdout, out.stdout

        out = daemon.run_cli("read", "-c", daemon.config_path, "multi")
        assert out.returncode == 0, out.stderr
        assert '"STX":[1000,1010],"NX":[4,2],"PX":[0,2],"V":[1.5,-2.0,0.25]' in out.stdout, out.stdout

        # A block that is not a whole number of values is refused, naming the key.
        bad = config.replace("start: 0, count: 4, type: word", "start: 0, count: 3, type: uint32")
        daemon.write_config(bad)
        out = daemon.run_cli("check", "-c", daemon.config_path)
        assert out.returncode == 1, out.stdout
        assert "modbus.devices[0].count: entry 1 (3) is not a multiple of 2 registers, the size of one uint32 value" \
            in out.stderr, out.stderr
        sim.stop()
    print("types: OK (%d devices: 8 types x 4 orders, plus several blocks)" % (len(devices) + 1))


if __name__ == "__main__":
    main()
