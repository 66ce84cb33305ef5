"""The data-aware merging table of docs/results.md from a studies/merge_front.py study's report.json.

    python studies/front_table.py runs/r6-tailor/front

One row per method and budget (seeds grouped by `mfcli report`: mean ± sd over them): kept (% of tiny),
target gain (points over tiny), mfcli's scale-free H of kept and the target, and whether the point is
on the trade-off front (Pareto-optimal in kept and gain, from the means).
"""

import argparse
import json
from pathlib import Path


def fmt(mean, sd, digits=1):
    return "" if mean is None else f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path, help="a studies/merge_front.py output dir (holds report.json)")
    rep = json.loads((ap.parse_args().study / "report.json").read_text())
    base = rep["models"][rep["base"]]
    front = {p["model"]: p for p in rep.get("front", [])}
    print("| method | budget ρ | kept (%) | target gain (points) | H of kept | front |")
    print("|---|---:|---:|---:|---:|:---:|")
    for name, p in sorted(front.items(), key=lambda kv: (kv[1]["method"], kv[1]["budget"] or 0)):
        m = rep["models"][name]
        gain = m["avg_target"] - base["avg_target"]
        budget = "" if p["budget"] is None else f"{p['budget']:g}"
        print(f"| {p['method']} | {budget} | "
              f"{fmt(m['kept_pretrained'], m.get('kept_spread'))} | {fmt(gain, m.get('target_spread'))} | "
              f"{fmt(m.get('h_kept'), m.get('h_kept_spread'))} | {'✓' if p['pareto'] else ''} |")


if __name__ == "__main__":
    main()
