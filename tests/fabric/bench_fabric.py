#!/usr/bin/env python3
"""Fabric part of `make bench`, run in both guests of tests/lab/run-fabric.sh.

Side by side in one run, on node 1's segment:
  populate  first touch of every page of a 16 MiB attachment (faults, fault_around
            pages each): a local attacher on node 1 against a remote one on node 2
            (its faults ask node 1 through both daemons, then map through its window)
  recall    the exporter's mmap over one page that attachers have mapped: by a
            local attacher only, against by it and node 2's remote one (RECALL to
            node 2, zap, TLB flush, acknowledgment, all inside the exporter's mmap)
  ping      kernel-to-kernel round trip (xpmemctl ping), for scale
Node 1 prints the ratios (remote / local) and writes them as JSON (--out on node 1,
a path under /xpmem-out). Guests are emulated (TCG): only the ratios mean much.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fabric_nodes import Lab, Side, expect  # noqa: E402

MB = 16
ROUNDS = 5
RECALLS = 15


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--ko", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--out", default="/xpmem-out/fabric-bench.json")
    args = ap.parse_args()
    args.daemon = "xpmemd"
    lab = Lab(args)
    lab.join()
    lab.barrier("up")
    one = lab.fid == 1
    res = {"populate_local_ns": [], "populate_remote_ns": [], "recall_local_ns": [],
           "recall_remote_ns": []}

    for rnd in range(ROUNDS):
        segid = "-"
        if one:
            exp = Side(args.build)
            segid = exp(f"make {MB} 0644").split()[1]
            local = Side(args.build)
            expect(local(f"attach {segid} {MB} rw") == "ok", "local attach")
            res["populate_local_ns"].append(int(local("touch").split()[1]))
            # Pages 1..RECALLS: mapped by the local attacher only.
            for page in range(1, 1 + RECALLS):
                local(f"get {page * 512}")
                res["recall_local_ns"].append(int(exp(f"replace {page} {page}").split()[1]))
        segid = lab.barrier(f"made-{rnd}", segid)[1]
        got = "-"
        if not one:
            remote = Side(args.build)
            expect(remote(f"attach {segid} {MB} ro") == "ok", "remote attach")
            got = remote("touch")
            expect(got.startswith("touched "), f"remote touch: {got}")
            got = got.split()[1]
        data = lab.barrier(f"touched-{rnd}", got)
        if one:
            res["populate_remote_ns"].append(int(data[2]))
        # Pages after those: mapped by both attachers, node 2's through its window.
        for page in range(1 + RECALLS, 1 + 2 * RECALLS):
            if not one:
                remote(f"get {page * 512}")
            lab.barrier(f"mapped-{rnd}-{page}")
            if one:
                local(f"get {page * 512}")
                res["recall_remote_ns"].append(int(exp(f"replace {page} {page}").split()[1]))
            lab.barrier(f"replaced-{rnd}-{page}")
        if not one:
            remote("detach")
            remote.close()
        lab.barrier(f"detached-{rnd}")
        if one:
            local("detach")
            local.close()
            exp.close()
    if one:
        ping = json.loads(lab.ctl("ping", 2, "--count", 20, "--json").stdout)["rtt_ns"]
        med = {k: statistics.median(v) for k, v in res.items()}
        out = {
            "kernel": os.uname().release,
            "segment_mb": MB,
            "rounds": ROUNDS,
            "median_ns": med,
            "ping_median_ns": statistics.median(ping),
            "populate_remote_over_local": med["populate_remote_ns"] / med["populate_local_ns"],
            "recall_remote_over_local": med["recall_remote_ns"] / med["recall_local_ns"],
            "samples_ns": res,
        }
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
        pages = MB * 256
        print(f"fabric-bench: populate {MB} MiB ({pages} pages): local "
              f"{med['populate_local_ns'] / 1e6:.1f} ms, remote {med['populate_remote_ns'] / 1e6:.1f} ms"
              f" -> remote/local {out['populate_remote_over_local']:.2f}", flush=True)
        print(f"fabric-bench: recall of one page: local attacher {med['recall_local_ns'] / 1e3:.0f} us,"
              f" with a remote attacher {med['recall_remote_ns'] / 1e3:.0f} us"
              f" -> remote/local {out['recall_remote_over_local']:.2f}", flush=True)
        print(f"fabric-bench: kernel ping round trip {out['ping_median_ns'] / 1e3:.0f} us (median of 20)",
              flush=True)
    lab.barrier("done")
    lab.stop_daemon()
    subprocess.run(["rmmod", "xpmem"], check=True)


if __name__ == "__main__":
    main()
