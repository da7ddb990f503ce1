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
            if any(r.get("bastion_logins") is not None for r in recs):  # bastion_N (issue 5)
                row["bastion_logins"] = max((r["bastion_logins"] for r in recs
                                             if r.get("bastion_logins") is not None), default=None)
            by_peer[p] = row
            rows.append(row)
        base = by_peer.get(baseline)
        for p, row in by_peer.items():
            row["is_baseline"] = p == baseline
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
    rows += derived_rows(rows)
    return rows


# ------------------------------------------------------- issue 3: peak memory row and targets

PEAK_MEMORY_FROM = {"peak_memory_500": "connect_echo_500"}  # derived row -> measured workload


def derived_rows(rows):
    """``peak_memory_500``: the peak RSS of connect_echo_500 as a row of its own (no new run);
    its ratio columns compare peak RSS (baseline / peer)."""
    out = []
    for name, source in PEAK_MEMORY_FROM.items():
        src = [r for r in rows if r["workload"] == source]
        base = next((r for r in src if r.get("is_baseline")), None)
        for r in src:
            row = dict(r, workload=name, derived_from=source, wall=None, cpu=None, process_wall=None,
                       wall_min=None, wall_max=None, wall_lower_bound=None, ratio_wall=None,
                       ratio_cpu=None, ratio_wall_is_bound=False, ratio_rss=None)
            if base is not None and r is not base and base["maxrss_mib"] and r["maxrss_mib"]:
                row["ratio_rss"] = base["maxrss_mib"] / r["maxrss_mib"]
            out.append(row)
    return out


# (label, workload, metric, other peer or None for an absolute bound, bound)
TARGETS = [
    ("connect_echo_500 wall <= 0.5x parallel-ssh", "connect_echo_500", "wall", "parallel-ssh", 0.5),
    ("connect_echo_500 wall <= 0.95x asyncssh", "connect_echo_500", "wall", "asyncssh", 0.95),
    ("connect_echo_500 client CPU <= 0.6x parallel-ssh", "connect_echo_500", "cpu", "parallel-ssh", 0.6),
    ("rounds_true time per round <= 0.9x asyncssh", "rounds_true", "wall", "asyncssh", 0.9),
    ("rounds_true CPU per round <= 0.6x asyncssh", "rounds_true", "cpu", "asyncssh", 0.6),
    ("idle_sleep CPU after all started <= 0.05 s", "idle_sleep", "cpu", None, 0.05),
    ("peak RSS at 500 hosts <= asyncssh", "connect_echo_500", "maxrss_mib", "asyncssh", 1.0),
]
TARGET_SUBJECTS = ("pssh", "pssh-pure")


def _fmt_metric(metric, value):
    return "%.0f MiB" % value if metric == "maxrss_mib" else fmt_time(value)


def targets(rows):
    """Each target of issues 3 and 5 for pssh (and pssh-pure, when run): measured value and
    verdict PASS / FAIL / n/a (a side was not run or failed); issue-5 CPU comparisons have no
    target ("info"). Ratios are medians of the same run."""
    return issue3_targets(rows) + bastion_targets(rows)


def issue3_targets(rows):
    by = {(r["workload"], r["peer"]): r for r in rows}
    out = []
    for subject in TARGET_SUBJECTS:
        if not any(p == subject for _w, p in by):
            continue
        for label, wl, metric, other, bound in TARGETS:
            mine = by.get((wl, subject), {}).get(metric)
            entry = {"issue": 3, "subject": subject, "target": label, "workload": wl, "metric": metric,
                     "peer": other, "bound": bound, "value": mine, "verdict": "n/a"}
            if mine is None:
                entry["measured"] = "%s: not measured" % subject
            elif other is None:
                entry["measured"] = "%s %s" % (subject, _fmt_metric(metric, mine))
                entry["verdict"] = "PASS" if mine <= bound else "FAIL"
            else:
                peer_row = by.get((wl, other), {})
                theirs, lower = peer_row.get(metric), None
                if theirs is None and metric == "wall":
                    lower = peer_row.get("wall_lower_bound")  # the peer timed out
                if theirs is None and lower is None:
                    entry["measured"] = "%s %s; %s: not measured" % (subject, _fmt_metric(metric, mine), other)
                else:
                    ratio = mine / (theirs if theirs is not None else lower)
                    entry["ratio"] = ratio
                    entry["measured"] = "%s %s / %s %s%s = %s" % (
                        subject, _fmt_metric(metric, mine), other,
                        ">" if theirs is None else "", _fmt_metric(metric, theirs if theirs is not None else lower),
                        fmt_ratio(ratio, bound=theirs is None))
                    entry["verdict"] = "PASS" if ratio <= bound else "FAIL"
            out.append(entry)
    return out


# ------------------------------------------------ issue 5: N hosts through one bastion

BASTION_VS_DIRECT = 1.1    # pssh via bastion wall <= 1.1x the same N hosts direct
BASTION_VS_ASYNCSSH = 0.95  # ... and <= 0.95x asyncssh through one bastion connection


def bastion_count(workload):
    """N of a ``bastion_N`` workload (None for anything else, ``bastion_N_direct`` included)."""
    head, _, n = workload.partition("_")
    return int(n) if head == "bastion" and n.isdigit() else None


def _compare(entry, mine_row, other_row, metric, other_label, bound):
    """Fill ``entry`` with mine / other for ``metric`` and the verdict (``info`` when no bound)."""
    subject = entry["subject"]
    mine = (mine_row or {}).get(metric)
    theirs = (other_row or {}).get(metric)
    lower = (other_row or {}).get("wall_lower_bound") if theirs is None and metric == "wall" else None
    entry.update(value=mine, verdict="n/a")
    if mine is None:
        entry["measured"] = "%s: not measured" % subject
    elif theirs is None and lower is None:
        entry["measured"] = "%s %s; %s: not measured" % (subject, fmt_time(mine), other_label)
    else:
        ratio = mine / (theirs if theirs is not None else lower)
        entry["ratio"] = ratio
        entry["measured"] = "%s %s / %s %s%s = %s" % (
            subject, fmt_time(mine), other_label, ">" if theirs is None else "",
            fmt_time(theirs if theirs is not None else lower), fmt_ratio(ratio, bound=theirs is None))
        entry["verdict"] = "info" if bound is None else "PASS" if ratio <= bound else "FAIL"
    return entry


def bastion_targets(rows):
    """For every ``bastion_N`` run and subject (pssh, pssh-pure): wall vs. the same N hosts
    direct (``bastion_N_direct``, else ``connect_echo_N``) <= 1.1x and vs. asyncssh through one
    bastion <= 0.95x (PASS/FAIL); CPU for both and wall vs. parallel-ssh as ``info``."""
    by = {(r["workload"], r["peer"]): r for r in rows if not r.get("derived_from")}
    names = sorted({w for w, _p in by if bastion_count(w)}, key=bastion_count)
    out = []
    for subject in TARGET_SUBJECTS:
        for wl in names:
            if (wl, subject) not in by:
                continue
            n = bastion_count(wl)
            direct = next((w for w in (wl + "_direct", "connect_echo_%d" % n)
                           if by.get((w, subject), {}).get("wall") is not None), wl + "_direct")
            mine = by[(wl, subject)]
            for label, metric, other, other_label, bound in [
                    ("%s wall <= %gx %s direct (%s)" % (wl, BASTION_VS_DIRECT, subject, direct), "wall",
                     (direct, subject), subject + " direct", BASTION_VS_DIRECT),
                    ("%s wall <= %gx asyncssh via bastion" % (wl, BASTION_VS_ASYNCSSH), "wall",
                     (wl, "asyncssh"), "asyncssh", BASTION_VS_ASYNCSSH),
                    ("%s client CPU vs. %s direct" % (wl, subject), "cpu", (direct, subject), subject + " direct", None),
                    ("%s client CPU vs. asyncssh via bastion" % wl, "cpu", (wl, "asyncssh"), "asyncssh", None),
                    ("%s wall vs. parallel-ssh via bastion" % wl, "wall", (wl, "parallel-ssh"),
                     "parallel-ssh", None)]:
                entry = {"issue": 5, "subject": subject, "target": label, "workload": wl,
                         "metric": metric, "peer": other[1], "other_workload": other[0], "bound": bound}
                out.append(_compare(entry, mine, by.get(other), metric, other_label, bound))
    return out


def bastion_logins_text(rows):
    """``peer N`` per bastion_N row: connections the client opened to the bastion (sshd log)."""
    bits = ["%s %s: %s" % (r["workload"], r["peer"], r["bastion_logins"])
            for r in rows if r.get("bastion_logins") is not None and not r.get("derived_from")]
    return ", ".join(bits) or "-"


ISSUE_TITLES = {3: "targets (issue 3):",
                5: "bastion (issue 5): N hosts through one bastion vs. the same N direct, and vs. "
                   "asyncssh through one bastion connection:"}


def _reported(entries):
    """Issue -> its entries, for the issues with at least one entry that is not n/a."""
    groups = {}
    for e in entries:
        groups.setdefault(e.get("issue", 3), []).append(e)
    return {k: v for k, v in groups.items() if any(e["verdict"] != "n/a" for e in v)}


def text_targets(rows):
    groups = _reported(targets(rows))
    blocks = []
    for issue, entries in sorted(groups.items()):
        width = max(len(e["target"]) for e in entries)
        lines = [ISSUE_TITLES.get(issue, "targets (issue %s):" % issue)]
        for e in entries:
            lines.append("  %-4s  %-9s %s  %s" % (e["verdict"], e["subject"], e["target"].ljust(width),
                                                  e["measured"]))
        if issue == 5:
            lines.append("  bastion connections opened per run: " + bastion_logins_text(rows))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


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
                     fmt_ratio(row["ratio_wall"], row["ratio_wall_is_bound"]) if not row.get("derived_from")
                     else "rss %s" % fmt_ratio(row["ratio_rss"]) if row.get("ratio_rss") else "-",
                     fmt_ratio(row["ratio_cpu"])])
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
    errors = [(r["workload"], r["peer"], e) for r in rows for e in r["errors"] if e and not r.get("derived_from")]
    if errors:
        lines += ["", "Errors:", ""] + ["- %s / %s: %s" % e for e in errors]
    lines += markdown_targets(rows)
    return "\n".join(lines) + "\n"


def markdown_targets(rows):
    """Notes on the issue-3 and issue-5 rows and the targets tables (empty if none was run)."""
    names = {r["workload"] for r in rows}
    lines = []
    if names & {"connect_echo_50", "connect_echo_200", "connect_echo_500", "rounds_true", "idle_sleep"}:
        lines += _issue3_notes(rows)
    if any(bastion_count(n) for n in names):
        lines += ["", "Notes: `bastion_N` = N connections through one bastion sshd on 127.0.0.1 "
                  "(`bastion_N_direct`: the same driver code without proxy); wall and cpu include "
                  "the bastion connection. Bastion connections opened per run (logins in its log): "
                  + bastion_logins_text(rows) + "."]
    groups = _reported(targets(rows))
    for issue, entries in sorted(groups.items()):
        lines += ["", "## " + ("Targets" if issue == 3 else "Bastion (issue 5)"), "",
                  "| verdict | client | target | measured |", "|---|---|---|---|"]
        lines += ["| %s | %s | %s | %s |" % (e["verdict"], e["subject"], e["target"], e["measured"])
                  for e in entries]
    return lines


def _issue3_notes(rows):
    return ["", "Notes: `rounds_true` wall/cpu are medians **per round** (connections already open); "
             "`idle_sleep` cpu is the client CPU from \"all commands started\" to \"all exited\" "
             "(wall is the whole run); `peak_memory_500` is the peak RSS of `connect_echo_500` (its "
             "ratio column: peak RSS %s/peer). openssh: CPU includes its `ssh` processes; peak RSS "
             "is the driver's plus the largest sampled memory of its live `ssh` processes (anonymous "
             "resident memory summed, shared binary/library pages once)." % next(
                 (r["peer"] for r in rows if r.get("is_baseline")), "pssh")]


def plot(rows, path):
    """Bar chart of median wall and CPU per workload; returns False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in rows if not r.get("derived_from")]  # e.g. peak_memory_500: no timings
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
    doc = {"meta": meta, "summary": rows, "records": records, "targets": targets(rows)}
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
