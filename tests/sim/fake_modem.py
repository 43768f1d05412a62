#!/usr/bin/python3
"""A fake cellular modem on one end of a socat pty pair, for modbridge's modem tests.

    /usr/bin/python3 tests/sim/fake_modem.py --device PTY [--imei 357299070082380] [--no-echo]

It behaves like a modem's AT port: it echoes each command (as with ATE1, the default),
answers with "\\r\\n<lines>\\r\\n" and a final result code, and understands:

    AT                 OK
    ATE0 / ATE1        echo off / on, OK
    ATI                Manufacturer / Model / Revision lines, OK
    AT+CGSN            the IMEI, OK
    AT+CSQ             +CSQ: 21,99, OK
    AT+COPS?           +COPS: 0,0,"Test Operator",7, OK
    AT+CPIN?           +CPIN: READY, OK
    AT+CPIN=<pin>      OK
    AT+URC             an unsolicited line first ("+CREG: 1"), then +URC: 1, OK
    AT+SILENT          never answers (for time-out tests)
    AT+CMEE            +CME ERROR: 10
    anything else      ERROR

Every command received is printed on stdout as "CMD <line>" (tests read it to see what
reached the modem). "READY" is printed once the device is open. SIGTERM: clean exit 0.
"""

import argparse
import os
import select
import signal
import sys
import termios
import tty


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--device", required=True)
    ap.add_argument("--imei", default="357299070082380")
    ap.add_argument("--no-echo", action="store_true")
    args = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    fd = os.open(args.device, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
    except termios.error:
        pass
    termios.tcflush(fd, termios.TCIOFLUSH)
    echo = not args.no_echo
    print("READY", flush=True)

    def send(text):
        os.write(fd, text.encode())

    def answer(lines, final="OK"):
        out = "".join(f"\r\n{line}\r\n" for line in lines)
        send(out + f"\r\n{final}\r\n")

    buf = b""
    while not stop:
        try:
            ready, _, _ = select.select([fd], [], [], 0.2)
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            continue
        buf += data
        while b"\r" in buf:
            raw, buf = buf.split(b"\r", 1)
            buf = buf.lstrip(b"\n")
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            print(f"CMD {line}", flush=True)
            if echo:
                send(line + "\r")
            cmd = line.upper()
            if cmd == "AT":
                answer([])
            elif cmd in ("ATE0", "ATE1"):
                echo = cmd == "ATE1"
                answer([])
            elif cmd == "ATI":
                answer(["Manufacturer: Fake", "Model: FM-1", "Revision: 1.0"])
            elif cmd == "AT+CGSN":
                answer([args.imei])
            elif cmd == "AT+CSQ":
                answer(["+CSQ: 21,99"])
            elif cmd == "AT+COPS?":
                answer(['+COPS: 0,0,"Test Operator",7'])
            elif cmd == "AT+CPIN?":
                answer(["+CPIN: READY"])
            elif cmd.startswith("AT+CPIN="):
                answer([])
            elif cmd == "AT+URC":
                send("\r\n+CREG: 1\r\n")
                answer(["+URC: 1"])
            elif cmd == "AT+SILENT":
                pass
            elif cmd == "AT+CMEE":
                answer([], "+CME ERROR: 10")
            else:
                answer([], "ERROR")
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
