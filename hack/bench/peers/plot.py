#!/usr/bin/python3
"""Chart and markdown table of the peers benchmark (hack/bench/peers/run-peers.sh).

    plot.py RESULTS.jsonl OUT.png OUT.md

RESULTS.jsonl has one JSON line per system and case (the lines the run printed). The table goes to OUT.md and to
stdout; the chart (matplotlib, Debian's python3-matplotlib) to OUT.png.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label(r):
    if r["system"] == "gasoline":
        return "gasoline ({} kv)".format(r.get("replicas", 1))
    return r["system"]


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, float) and digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, digits) if isinstance(v, (int, float)) else str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return "{:.2f}×".format(a / b)


def main():
    src, png, md = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = {}
    order = []
    for line in open(src):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        name = label(r)
        if name not in rows:
            rows[name] = {}
            order.append(name)
        rows[name][r["case"]] = r

    def get(name, case, key):
        return rows.get(name, {}).get(case, {}).get(key)

    metrics = [
        ("A jobs/s", "A", "jobs_per_s", True),
        ("B wf/s", "B", "wf_per_s", True),
        ("B lateness p50 ms", "B", "lateness_p50_ms", False),
        ("B lateness p99 ms", "B", "lateness_p99_ms", False),
        ("C hop lateness p50 ms", "C", "lateness_p50_ms", False),
        ("C hop lateness p99 ms", "C", "lateness_p99_ms", False),
        ("C noop pickup p50 ms", "C", "pickup_p50_ms", False),
        ("C noop pickup p99 ms", "C", "pickup_p99_ms", False),
        ("D takeover s (cap 60)", "D", "takeover_s", False),
    ]
    out = []
    out.append("| metric | " + " | ".join(order) + " |")
    out.append("|---|" + "---|" * len(order))
    for title, case, key, _ in metrics:
        cells = []
        for n in order:
            v = get(n, case, key)
            cells.append(fmt(v, 2 if key == "takeover_s" else 0) if v is not None else
                         ("none within cap" if key == "takeover_s" and case in rows.get(n, {}) else "–"))
        out.append("| {} | {} |".format(title, " | ".join(cells)))
    dups = [str(sum(r.get("duplicates", 0) for r in rows[n].values())) for n in order]
    out.append("| duplicates (all cases) | {} |".format(" | ".join(dups)))
    for case in "ABCD":
        cells = [fmt(get(n, case, "cpu_us_per_step") and get(n, case, "cpu_us_per_step").get("total")) for n in order]
        out.append("| CPU µs/step {} (all processes) | {} |".format(case, " | ".join(cells)))

    # Ratios of the gasoline rows against the peers, for the throughput cases (higher is better).
    ratios = []
    gas = [n for n in order if n.startswith("gasoline")]
    peers = [n for n in order if not n.startswith("gasoline")]
    if gas and peers:
        ratios.append("")
        ratios.append("| throughput ratio | " + " | ".join("vs " + p for p in peers) + " |")
        ratios.append("|---|" + "---|" * len(peers))
        for g in gas:
            for title, case, key, higher in metrics[:2]:
                ratios.append("| {} {} | {} |".format(g, title, " | ".join(
                    ratio(get(g, case, key), get(p, case, key)) for p in peers)))

    # CPU per step by process group.
    cpu = ["", "| CPU µs per step (store / workers / apps / load generator) | A | B | C | D |", "|---|---|---|---|---|"]
    for n in order:
        cells = []
        for case in "ABCD":
            c = get(n, case, "cpu_us_per_step") or {}
            cells.append(" / ".join(fmt(c.get(g)) for g in ("store", "workers", "apps", "loadgen")))
        cpu.append("| {} | {} |".format(n, " | ".join(cells)))

    text = "\n".join(out + ratios + cpu) + "\n"
    with open(md, "w") as f:
        f.write(text)
    print(text)

    def size(case, key):
        for n in order:
            if get(n, case, key) is not None:
                return "{:,}".format(get(n, case, key))
        return "?"

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = [
        ("A: {} noop due at once (jobs/s, higher is better)".format(size("A", "n")), [("jobs/s", "A", "jobs_per_s")]),
        ("B: {} timer hops due at once (wf/s, higher is better)".format(size("B", "n")), [("wf/s", "B", "wf_per_s")]),
        ("B: hop lateness (ms, lower is better)", [("p50", "B", "lateness_p50_ms"), ("p99", "B", "lateness_p99_ms")]),
        ("C: light load (ms, lower is better)", [("hop p50", "C", "lateness_p50_ms"), ("hop p99", "C", "lateness_p99_ms"),
                                                 ("pickup p50", "C", "pickup_p50_ms"), ("pickup p99", "C", "pickup_p99_ms")]),
        ("D: takeover after kill -9 (s, lower is better; cap 60)", [("takeover", "D", "takeover_s")]),
        ("CPU µs per step, case A (lower is better)", [("store", "A", "cpu:store"), ("workers", "A", "cpu:workers"),
                                                        ("apps", "A", "cpu:apps"), ("loadgen", "A", "cpu:loadgen")]),
    ]
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
    for ax, (title, series) in zip(axes.flat, panels):
        width = 0.8 / len(series)
        for si, (sname, case, key) in enumerate(series):
            vals = []
            for n in order:
                if key.startswith("cpu:"):
                    v = (get(n, case, "cpu_us_per_step") or {}).get(key[4:])
                else:
                    v = get(n, case, key)
                vals.append(v)
            xs = [i + si * width - 0.4 + width / 2 for i in range(len(order))]
            bars = ax.bar(xs, [v or 0 for v in vals], width, label=sname, color=colors[si % len(colors)])
            for b, v in zip(bars, vals):
                text = "none within 60 s" if v is None and key == "takeover_s" else ("" if v is None else fmt(v, 1 if v < 10 else 0))
                ax.annotate(text, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                            fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, fontsize=8, rotation=10)
        if len(series) > 1:
            ax.legend(fontsize=7)
    fig.suptitle("Gasoline vs Graphile Worker 0.17.3 (PostgreSQL 15) vs Restate 1.7.12 — 2 workers each, fsync on",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
