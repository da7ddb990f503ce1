"""Summaries of benchmark records: medians, pssh-to-peer ratios, text/markdown tables, JSON, plot."""
import json
import os
import statistics


def fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds < 1.0:
        return "%.1f ms" % (seconds * 1e3)
    return "%.2f s" % seconds


def fmt_ratio(value, bound=False):
    if value is None:
        return "-"
    return ("<%.3gx" if bound else "%.3gx") % value


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(records, workloads, peers, baseline):
    """One row per (workload, peer): medians over successful repeats, plus ratios to baseline."""
    rows = []
    for wl in workloads:
        by_peer = {}
        for p in peers:
            recs = [r for r in records if r["workload"] == wl and r["peer"] == p]
            ok = [r for r in recs if r["status"] == "ok"]
            timeouts = [r for r in recs if r["status"] == "timeout"]
            row = {
                "workload": wl, "peer": p, "runs": len(recs), "ok": len(ok),
                "statuses": sorted({r["status"] for r in recs}),
                "wall": _median(r.get("wall") for r in ok),
                "cpu": _median(r.get("cpu") for r in ok),
                "maxrss_mib": _median((r.get("maxrss_kb") or 0) / 1024.0 for r in ok) if ok else None,
                "process_wall": _median(r.get("process_wall") for r in ok),
                "wall_min": min((r["wall"] for r in ok), default=None),
                "wall_max": max((r["wall"] for r in ok), default=None),
                # only timeouts: the wall time is at least the timeout
                "wall_lower_bound": min((r["timeout"] for r in timeouts), default=None) if not ok else None,
                "errors": sorted({r.get("error", "")[:200] for r in recs if r["status"] not in ("ok", "skipped")}),
                "library_version": next((r.get("library_version") for r in ok if r.get("library_version")), None),
            }
            by_peer[p] = row
            rows.append(row)
        base = by_peer.get(baseline)
        for p, row in by_peer.items():
            row["ratio_wall"] = row["ratio_cpu"] = None
            row["ratio_wall_is_bound"] = False
            if base is None or p == baseline or base["wall"] is None:
                continue
            if row["wall"]:
                row["ratio_wall"] = base["wall"] / row["wall"]
            elif row["wall_lower_bound"]:
                row["ratio_wall"] = base["wall"] / row["wall_lower_bound"]
                row["ratio_wall_is_bound"] = True
            if row["cpu"] and base["cpu"] is not None:
                row["ratio_cpu"] = base["cpu"] / row["cpu"]
    return rows


def _status(row):
    if row["ok"] == row["runs"]:
        return "%d/%d" % (row["ok"], row["runs"])
    bad = [s for s in row["statuses"] if s != "ok"]
    return "%d/%d %s" % (row["ok"], row["runs"], ",".join(bad))


def table_rows(rows, baseline):
    header = ["workload", "peer", "ok", "wall", "cpu", "peak RSS",
              "%s/peer wall" % baseline, "%s/peer cpu" % baseline]
    body = []
    for row in rows:
        wall = fmt_time(row["wall"])
        if row["wall"] is None and row["wall_lower_bound"]:
            wall = ">%s" % fmt_time(row["wall_lower_bound"])
        body.append([row["workload"], row["peer"], _status(row), wall, fmt_time(row["cpu"]),
                     "-" if row["maxrss_mib"] is None else "%.0f MiB" % row["maxrss_mib"],
                     fmt_ratio(row["ratio_wall"], row["ratio_wall_is_bound"]), fmt_ratio(row["ratio_cpu"])])
    return header, body


def text_table(rows, baseline):
    header, body = table_rows(rows, baseline)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for cells in body:
        if previous is not None and cells[0] != previous:
            out.append("")
        previous = cells[0]
        out.append(line(cells))
    return "\n".join(out)


def markdown(rows, baseline, meta):
    header, body = table_rows(rows, baseline)
    lines = ["# pssh benchmark results", "",
             "- date: %s; machine: %s, %s CPUs; python %s" % (meta["date"], meta["platform"], meta["cpus"], meta["python"]),
             "- repeats: %s (interleaved); timeout per driver run: %s s" % (meta["options"]["repeats"], meta["options"]["timeout"]),
             "- workloads: %s" % "; ".join("`%s`: %s" % (k, v) for k, v in meta["workloads"].items()),
             "- peers: %s" % ", ".join("%s %s" % (k, v or "") for k, v in meta["peer_versions"].items()),
             "- medians over successful repeats; latency = median per-run time; "
             "ratio < 1 means %s is faster / uses less CPU" % baseline, "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in cells) + " |" for cells in body]
    errors = [(r["workload"], r["peer"], e) for r in rows for e in r["errors"] if e]
    if errors:
        lines += ["", "Errors:", ""] + ["- %s / %s: %s" % e for e in errors]
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Bar chart of median wall and CPU per workload; returns False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.5 * len(workloads), 4), squeeze=False)
    for ax, wl in zip(axes[0], workloads):
        sub = [r for r in rows if r["workload"] == wl]
        xs = range(len(sub))
        walls = [r["wall"] or r["wall_lower_bound"] or 0 for r in sub]
        ax.bar([x - 0.2 for x in xs], walls, 0.4, label="wall")
        ax.bar([x + 0.2 for x in xs], [r["cpu"] or 0 for r in sub], 0.4, label="client CPU")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["peer"] + ("\n(timeout)" if r["wall"] is None and r["wall_lower_bound"] else "")
                            for r in sub], rotation=30, ha="right")
        ax.set_title(wl)
        positive = [v for v in walls + [r["cpu"] or 0 for r in sub] if v > 0]
        if positive and max(positive) > 50 * min(positive):
            ax.set_yscale("log")  # e.g. a quadratic peer next to linear ones
        ax.set_ylabel("seconds" + (" per run" if wl == "latency" else ""))
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_all(out_dir, stamp, records, rows, meta, baseline):
    """Write ``<stamp>.json``/``.md`` (+ ``.png``) and copies named ``latest.*``; returns paths."""
    os.makedirs(out_dir, exist_ok=True)
    doc = {"meta": meta, "summary": rows, "records": records}
    md = markdown(rows, baseline, meta)
    paths = []
    for name in (stamp, "latest"):
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        with open(os.path.join(out_dir, name + ".md"), "w") as f:
            f.write(md)
        paths += [os.path.join(out_dir, name + ext) for ext in (".json", ".md")]
        if plot(rows, os.path.join(out_dir, name + ".png")):
            paths.append(os.path.join(out_dir, name + ".png"))
    return paths
