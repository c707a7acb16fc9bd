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
  daemon-stop, leave-seen, restart
                   (node 2) xpmemd stops: peers unknown here, pings fail with
                   ENOTCONN; the others count it dead and fenced at once (its
                   leave message), and node 1 drops its mapping of node 2's
                   segment; it restarts and every peer sees the new epoch, and
                   node 1's release of that permit reaches it then (unpinned)
  remote-*         node 2 attaches node 1's segment (and the other way round):
                   reads, writes, recalls (mmap over a page, copy on write) with
                   no stale read after them, permissions (node 1's idmap makes
                   node 2's uid 4242 its root, the rest nobody), removal, exporter exit,
                   every granted page unpinned afterwards
  huge-*           node 1 exports transparent huge pages: node 2 maps them
                   2 MiB at a time (kernels with huge PFN maps), writes through
                   them; a split in the exporter is recalled and refaulted 4 KiB
  storm*           node 1's threads drop and rewrite pages over and over (many
                   recalls in flight) while the other nodes read them; after
                   it, no importer sees anything but the last round
  static-window-*  (--static-windows) a static window over RAM keeps the module
                   from loading; then PCI BARs are not trusted and every window
                   must come from static_windows
  fenced           the last node maps a page of node 1, which freezes it through
                   the fabric manager and replaces the page: the recall times
                   out and the exporter goes on with the page pinned; the peers
                   find the frozen node suspect, fence it (xpmemd's
                   fence-command: QMP quit) and declare it dead; pings to it
                   fail, and node 1 lets the page go
Lab node i is fabric node i + 1. Nodes meet at barriers over TCP on node 1's
link-local address. Prints "ok: NAME" / "FAILED: NAME: why" and a last line
"N passed, N failed"; exit 1 on any failure.
"""
import argparse
import ctypes
import json
import mmap
import os
import select
import signal
import socket
import subprocess
import sys
import time

BARRIER_PORT = 7601
DAEMON_PORT = 7400
MAPPED_UID = 4242
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

    # ---- barriers: every node reports NAME (and a word of data) to node 1, which
    # answers all at once with everybody's data: {fabric node: data}
    def barrier(self, name, data="-", nodes=None, timeout=300):
        if self.me == 0:
            self.server.settimeout(timeout)
            conns, datas = [], {self.fid: data}
            while len(conns) < (nodes or self.count) - 1:
                c, _ = self.server.accept()
                got = c.makefile().readline().split()
                if got[0] != name:
                    raise Failure(f"barrier {name}: a node is at barrier {got[0]!r}")
                datas[int(got[1])] = got[2]
                conns.append(c)
            reply = "go " + json.dumps(datas) + "\n"
            for c in conns:
                c.sendall(reply.encode())
                c.close()
            return datas
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
        c.sendall(f"{name} {self.fid} {data}\n".encode())
        got = c.makefile().readline().strip()
        c.close()
        expect(got.startswith("go "), f"barrier {name}: answer {got!r}")
        return {int(k): v for k, v in json.loads(got[3:]).items()}

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
        extra = ("heartbeat-ms 200\nsuspect-ms 3000\ndead-ms 20000\n"
                 f"fence-command {os.path.join(HERE, 'fence-lab-node.sh')}\n")
        if self.fid == 1:
            # Node 2's root and its uid 4242 are node 1's root; its other users nobody.
            extra += f"idmap 2 uid 0 0 1\nidmap 2 uid {MAPPED_UID} 0 1\n"
        with open(self.conf, "w") as f:
            f.write(p.stdout + extra)

    def window_bars(self):
        """(start, size) of each peer's ivshmem BAR 2, from the lab's fabric.conf."""
        bars = []
        for line in open(os.environ["XPMEM_FABRIC_CONF"]):
            f = line.split()
            if f and f[0] == "peer":
                res = open(f"/sys/bus/pci/devices/{f[2]}/resource").read().splitlines()[2]
                start, end = (int(x, 16) for x in res.split()[:2])
                bars.append((start, end - start + 1))
        expect(len(bars) == len(self.peers), f"BARs {bars} for peers {self.peers}")
        return bars

    def join(self):
        """Loads the module and starts xpmemd; returns once every peer is up."""
        subprocess.run(["insmod", self.args.ko], check=True)
        self.write_conf()
        self.start_daemon()
        wait_for("every peer up with a proven window", self.peers_up, 120)

    def peers_up(self, epochs=None):
        n = self.nodes()
        for p in self.peers:
            r = n.get(p)
            if not r or r["state"] != "up" or not r["window"]:
                return None
            if epochs and r["epoch"] <= epochs.get(p, 0):
                return None
        return n


class Side:
    """One fabric-remote process (tests/fabric/remote_xpmem.c), a command per line."""

    def __init__(self, build, user=None):
        cmd = [os.path.join(build, "tests", "fabric-remote")]
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1)

    def __call__(self, line, timeout=120):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        expect(ready, f"fabric-remote: no answer to {line!r} in {timeout} s")
        return self.p.stdout.readline().strip()

    def close(self):
        try:
            self.p.stdin.write("exit\n")
            self.p.stdin.close()
        except OSError:
            pass
        return self.p.wait(timeout=60)


def export(build, args):
    """A fabric-remote process that made a segment ("make ARGS"): (side, segid)."""
    side = Side(build)
    got = side(f"make {args}")
    expect(got.startswith("segid "), f"make {args}: {got}")
    return side, got.split()[1]


def attach_and_check(build, segid, mb, how):
    """A fabric-remote process that attached segid (MB MiB, rw or ro) and found
    every word of it as the exporter wrote it."""
    side = Side(build)
    got = side(f"attach {segid} {mb} {how}")
    expect(got == "ok", f"attach of {segid}: {got}")
    got = side("check")
    expect(got == "mismatches 0", f"{mb} MiB read through the window: {got}")
    return side


def unpinned(timeout=30):
    wait_for("every granted page given back", lambda: proc_stats()["pinned_pages"] == 0, timeout)


def remove_and_unpin(exp):
    expect(exp("remove") == "ok", "remove")
    exp.close()
    unpinned()


def pattern(i):
    return (0x5eed000000000000 ^ (i * 0x9e3779b97f4a7c15)) & (2 ** 64 - 1)


def proc_stats():
    return {k: int(v) for k, v in (l.split() for l in open("/proc/xpmem/stats"))}


def remote_tests(lab, args):
    """Node 1 exports; every other node attaches (so recalls fan out to all of
    them at once), node 2 also writes and checks permissions; then node 2
    exports and node 1 attaches."""
    exp = imp = None
    a, b = lab.fid == 1, lab.fid == 2
    importer = not a
    word_page2 = 2 * 4096 // 8
    word_page3 = 3 * 4096 // 8
    if a:
        exp, segid = export(args.build, "4 0644")
    segid = lab.barrier("exported", segid if a else "-")[1]
    if importer:
        def read():
            nonlocal imp
            expect(int(segid, 16) >> 52 == 1, f"segid {segid} does not name node 1")
            imp = attach_and_check(args.build, segid, 4, "rw")
            if b:
                expect(imp("set 10 0x1234") == "ok", "write through the window")
        check("remote-attach-read", read)
    lab.barrier("b-wrote")
    if a:
        check("remote-write-seen-by-exporter",
              lambda: expect(exp("get 10") == "value 0x1234", "the importer's store"))
        # The store refaulted pages already granted (read, then write): pinned once.
        pinned = proc_stats()["pinned_pages"]
        most = 1024 * (lab.count - 1)
        check("remote-pinned-once",
              lambda: expect(0 < pinned <= most, f"{pinned} pages pinned for a 4 MiB segment"))

        def exporter_columns():
            segs = json.loads(lab.ctl("segments", "--json", "--segid", segid).stdout)["segments"]
            expect(len(segs) == 1, f"segments --segid {segid}: {segs}")
            s = segs[0]
            want = (lab.count - 1, lab.count - 1, pinned)
            got = (s["remote_permits"], s["remote_nodes"], s["remote_pinned_pages"])
            expect(got == want, f"remote permits, nodes, pinned pages {got}, want {want}")
        check("xpmemctl-remote-segment", exporter_columns)
        expect(exp("set 20 0xabcd") == "ok", "exporter store")
    lab.barrier("a-wrote")
    if importer:
        def importer_columns():
            atts = json.loads(lab.ctl("attachments", "--json", "--segid", segid).stdout)
            nodes = [a["remote_node"] for a in atts["attachments"]]
            expect(nodes == [1], f"attachments of node 1's segment here, by node: {nodes}")
            segs = json.loads(lab.ctl("segments", "--json").stdout)["segments"]
            expect(not any(int(x["segid"], 16) == int(segid, 16) for x in segs),
                   "another node's segment listed as made here")
        check("xpmemctl-remote-attachment", importer_columns)
        def coherent():
            expect(imp("get 20") == "value 0xabcd", "the exporter's store, same page")
            got = imp(f"get {word_page2}")
            expect(got == f"value {hex(pattern(word_page2))}", f"page 2 mapped: {got}")
        check("remote-coherent", coherent)
    lab.barrier("b-mapped")
    if a:
        def recall():
            before = proc_stats()
            got = exp("replace 2 0x7777")
            expect(got.startswith("replaced "), f"replace: {got}")
            after = proc_stats()
            expect(after["recalls"] > before["recalls"], "no recall counted")
            log(f"remote recall ({lab.count - 1} importing nodes): the exporter's mmap took "
                f"{int(got.split()[1]) / 1e6:.2f} ms")
        check("remote-recall", recall)
    lab.barrier("a-replaced")
    if importer:
        check("remote-no-stale-read",
              lambda: expect(imp(f"get {word_page2}") == "value 0x7777",
                             "after the recall returned, the old page is still seen"))
        got = imp(f"get {word_page3}")
        expect(got == f"value {hex(pattern(word_page3))}", f"page 3 mapped: {got}")
    lab.barrier("b-mapped-3")
    if a:
        def cow():
            before = proc_stats()["recalls"]
            got = exp("cow 3 0x8888")
            expect(got.startswith("cowed "), f"cow: {got}")
            expect(proc_stats()["recalls"] > before, "no recall counted for the copy on write")
        check("remote-recall-cow", cow)
    lab.barrier("a-cowed")
    if importer:
        check("remote-no-stale-read-cow",
              lambda: expect(imp(f"get {word_page3}") == "value 0x8888",
                             "after the copy on write, the importer still sees the old page"))
    if b:
        def denied():
            user = Side(args.build, user=65534)
            got = user(f"attach {segid} 4 rw")
            expect(got == "errno 13", f"rw attach as uid 65534 of a 0644 segment: {got}")
            got = user(f"attach {segid} 4 ro")
            expect(got == "ok", f"ro attach as uid 65534: {got}")
            expect(user(f"get {word_page2}") == "value 0x7777", "ro read")
            expect(user("set 0 1") == "sigbus", "store through a read-only attachment")
            user.close()
            owner = Side(args.build, user=MAPPED_UID)
            got = owner(f"attach {segid} 4 rw")
            expect(got == "ok", f"rw attach as uid {MAPPED_UID}, node 1's root by its idmap: {got}")
            expect(owner("set 30 0x4242") == "ok", "store as the mapped owner")
            owner.close()
        check("remote-permissions", denied)
    lab.barrier("b-checked")
    if a:
        check("remote-remove", lambda: expect(exp("remove") == "ok", "remove"))
    lab.barrier("a-removed")
    if importer:
        def gone():
            expect(imp("get 0") == "sigbus", "access after the exporter removed the segment")
            expect(imp("detach") == "ok", "detach")
            imp.close()
        check("remote-gone-sigbus", gone)
    lab.barrier("b-detached")
    if a:
        def clean():
            unpinned()
            exp.close()
            wait_for("no segment left", lambda: proc_stats()["segments_live"] == 0, 30)
        check("remote-unpinned", clean)
    lab.barrier("a-clean")

    # The other way round, and an exporter that exits under its reader.
    if b:
        exp, segid = export(args.build, "2 0666")
    segid = lab.barrier("exported-2", segid if b else "-")[2]
    if a:
        def reverse():
            nonlocal imp
            imp = attach_and_check(args.build, segid, 2, "rw")
        check("remote-reverse-read", reverse)
    lab.barrier("a-attached-2")
    if b:
        exp.close()
    lab.barrier("b-exited")
    if a:
        def exited():
            expect(imp("get 0") == "sigbus", "access after the exporter exited")
            expect(imp("detach") == "ok", "detach")
            imp.close()
        check("remote-exporter-exit", exited)
    lab.barrier("a-done-2")
    if b:
        check("remote-unpinned-2", unpinned)


def huge_pfnmap():
    """Whether this kernel maps 2 MiB PFN entries (6.12 on; xpmem_compat.h)."""
    return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2]) >= (6, 12)


def huge_tests(lab, args):
    """Node 1 exports 4 MiB of transparent huge pages; node 2 maps them with
    2 MiB entries through its window (4 KiB ones where the kernel cannot),
    writes through them, then node 1 splits one huge page: the recall takes the
    2 MiB entry back and node 2 refaults that range with 4 KiB entries."""
    a, b = lab.fid == 1, lab.fid == 2
    exp = imp = None
    word_page1 = 4096 // 8
    segid = "-"
    if a:
        # Guests this small boot with THP off; the exporter's pages must be huge.
        for knob in ("enabled", "defrag"):
            with open(f"/sys/kernel/mm/transparent_hugepage/{knob}", "w") as f:
                f.write("madvise")
        exp, segid = export(args.build, "4 0644 huge")

        def thp():
            got = exp("hugekb")
            expect(got.startswith("kb ") and int(got.split()[1]) >= 2048,
                   f"the exporter's AnonHugePages: {got}")
        check("huge-exporter-thp", thp)
    segid = lab.barrier("huge-exported", segid)[1]

    def mapped():
        atts = json.loads(lab.ctl("attachments", "--json", "--segid", segid).stdout)
        return atts["attachments"][0]
    if b:
        def attach():
            nonlocal imp
            imp = attach_and_check(args.build, segid, 4, "rw")
            expect(imp("set 0 0x2002") == "ok", "store through the mapping")
            m = mapped()
            if huge_pfnmap():
                expect(m["mapped_2m"] >= 1 and m["huge_faults"] >= 1,
                       f"no 2 MiB entry for the exporter's huge pages: {m}")
            else:
                expect(m["mapped_2m"] == 0 and m["mapped_4k"] > 0, f"4 KiB entries only: {m}")
        check("huge-remote-map", attach)
    lab.barrier("huge-mapped")
    if a:
        def split():
            expect(exp("get 0") == "value 0x2002", "the importer's store")
            segs = json.loads(lab.ctl("segments", "--json", "--segid", segid).stdout)["segments"]
            if huge_pfnmap():
                expect(segs[0]["remote_pinned_pages"] >= 512,
                       f"a huge grant pins the whole page: {segs[0]}")
            recalls = proc_stats()["recalls"]
            got = exp("split 1")
            expect(got.startswith("split "), f"split: {got}")
            expect(proc_stats()["recalls"] > recalls, "no recall for the split")
            expect(exp(f"set {word_page1} 0x3003") == "ok", "exporter store after the split")
        check("huge-split-recall", split)
    lab.barrier("huge-split")
    if b:
        def refault():
            got = imp(f"get {word_page1}")
            expect(got == "value 0x3003", f"after the split: {got}")
            expect(imp("get 0") == "value 0x2002", "the earlier store")
            m = mapped()
            if huge_pfnmap():
                expect(m["mapped_4k"] > 0, f"the split range is not mapped with 4 KiB: {m}")
            expect(imp("detach") == "ok", "detach")
            imp.close()
        check("huge-refault-4k", refault)
    lab.barrier("huge-detached")
    if a:
        check("huge-unpinned", lambda: remove_and_unpin(exp))
    lab.barrier("huge-done")


STORM_PAGES, STORM_ROUNDS, STORM_THREADS = 256, 4, 8


def storm_tests(lab, args):
    """Many recalls in flight: node 1's threads drop and rewrite pages of its
    segment over and over (each drop recalls every importer's mapping, from
    several threads at once) while every other node reads them in a loop; then no
    importer may see anything but the last round."""
    a = lab.fid == 1
    exp = imp = None
    segid = "-"
    if a:
        exp, segid = export(args.build, "1 0644")
    segid = lab.barrier("storm-exported", segid)[1]
    around = "/sys/module/xpmem/parameters/remote_fault_around"
    if not a:
        # One page per fault, so one grant per page: every drop is its own recall.
        with open(around, "w") as f:
            f.write("1")
        imp = Side(args.build)
        expect(imp(f"attach {segid} 1 ro") == "ok", "attach")
        expect(imp("touch").startswith("touched "), "map every page before the storm")
    lab.barrier("storm-attached")
    if a:
        def storm():
            before = proc_stats()["recalls"]
            got = exp(f"storm {STORM_PAGES} {STORM_ROUNDS} {STORM_THREADS}", timeout=600)
            expect(got.startswith("stormed "), f"storm: {got}")
            recalls = proc_stats()["recalls"] - before
            log(f"storm: {STORM_PAGES * STORM_ROUNDS} page drops from {STORM_THREADS} threads "
                f"in {int(got.split()[1]) / 1e9:.1f} s, {recalls} of them recalled pages "
                "from other nodes")
            # Nearly always 256 or a few more (the first round takes back every
            # page mapped one by one); one CI run counted 251 with no stale page,
            # not yet explained. The count shows many recalls, the verify below
            # that none was missed.
            expect(recalls >= STORM_PAGES // 2, f"only {recalls} recalls for "
                   f"{STORM_PAGES} pages mapped one by one and dropped {STORM_ROUNDS} times")
        check("storm", storm)
    else:
        def hammer():
            got = imp(f"hammer {STORM_PAGES} 8000", timeout=120)
            expect(got.startswith("hammered "), f"reads during the storm: {got}")
        check("storm-readers", hammer)
    lab.barrier("stormed")
    if not a:
        def verify():
            got = imp(f"verify {STORM_PAGES} {STORM_ROUNDS}")
            expect(got == "stale 0", f"pages not as the last round left them: {got}")
            expect(imp("detach") == "ok", "detach")
            imp.close()
        check("storm-no-stale", verify)
        with open(around, "w") as f:
            f.write("256")
    lab.barrier("storm-verified")
    if a:
        check("storm-unpinned", lambda: remove_and_unpin(exp))
    lab.barrier("storm-done")


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
    ap.add_argument("--static-windows", action="store_true",
                    help="load the module with pci_windows=0 and the ivshmem BARs as static_windows")
    args = ap.parse_args()
    lab = Lab(args)
    params = []
    if args.static_windows:
        def ram_refused():
            # The first MiB's page frame 0x1000 is RAM on every PC: never a window.
            p = subprocess.run(["insmod", args.ko, "static_windows=0x1000+0x1000"],
                               capture_output=True, text=True)
            expect(p.returncode != 0 and "Invalid" in p.stderr,
                   f"a static window over RAM loaded: {p.returncode} {p.stderr!r}")
            expect(not os.path.exists("/sys/module/xpmem"), "module loaded anyway")
        check("static-window-over-ram-refused", ram_refused)
        params = ["pci_windows=0", "static_windows=" + ",".join(
            f"{start:#x}+{size:#x}" for start, size in lab.window_bars())]
    subprocess.run(["insmod", args.ko, *params], check=True)
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
    remote_tests(lab, args)
    huge_tests(lab, args)
    storm_tests(lab, args)

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

    # Node 2 stops its daemon, which tells every peer it leaves: they count it
    # dead and fenced at once (no timeout, no fence-command). It restarts; everyone
    # sees its new epoch.
    # Node 1 maps a segment of node 2's first: once node 2 left, node 1 drops
    # that mapping and gives the permit up while node 2 cannot hear it; the
    # release must still reach node 2 when it is back, or its pages stay pinned.
    exp2 = imp1 = None
    segid = "-"
    if lab.fid == 2:
        exp2, segid = export(args.build, "1 0644")
    segid = lab.barrier("leave-exported", segid)[2]
    if lab.fid == 1:
        def mapped():
            nonlocal imp1
            imp1 = attach_and_check(args.build, segid, 1, "ro")
        check("leave-mapped", mapped)
    epochs = {p: r["epoch"] for p, r in lab.nodes().items()}
    lab.barrier("epochs-read")
    if lab.fid == 2:
        def stopped():
            expect(proc_stats()["pinned_pages"] > 0, "nothing pinned for node 1")
            lab.stop_daemon()
            n = lab.nodes()
            expect(all(n[p]["state"] == "unknown" for p in lab.peers),
                   f"peers after the daemon left: {n}")
            p = lab.ctl("ping", 1, want_rc=5)
            expect("no xpmemd runs on this node" in p.stderr, f"ping without daemon: {p.stderr!r}")
        check("daemon-stop", stopped)
    lab.barrier("daemon-2-stopped")
    if lab.fid != 2:
        def left():
            def gone():
                r = lab.nodes()[2]
                return r["state"] == "dead" and r["fenced"] and r["epoch"] == epochs[2]
            # Well inside suspect-ms (3 s): only its LEAVE can have done this.
            wait_for("node 2 dead and fenced by its leave message", gone, 2.5)
            if lab.fid == 1:
                expect(imp1("get 0") == "sigbus", "node 2's page still mapped after it left")
                expect(imp1("detach") == "ok", "detach")
                imp1.close()
        check("leave-seen", left)
    lab.barrier("leave-seen")
    if lab.fid == 2:
        def restart():
            lab.start_daemon()
            wait_for("peers up again", lab.peers_up, 120)
            expect(lab.nodes()[2]["epoch"] > epochs[2], "own epoch did not grow")
        check("restart", restart)

        def released():
            unpinned(60)  # node 1's late release of its permit
            remove_and_unpin(exp2)
        check("release-after-rejoin", released)
    else:
        check("restart", lambda: wait_for("node 2 up with a new epoch",
                                          lambda: lab.peers_up({2: epochs[2]}), 180))
    check("ping-after-restart", ping)
    lab.barrier("rejoined")

    # The last node maps a page of node 1's; node 1 freezes it and changes that
    # page: the recall cannot be acknowledged, so the exporter goes on after the
    # deadline with the page still pinned; every other node then fences the
    # frozen one and declares it dead, and only then is the page let go.
    last = lab.count
    segid = "-"
    if lab.fid == 1:
        exp, segid = export(args.build, "1 0644")
    segid = lab.barrier("fence-exported", segid)[1]
    if lab.fid == last:
        victim = Side(args.build)
        expect(victim(f"attach {segid} 1 ro") == "ok", "attach before the freeze")
        expect(victim("get 0").startswith("value "), "map page 0")
    lab.barrier("victim-mapped")
    if lab.fid == last:
        time.sleep(600)  # frozen, then quit by the fence: never gets here
        return
    if lab.fid == 1:
        subprocess.run([os.path.join(ROOT, "tests", "lab", "fabric", "fm-request.sh"),
                        "freeze-last", str(last - 1), '{"execute":"stop"}'], check=True,
                       timeout=320)

        def frozen_recall():
            t0 = time.monotonic()
            got = exp("replace 0 0x9999")
            took = time.monotonic() - t0
            expect(got.startswith("replaced "), f"replace: {got}")
            log(f"recall with a frozen importer: the exporter's mmap took {took:.1f} s")
            expect(took < 30, f"the exporter waited {took:.1f} s")
            expect(proc_stats()["pinned_pages"] > 0, "the frozen node's page was let go unfenced")
        check("recall-frozen-importer", frozen_recall)

    def fenced():
        wait_for(f"node {last} dead", lambda: lab.nodes()[last]["state"] == "dead", 120)
        expect(lab.nodes()[last]["fenced"], f"node {last} dead but not fenced")
        p = lab.ctl("ping", last, want_rc=5)
        expect("node not up" in p.stderr, f"ping to the dead node: {p.stderr!r}")
        for p in lab.peers:
            if p != last:
                out = json.loads(lab.ctl("ping", p, "--count", 2, "--json").stdout)
                expect(len(out["rtt_ns"]) == 2, f"ping {p} after the death")
    check("fenced", fenced)
    if lab.fid == 1:
        def released():
            unpinned(60)  # the fenced node's pages let go
            exp.close()
        check("unpinned-after-fence", released)
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
