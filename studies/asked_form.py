"""A forgetting study's fine-tunes asked their own training question instead of the EMT prompt: the
target task's held-out records of the study (the same images, split and labels), with each record's
prompt replaced by the question of the training records ("What is the object in the image?", EMT's
fine-tuning form, App. D.1). Per method and seed: exact-match accuracy at the last epoch; then mean ± sd
— what the vision path carries, beside what reaches EMT's longer listing prompt (docs/results.md,
"animals through the EMT prompt").

    python studies/asked_form.py runs/r6-animals-8k --task animals --methods full,lastn,lora
"""

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from mfcli.eval.emt import EmtOptions, run_emt
from mfcli.eval.judges import make_judge
from mfcli.eval.judging import judge_file
from mfcli.data.prompts import IMAGE_TOKEN


def training_question(data: Path) -> str:
    """The one question every training record asks (its human turn, the image token taken out)."""
    with open(data / "train.jsonl", encoding="utf-8") as f:
        asked = {json.loads(line)["conversations"][0]["value"].replace(IMAGE_TOKEN, "").strip() for line in f}
    if len(asked) != 1:
        raise SystemExit(f"{data}: the training records ask {len(asked)} different questions; this bench needs one.")
    return asked.pop()


def asked_split(data: Path, out: Path) -> str:
    """out: `data`'s held-out records with the training question as their prompt; images shared."""
    question = training_question(data)
    out.mkdir(parents=True)
    shutil.copy(data / "dataset.json", out / "dataset.json")
    (out / "images").symlink_to((data / "images").resolve())
    with open(data / "eval.jsonl", encoding="utf-8") as src, open(out / "eval.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            record = json.loads(line)
            record["prompt"] = question
            dst.write(json.dumps(record) + "\n")
    return question


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", type=Path, help="a studies/forgetting.py output folder")
    ap.add_argument("--task", required=True, help="the study's target task")
    ap.add_argument("--methods", default="full")
    ap.add_argument("--epoch", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        asked = Path(tmp) / args.task
        question = asked_split(args.study / "data" / args.task, asked)
        print(f"{args.task}, asked {question!r}:")
        for method in args.methods.split(","):
            scores = []
            for seed_dir in sorted(args.study.glob("seed-*")):
                ckpt = seed_dir / method / f"epoch-{args.epoch}"
                if not ckpt.is_dir():
                    continue
                preds = Path(tmp) / f"{seed_dir.name}-{method}.jsonl"
                run_emt(str(ckpt), [str(asked)], preds, EmtOptions(batch_size=64), progress=False)
                got = judge_file(str(preds), str(preds.with_suffix(".judged.jsonl")), make_judge("exact"))
                scores.append(100.0 * got.tasks[args.task]["score"])
                print(f"  {method} {seed_dir.name}: {scores[-1]:.2f} % of {got.tasks[args.task]['n']}")
            if scores:
                sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
                print(f"{method}: {statistics.mean(scores):.1f} ± {sd:.1f} ({len(scores)} seeds)")


if __name__ == "__main__":
    main()
