"""A study's table as docs/results.md prints it, from the judged files a bench left in its study dir.

    python studies/study_table.py runs/r6-tailor
    python studies/study_table.py runs/r6-animals --epoch 3 --columns digits,shapes,icons,scene-vqa,scene-objects,animals

One row per model (seeds grouped: mean ± sd over them), the tasks in --columns order (default: the
pre-trained tasks, then the targets), then:
- pre (%): the mean of the pre-trained tasks scored in percent (CIDEr tasks left out: on their ×100
  scale one would outweigh the rest), per seed, then mean ± sd;
- kept (%): `mfcli report`'s share of the base model's scores, every pre-trained task (docs/formats.md);
- H: Model Tailor's H-score of pre (%) and the mean target, per seed, then mean ± sd; where the target
  is a CIDEr task, `mfcli report`'s own H (marked †).
Everything goes through `mfcli report`'s own collect/build, so the figures are the report's.
"""

import argparse
import glob
import re
from pathlib import Path

from mfcli.report.build import build
from mfcli.report.table import CAPTION_METRICS, collect


def fmt(mean: float | None, sd: float | None, digits: int = 1) -> str:
    if mean is None:
        return ""
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--epoch", type=int, default=None, help="only the judged files of this epoch (NAME-E)")
    ap.add_argument("--columns", default=None, help="tasks, comma-separated, in the table's order")
    ap.add_argument("--targets", default=None, help="the target tasks, when the study has several")
    ap.add_argument("--base", default="tiny", help="the base model: its judged file is STUDY/BASE.judged.jsonl")
    args = ap.parse_args()

    files = glob.glob(str(args.study / f"{args.base}.judged.jsonl")) + glob.glob(str(args.study / "seed-*" / "*.judged.jsonl"))
    if args.epoch is not None:
        files = [f for f in files if f.endswith(f"{args.base}.judged.jsonl") or re.search(rf"-{args.epoch}\.judged\.jsonl$", f)]
    targets = args.targets.split(",") if args.targets else ()
    res = collect(sorted(files), targets=targets)
    full = build(res, base=args.base)
    percent = [r for r in res.rows if r.metric not in CAPTION_METRICS]
    res.rows = percent
    pct = build(res, base=args.base)
    columns = args.columns.split(",") if args.columns else full.tasks
    print("| model | " + " | ".join(columns) + " | pre (%) | kept (%) | H |")
    print("|---|" + "---:|" * (len(columns) + 3))
    report_h = False
    for m in full.models:
        cells = [full.cells.get((m, t)) for t in columns]
        scores = [fmt(c.score, c.spread) if c else "" for c in cells]
        s, p = full.summary[m], pct.summary.get(m, {})
        # pre (%): the mean over seeds (build() keeps no sd of it); kept and H: mean ± sd of per-seed values
        h = fmt(p.get("h_score"), p.get("h_spread"))
        if not h and s["h_score"] is not None:  # a CIDEr target: the report's own H, every task on its scale
            h, report_h = fmt(s["h_score"], s["h_spread"]) + " †", True
        row = scores + [fmt(p.get("avg_pretrained"), None), fmt(s["kept_pretrained"], s["kept_spread"]), h]
        name = m.removeprefix(f"{args.study.as_posix().rstrip('/')}/")
        print(f"| {name} | " + " | ".join(row) + " |")
    if report_h:
        print("\n† the target is scored in CIDEr, so H is `mfcli report`'s: every task on its own scale in the "
              "averages (CIDEr ×100 beside accuracies), the pre-trained CIDEr task included.")


if __name__ == "__main__":
    main()
