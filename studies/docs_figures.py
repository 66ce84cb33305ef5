"""The pictures in docs/ and the README, one per finding of the study (docs/results.md), redrawn from the
study dirs the studies/ scripts leave behind — each through `mfcli report`'s own figures, so a picture
shows what a user's report shows.

    python studies/docs_figures.py            # after the studies named in FIGURES have run (results.md's commands)

A figure whose study dir is missing is reported and skipped; the others are still drawn. The effective
rank's picture (docs/fig-erank.png) is studies/rank_study.py's `--png`: it averages rank records over seeds.
"""

import argparse
import glob
import shutil
import sys
import tempfile
from pathlib import Path

from mfcli.report.build import build
from mfcli.report.render import plots
from mfcli.report.table import collect

# docs name → (judged-file globs, the report figure to keep, targets; None: the tasks' own roles)
FIGURES = {
    # 1. fine-tuning on animals lowers the pre-trained tasks; method by method (EMT §5.2, Tables 3-5)
    "fig-forgetting-animals.png": (["runs/{study}-animals/tiny.judged.jsonl",
                                    "runs/{study}-animals/seed-*/*-3.judged.jsonl"],
                                   "tradeoff.png", None),
    "fig-forgetting-counting.png": (["runs/{study}-counting/tiny.judged.jsonl",
                                     "runs/{study}-counting/seed-*/*-3.judged.jsonl"], "tradeoff.png", None),
    # 2. per epoch (EMT §5.3)
    "fig-epochs-animals.png": (["runs/{study}-animals/tiny.judged.jsonl", "runs/{study}-animals/seed-*/*.judged.jsonl"],
                               "epochs.png", None),
    # 3. Model Tailor against the merge baselines (Tables 1-4) and multi-task fusion (Tables 5-6)
    "fig-tailor.png": (["runs/{study}-tailor/tiny.judged.jsonl", "runs/{study}-tailor/seed-*/*.judged.jsonl"],
                       "tradeoff.png", None),
    "fig-fusion.png": (["runs/{study}-fusion/tiny.judged.jsonl", "runs/{study}-fusion/seed-*/*.judged.jsonl"],
                       "tradeoff.png", ["counting", "animals"]),
    # 4. MDGD against fine-tuning (MDGD Table 1)
    "fig-mdgd.png": (["runs/{study}-mdgd/tiny.judged.jsonl", "runs/{study}-mdgd/seed-*/*.judged.jsonl"],
                     "tradeoff.png", None),
    # 5. the MLLM below its own vision encoder (EMT Table 2)
    "fig-vision-encoder.png": (["runs/demo-{study}/eval/tiny.judged.jsonl",
                                "runs/demo-{study}/eval/tiny-clip.judged.jsonl"], "scores.png", None),
    # 6. a caption target: Model Tailor's Table 2 in miniature
    "fig-caption-tailor.png": (["runs/{study}-caption-tailor/tiny.judged.jsonl",
                                "runs/{study}-caption-tailor/seed-*/*.judged.jsonl"], "tradeoff.png", None),
    # 7b. data-aware merging beside Model Tailor, every method over its budgets (issue 30)
    "fig-front-counting.png": (["runs/{study}-tailor/front/tiny.judged.jsonl",
                                "runs/{study}-tailor/front/seed-*/*.judged.jsonl"], "front.png", None),
    "fig-front-caption.png": (["runs/{study}-caption-tailor/front/tiny.judged.jsonl",
                               "runs/{study}-caption-tailor/front/seed-*/*.judged.jsonl"], "front.png", None),
    # 7. the findings on smol, the LLaVA on SmolLM2 (issue 40): fine-tunes and merges of one target
    "fig-smol.png": (["runs/smol/study/smol.judged.jsonl", "runs/smol/study/seed-*/*.judged.jsonl"],
                     "tradeoff.png", None),
}
# docs name → the base model its report measures against, where it is not tiny
BASES = {"fig-smol.png": "smol"}

# docs name → a picture `mfcli demo`'s own report drew, copied as it is (the README's demo picture)
DEMO_PICTURES = {"demo-epochs.png": "runs/demo-{study}/report_files/epochs.png"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--only", default=None, help="names from FIGURES, comma-separated")
    ap.add_argument("--study", default="p", help="the study dirs' prefix: runs/STUDY-animals, … (p: build P's, "
                                             "the --out of docs/results.md's commands)")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(FIGURES)
    for name in (n for n in names if n in FIGURES):
        patterns, figure, targets = FIGURES[name]
        patterns = [p.format(study=args.study) for p in patterns]
        files = sorted({f for p in patterns for f in glob.glob(p)})
        if len(files) < 2:
            print(f"{name}: skipped, no study at {patterns[0]} (run its bench first)", file=sys.stderr)
            continue
        rep = build(collect(files, targets=targets or ()), base=BASES.get(name, "tiny"))
        with tempfile.TemporaryDirectory() as tmp:
            made = dict((p.name, p) for _, p in plots(rep, Path(tmp)))
            if figure not in made:
                print(f"{name}: the report drew no {figure}", file=sys.stderr)
                continue
            shutil.copyfile(made[figure], Path(args.docs) / name)
        print(f"{args.docs}/{name}  ({len(files)} judged files)")
    for name, source in DEMO_PICTURES.items():
        if args.only and name not in names:
            continue
        source = Path(source.format(study=args.study))
        if not source.is_file():
            print(f"{name}: skipped, no {source} (run `mfcli demo --out {source.parent.parent}` first)",
                  file=sys.stderr)
            continue
        shutil.copyfile(source, Path(args.docs) / name)
        print(f"{args.docs}/{name}  (copied from {source})")


if __name__ == "__main__":
    main()
