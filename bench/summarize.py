#!/usr/bin/env python3
"""Summarizes bench/classic.sh output: per workload and engine, the median
[min-max] over the repeats of the last job's IOPS and p99 latency (us) in
each direction it used, then the cesium/peer ratio of the medians."""
import glob, json, os, statistics, sys

out = sys.argv[1]
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    w, e, rep, _ = os.path.basename(path).rsplit(".", 3)
    try:
        with open(path) as f:
            doc = json.load(f)
    except ValueError:
        print(f"skipping {path}: not complete JSON", file=sys.stderr)
        continue
    st = doc["engine_stats"]
    for fig, v in (("disk", st["disk_usage_bytes"] / 1048576), ("rss", st["peak_rss_kb"] / 1024),
                   ("anon", st.get("peak_anon_rss_kb", 0) / 1024)):
        if fig == "anon" and v == 0:
            continue  # runs from before the anonymous-memory sampler
        r = rows.setdefault((w, "(after run)", fig), {}).setdefault(e, {"iops": [], "p99": [], fig: []})
        r.setdefault(fig, []).append(v)
    for job in doc["jobs"][1:] if len(doc["jobs"]) > 1 else doc["jobs"]:
        if job["jobname"] == "load":
            continue
        for d in ("read", "write", "trim"):
            x = job[d]
            if x["total_ios"] == 0:
                continue
            key = (w, job["jobname"], d)
            r = rows.setdefault(key, {}).setdefault(e, {"iops": [], "p99": []})
            r["iops"].append(x["iops"])
            r["p99"].append(x["clat_ns"]["percentile"]["99.000000"] / 1000)

engines = ["cesium", "rocksdb", "leveldb", "lmdb"]
def fmt(v):
    m = statistics.median(v)
    return f"{m:,.0f} [{min(v):,.0f}–{max(v):,.0f}]" if m >= 100 else \
           f"{m:.1f} [{min(v):.1f}–{max(v):.1f}]"
present = [e for e in engines if any(e in r for r in rows.values())]
print("| workload (job, op) | figure | " + " | ".join(present) + " | " +
      " | ".join(f"cesium/{e}" for e in present if e != "cesium") + " |")
print("| --- | --- | " + " | ".join("---:" for _ in present) + " | " +
      " | ".join("---:" for e in present if e != "cesium") + " |")
for (w, j, d), r in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] == "(after run)")):
    figs = (("iops", "ops/s"), ("p99", "p99 µs"))
    if j == "(after run)":
        figs = ((d, {"disk": "disk MiB", "rss": "peak RSS MiB", "anon": "peak anon RSS MiB"}[d]),)
    for fig, label in figs:
        cells = [fmt(r[e][fig]) if e in r else "–" for e in present]
        ratios = []
        for e in present:
            if e == "cesium":
                continue
            if "cesium" in r and e in r and statistics.median(r[e][fig]) > 0:
                ratios.append(f"{statistics.median(r['cesium'][fig]) / statistics.median(r[e][fig]):.2f}×")
            else:
                ratios.append("–")
        name = f"{w} ({j}, {d})" if j not in (w, "(after run)") else f"{w} ({d})" if j == w else w
        print(f"| {name} | {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
