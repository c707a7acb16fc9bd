#!/usr/bin/env python3
"""Fabric membership in the multi-guest lab: run at once in every guest of
tests/lab/run-fabric.sh (as root) by tests/fabric/lab-check.sh.

Each guest loads xpmem.ko, starts xpmemd with the lab's fabric.conf, and checks:
  up               every peer is up through a window proven by its beacon
  segid-names-node a segment made now carries this node in bits 62..52
  ping             kernel-to-kernel round trips to every peer, payload verified
  counters         requests sent and served agree on both sides
  rejected         (node 2) a forged, a replayed and a stale message from the
                   injector are refused and counted; the link still works
  restart          (node 2) xpmemd stops: peers unknown here, pings fail with
                   ENOTCONN; it restarts and every peer sees the new epoch
  fenced           (node 1) the fabric manager freezes the last node; its peers
                   find it suspect, fence it (xpmemd's fence-command: QMP quit)
                   and declare it dead; pings to it fail
Lab node i is fabric node i + 1. Nodes meet at barriers over TCP on node 1's
link-local address. Prints "ok: NAME" / "FAILED: NAME: why" and a last line
"N passed, N failed"; exit 1 on any failure.
"""
import argparse
import ctypes
import json
import mmap
import os
import signal
import socket
import subprocess
import sys
import time

BARRIER_PORT = 7601
DAEMON_PORT = 7400
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

passed = failed = 0


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def check(name, fn):
    global passed, failed
    try:
        fn()
    except Failure as e:
        failed += 1
        log(f"FAILED: {name}: {e}")
        return False
    passed += 1
    log(f"ok: {name}")
    return True


def expect(cond, why):
    if not cond:
        raise Failure(why)


def wait_for(what, pred, timeout):
    end = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > end:
            raise Failure(f"{what}: not within {timeout} s")
        time.sleep(0.2)


class Lab:
    def __init__(self, args):
        self.args = args
        self.me = int(os.environ["XPMEM_NODE"])
        self.count = int(os.environ["XPMEM_NODES"])
        self.fid = self.me + 1
        self.peers = [n + 1 for n in range(self.count) if n != self.me]
        self.xpmemctl = os.path.join(args.build, "tools", "xpmemctl")
        self.conf = "/tmp/xpmemd.conf"
        self.daemon = None
        self.server = None
        if self.me == 0:
            self.server = socket.create_server(("0.0.0.0", BARRIER_PORT), backlog=16)

    # ---- barriers: every node reports NAME to node 1, which answers all at once
    def barrier(self, name, nodes=None, timeout=300):
        if self.me == 0:
            self.server.settimeout(timeout)
            conns = []
            while len(conns) < (nodes or self.count) - 1:
                c, _ = self.server.accept()
                got = c.makefile().readline().strip()
                if got != name:
                    raise Failure(f"barrier {name}: a node is at barrier {got!r}")
                conns.append(c)
            for c in conns:
                c.sendall(b"go\n")
                c.close()
            return
        end = time.monotonic() + timeout
        while True:
            try:
                c = socket.create_connection(("169.254.0.1", BARRIER_PORT), timeout=5)
                break
            except OSError:
                if time.monotonic() > end:
                    raise Failure(f"barrier {name}: node 1 unreachable")
                time.sleep(0.2)
        c.settimeout(timeout)
        c.sendall(f"{name}\n".encode())
        got = c.makefile().readline().strip()
        c.close()
        expect(got == "go", f"barrier {name}: answer {got!r}")

    # ---- tools
    def ctl(self, *args, want_rc=0):
        p = subprocess.run([self.xpmemctl, *map(str, args)], capture_output=True, text=True,
                           timeout=60)
        if want_rc is not None and p.returncode != want_rc:
            raise Failure(f"xpmemctl {' '.join(map(str, args))}: exit {p.returncode}, "
                          f"stderr {p.stderr.strip()!r}")
        return p

    def nodes(self):
        return {n["node"]: n for n in json.loads(self.ctl("nodes", "--json").stdout)["nodes"]}

    def start_daemon(self):
        log_path = f"/xpmem-out/xpmemd-{int(time.time() * 1000)}.log"
        self.daemon = subprocess.Popen(
            [os.path.join(self.args.build, "tools", self.args.daemon), "--config", self.conf,
             "--foreground", "--verbose"],
            stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
        return log_path

    def stop_daemon(self):
        self.daemon.send_signal(signal.SIGTERM)
        rc = self.daemon.wait(timeout=30)
        expect(rc == 0, f"xpmemd exited with {rc} on SIGTERM")
        self.daemon = None

    def write_conf(self):
        p = subprocess.run([os.path.join(ROOT, "tools", "xpmemd", "fabric-conf-to-xpmemd.sh"),
                            os.environ["XPMEM_FABRIC_CONF"], self.args.key, str(DAEMON_PORT)],
                           capture_output=True, text=True, check=True)
        # TCG guests stall for a second now and then: generous timeouts, fast heartbeats.
        extra = ("heartbeat-ms 200\nsuspect-ms 2000\ndead-ms 6000\n"
                 f"fence-command {os.path.join(HERE, 'fence-lab-node.sh')}\n")
        with open(self.conf, "w") as f:
            f.write(p.stdout + extra)

    def peers_up(self, epochs=None):
        n = self.nodes()
        for p in self.peers:
            r = n.get(p)
            if not r or r["state"] != "up" or not r["window"]:
                return None
            if epochs and r["epoch"] <= epochs.get(p, 0):
                return None
        return n


def make_segment(build):
    """The segid of a segment made (and removed) by a child process: the library
    keeps /dev/xpmem open, which would keep the module from unloading."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.write(w, str(make_segment_here(build)).encode())
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    expect(got, "the child made no segment")
    return int(got)


def make_segment_here(build):
    lib = ctypes.CDLL(os.path.join(build, "lib", "libxpmem.so.0"))
    lib.xpmem_make.restype = ctypes.c_int64
    lib.xpmem_make.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
    lib.xpmem_remove.argtypes = [ctypes.c_int64]
    buf = mmap.mmap(-1, 1 << 16)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    segid = lib.xpmem_make(addr, 1 << 16, 1, ctypes.c_void_p(0o600))  # XPMEM_PERMIT_MODE
    expect(segid > 0, f"xpmem_make: {segid}")
    lib.xpmem_remove(segid)
    return segid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--ko", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--daemon", default="xpmemd", help="xpmemd or xpmemd-asan")
    args = ap.parse_args()
    lab = Lab(args)
    subprocess.run(["insmod", args.ko], check=True)
    lab.write_conf()

    def outside():
        expect(lab.nodes() == {}, "nodes listed before any xpmemd joined")
    check("no-fabric-before-join", outside)

    lab.start_daemon()
    if not check("up", lambda: wait_for("every peer up with a proven window", lab.peers_up, 120)):
        log("\n".join(open(f).read() for f in [lab.conf]))
        return
    me = lab.nodes()[lab.fid]
    check("self", lambda: expect(me["self"] and me["state"] == "up" and me["epoch"] > 0,
                                 f"own record {me}"))
    check("segid-names-node",
          lambda: expect(make_segment(args.build) >> 52 == lab.fid, "node bits of a new segid"))
    lab.barrier("up")

    def ping():
        for p in lab.peers:
            out = json.loads(lab.ctl("ping", p, "--count", 5, "--json").stdout)
            expect(len(out["rtt_ns"]) == 5 and all(r > 0 for r in out["rtt_ns"]),
                   f"ping {p}: {out}")
    check("ping", ping)
    lab.barrier("pinged")

    def counters():
        n = lab.nodes()
        for p in lab.peers:
            expect(n[p]["requests"] >= 5 and n[p]["request_failures"] == 0,
                   f"node {p}: requests {n[p]['requests']}, failures {n[p]['request_failures']}")
            expect(n[p]["served"] >= 5, f"node {p}: served {n[p]['served']}")
    check("counters", counters)

    # Node 1 sends node 2 a forged, a replayed and a stale message.
    if lab.fid == 1:
        def inject():
            for kind in ("forged", "replay", "stale"):
                subprocess.run([os.path.join(args.build, "tests", "fabric-inject"),
                                "--config", lab.conf, "--to", "2", "--kind", kind],
                               check=True, timeout=60)
        check("inject", inject)
    lab.barrier("injected")
    if lab.fid == 2:
        def rejected():
            wait_for("node 1's three bad messages counted",
                     lambda: lab.nodes()[1]["rejected"] >= 3, 30)
            out = json.loads(lab.ctl("ping", 1, "--count", 2, "--json").stdout)
            expect(len(out["rtt_ns"]) == 2, "ping after the bad messages")
        check("rejected", rejected)
    lab.barrier("checked-rejected")

    # Node 2 restarts its daemon; everyone sees its new epoch.
    epochs = {p: r["epoch"] for p, r in lab.nodes().items()}
    lab.barrier("epochs-read")
    if lab.fid == 2:
        def restart():
            lab.stop_daemon()
            n = lab.nodes()
            expect(all(n[p]["state"] == "unknown" for p in lab.peers),
                   f"peers after the daemon left: {n}")
            p = lab.ctl("ping", 1, want_rc=5)
            expect("no xpmemd runs on this node" in p.stderr, f"ping without daemon: {p.stderr!r}")
            lab.start_daemon()
            wait_for("peers up again", lab.peers_up, 120)
            expect(lab.nodes()[2]["epoch"] > epochs[2], "own epoch did not grow")
        check("restart", restart)
    else:
        check("restart", lambda: wait_for("node 2 up with a new epoch",
                                          lambda: lab.peers_up({2: epochs[2]}), 180))
    check("ping-after-restart", ping)
    lab.barrier("rejoined")

    # Node 1 freezes the last node; every other node fences it and declares it dead.
    last = lab.count
    if lab.fid == last:
        time.sleep(600)  # frozen, then quit by the fence: never gets here
        return
    if lab.fid == 1:
        subprocess.run([os.path.join(ROOT, "tests", "lab", "fabric", "fm-request.sh"),
                        "freeze-last", str(last - 1), '{"execute":"stop"}'], check=True,
                       timeout=320)

    def fenced():
        wait_for(f"node {last} dead", lambda: lab.nodes()[last]["state"] == "dead", 120)
        p = lab.ctl("ping", last, want_rc=5)
        expect("node not up" in p.stderr, f"ping to the dead node: {p.stderr!r}")
        for p in lab.peers:
            if p != last:
                out = json.loads(lab.ctl("ping", p, "--count", 2, "--json").stdout)
                expect(len(out["rtt_ns"]) == 2, f"ping {p} after the death")
    check("fenced", fenced)
    if lab.count > 2:
        lab.barrier("fenced", nodes=lab.count - 1)
    lab.stop_daemon()
    check("module-unloads", lambda: subprocess.run(["rmmod", "xpmem"], check=True))


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        failed += 1
        log(f"FAILED: {e}")
    except Exception as e:  # a crash of the test itself is a failure, with its cause
        failed += 1
        log(f"FAILED: {type(e).__name__}: {e}")
    log(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
