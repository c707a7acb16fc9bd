#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Draw the plots of an xpmem-bench JSON document.

Usage: plot.py BENCH_JSON OUT_DIR

Writes OUT_DIR/bandwidth.png, populate.png, recall.png, attach.png, teardown.png
(each only if the JSON has the benchmark). Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402


def size_label(b, _pos=None):
    b = int(b)
    if b >= 1 << 20:
        return f"{b >> 20} MiB"
    if b >= 1 << 10:
        return f"{b >> 10} KiB"
    return f"{b} B"


def subtitle(doc):
    env = doc.get("env", {})
    params = ", ".join(f"{k}={v}" for k, v in env.get("module_params", {}).items())
    return (f"kernel {env.get('kernel', '?')}, {env.get('cpus', '?')} CPUs (emulated guest: compare ratios only)"
            + (f"; module: {params}" if params else ""))


def finish(fig, ax, doc, title, path, bottom=0.03):
    ax.set_title(title, fontsize=12)
    fig.text(0.5, 0.01, subtitle(doc), ha="center", fontsize=8, color="dimgray")
    ax.grid(True, which="major", alpha=0.35)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bandwidth(doc, out):
    rows = doc["copy"]
    x = [r["bytes"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5.4))
    for key, label, style in (("xpmem_mib_s", "xpmem attachment (memcpy, pages mapped)", "o-"),
                              ("memcpy_mib_s", "local memcpy", "s--"),
                              ("cma_mib_s", "process_vm_readv (CMA)", "^:")):
        ax.plot(x, [r[key] for r in rows], style, label=label, linewidth=2, markersize=6)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(size_label))
    ax.set_xticks(x)
    ax.set_xlabel("bytes per copy")
    ax.set_ylabel("MiB/s (log)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8, frameon=False)
    fig.text(0.5, 0.045, "memcpy picks its method by size and address (xpmem and local use the same "
             "addresses); emulators run some methods, e.g. rep movsb, far slower", ha="center",
             fontsize=7.5, color="dimgray")
    finish(fig, ax, doc, "Copy bandwidth: reading another process's memory", f"{out}/bandwidth.png",
           bottom=0.08)


def plot_populate(doc, out):
    pop = doc["populate"]
    loc = pop["local_first_touch"]
    labels = ["local first touch, 4 KiB", "local first touch, THP"]
    rates = [loc["pages_per_s_4k"], loc["pages_per_s_thp"]]
    colors = ["gray", "silver"]
    palette = {"default": "tab:blue"}
    extra = ["tab:orange", "tab:green", "tab:red"]
    for r in pop["runs"]:
        if r["settings"] not in palette:
            palette[r["settings"]] = extra[(len(palette) - 1) % len(extra)]
        src = "THP source" if r["source"] == "thp" else "4 KiB source"
        labels.append(f"{r['settings']}: {src}, {r['touch']}")
        rates.append(r["pages_per_s"])
        colors.append(palette[r["settings"]])
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(labels) + 1.6))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, rates, color=colors)
    base = loc["pages_per_s_4k"]
    for yi, v in zip(y, rates):
        ax.text(v, yi, f" {v:,.0f}/s  ({v / base:.2f}x)", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=9)
    ax.set_xlabel("pages per second (ratio to a local first touch of 4 KiB pages)")
    ax.set_xlim(0, max(rates) * 1.35)
    finish(fig, ax, doc, f"Populate: attach {pop['mib']} MiB and touch every page", f"{out}/populate.png")


def plot_recall(doc, out):
    rows = doc["recall"]
    sizes = sorted({r["bytes"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, s in enumerate(sizes):
        color = f"C{i}"
        pts = sorted((r["attachers"], r["us"]) for r in rows if r["bytes"] == s and r["attachers"] >= 0)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, linewidth=2,
                label=f"munmap {size_label(s)}")
        base = [r["us"] for r in rows if r["bytes"] == s and r["attachers"] < 0]
        if base:
            ax.axhline(base[0], color=color, linestyle=":", linewidth=1.2,
                       label=f"munmap {size_label(s)} without xpmem")
    counts = sorted({r["attachers"] for r in rows if r["attachers"] >= 0})
    ax.set_xscale("symlog", base=2, linthresh=1)
    ax.set_xticks(counts)
    ax.set_xticklabels([str(c) for c in counts])
    ax.set_yscale("log")
    ax.set_xlabel("attacher processes with every page mapped (0: exported, not attached)")
    ax.set_ylabel("exporter's munmap, microseconds (log)")
    ax.legend(fontsize=8)
    finish(fig, ax, doc, "Recall latency: exporter munmap vs attachers", f"{out}/recall.png")


def plot_attach(doc, out):
    rows = doc["attach_detach"]
    x = [r["bytes"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(x, [r["us"] for r in rows], "o-", linewidth=2, label="attach + detach")
    if all("prefault_us" in r for r in rows):
        ax.plot(x, [r["prefault_us"] for r in rows], "s--", linewidth=2,
                label="attach with XPMEM_ATTACH_PREFAULT + detach")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(size_label))
    ax.set_xticks(x[::2])
    ax.set_xlabel("window size")
    ax.set_ylabel("microseconds per pair (log)")
    ax.legend()
    finish(fig, ax, doc, "Attach + detach latency", f"{out}/attach.png")


def plot_teardown(doc, out):
    rows = doc["teardown"]["runs"]
    x = [r["attachments"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(x, [r["exit_ms"] for r in rows], "o-", linewidth=2, label="one-page attachments")
    ax.plot(x, [r["plain_mappings_exit_ms"] for r in rows], "s--", linewidth=2,
            label="plain one-page mappings")
    lin = [rows[0]["exit_ms"] * n / x[0] for n in x]
    ax.plot(x, lin, ":", color="gray", label="linear from the first point")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mappings held by the exiting process")
    ax.set_ylabel("SIGKILL to reaped, ms (log)")
    ax.legend()
    finish(fig, ax, doc, "Teardown: exit of a process holding many attachments", f"{out}/teardown.png")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    done = []
    for key, fn in (("copy", plot_bandwidth), ("populate", plot_populate), ("recall", plot_recall),
                    ("attach_detach", plot_attach), ("teardown", plot_teardown)):
        if key in doc:
            fn(doc, out)
            done.append(fn.__name__[5:])
    print("plot: " + ", ".join(done))


if __name__ == "__main__":
    main()
