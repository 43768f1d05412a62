#!/usr/bin/python3
"""Modbus slave simulator for modbridge's integration tests and demo (pymodbus 3.0).

Run it with Debian's interpreter, the only one that can import python3-pymodbus:

    /usr/bin/python3 tests/sim/modbus_sim.py --config sim.json [--verbose]

See --help (or CONFIG_HELP below) for the configuration format.

pymodbus 3.0.0 (Debian's 3.0.0-7, reporting 3.0.0.rc1) needs some help to be a faithful peer;
everything below works around a measured problem:

* ``pymodbus.server`` and ``pymodbus.client`` import ``serial_asyncio``, which Debian ships as
  python3-serial-asyncio, a package the project does not install.  A stub module is put into
  sys.modules when the real one is missing; the simulator never uses it, it drives serial ports
  with its own small asyncio transport (SerialTransport below) on top of pyserial.
* Datastores shift addresses by one unless ``zero_mode=True`` (we always set it).
* The stock ModbusSocketFramer drops or chokes on a request that arrives split across two
  TCP reads (it then closes the connection); SimSocketFramer waits for the whole MBAP frame.
* The stock RTU framer keeps a partial frame forever; a pty keeps bytes written while nobody
  had it open.  SimRtuFramer drops a partial frame that is older than 0.5 s, and the port's
  input buffer is flushed when it is opened.
* Importing pymodbus calls logging.basicConfig(); logging is configured again after import.
* The stock serial server defaults to ASCII framing and the stock start helpers cancel every
  asyncio task at shutdown; the simulator builds ModbusTcpServer / ModbusSerialServer objects
  itself with explicit framers and runs them side by side in one event loop.
"""

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import signal
import struct
import sys
import time
import types


def _ensure_serial_asyncio_importable():
    """Let pymodbus.server / pymodbus.client import without python3-serial-asyncio."""
    if importlib.util.find_spec("serial_asyncio") is None:
        stub = types.ModuleType("serial_asyncio")

        async def create_serial_connection(*_args, **_kwargs):
            raise NotImplementedError(
                "serial_asyncio is a stub installed by modbus_sim (python3-serial-asyncio is "
                "not installed); use a synchronous client or modbus_sim's SerialTransport")

        stub.create_serial_connection = create_serial_connection
        sys.modules["serial_asyncio"] = stub


_ensure_serial_asyncio_importable()

# pylint: disable=wrong-import-position
import serial  # python3-serial (pyserial)

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server.async_io import (
    ModbusConnectedRequestHandler,
    ModbusSerialServer,
    ModbusSingleRequestHandler,
    ModbusTcpServer,
)

log = logging.getLogger("modbus_sim")

CONFIG_HELP = """\
configuration (JSON):
  {"stats_file": "stats.json",                      optional, see below
   "servers": [
     {"tcp": "127.0.0.1:15020",                     host:port; port 0 picks a free port
      "any_unit": false,                            true: the single unit answers EVERY unit id
      "stats_file": "tcp-stats.json",               optional, counts of this server only
      "units": {"1": UNIT, "7": UNIT}},
     {"rtu": "/path/to/ttyB",                       serial device (e.g. one end of a socat pty pair)
      "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
      "units": {"1": UNIT}}]}

  UNIT = {"coils": TABLE, "discrete": TABLE, "holding": TABLE, "input": TABLE,
          "delay_ms": 0,          answer every request N ms late
          "silent": false,        never answer (requests are still counted)
          "exception_at": {"holding": [[100, 109]]},   reads touching one of these
                                  inclusive [start, end] ranges get an exception response
          "exception_code": 2,    the exception code sent for those (default 2, illegal data
                                  address)
          "count_up": [0, 7]}     holding registers that go up by one (mod 65536) before
                                  every read that includes them: each reading is unique
  TABLE = {"size": 2000,          addresses 0..size-1 exist; beyond -> exception 2
           "identity": N,         registers only: register i holds i & 0xFFFF for i < N
           "identity_bits": N,    bits only: bit i = i % 2 for i < N
           "values": {"10": [10, 11, 12]}}   explicit values from that address on
  Everything not given is 0; a table not given is 2000 zeros.  The size grows to fit identity
  and values unless "size" is given explicitly.  Registers accept -32768..65535 (negative
  values are stored as two's complement).

addressing:
  Wire addresses are 0-based exactly as the client sends them: reading holding 10 count 5 of
  an identity table returns 10,11,12,13,14.  Writes (fc 5, 6, 15, 16) change the tables.

unit ids:
  A request for a unit id that the server does not have is silently ignored (never answered,
  not counted), like a missing device on a bus; the client sees a timeout.  Use
  "any_unit": true (with exactly one entry in "units") to answer every unit id.

request log:
  "request_log" (top level, optional): every request addressed to a unit of ours is appended
  as one JSON line {"t": <unix time, s>, "server": i, "unit": u, "fc": f, "addr": a,
  "count": n} when it arrives (before any delay or silence), for tests that check which
  requests were sent, and when.

statistics:
  "stats_file" (top level) is rewritten atomically after each request: {"UNIT": count, ...}
  summed over all servers; a server's own "stats_file" counts that server only.  Every
  request addressed to a unit of ours counts, including silent, delayed and exception ones.
  Counters start at 0 (configured units are listed with 0 before READY).

stdout protocol:
  one line "LISTEN <server-index> tcp <host>:<port>" or "LISTEN <server-index> rtu <device>"
  per server, then "READY" once every server is listening.  SIGTERM/SIGINT -> clean exit 0.
  Configuration errors -> message on stderr, exit 2.
"""

DEFAULT_SIZE = 2000
STALE_RTU_PARTIAL_S = 0.5
RTU_REOPEN_INTERVAL_S = 0.5

# table name -> (pymodbus store letter, is_bits)
TABLES = {
    "coils": ("c", True),
    "discrete": ("d", True),
    "holding": ("h", False),
    "input": ("i", False),
}
# function codes that read a table (23 = read/write multiple registers)
READ_FCS = {1: "c", 2: "d", 3: "h", 4: "i", 23: "h"}

UNIT_KEYS = set(TABLES) | {"delay_ms", "silent", "exception_at", "exception_code", "count_up"}
SERVER_KEYS = {"tcp", "rtu", "baudrate", "parity", "bytesize", "stopbits", "units",
               "any_unit", "stats_file"}
TOP_KEYS = {"servers", "stats_file", "request_log"}


class ConfigError(Exception):
    """Invalid simulator configuration."""


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #
def _check_keys(obj, allowed, where):
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected an object, got {type(obj).__name__}")
    unknown = set(obj) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _int(value, where, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where}: {value} out of range [{lo}, {hi}]")
    return value


def build_table(name, spec, where):
    """Return the list of values of one table (index == wire address)."""
    is_bits = TABLES[name][1]
    spec = {} if spec is None else spec
    _check_keys(spec, {"size", "identity", "identity_bits", "values"}, where)
    if is_bits and "identity" in spec:
        raise ConfigError(f"{where}: 'identity' is for register tables; use 'identity_bits'")
    if not is_bits and "identity_bits" in spec:
        raise ConfigError(f"{where}: 'identity_bits' is for bit tables; use 'identity'")
    ident = _int(spec.get("identity_bits" if is_bits else "identity", 0), f"{where}.identity",
                 0, 65536)
    values = spec.get("values", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{where}.values: expected an object {{\"addr\": [values]}}")
    explicit = {}
    needed = ident
    for key, vals in values.items():
        try:
            start = int(key, 0)
        except ValueError:
            raise ConfigError(f"{where}.values: address {key!r} is not an integer") from None
        if start < 0 or start > 65535:
            raise ConfigError(f"{where}.values: address {start} out of range")
        if not isinstance(vals, list):
            vals = [vals]
        for off, val in enumerate(vals):
            vwhere = f"{where}.values[{key}][{off}]"
            if is_bits:
                if isinstance(val, bool):
                    val = int(val)
                val = bool(_int(val, vwhere, 0, 1))
            else:
                val = _int(val, vwhere, -32768, 65535) & 0xFFFF
            explicit[start + off] = val
        needed = max(needed, start + len(vals))
    if "size" in spec:
        size = _int(spec["size"], f"{where}.size", 1, 65536)
        if size < needed:
            raise ConfigError(f"{where}: size {size} is smaller than the values given ({needed})")
    else:
        size = max(DEFAULT_SIZE, needed)
    if size > 65536:
        raise ConfigError(f"{where}: table would exceed 65536 entries")
    if is_bits:
        table = [bool(i % 2) if i < ident else False for i in range(size)]
    else:
        table = [i & 0xFFFF if i < ident else 0 for i in range(size)]
    for addr, val in explicit.items():
        table[addr] = val
    return table


class UnitConfig:  # pylint: disable=too-few-public-methods
    """Behaviour of one simulated unit."""

    def __init__(self, unit_key, spec, where):
        _check_keys(spec, UNIT_KEYS, where)
        self.name = unit_key
        self.delay = _int(spec.get("delay_ms", 0), f"{where}.delay_ms", 0, 600000) / 1000.0
        silent = spec.get("silent", False)
        if not isinstance(silent, bool):
            raise ConfigError(f"{where}.silent: expected true/false")
        self.silent = silent
        self.exception_code = _int(spec.get("exception_code", 2), f"{where}.exception_code", 1, 255)
        self.exception_ranges = {}  # store letter -> [(start, end)] inclusive
        exc = spec.get("exception_at", {})
        _check_keys(exc, set(TABLES), f"{where}.exception_at")
        for tname, ranges in exc.items():
            rwhere = f"{where}.exception_at.{tname}"
            if not isinstance(ranges, list):
                raise ConfigError(f"{rwhere}: expected a list of [start, end] pairs")
            out = []
            for rng in ranges:
                if (not isinstance(rng, list) or len(rng) != 2):
                    raise ConfigError(f"{rwhere}: expected [start, end], got {rng!r}")
                start = _int(rng[0], rwhere, 0, 65535)
                end = _int(rng[1], rwhere, start, 65535)
                out.append((start, end))
            self.exception_ranges[TABLES[tname][0]] = out
        count_up = spec.get("count_up", [])
        if not isinstance(count_up, list):
            raise ConfigError(f"{where}.count_up: expected a list of holding addresses")
        self.count_up = [_int(a, f"{where}.count_up", 0, 65535) for a in count_up]
        blocks = {}
        for tname, (letter, _bits) in TABLES.items():
            blocks[letter] = ModbusSequentialDataBlock(
                0, build_table(tname, spec.get(tname), f"{where}.{tname}"))
        self.context = ModbusSlaveContext(
            di=blocks["d"], co=blocks["c"], hr=blocks["h"], ir=blocks["i"], zero_mode=True)

    def bump_counters(self, request):
        """Advance the count_up registers that a holding read includes."""
        if request.function_code not in (3, 23) or not self.count_up:
            return
        if request.function_code == 23:
            start, count = request.read_address, request.read_count
        else:
            start, count = request.address, request.count
        for addr in self.count_up:
            if start <= addr < start + count:
                value = self.context.getValues(3, addr, 1)[0]
                self.context.setValues(3, addr, [(value + 1) & 0xFFFF])

    def exception_for(self, request):
        """Exception code to answer this request with, or None."""
        letter = READ_FCS.get(request.function_code)
        if letter is None or letter not in self.exception_ranges:
            return None
        if request.function_code == 23:
            start, count = request.read_address, request.read_count
        else:
            start, count = getattr(request, "address", None), getattr(request, "count", None)
        if start is None or not count:
            return None
        end = start + count - 1
        for lo, hi in self.exception_ranges[letter]:
            if start <= hi and end >= lo:
                return self.exception_code
        return None


# --------------------------------------------------------------------------- #
# Statistics
# --------------------------------------------------------------------------- #
class RequestLog:  # pylint: disable=too-few-public-methods
    """Appends one JSON line per request (see CONFIG_HELP, "request log")."""

    def __init__(self, path):
        self.path = path
        with open(path, "w", encoding="utf-8"):
            pass

    def add(self, server, unit, request):
        fc = request.function_code
        if fc == 23:
            addr, count = request.read_address, request.read_count
        else:
            addr = getattr(request, "address", None)
            count = getattr(request, "count", None)
        line = json.dumps({"t": time.time(), "server": server, "unit": unit, "fc": fc,
                           "addr": addr, "count": count})
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class Counter:
    """Requests per unit id, optionally mirrored to a JSON file (atomic rewrite)."""

    def __init__(self, path, units=()):
        self.path = path
        self.counts = {int(u): 0 for u in units}

    def add(self, unit):
        self.counts[unit] = self.counts.get(unit, 0) + 1
        self.write()

    def write(self):
        if not self.path:
            return
        data = {str(u): n for u, n in sorted(self.counts.items())}
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- #
# Framers
# --------------------------------------------------------------------------- #
class SimSocketFramer(ModbusSocketFramer):
    """MBAP framer that waits for the whole frame (stock 3.0 one breaks on split reads)."""

    MAX_LEN = 254  # unit id + PDU (253)

    def _validate_unit_id(self, units, single):
        return single or self._header["uid"] in units

    def processIncomingPacket(self, data, callback, unit, **kwargs):
        if not isinstance(unit, (list, tuple)):
            unit = [unit]
        single = kwargs.get("single", False)
        self.addToFrame(data)
        while len(self._buffer) >= self._hsize + 1:  # MBAP header + function code
            tid, pid, length, uid = struct.unpack(">HHHB", self._buffer[0:self._hsize])
            if length < 2 or length > self.MAX_LEN:
                log.warning("garbage MBAP header %s (length %d): dropping %d buffered bytes",
                            self._buffer[:7].hex(), length, len(self._buffer))
                self.resetFrame()
                break
            if len(self._buffer) < 6 + length:
                break  # wait for the rest of the frame
            self._header = {"tid": tid, "pid": pid, "len": length, "uid": uid}
            if not self._validate_unit_id(unit, single):
                log.debug("ignoring request for unknown unit id %d", uid)
                self.advanceFrame()
                continue
            frame = self.getFrame()
            result = self.decoder.decode(frame)
            if result is not None:
                self.populateResult(result)
            self.advanceFrame()
            if result is None:
                log.warning("undecodable request PDU %s ignored", frame.hex())
                continue
            callback(result)


class SimRtuFramer(ModbusRtuFramer):
    """RTU framer: strict unit ids, and drops partial frames that went stale."""

    def __init__(self, decoder, client=None):
        super().__init__(decoder, client)
        self._last_rx = 0.0

    def _validate_unit_id(self, units, single):
        return single or self._header["uid"] in units

    def processIncomingPacket(self, data, callback, unit, **kwargs):
        now = time.monotonic()
        if self._buffer and now - self._last_rx > STALE_RTU_PARTIAL_S:
            log.warning("dropping stale partial RTU frame %s", self._buffer.hex())
            self.resetFrame()
        self._last_rx = now
        super().processIncomingPacket(data, callback, unit, **kwargs)


# --------------------------------------------------------------------------- #
# Request handlers: count, misbehave, then answer through pymodbus
# --------------------------------------------------------------------------- #
def _describe(request):
    fc = request.function_code
    if fc == 23:
        return (f"fc 23 read {request.read_address}+{request.read_count} "
                f"write {request.write_address}+{request.write_count}")
    addr = getattr(request, "address", None)
    count = getattr(request, "count", None)
    if count is None:
        for attr in ("values", "value"):
            val = getattr(request, attr, None)
            if val is not None:
                count = len(val) if isinstance(val, (list, tuple)) else 1
                break
    return f"fc {fc} addr {addr} count {count}"


class SimHandlerMixin:
    """Mixed in before a pymodbus request handler; self.server.sim is our SimServer."""

    def execute(self, request, *addr):
        sim = self.server.sim
        unit = request.unit_id
        ucfg = sim.unit_config(unit)
        sim.record(unit, request)
        if ucfg is None:  # cannot happen: the framer filters unknown units
            return
        if log.isEnabledFor(logging.INFO):
            log.info("server %d unit %d: %s%s", sim.index, unit, _describe(request),
                     " (silent)" if ucfg.silent else
                     f" (delay {ucfg.delay * 1000:.0f} ms)" if ucfg.delay else "")
        if ucfg.silent:
            return
        if ucfg.delay > 0:
            asyncio.get_running_loop().call_later(ucfg.delay, self._sim_answer, request, addr, ucfg)
            return
        self._sim_answer(request, addr, ucfg)

    def _sim_alive(self):
        transport = getattr(self, "transport", None)
        return self.running and transport is not None and not transport.is_closing()

    def _sim_answer(self, request, addr, ucfg):
        if not self._sim_alive():
            return
        code = ucfg.exception_for(request)
        if code is not None:
            log.info("unit %d: exception %d for %s", request.unit_id, code, _describe(request))
            response = request.doException(code)
            response.transaction_id = request.transaction_id
            response.unit_id = request.unit_id
            self.send(response, *addr)
            return
        ucfg.bump_counters(request)
        super().execute(request, *addr)


class SimTcpHandler(SimHandlerMixin, ModbusConnectedRequestHandler):
    """TCP connection handler."""


class SimRtuHandler(SimHandlerMixin, ModbusSingleRequestHandler):
    """Serial line handler."""


# --------------------------------------------------------------------------- #
# Serial transport (replaces pyserial-asyncio)
# --------------------------------------------------------------------------- #
class SerialTransport(asyncio.Transport):
    """Minimal non-blocking asyncio transport over a pyserial port."""

    def __init__(self, loop, ser, protocol):
        super().__init__()
        self._loop = loop
        self.serial = ser  # pymodbus logs transport.serial.port
        self._protocol = protocol
        self._fd = ser.fileno()
        os.set_blocking(self._fd, False)
        self._wbuf = bytearray()
        self._closing = False
        self._writing = False
        loop.add_reader(self._fd, self._on_readable)
        protocol.connection_made(self)

    def get_extra_info(self, name, default=None):
        if name == "serial":
            return self.serial
        return default

    def _on_readable(self):
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc)
            return
        if not data:
            self._close(EOFError("serial port hung up"))
            return
        self._protocol.data_received(data)

    def write(self, data):
        if self._closing:
            return
        self._wbuf += data
        self._flush()

    def _flush(self):
        while self._wbuf:
            try:
                n = os.write(self._fd, self._wbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._close(exc)
                return
            del self._wbuf[:n]
        if self._wbuf and not self._writing:
            self._loop.add_writer(self._fd, self._flush)
            self._writing = True
        elif not self._wbuf and self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def is_closing(self):
        return self._closing

    def close(self):
        self._close(None)

    def abort(self):
        self._close(None)

    def _close(self, exc):
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        try:
            self.serial.close()
        except Exception:  # pylint: disable=broad-except
            pass
        self._loop.call_soon(self._protocol.connection_lost, exc)


class SimSerialServer(ModbusSerialServer):
    """pymodbus serial server driven by SerialTransport, reopening the port if it goes away."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sim = None
        self.stopping = False
        self._reopen_handle = None

    def open_port(self):
        ser = serial.Serial(port=self.device, baudrate=self.baudrate, bytesize=self.bytesize,
                            parity=self.parity, stopbits=self.stopbits, timeout=0)
        ser.reset_input_buffer()  # bytes left in a pty while nobody had it open
        protocol = self.handler(self)
        self.transport = SerialTransport(asyncio.get_running_loop(), ser, protocol)
        self.protocol = protocol

    def on_connection_lost(self):
        if self.transport is not None:
            self.transport.close()
        self.transport = None
        self.protocol = None
        if not self.stopping:
            log.warning("serial port %s lost; reopening", self.device)
            self._schedule_reopen()

    def _schedule_reopen(self):
        loop = asyncio.get_running_loop()
        self._reopen_handle = loop.call_later(RTU_REOPEN_INTERVAL_S, self._reopen)

    def _reopen(self):
        if self.stopping or self.transport is not None:
            return
        try:
            self.open_port()
            log.warning("serial port %s reopened", self.device)
        except (OSError, serial.SerialException) as exc:
            log.debug("reopen %s failed: %s", self.device, exc)
            self._schedule_reopen()

    async def shutdown(self):
        self.stopping = True
        if self._reopen_handle is not None:
            self._reopen_handle.cancel()
        await super().shutdown()


# --------------------------------------------------------------------------- #
# Servers
# --------------------------------------------------------------------------- #
class SimServer:
    """One configured server (TCP listener or serial line) with its units."""

    def __init__(self, index, spec, total_counter, base_dir):
        where = f"servers[{index}]"
        _check_keys(spec, SERVER_KEYS, where)
        self.index = index
        if ("tcp" in spec) == ("rtu" in spec):
            raise ConfigError(f"{where}: give exactly one of 'tcp' or 'rtu'")
        self.kind = "tcp" if "tcp" in spec else "rtu"
        if self.kind == "tcp":
            for key in ("baudrate", "parity", "bytesize", "stopbits"):
                if key in spec:
                    raise ConfigError(f"{where}: '{key}' only applies to 'rtu' servers")
            host, sep, port = str(spec["tcp"]).rpartition(":")
            if not sep or not host:
                raise ConfigError(f"{where}.tcp: expected host:port, got {spec['tcp']!r}")
            try:
                self.port = int(port)
            except ValueError:
                raise ConfigError(f"{where}.tcp: bad port {port!r}") from None
            self.host = host.strip("[]")
        else:
            self.device = str(spec["rtu"])
            self.baudrate = _int(spec.get("baudrate", 9600), f"{where}.baudrate", 1)
            self.parity = str(spec.get("parity", "N")).upper()
            if self.parity not in ("N", "E", "O"):
                raise ConfigError(f"{where}.parity: expected N, E or O")
            self.bytesize = _int(spec.get("bytesize", 8), f"{where}.bytesize", 5, 8)
            self.stopbits = _int(spec.get("stopbits", 1), f"{where}.stopbits", 1, 2)
        self.any_unit = spec.get("any_unit", False)
        if not isinstance(self.any_unit, bool):
            raise ConfigError(f"{where}.any_unit: expected true/false")
        units = spec.get("units")
        if not isinstance(units, dict) or not units:
            raise ConfigError(f"{where}.units: expected a non-empty object {{\"unit id\": {{...}}}}")
        self.units = {}
        for key, uspec in units.items():
            try:
                uid = int(key, 0)
            except ValueError:
                raise ConfigError(f"{where}.units: unit id {key!r} is not an integer") from None
            _int(uid, f"{where}.units[{key}]", 0, 247)
            self.units[uid] = UnitConfig(key, uspec or {}, f"{where}.units[{key}]")
        if self.any_unit:
            if len(self.units) != 1:
                raise ConfigError(f"{where}: any_unit needs exactly one entry in 'units'")
            only = next(iter(self.units.values()))
            self.context = ModbusServerContext(slaves=only.context, single=True)
        else:
            self.context = ModbusServerContext(
                slaves={uid: u.context for uid, u in self.units.items()}, single=False)
        stats = spec.get("stats_file")
        self.counter = Counter(os.path.join(base_dir, stats) if stats else None,
                               () if self.any_unit else self.units)
        self.total = total_counter
        self.request_log = None
        self.server = None
        self.task = None

    def unit_config(self, unit):
        if self.any_unit:
            return next(iter(self.units.values()))
        return self.units.get(unit)

    def record(self, unit, request=None):
        if self.request_log is not None and request is not None:
            self.request_log.add(self.index, unit, request)
        self.counter.add(unit)
        self.total.add(unit)

    async def start(self):
        """Start listening; returns the LISTEN line."""
        if self.kind == "tcp":
            self.server = ModbusTcpServer(
                self.context, framer=SimSocketFramer, address=(self.host, self.port),
                handler=SimTcpHandler, allow_reuse_address=True)
            self.server.sim = self
            self.task = asyncio.create_task(self.server.serve_forever())
            await asyncio.wait({self.server.serving, self.task},
                               return_when=asyncio.FIRST_COMPLETED)
            if not self.server.serving.done():
                self.task.result()  # raises the bind error
                raise RuntimeError(f"TCP server {self.host}:{self.port} stopped at start")
            sockname = self.server.server.sockets[0].getsockname()
            self.port = sockname[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"LISTEN {self.index} tcp {host}:{self.port}"
        self.server = SimSerialServer(
            self.context, framer=SimRtuFramer, port=self.device, baudrate=self.baudrate,
            bytesize=self.bytesize, parity=self.parity, stopbits=self.stopbits,
            handler=SimRtuHandler)
        self.server.sim = self
        self.server.open_port()
        return f"LISTEN {self.index} rtu {self.device}"

    async def stop(self):
        if self.server is None:
            return
        if self.kind == "tcp":
            for handler in list(self.server.active_connections.values()):
                if handler.transport is not None:
                    handler.transport.close()
            await self.server.server_close()
            if self.task is not None:
                self.task.cancel()
                try:
                    await self.task
                except (asyncio.CancelledError, Exception):  # pylint: disable=broad-except
                    pass
        else:
            await self.server.shutdown()
        self.server = None


def load_config(path):
    with open(path, encoding="utf-8") as fh:
        try:
            cfg = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    _check_keys(cfg, TOP_KEYS, "config")
    servers = cfg.get("servers")
    if not isinstance(servers, list) or not servers:
        raise ConfigError("config.servers: expected a non-empty list")
    return cfg


async def run(cfg, base_dir):
    stats = cfg.get("stats_file")
    total = Counter(os.path.join(base_dir, stats) if stats else None)
    servers = [SimServer(i, spec, total, base_dir) for i, spec in enumerate(cfg["servers"])]
    if cfg.get("request_log"):
        request_log = RequestLog(os.path.join(base_dir, str(cfg["request_log"])))
        for srv in servers:
            srv.request_log = request_log
    for srv in servers:
        if not srv.any_unit:
            for uid in srv.units:
                total.counts.setdefault(uid, 0)
    total.write()
    for srv in servers:
        srv.counter.write()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for srv in servers:
            line = await srv.start()
            print(line, flush=True)
        print("READY", flush=True)
        log.info("all %d server(s) ready", len(servers))
        await stop.wait()
        log.info("stopping")
    finally:
        for srv in servers:
            try:
                await srv.stop()
            except Exception as exc:  # pylint: disable=broad-except
                log.warning("stopping server %d: %s", srv.index, exc)


def setup_logging(verbose):
    """pymodbus.constants called logging.basicConfig() at import: take logging back."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s.%(msecs)03d modbus_sim %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # pymodbus logs every client disconnect at ERROR level: keep it quiet unless --verbose
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Modbus slave simulator (pymodbus 3.0) for modbridge's tests: TCP and "
                    "RTU servers, several unit ids each, with delay/silence/exception faults. "
                    "Requests for unit ids that are not configured are silently ignored "
                    "(never answered), unless the server has \"any_unit\": true.",
        epilog=CONFIG_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="JSON configuration file")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request (and pymodbus debug output) to stderr")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        cfg = load_config(args.config)
        base_dir = os.getcwd()
        asyncio.run(run(cfg, base_dir))
    except ConfigError as exc:
        print(f"modbus_sim: config error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (OSError, serial.SerialException) as exc:
        print(f"modbus_sim: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
