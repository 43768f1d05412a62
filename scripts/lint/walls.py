#!/usr/bin/env python3
"""The walls between modbridge's modules, checked on every #include in src/.

STYLE rule 2: each third-party library lives behind one module, so upgrading or replacing
it touches one place. And a few module boundaries that the architecture depends on:
remote commands reach a bus only through the poller's queue, the poller does not see the
JSON encoder, the store does not see the register-block syntax.

A rule names a header (a library's, or one of ours) and the files that may include it;
for our own headers "include" means directly or through other headers (the closure), so
a wall cannot be crossed by a detour. Run from the repository root; exit status 1 and one
line per breach (file: includes X, which only ... may) when a wall is breached.
"""
import fnmatch
import os
import re
import sys

SRC = "src"

# Third-party headers -> the module files allowed to include them (directly).
LIBRARIES = [
    ("modbus.h", "libmodbus", ["modbus_io.c"]),
    ("mosquitto.h", "libmosquitto", ["mqtt.c"]),
    ("mqtt_protocol.h", "libmosquitto", ["mqtt.c"]),
    ("sqlite3.h", "SQLite", ["store.c", "store_inspect.c", "store_internal.h"]),
    ("jansson.h", "jansson", ["message.c"]),
    ("yaml.h", "libyaml", ["yamldoc.c"]),
    ("openssl/*", "OpenSSL", ["certinfo.c"]),
    ("curl/*", "libcurl", ["curlx.c"]),
    ("microhttpd.h", "libmicrohttpd", ["httpd.c"]),
    ("lua.h", "Lua", ["script*.c"]),
    ("lauxlib.h", "Lua", ["script*.c"]),
    ("lualib.h", "Lua", ["script*.c"]),
    ("systemd/*", "libsystemd", ["notify.c"]),
    ("crypt.h", "libcrypt", ["passwd.c"]),
]

# Our headers -> the files that may reach them (directly or through other headers).
MODULES = [
    # Wall 1: remote commands reach a bus only through poller_execute.
    ("modbus_io.h", ["modbus_io.c", "poller.c", "poller_internal.h", "schedule.c",
                     "tcpbus.c", "devread.c", "devread.h", "busplan.c"]),
    # The Modbus TCP event loop is the poller's too (remote commands go through it).
    ("tcploop.h", ["tcploop.c", "tcpconn.c", "tcploop_internal.h", "poller.c",
                   "poller_internal.h", "schedule.c", "tcpbus.c", "devread.c", "devhealth.c"]),
    # The poller hands readings over; it does not encode them.
    ("message.h", ["message.c", "daemon.c", "main.c", "script*.c", "web*.c"]),
    # The private halves of split modules stay inside them.
    ("poller_internal.h", ["poller.c", "schedule.c", "tcpbus.c", "devread.c", "devhealth.c"]),
    ("tcploop_internal.h", ["tcploop.c", "tcpconn.c"]),
    ("command_internal.h", ["command*.c"]),
    ("config_internal.h", ["config*.c"]),
    ("confedit_internal.h", ["confedit*.c"]),
    ("store_internal.h", ["store.c", "store_inspect.c"]),
    ("script_internal.h", ["script*.c"]),
]

# Headers that must not depend on another one at all (closure).
FORBIDDEN = [
    ("store.h", "blocks.h", "the store keeps JSON; it does not know register blocks"),
    ("store.h", "config.h", "the store takes its limits, not the whole configuration"),
    ("reading.h", "message.h", "a reading does not know how it is encoded"),
]

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    return [(kind, name) for kind, name in INCLUDE.findall(text)]


def allowed(name, patterns):
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def main():
    files = sorted(f for f in os.listdir(SRC) if f.endswith((".c", ".h")))
    direct = {f: includes(os.path.join(SRC, f)) for f in files}
    local = {f: [n for k, n in direct[f] if k == '"' and n in direct] for f in files}

    def closure(f, seen=None):
        seen = set() if seen is None else seen
        for n in local[f]:
            if n not in seen:
                seen.add(n)
                closure(n, seen)
        return seen

    breaches = []
    for f in files:
        for kind, name in direct[f]:
            if kind != "<":
                continue
            for header, lib, owners in LIBRARIES:
                if fnmatch.fnmatch(name, header) and not allowed(f, owners):
                    breaches.append(f"src/{f}: includes <{name}>: {lib} lives behind "
                                    f"{', '.join(owners)} only")
        reach = closure(f)
        for header, owners in MODULES:
            if header in reach and f != header and not allowed(f, owners):
                via = "" if header in local[f] else " (through other headers)"
                breaches.append(f"src/{f}: includes {header}{via}, which only "
                                f"{', '.join(owners)} may")
    for header, banned, why in FORBIDDEN:
        if header in direct and banned in closure(header):
            breaches.append(f"src/{header}: depends on {banned}: {why}")
    for line in breaches:
        print(line)
    print(f"walls: {len(files)} files, {len(breaches)} breach(es)")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
