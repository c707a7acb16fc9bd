#!/usr/bin/python3
"""Plot NetPIPE results of run-mpi.sh: bandwidth and latency per transport.

    plot-bench.py OUT.png BENCH.json [BENCH.json...]

Each JSON is a run-mpi.sh --bench-out mpi-bench.json (one guest, one kernel); every
kernel gets a row: bandwidth (Mbit/s) and one-way latency (us) over message size,
one line per transport (vader xpmem / vader CMA / UCX xpmem / UCX CMA / MPICH UCX).
Also prints, per file, the xpmem/CMA bandwidth ratios at a few sizes.
"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "vader-xpmem": ("tab:blue", "-", "Open MPI vader, xpmem"),
    "vader-cma": ("tab:blue", "--", "Open MPI vader, CMA"),
    "ompi-ucx": ("tab:orange", "-", "Open MPI pml ucx, xpmem"),
    "ompi-ucx-cma": ("tab:orange", "--", "Open MPI pml ucx, CMA"),
    "mpich-ucx": ("tab:green", "-", "MPICH ch4:ucx, xpmem"),
}


def ratios(runs):
    out = []
    for a, b in (("vader-xpmem", "vader-cma"), ("ompi-ucx", "ompi-ucx-cma")):
        if a not in runs or b not in runs:
            continue
        bb = {p["bytes"]: p for p in runs[b]}
        for p in runs[a]:
            if p["bytes"] in (65536, 1 << 20, 4 << 20, 8 << 20) and p["bytes"] in bb:
                out.append("%s/%s at %d B: %.2fx bandwidth" % (
                    a, b, p["bytes"], p["mbps"] / max(bb[p["bytes"]]["mbps"], 1e-9)))
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, files = sys.argv[1], sys.argv[2:]
    data = [json.load(open(f)) for f in files]
    fig, axes = plt.subplots(len(data), 2, figsize=(12, 4.2 * len(data)), squeeze=False)
    for row, d in zip(axes, data):
        for name in sorted(d["runs"]):
            pts = [p for p in d["runs"][name] if p["bytes"] > 0]
            if not pts:
                continue
            color, ls, label = STYLE.get(name, (None, "-", name))
            x = [p["bytes"] for p in pts]
            row[0].plot(x, [p["mbps"] for p in pts], color=color, ls=ls, marker=".", label=label)
            row[1].plot(x, [p["usec"] for p in pts], color=color, ls=ls, marker=".", label=label)
        for ax, yl in zip(row, ("bandwidth (Mbit/s)", "one-way time (us)")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("message size (bytes)")
            ax.set_ylabel(yl)
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title("%s, kernel %s (QEMU TCG guest)" % (yl.split(" (")[0], d.get("kernel", "?")))
        row[1].set_yscale("log")
        row[0].legend(fontsize=8)
        for line in ratios(d["runs"]):
            print("mpi-bench: %s: %s" % (d.get("kernel", "?"), line))
    fig.suptitle("NetPIPE NPmpi ping-pong, 2 ranks")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print("mpi-bench: plot written to %s" % out)


main()
