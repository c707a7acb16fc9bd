#!/usr/bin/env python3
"""qmp.py SOCKET JSON [--wait EVENT] [--timeout S]: one QMP command to a QEMU.

Connects to the QMP unix socket, negotiates capabilities, sends JSON (a full QMP
command such as {"execute": "stop"}), prints the "return" value as JSON, and exits 0;
on an "error" reply prints it and exits 1. With --wait EVENT it then waits for that
QMP event (for device_del: DEVICE_DELETED of the same device id) and prints it too;
exit 4 if it did not come within the timeout. Exit 3: cannot talk to the QEMU.
"""
import json
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    wait, timeout = None, 30.0
    pos = []
    while args:
        a = args.pop(0)
        if a == "--wait":
            wait = args.pop(0)
        elif a == "--timeout":
            timeout = float(args.pop(0))
        else:
            pos.append(a)
    if len(pos) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, text = pos
    cmd = json.loads(text)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        f = s.makefile("rwb")
    except OSError as e:
        print(f"qmp: cannot connect to {path}: {e}", file=sys.stderr)
        return 3
    deadline = time.monotonic() + timeout
    events = []

    def reply():
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            line = f.readline()
            if not line:
                raise OSError("QEMU closed the QMP connection")
            msg = json.loads(line)
            if "event" in msg:
                events.append(msg)
                continue
            return msg

    def send(obj):
        f.write(json.dumps(obj).encode() + b"\n")
        f.flush()

    try:
        f.readline()  # greeting
        send({"execute": "qmp_capabilities"})
        reply()
        send(cmd)
        # Also for quit: QEMU drops the queued commands of a client that hangs up, so
        # wait for its answer or for it to close the connection while exiting.
        r = reply()
    except (OSError, ValueError) as e:
        if cmd.get("execute") == "quit":  # QEMU may close before it answers
            print("{}")
            return 0
        print(f"qmp: {e}", file=sys.stderr)
        return 3
    if "error" in r:
        print(json.dumps(r["error"]))
        return 1
    print(json.dumps(r.get("return", {})))
    if wait is None:
        return 0
    dev = cmd.get("arguments", {}).get("id")

    def matches(ev):
        return ev["event"] == wait and (wait != "DEVICE_DELETED" or dev is None
                                        or ev.get("data", {}).get("device") == dev)

    try:
        while True:
            for ev in events:
                if matches(ev):
                    print(json.dumps(ev))
                    return 0
            events.clear()
            if time.monotonic() >= deadline:
                break
            s.settimeout(max(0.1, deadline - time.monotonic()))
            line = f.readline()
            if not line:
                break
            msg = json.loads(line)
            if "event" in msg:
                events.append(msg)
    except (OSError, ValueError):
        pass
    print(f"qmp: no {wait} event within {timeout:g} s", file=sys.stderr)
    return 4


if __name__ == "__main__":
    sys.exit(main())
