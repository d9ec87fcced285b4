#!/usr/bin/env python3
"""Rewrite the README's performance section from `logship bench --json` output.

Usage:
    logship bench --json > bench.json
    scripts/readme-perf.py bench.json [README.md]

Replaces what lies between `<!-- perf:begin -->` and `<!-- perf:end -->` with the machine (CPUs,
memory and CPU model, as the bench read them from /proc), the command, the table and its notes.
Nothing else in the README changes; the markers must exist (under "## Performance").
"""

import json
import sys
from pathlib import Path

BEGIN = "<!-- perf:begin -->"
END = "<!-- perf:end -->"


def num(v):
    """The bench's own number format: 52,310 / 812 / 35.3 / 3.52 / 0.043."""
    a = abs(v)
    if a >= 10_000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def spread(s):
    return "-" if len(s["runs"]) < 2 else f"{num(s['min'])}-{num(s['max'])}"


def row(f):
    b = f.get("baseline")
    unit = f["unit"]
    if not b:
        bname, bmed = "-", "-"
    elif b.get("value") is None:
        bname, bmed = b["name"], b.get("absent") or "absent"
    elif b.get("is_target"):
        bname, bmed = b["name"], f"{num(b['value']['median'])} {unit}"
    else:
        bname = b["name"]
        bmed = f"{num(b['value']['median'])} {unit} ({spread(b['value'])})"
    ratio = "-" if f.get("ratio") is None else f"{f['ratio']:.2f}x"
    return (
        f"| {f['name']} | {num(f['value']['median'])} {unit} | {spread(f['value'])} "
        f"| {bname} | {bmed} | {ratio} | {f.get('target') or ''} |"
    )


def section(r):
    m = r["machine"]
    mem = f"{m['memory_mib'] / 1024:.1f} GiB" if m.get("memory_mib") else "unknown memory"
    out = [
        BEGIN,
        "",
        f"Machine: {m['nproc']} CPUs ({m.get('cpu') or 'unknown CPU'}), {mem}, {m['os']}.",
        f"Command: `{r['command']}` ({r['runs']} runs, {r['mode']} data, {r['seconds']:.0f} s in all).",
        "",
        "| figure | median | spread (min-max) | baseline (same run) | baseline median (spread) | ratio | target |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    out += [row(f) for f in r["figures"]]
    out += ["", "ratio = figure median / baseline median."]
    out += [f"- {f['name']}: {f['note']}" for f in r["figures"] if f.get("note")]
    out += [f"- {n}" for n in r.get("notes", [])]
    out += ["", END]
    return "\n".join(out)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    report = json.loads(Path(argv[1]).read_text())
    readme = Path(argv[2] if len(argv) > 2 else Path(__file__).resolve().parent.parent / "README.md")
    text = readme.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{readme}: markers {BEGIN} ... {END} not found")
    text = text[:start] + section(report) + text[end + len(END):]
    readme.write_text(text)
    print(f"{readme}: performance section rewritten from {argv[1]}")


if __name__ == "__main__":
    main(sys.argv)
