#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""In-guest tests of xpmemctl (run as root with the xpmem module loaded).

Known states come from xpmemctl_fixture (one run as root, one as an unprivileged
uid); every subcommand's JSON is checked field by field against them, the human
tables for their columns and values, and the filters, exit codes and error
messages. Prints "ok: NAME" / "FAILED: NAME: why" per check and the cmocka-style
summary lines that tests/guest/run-suite.sh counts.

Usage: test_xpmemctl.py BUILD_DIR [XPMEMCTL]
XPMEMCTL is the binary under test (default BUILD_DIR/tools/xpmemctl), e.g. the
sanitizer build BUILD_DIR/tools/xpmemctl-asan.
"""
import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
TOOL = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(BUILD, "tools", "xpmemctl")
FIXTURE = os.path.join(BUILD, "tests", "xpmemctl_fixture")
USER = 1001
# A sanitizer build exits with 1 by default, the usage error status the tests
# expect in places: give its reports a status no check accepts.
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:exitcode=99")
os.environ.setdefault("UBSAN_OPTIONS", "exitcode=99:print_stacktrace=1")
AS_USER = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups"]

SEGMENT_FIELDS = {
    "segid": str, "owner_pid": int, "owner_comm": str, "owner_uid": int,
    "owner_gid": int, "start": int, "size": int, "mode": str, "removed": bool,
    "permits": int, "attachments": int, "faults": int, "huge_faults": int,
    "recalls": int, "mapped_4k": int, "mapped_2m": int, "remote_permits": int,
    "remote_nodes": int, "remote_pinned_pages": int, "mapped_1g": int,
}
PERMIT_FIELDS = {
    "apid": str, "segid": str, "pid": int, "comm": (str, type(None)), "uid": int,
    "access": str,
}
ATTACHMENT_FIELDS = {
    "pid": int, "comm": (str, type(None)), "uid": int, "segid": str, "vaddr": int,
    "size": int, "offset": int, "access": str, "vmas": int, "faults": int,
    "huge_faults": int, "recalls": int, "mapped_4k": int, "mapped_2m": int,
    "remote_node": int, "mapped_1g": int,
}
STATS_FIELDS = [
    "segments_live", "accesses_live", "attachments_live", "makes", "removes",
    "gets", "releases", "attaches", "detaches", "faults", "fault_retries",
    "huge_faults", "recalls", "pinned_pages",
]
SEGMENT_COLUMNS = ["SEGID", "PID", "COMMAND", "UID", "START", "SIZE", "MODE",
                   "REMOVED", "PERMITS", "ATTACH", "FAULTS", "RECALLS", "MAPPED", "HUGE",
                   "RPERMITS", "RPINNED"]
PERMIT_COLUMNS = ["APID", "SEGID", "PID", "COMMAND", "UID", "ACCESS"]
ATTACHMENT_COLUMNS = ["PID", "COMMAND", "UID", "SEGID", "VADDR", "SIZE", "OFFSET",
                      "ACCESS", "VMAS", "FAULTS", "RECALLS", "4K", "2M", "1G", "NODE"]

passed = 0
failed = []


class Failure(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise Failure(why)


def eq(got, want, what):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


def test(name):
    """Decorator-free runner: test(name)(fn) runs fn and records the result."""
    def run(fn):
        global passed
        try:
            fn()
        except Failure as e:
            failed.append(name)
            print(f"FAILED: {name}: {e}", flush=True)
        except Exception as e:  # a crash of the check itself is a failure too
            failed.append(name)
            print(f"FAILED: {name}: {type(e).__name__}: {e}", flush=True)
        else:
            passed += 1
            print(f"ok: {name}", flush=True)
    return run


def xpmemctl(*args, user=False, env=None, want_rc=0):
    cmd = (AS_USER if user else []) + [TOOL] + [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.pop("XPMEMCTL_DEVICE", None)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=60)
    if want_rc is not None and p.returncode != want_rc:
        raise Failure(f"{' '.join(cmd)}: exit {p.returncode}, want {want_rc}; "
                      f"stderr: {p.stderr.strip()!r}")
    return p


def xjson(*args, user=False):
    p = xpmemctl(*args, "--json", user=user)
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise Failure(f"xpmemctl {' '.join(map(str, args))} --json: not JSON ({e}): {p.stdout[:200]!r}")


def check_schema(obj, fields, what):
    expect(isinstance(obj, dict), f"{what}: not an object")
    eq(sorted(obj), sorted(fields), f"{what} field names")
    for k, t in fields.items():
        expect(isinstance(obj[k], t) and not (t is int and isinstance(obj[k], bool)),
               f"{what}.{k}: {obj[k]!r} is not {t}")
    for k in ("segid", "apid"):
        if k in obj:
            expect(re.fullmatch(r"0x[0-9a-f]+", obj[k]), f"{what}.{k} {obj[k]!r} is not 0x-hex")


def by_segid(items):
    return {s["segid"]: s for s in items}


def table(text):
    """Splits an aligned table into its header words and rows of words."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    expect(lines, "empty table")
    return lines[0].split(), [ln.split() for ln in lines[1:]], lines


class Fixture:
    """A running xpmemctl_fixture and the state it printed."""

    def __init__(self, user=False, args=()):
        cmd = (AS_USER if user else []) + [FIXTURE] + list(args)
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        self.state = {}
        for line in self.p.stdout:
            line = line.strip()
            if line == "ready":
                break
            k, _, v = line.partition("=")
            self.state[k] = v
        else:
            raise RuntimeError(f"fixture ended before it was ready (exit {self.p.wait()})")
        s = self.state
        self.segid, self.segid2, self.apid = s["segid"], s["segid2"], s["apid"]
        self.exporter, self.attacher = int(s["exporter_pid"]), int(s["attacher_pid"])
        self.controller = int(s["controller_pid"])
        self.page = int(s["page_size"])

    def num(self, key):
        return int(self.state[key], 0)

    def command(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline().strip()
        if answer != "done " + cmd:
            raise Failure(f"fixture {cmd}: {answer!r}")

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            self.p.wait(timeout=60)
        return self.p.returncode


def write_file(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def read_file(path):
    with open(path) as f:
        return f.read().strip()


def proc_stats():
    out = {}
    with open("/proc/xpmem/stats") as f:
        for line in f:
            k, v = line.split()
            out[k] = int(v)
    return out


def main():
    print(f"xpmemctl under test: {TOOL}", flush=True)
    for f in (TOOL, FIXTURE):
        if not os.access(f, os.X_OK):
            print(f"FAILED: setup: {f} is missing (make user)")
            print("[  FAILED  ] 1 test(s), listed below:")
            return 1
    # Exact fault counts need single-page faults; NUMA balancing would add recalls.
    saved = {}
    knobs = {"/sys/module/xpmem/parameters/fault_around": 1,
             "/proc/sys/kernel/numa_balancing": 0}
    for path, value in knobs.items():
        if os.path.exists(path):
            saved[path] = read_file(path)
            write_file(path, value)
    root = user = None
    try:
        root = Fixture()
        run_tests(root)
        user = Fixture(user=True, args=["--mode", "0604", "--pages", "6", "--offset", "1",
                                        "--attach", "2", "--touch", "2"])
        run_user_tests(root, user)
        run_lifecycle_tests(root, user)
    finally:
        for fx in (root, user):
            if fx:
                fx.stop()
        for path, value in saved.items():
            write_file(path, value)
    run_end_tests()

    print(f"[==========] xpmemctl: {passed + len(failed)} test(s) run.")
    print(f"[  PASSED  ] {passed} test(s).")
    if failed:
        print(f"[  FAILED  ] {len(failed)} test(s), listed below:")
        for name in failed:
            print(f"[  FAILED  ] {name}")
        return 1
    return 0


def run_tests(fx):
    page = fx.page
    touched = fx.num("touched")

    @test("segments-json")
    def _():
        doc = xjson("segments")
        eq(sorted(doc), ["segments"], "top-level keys")
        for s in doc["segments"]:
            check_schema(s, SEGMENT_FIELDS, "segment")
        segs = by_segid(doc["segments"])
        expect(fx.segid in segs and fx.segid2 in segs, "fixture segments missing")
        s = segs[fx.segid]
        want = {"segid": fx.segid, "owner_pid": fx.exporter, "owner_comm": "xf-exporter",
                "owner_uid": 0, "owner_gid": 0, "start": fx.num("seg_start"),
                "size": fx.num("seg_size"), "mode": "0640", "removed": False, "permits": 1,
                "attachments": 1, "faults": touched, "huge_faults": 0, "recalls": 1,
                "mapped_4k": touched - 1, "mapped_2m": 0, "remote_permits": 0,
                "remote_nodes": 0, "remote_pinned_pages": 0, "mapped_1g": 0}
        eq(s, want, "segment 1")
        want2 = {"segid": fx.segid2, "owner_pid": fx.exporter, "owner_comm": "xf-exporter",
                 "owner_uid": 0, "owner_gid": 0, "start": fx.num("seg2_start"),
                 "size": 2 * page, "mode": "0600", "removed": False, "permits": 0,
                 "attachments": 0, "faults": 0, "huge_faults": 0, "recalls": 0,
                 "mapped_4k": 0, "mapped_2m": 0, "remote_permits": 0, "remote_nodes": 0,
                 "remote_pinned_pages": 0, "mapped_1g": 0}
        eq(segs[fx.segid2], want2, "segment 2")

    @test("permits-json")
    def _():
        doc = xjson("permits")
        eq(sorted(doc), ["permits"], "top-level keys")
        for a in doc["permits"]:
            check_schema(a, PERMIT_FIELDS, "permit")
        mine = [a for a in doc["permits"] if a["apid"] == fx.apid]
        eq(len(mine), 1, "permits with the fixture's apid")
        eq(mine[0], {"apid": fx.apid, "segid": fx.segid, "pid": fx.attacher,
                     "comm": "xf-attacher", "uid": 0, "access": "rdonly"}, "permit")

    @test("attachments-json")
    def _():
        doc = xjson("attachments")
        eq(sorted(doc), ["attachments"], "top-level keys")
        for a in doc["attachments"]:
            check_schema(a, ATTACHMENT_FIELDS, "attachment")
        mine = [a for a in doc["attachments"] if a["segid"] == fx.segid]
        eq(len(mine), 1, "attachments of the fixture's segment")
        eq(mine[0], {"pid": fx.attacher, "comm": "xf-attacher", "uid": 0, "segid": fx.segid,
                     "vaddr": fx.num("att_vaddr"), "size": fx.num("att_size"),
                     "offset": fx.num("att_offset"), "access": "rdonly", "vmas": 1,
                     "faults": touched, "huge_faults": 0, "recalls": 1,
                     "mapped_4k": touched - 1, "mapped_2m": 0, "remote_node": 0,
                     "mapped_1g": 0},
           "attachment")

    @test("stats-json")
    def _():
        doc = xjson("stats")
        eq(sorted(doc), ["stats"], "top-level keys")
        st = doc["stats"]
        eq(list(st), STATS_FIELDS, "stats field names (in order)")
        for k, v in st.items():
            expect(isinstance(v, int) and v >= 0, f"stats.{k} = {v!r}")
        eq(st["pinned_pages"], 0, "pinned_pages")
        # Root sees every object: the live counters match the listings.
        eq(st["segments_live"], len(xjson("segments")["segments"]), "segments_live")
        eq(st["accesses_live"], len(xjson("permits")["permits"]), "accesses_live")
        eq(st["attachments_live"], len(xjson("attachments")["attachments"]), "attachments_live")
        expect(st["makes"] >= 2 and st["gets"] >= 1 and st["attaches"] >= 1, "event counters")
        expect(st["faults"] >= touched and st["recalls"] >= 1, "fault/recall counters")
        ps = proc_stats()
        for k in ps:
            eq(st[k], ps[k], f"stats.{k} vs /proc/xpmem/stats")

    @test("show-json")
    def _():
        doc = xjson("show", fx.segid)
        eq(sorted(doc), ["attachments", "permits", "segment"], "top-level keys")
        eq(doc["segment"], by_segid(xjson("segments")["segments"])[fx.segid], "segment")
        eq([a["apid"] for a in doc["permits"]], [fx.apid], "permits")
        eq([(a["pid"], a["vaddr"]) for a in doc["attachments"]],
           [(fx.attacher, fx.num("att_vaddr"))], "attachments")
        doc = xjson("show", fx.segid2[2:])  # without 0x
        eq(doc["segment"]["segid"], fx.segid2, "show without 0x")
        eq((doc["permits"], doc["attachments"]), ([], []), "segment 2 has nothing")

    @test("show-unknown-segid")
    def _():
        p = xpmemctl("show", "0x1", want_rc=4)
        eq(p.stderr, "xpmemctl: segment 0x1 not found\n", "stderr")
        eq(p.stdout, "", "stdout")
        xpmemctl("show", "0x1", "--json", want_rc=4)

    @test("filter-segid")
    def _():
        eq([s["segid"] for s in xjson("segments", "--segid", fx.segid)["segments"]],
           [fx.segid], "segments")
        eq([a["apid"] for a in xjson("permits", "-s", fx.segid)["permits"]], [fx.apid], "permits")
        eq([a["segid"] for a in xjson("attachments", "--segid", fx.segid)["attachments"]],
           [fx.segid], "attachments")
        eq(xjson("permits", "--segid", fx.segid2)["permits"], [], "permits of segment 2")

    @test("filter-pid")
    def _():
        eq(sorted(s["segid"] for s in xjson("segments", "--pid", fx.exporter)["segments"]),
           sorted([fx.segid, fx.segid2]), "segments of the exporter")
        eq(xjson("segments", "--pid", fx.attacher)["segments"], [], "segments of the attacher")
        eq([a["apid"] for a in xjson("permits", "--pid", fx.attacher)["permits"]], [fx.apid],
           "permits of the attacher")
        eq(xjson("permits", "--pid", fx.exporter)["permits"], [], "permits of the exporter")
        eq(len(xjson("attachments", "-p", fx.attacher)["attachments"]), 1, "attachments")
        eq(xjson("attachments", "--pid", fx.controller)["attachments"], [], "controller")

    @test("filter-uid")
    def _():
        eq(sorted(s["segid"] for s in xjson("segments", "--uid", 0)["segments"]),
           sorted(s["segid"] for s in xjson("segments")["segments"]), "uid 0")
        eq(xjson("segments", "--uid", "root")["segments"], xjson("segments", "-u", 0)["segments"],
           "uid by name")
        eq(xjson("segments", "--uid", USER)["segments"], [], f"uid {USER}")
        eq(xjson("permits", "--uid", USER)["permits"], [], f"permits of uid {USER}")
        eq(xjson("attachments", "--uid", USER)["attachments"], [], f"attachments of uid {USER}")
        eq(xjson("segments", "--uid", 0, "--segid", fx.segid2)["segments"][0]["segid"],
           fx.segid2, "uid and segid combined")

    @test("segments-human")
    def _():
        head, rows, lines = table(xpmemctl("segments").stdout)
        eq(head, SEGMENT_COLUMNS, "columns")
        row = [r for r in rows if r[0] == fx.segid]
        eq(len(row), 1, "rows of segment 1")
        eq(row[0], [fx.segid, str(fx.exporter), "xf-exporter", "0", fx.state["seg_start"],
                    f"{fx.num('seg_size') // 1024}K", "0640", "no", "1", "1", str(touched), "1",
                    f"{(touched - 1) * page // 1024}K", "0%", "0", "0B"],
           "row")
        # libsmartcols aligns: the last column is right-aligned, so lines are equally long.
        eq(len(set(len(ln) for ln in lines)), 1, "all lines equally wide")
        _, rows, _ = table(xpmemctl("segments", "--bytes").stdout)
        eq([r[5] for r in rows if r[0] == fx.segid], [fx.state["seg_size"]], "--bytes size")

    @test("permits-human")
    def _():
        head, rows, _ = table(xpmemctl("permits").stdout)
        eq(head, PERMIT_COLUMNS, "columns")
        eq([r for r in rows if r[0] == fx.apid],
           [[fx.apid, fx.segid, str(fx.attacher), "xf-attacher", "0", "rdonly"]], "row")

    @test("attachments-human")
    def _():
        head, rows, _ = table(xpmemctl("attachments").stdout)
        eq(head, ATTACHMENT_COLUMNS, "columns")
        eq([r for r in rows if r[3] == fx.segid],
           [[str(fx.attacher), "xf-attacher", "0", fx.segid, fx.state["att_vaddr"],
             f"{fx.num('att_size') // 1024}K", f"{fx.num('att_offset') // 1024}K", "rdonly",
             "1", str(touched), "1", str(touched - 1), "0", "0", "-"]], "row")

    @test("stats-human")
    def _():
        head, rows, _ = table(xpmemctl("stats").stdout)
        eq(head, ["COUNTER", "VALUE", "DESCRIPTION"], "columns")
        eq([r[0] for r in rows], STATS_FIELDS, "counter names")
        st = xjson("stats")["stats"]
        for r in rows:
            if r[0] in ("makes", "pinned_pages", "segments_live"):
                eq(int(r[1]), st[r[0]], r[0])

    @test("show-human")
    def _():
        out = xpmemctl("show", fx.segid).stdout
        fields = dict(re.findall(r"^(\w[\w/]*):\s+(.*?)\s*$", out, re.M))
        eq(fields.get("segid"), fx.segid, "segid")
        eq(fields.get("owner"), f"{fx.exporter} (xf-exporter)", "owner")
        eq(fields.get("mode"), "0640", "mode")
        eq(fields.get("removed"), "no", "removed")
        eq(fields.get("faults"), f"{touched} (0 mapped 2 MiB or 1 GiB)", "faults")
        expect(re.search(rf"^mapped now:\s+{touched - 1} x 4 KiB, 0 x 2 MiB, 0 x 1 GiB\s*$", out, re.M),
               "mapped now")
        expect(re.search(r"^other nodes:\s+0 permits on 0 nodes, 0 pages pinned\s*$", out, re.M),
               "other nodes")
        expect("Permits (1 visible):" in out and "Attachments (1 visible):" in out, "sections")
        expect(re.search(rf"^{fx.apid} +{fx.segid} +{fx.attacher} ", out, re.M), "permit row")

    @test("watch")
    def _():
        p = xpmemctl("watch", "--interval", "0.2", "--count", "3", "--json")
        docs = [json.loads(ln) for ln in p.stdout.splitlines()]
        eq(len(docs), 3, "refreshes")
        eq([d["refresh"] for d in docs], [1, 2, 3], "refresh numbers")
        for d in docs:
            eq(sorted(d), ["refresh", "segments", "stats", "time"], "keys")
            eq(list(d["stats"]), STATS_FIELDS, "stats keys")
            expect(fx.segid in by_segid(d["segments"]), "segment listed")
        expect(docs[2]["time"] >= docs[0]["time"], "time runs forward")
        p = xpmemctl("watch", "-i", "0.1", "-c", "2", "--segid", fx.segid2)
        eq(p.stdout.count("xpmemctl watch: every 0.1s"), 2, "human refreshes")
        expect(fx.segid2 in p.stdout and fx.segid not in p.stdout, "watch --segid")
        expect("SEGMENTS PERMITS ATTACHMENTS" in p.stdout, "stats header")

    @test("version")
    def _():
        fd = os.open("/dev/xpmem", os.O_RDONLY)
        try:
            iv = fcntl.ioctl(fd, ord("x") << 8)  # XPMEM_CMD_VERSION = _IO('x', 0)
        finally:
            os.close(fd)
        lines = xpmemctl("--version").stdout.splitlines()
        eq(len(lines), 2, "lines")
        expect(re.fullmatch(r"xpmemctl \d+\.\d+\.\d+", lines[0]), f"tool line {lines[0]!r}")
        eq(lines[1], f"kernel interface 0x{iv:08x}", "interface line")
        eq(xjson("--version"), {"version": lines[0].split()[1],
                                "interface_version": f"0x{iv:08x}"}, "--version --json")

    @test("usage-errors")
    def _():
        cases = [
            ([], "no command given"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["show"], "show: missing SEGID"),
            (["show", "xyz"], "invalid segid 'xyz'"),
            (["show", "0"], "invalid segid '0'"),
            (["segments", "--segid", "0x0x1"], "invalid segid"),
            (["segments", "extra"], "unexpected argument 'extra'"),
            (["segments", "--count", "2"], "--count is for watch and ping only"),
            (["segments", "--interval", "2"], "--interval is for watch only"),
            (["ping"], "ping: missing NODE"),
            (["ping", "0"], "ping: invalid node '0' (1..2047)"),
            (["ping", "2048"], "ping: invalid node '2048'"),
            (["nodes", "--segid", "1"], "are for segments, permits, attachments and watch"),
            (["stats", "--pid", "1"], "are for segments, permits, attachments and watch"),
            (["watch", "--count", "0"], "invalid count '0'"),
            (["watch", "--interval", "-1"], "invalid interval '-1'"),
            (["segments", "--pid", "abc"], "invalid pid 'abc'"),
            (["segments", "--uid", "no-such-user-xpmem"], "unknown user"),
            (["--version", "segments"], "--version takes no command"),
            (["segments", "--bogus"], "unrecognized option"),
        ]
        for args, msg in cases:
            p = xpmemctl(*args, want_rc=1)
            expect(msg in p.stderr, f"xpmemctl {' '.join(args)}: stderr {p.stderr!r} lacks {msg!r}")
            eq(p.stdout, "", f"xpmemctl {' '.join(args)}: stdout")
        p = xpmemctl("--help")
        expect(p.stdout.startswith("Usage:"), "--help")

    @test("nodes-outside-a-fabric")
    def _():
        # No xpmemd has joined: no node records, and nothing can be pinged.
        eq(xjson("nodes"), {"nodes": []}, "nodes --json")
        eq(xpmemctl("nodes").stdout, "not in a fabric (no xpmemd has joined this node)\n", "nodes")
        p = xpmemctl("ping", "2", want_rc=5)
        expect("no xpmemd runs on this node" in p.stderr, f"ping stderr {p.stderr!r}")
        p = xpmemctl("ping", "2", user=True, want_rc=3)
        expect("Operation not permitted" in p.stderr, f"ping as a user: stderr {p.stderr!r}")

    @test("module-not-loaded")
    def _():
        for cmd in (["segments"], ["stats", "--json"], ["show", "0x1"], ["--version"]):
            p = xpmemctl(*cmd, env={"XPMEMCTL_DEVICE": "/nonexistent/xpmem"}, want_rc=2)
            expect(p.stderr.endswith(
                "xpmemctl: /nonexistent/xpmem not found: is the xpmem module loaded?\n"),
                f"{cmd}: stderr {p.stderr!r}")
        # The real path, in a private mount namespace where /dev has no xpmem node.
        if shutil.which("unshare"):
            p = subprocess.run(["unshare", "--mount", "sh", "-c",
                                f"mount -t tmpfs none /dev && exec {TOOL} segments"],
                               capture_output=True, text=True, timeout=60)
            eq(p.returncode, 2, f"exit status (stderr {p.stderr!r})")
            eq(p.stderr, "xpmemctl: /dev/xpmem not found: is the xpmem module loaded?\n",
               "stderr")

    @test("not-an-xpmem-device")
    def _():
        p = xpmemctl("segments", env={"XPMEMCTL_DEVICE": "/dev/null"}, want_rc=5)
        expect("XPMEM_CMD_QUERY" in p.stderr and "Inappropriate ioctl" in p.stderr,
               f"stderr {p.stderr!r}")

    @test("permission-denied")
    def _():
        st = os.stat("/dev/xpmem")
        d = tempfile.mkdtemp(prefix="xpmemctl-")
        try:
            os.chmod(d, 0o755)
            node = os.path.join(d, "xpmem")
            os.mknod(node, 0o600 | stat.S_IFCHR, st.st_rdev)
            os.chmod(node, 0o600)
            p = xpmemctl("segments", user=True, env={"XPMEMCTL_DEVICE": node}, want_rc=3)
            eq(p.stderr, f"xpmemctl: {node}: open: Permission denied\n", "stderr")
            # Root may open it: the same node answers queries.
            xpmemctl("stats", env={"XPMEMCTL_DEVICE": node})
        finally:
            shutil.rmtree(d)


def run_user_tests(root, user):
    mine = {user.segid, user.segid2}
    theirs = {root.segid, root.segid2}

    @test("nonroot-sees-own-segments-only")
    def _():
        segs = by_segid(xjson("segments", user=True)["segments"])
        eq(set(segs), mine, "segments visible to the user")
        s = segs[user.segid]
        eq((s["owner_pid"], s["owner_uid"], s["owner_gid"], s["mode"], s["size"], s["faults"],
            s["recalls"], s["permits"], s["attachments"]),
           (user.exporter, USER, USER, "0604", 6 * user.page, 2, 1, 1, 1), "user's segment")

    @test("nonroot-sees-own-permits-and-attachments-only")
    def _():
        eq([a["apid"] for a in xjson("permits", user=True)["permits"]], [user.apid], "permits")
        atts = xjson("attachments", user=True)["attachments"]
        eq([(a["pid"], a["uid"], a["segid"], a["offset"], a["size"]) for a in atts],
           [(user.attacher, USER, user.segid, user.page, 2 * user.page)], "attachments")

    @test("nonroot-show-and-filters")
    def _():
        p = xpmemctl("show", root.segid, user=True, want_rc=4)
        eq(p.stderr, f"xpmemctl: segment {root.segid} not found\n", "show of root's segment")
        eq(xjson("show", user.segid, user=True)["segment"]["segid"], user.segid, "own show")
        eq(xjson("segments", "--pid", root.exporter, user=True)["segments"], [],
           "--pid of root's exporter")
        eq(xjson("segments", "--segid", root.segid, user=True)["segments"], [],
           "--segid of root's segment")
        eq(set(xjson("stats", user=True)["stats"]), set(STATS_FIELDS), "stats for everyone")

    @test("root-sees-all")
    def _():
        segs = set(by_segid(xjson("segments")["segments"]))
        expect(mine | theirs <= segs, "root misses segments")
        eq(set(by_segid(xjson("segments", "--uid", USER)["segments"])), mine, "--uid user")
        eq(set(by_segid(xjson("segments", "--uid", 0)["segments"])), theirs, "--uid 0")
        eq({a["apid"] for a in xjson("permits")["permits"]}, {root.apid, user.apid}, "permits")


def run_lifecycle_tests(root, user):
    touched = root.num("touched")

    @test("recall-counts")
    def _():
        root.command("recall")
        s = by_segid(xjson("segments")["segments"])[root.segid]
        eq((s["faults"], s["recalls"], s["mapped_4k"]), (touched, 2, touched - 1),
           "segment faults/recalls/mapped")
        a = xjson("attachments", "--segid", root.segid)["attachments"]
        eq([(x["faults"], x["recalls"]) for x in a], [(touched, 2)], "attachment")

    @test("removed-segment")
    def _():
        root.command("remove")
        s = by_segid(xjson("segments")["segments"])[root.segid]
        eq((s["removed"], s["permits"], s["attachments"], s["recalls"], s["mapped_4k"]),
           (True, 1, 1, 3, 0), "removed segment kept by its permit, nothing mapped")
        head, rows, _ = table(xpmemctl("segments", "--segid", root.segid).stdout)
        eq(rows[0][SEGMENT_COLUMNS.index("REMOVED")], "yes", "REMOVED column")
        eq(xjson("show", root.segid)["segment"]["removed"], True, "show of a removed segment")

    @test("exporter-gone")
    def _():
        root.command("exit-exporter")
        segs = by_segid(xjson("segments")["segments"])
        expect(root.segid2 not in segs, "unused segment 2 outlived its exporter")
        s = segs.get(root.segid)
        expect(s and s["removed"], "segment 1 must stay (permit held), removed")
        eq(s["owner_pid"], 0, "owner_pid of a segment whose exporter exited")

    @test("objects-gone-after-exit")
    def _():
        eq(root.stop(), 0, "root fixture exit status")
        eq(user.stop(), 0, "user fixture exit status")
        segs = by_segid(xjson("segments")["segments"])
        expect(not ({root.segid, root.segid2, user.segid, user.segid2} & set(segs)),
               "segments outlived their processes")
        eq(xjson("permits")["permits"], [], "permits")
        eq(xjson("attachments")["attachments"], [], "attachments")
        st = xjson("stats")["stats"]
        eq((st["segments_live"], st["accesses_live"], st["attachments_live"]), (0, 0, 0), "live")


def run_end_tests():
    @test("empty-listings")
    def _():
        head, rows, _ = table(xpmemctl("segments").stdout)
        eq((head, rows), (SEGMENT_COLUMNS, []), "empty segments table")
        eq(xjson("segments"), {"segments": []}, "empty JSON")


if __name__ == "__main__":
    sys.exit(main())
