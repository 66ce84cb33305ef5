"""Choose the refined decorator's penalty μ (and the default decorator) on validation splits, never on
the held-out splits the results are scored on (issue 26; docs/results.md, "Model Tailor on tiny").

    python studies/tailor_choose.py runs/r6-tailor/val runs/r6-caption-tailor/val

Each argument is a `studies/tailor_quality.py --split val` study dir (one target each). Per seed and
variant, the criterion is scale-free, so a CIDEr target weighs as much as an accuracy one:
    kept   = mean over pre-trained tasks of score / tiny's score (%), `mfcli report`'s "kept";
    target = the variant's target score / the same seed's SFT target score (%), how much of the
             fine-tune's target it keeps;
    H      = 2·kept·target / (kept + target).
Printed per target (mean ± sd over seeds) and averaged over the targets; the highest mean wins.
"""

import argparse
import glob
import statistics
from pathlib import Path

from mfcli.report.table import PRETRAINED, TARGET, collect


def per_seed_scores(study: Path) -> tuple[dict, dict]:
    """{(variant, seed): {task: score}} and tiny's {task: score}, from a study's judged files."""
    files = [str(study / "tiny.judged.jsonl")] + sorted(glob.glob(str(study / "seed-*" / "*.judged.jsonl")))
    res = collect(files)
    scores, tiny = {}, {}
    for r in res.rows:
        name, seed = r.model, r.seed  # collect() groups the seeds: runs/x/seed-1/paper → runs/x/paper, seed 1
        if name == "tiny":
            tiny[r.task] = r.score
        else:
            label = Path(name).parent.name if Path(name).name.startswith("epoch-") else Path(name).name
            label = "sft (the fine-tune)" if label == "sft" else label
            scores.setdefault((label, seed), {})[r.task] = r.score
    return scores, tiny, res.roles


def criterion(study: Path, part: int = 2) -> dict[str, list[float]]:
    """Per variant, one value per seed: kept (part 0), the target's share of the SFT's (1) or their H (2)."""
    scores, tiny, roles = per_seed_scores(study)
    target = next(t for t, role in roles.items() if role == TARGET)
    out: dict[str, list[float]] = {}
    for (name, seed), got in sorted(scores.items()):
        sft = scores[("sft (the fine-tune)", seed)]
        kept = statistics.mean(100 * got[t] / tiny[t] for t in got if roles[t] == PRETRAINED and tiny.get(t))
        share = 100 * got[target] / sft[target]
        h = 2 * kept * share / (kept + share) if kept + share else 0.0
        out.setdefault(name, []).append((kept, share, h)[part])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--parts", action="store_true", help="also print kept and the target share per study")
    args = ap.parse_args()
    tables = {s: criterion(s) for s in args.studies}
    if args.parts:
        for s in args.studies:
            kept, share = criterion(s, 0), criterion(s, 1)
            print(f"{s}\n\n| variant | kept (%) | target (% of the SFT's) | H (kept, target share) |\n|---|---:|---:|---:|")
            for n in sorted(kept):
                print(f"| {n} | " + " | ".join(f"{statistics.mean(t[n]):.1f} ± {statistics.stdev(t[n]):.1f}"
                                              for t in (kept, share, tables[s])) + " |")
            print()
    names = sorted(set.intersection(*(set(t) for t in tables.values())))
    print("| variant | " + " | ".join(str(s) for s in args.studies) + " | mean |")
    print("|---|" + "---:|" * (len(args.studies) + 1))
    best = None
    for n in names:
        cells = [f"{statistics.mean(tables[s][n]):.1f} ± {statistics.stdev(tables[s][n]):.1f}" for s in args.studies]
        m = statistics.mean(statistics.mean(tables[s][n]) for s in args.studies)
        best = max(best or (m, n), (m, n))
        print(f"| {n} | " + " | ".join(cells) + f" | {m:.1f} |")
    print(f"\nhighest: {best[1]} ({best[0]:.1f})")


if __name__ == "__main__":
    main()
