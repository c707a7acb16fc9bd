#!/usr/bin/env python3
"""The two-node part of `make demo`, run in both guests of tests/lab/run-fabric.sh.

Node 1 exports 4 MiB and attaches it itself; node 2 attaches the same segment
through its window onto node 1's RAM. Both write, both read each other's stores,
then node 1's exporter replaces a page both attachers have mapped: its mmap returns
only once node 2 has dropped the old page (the live recall, with its latency), and
node 2 reads the new page. xpmemctl shows the fabric and the objects on each node.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fabric_nodes import Lab, Side, expect, wait_for  # noqa: E402

WORD_PAGE2 = 2 * 4096 // 8


def say(lab, text):
    print(f"== node {lab.fid}: {text}", flush=True)


def show(lab, *args):
    out = lab.ctl(*args).stdout.rstrip()
    print(f"$ xpmemctl {' '.join(args)}\n{out}", flush=True)


def stats(lab):
    return json.loads(lab.ctl("stats", "--json").stdout)["stats"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--ko", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    args.daemon = "xpmemd"
    lab = Lab(args)
    lab.join()
    say(lab, "xpmemd joined; the peer's window is proven by its beacon")
    show(lab, "nodes")
    lab.barrier("up")

    segid = "-"
    if lab.fid == 1:
        exp = Side(args.build)
        segid = exp("make 4 0644").split()[1]
        say(lab, f"exported 4 MiB as segid {segid} (node bits: {int(segid, 16) >> 52})")
        local = Side(args.build)
        expect(local(f"attach {segid} 4 rw") == "ok", "local attach")
        expect(local("set 100 0x1111") == "ok", "local store")
        say(lab, "a local attacher stored 0x1111 at word 100")
    segid = lab.barrier("exported", segid)[1]
    if lab.fid == 2:
        remote = Side(args.build)
        expect(remote(f"attach {segid} 4 rw") == "ok", "remote attach")
        say(lab, f"attached node 1's segment {segid}: {remote('check')} against the pattern "
                 "(only word 100 differs)")
        say(lab, f"word 100 reads {remote('get 100').split()[1]} (node 1's store)")
        remote("set 200 0x2222")
        say(lab, f"stored 0x2222 at word 200; page 2 word 0 is {remote(f'get {WORD_PAGE2}').split()[1]}")
    lab.barrier("remote-mapped")
    if lab.fid == 1:
        say(lab, f"the exporter reads word 200: {exp('get 200').split()[1]} (node 2's store)")
        local(f"get {WORD_PAGE2}")
        show(lab, "segments")
        show(lab, "attachments")
        before = stats(lab)["recalls"]
        took = int(exp("replace 2 0x7777").split()[1])
        say(lab, f"the exporter put a new page at page 2: its mmap took {took / 1e6:.2f} ms, "
                 "including the recall of node 2's mapping (RECALL, zap, TLB flush, acknowledgment)")
        show(lab, "stats")
        expect(stats(lab)["recalls"] > before, "the recall was not counted")
    lab.barrier("replaced")
    if lab.fid == 2:
        say(lab, f"page 2 word 0 now reads {remote(f'get {WORD_PAGE2}').split()[1]}: "
                 "the new page, never the old one")
        show(lab, "permits")
        show(lab, "attachments")  # NODE: the segment is node 1's
        show(lab, "nodes")
        remote("detach")
        remote.close()
    lab.barrier("detached")
    if lab.fid == 1:
        local("detach")
        local.close()
        exp.close()
        wait_for("granted pages given back", lambda: stats(lab)["pinned_pages"] == 0, 30)
        say(lab, "everything detached; no page is pinned any more")
        show(lab, "nodes")
    lab.barrier("done")
    lab.stop_daemon()
    time.sleep(0.5)
    subprocess.run(["rmmod", "xpmem"], check=True)
    say(lab, "module unloaded")


if __name__ == "__main__":
    main()
