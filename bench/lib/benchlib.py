"""What the benchmarks' reports share: reading fio and `splitxen top --json` output, and the
PNG of splitxen beside its baseline (gnuplot)."""
import json
import os
import shutil
import subprocess


def fio_json(path):
    """fio's JSON output (anything an engine printed before it skipped)."""
    text = open(path).read()
    return json.loads(text[text.index("{"):])


def fio_side(path, write):
    """IOPS, MiB/s, p50/p99 total latency (us) and CPU of fio's first job in a JSON file."""
    d = fio_json(path)
    j = d["jobs"][0]
    side = j["write"] if write else j["read"]
    pct = side.get("lat_ns", {}).get("percentile", {}) or side.get("clat_ns", {}).get("percentile", {})
    return dict(iops=side["iops"], bw_mib=side["bw_bytes"] / 2**20,
                p50_us=pct.get("50.000000", 0) / 1000, p99_us=pct.get("99.000000", 0) / 1000,
                fio_cpu_pct=j.get("usr_cpu", 0) + j.get("sys_cpu", 0))


def top_device(path, domid, devid, kind):
    """The device record of the last line of `splitxen top --json` output, or None."""
    try:
        lines = [l for l in open(path) if l.strip()]
    except OSError:
        return None
    if not lines:
        return None
    try:
        snap = json.loads(lines[-1])
    except ValueError:
        return None
    for dom in snap.get("domains", []):
        if dom["domid"] != domid:
            continue
        for dev in dom.get("devices", []):
            if dev["kind"] == kind and dev["devid"] == devid:
                return dev
    return None


def per_request(dev, names, per="requests"):
    """Rates of counters `names` divided by the rate of `per` (events per request)."""
    if not dev:
        return {}
    r = dev.get("rates", {})
    n = r.get(per, 0)
    return {k: round(r.get(k, 0) / n, 4) for k in names if n}


def plot_bars(png, title, rows, ylabel="kIOPS", logscale=True,
              base_title="strongest raw (its configuration above the bar)",
              subject_title="splitxen"):
    """Grouped bars, one group per row: (label, baseline name, baseline value, splitxen value).
    Writes png with gnuplot; returns the path, or None when gnuplot is missing."""
    if not shutil.which("gnuplot") or not rows:
        return None
    dat = png[:-4] + ".dat"
    with open(dat, "w") as f:
        for label, bname, b, s in rows:
            ratio = s / b if b else 0
            f.write(f'"{label}" {b:.3f} {s:.3f} "{bname}" "{ratio:.2f}x"\n')
    ymin = min([v for r in rows for v in r[2:4] if v > 0] or [1])
    script = f"""
set terminal pngcairo size {max(640, 110 * len(rows) + 200)},480 font ",9" noenhanced
set output "{png}"
set title "{title}"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "{ylabel}"
set xtics rotate by -30 scale 0
set key top left
set grid ytics
{"set logscale y" if logscale else ""}
set yrange [{ymin / 2 if logscale else 0}:*]
plot "{dat}" using 2:xtic(1) title "{base_title}" lc rgb "#888888", \\
     "" using 3 title "{subject_title}" lc rgb "#2060c0", \\
     "" using ($0-0.15):($2):4 with labels rotate by 90 left offset 0,0.5 font ",7" notitle, \\
     "" using ($0+0.15):($3):5 with labels offset 0,0.7 font ",8" notitle
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    os.unlink(dat)
    if r.returncode != 0:
        print("plot: gnuplot:", r.stderr.strip()[:300])
        return None
    return png


def plot_lines(png, title, xlabel, ylabel, series):
    """Lines over x: series = [(name, [(x, y), ...]), ...]. Returns the path or None."""
    if not shutil.which("gnuplot") or not series:
        return None
    dats, plots = [], []
    for i, (name, pts) in enumerate(series):
        dat = f"{png[:-4]}.{i}.dat"
        with open(dat, "w") as f:
            for x, y in pts:
                f.write(f"{x} {y}\n")
        dats.append(dat)
        plots.append(f'"{dat}" using 1:2 with linespoints lw 2 title "{name}"')
    script = f"""
set terminal pngcairo size 720,480 font ",9" noenhanced
set output "{png}"
set title "{title}"
set xlabel "{xlabel}"
set ylabel "{ylabel}"
set logscale x 2
set grid
set key bottom right
set yrange [0:*]
plot {", ".join(plots)}
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    for d in dats:
        os.unlink(d)
    if r.returncode != 0:
        print("plot: gnuplot:", r.stderr.strip()[:300])
        return None
    return png
