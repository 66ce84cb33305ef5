"""A trial build, not the recipe: tiny's current recipe at build seed S with scene-vqa's instruction
examples drawn K times as often (`TinyRecipe.vqa_practice`; docs/results.md, the scene-VQA trials).

    python bench/trial_vqa_practice.py --repeat 3 --seed 0 --out /tmp/trial-k3-s0   # ~5 min on 2 cores
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from mfcli.models.zoo.tiny import TinyRecipe, build_tiny


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=TinyRecipe().vqa_practice)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    recipe = replace(TinyRecipe(), seed=args.seed, vqa_practice=args.repeat)
    m = build_tiny(Path(args.out) / "tiny", Path(args.out) / "tiny-clip", recipe, progress=False)
    print(json.dumps({k: round(100 * v, 1) for k, v in m["emt_accuracy"].items()}))


if __name__ == "__main__":
    main()
