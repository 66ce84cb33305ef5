"""Does the forgetting watch's best checkpoint beat the last epoch? (issue 29; EMT §5.3 predicts yes)

    python studies/watch_study.py --targets counting,animals --methods full,lora --seeds 0,1,2 --out runs/r6-watch

For each target, method and seed: fine-tune `tiny` for 3 epochs under `--watch` (every half epoch and
at each epoch's end, criterion: Model Tailor's H), then score RUN/best/ and RUN/epoch-3 on every task's
held-out split. The watch never sees the held-out split: it watches each task's validation split
(`mfcli prepare`'s val.jsonl, the watch's default), and the fine-tune trains on train.jsonl, which holds
none of it, so the choice of best/ is not made on the split it is scored on. (For tiny's pre-trained
tasks the validation images are ones tiny was trained on: the watch's "kept" is of training-set skill
there.) `--carve N` is the older way, kept to reproduce the table measured before prepare carved
val.jsonl: N training images per task carved off by studies/validation.py.

Prints, per target and method: H (Model Tailor; † it averages scene-objects' CIDEr ×100 with
percentages, as the papers' tables do), mfcli's scale-free H of kept, kept (% of tiny) and target of
best/ and of epoch 3, mean ± sd over seeds, the per-seed difference best − last, and the steps best/
came from.
"""

import argparse
from pathlib import Path

from mfcli.report.build import build
from mfcli.report.table import collect
from mfcli.train.loop import run_finetune
from mfcli.train.methods import finetune_options
from mfcli.train.watch import WatchOptions
from mfcli.study import evaluate, mean_sd, prepare_tasks
from validation import carve

from mfcli.eval.judges import make_judge

LIMITS = {"animals": 2500}  # 2,000 training images, as the Forgetting study (studies/forgetting.py)
LORA = dict(lora_r=16, lora_alpha=32)  # the Forgetting study's LoRA


def figures(base: Path, judged: Path, target: str) -> dict:
    rep = build(collect([str(base), str(judged)], targets=[target], per_seed=True), base="tiny")
    m = next(m for m in rep.models if m != "tiny")
    s = rep.summary[m]
    return {"h": s["h_score"], "h_kept": s["h_kept"], "kept": s["kept_pretrained"], "target": s["avg_target"]}



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="counting,animals")
    ap.add_argument("--methods", default="full,lora")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--every", default="0.5ep")
    ap.add_argument("--watch-n", type=int, default=200, help="validation records watched per task")
    ap.add_argument("--carve", type=int, default=0, help="the older way: carve N training images per task")
    ap.add_argument("--out", default="runs/r6-watch")
    args = ap.parse_args()
    judge = make_judge("exact")
    lines = ["| target | method | checkpoint | H (Model Tailor) † | H of kept | kept (%) | target | "
             "best − last: H, H of kept, kept, target | best/ from step |", "|---|---|---|---|---|---|---|---|---|"]
    for target in args.targets.split(","):
        out = Path(args.out) / target
        data = prepare_tasks(out, target, LIMITS.get(target))
        if args.carve:
            fit, val = zip(*(carve(d, out / "fit", out / "val", args.carve) for d in data))
            watched = tuple(str(v / "eval.jsonl") for v in val)  # the carved records, named as files
        else:
            fit, watched = data, tuple(str(d) for d in data)  # each dir's val.jsonl
        base = evaluate("tiny", list(data), out / "tiny.judged.jsonl", judge)
        for method in args.methods.split(","):
            got = {"best": [], "last": []}
            steps = []
            for seed in (int(s) for s in args.seeds.split(",")):
                run = out / f"seed-{seed}" / method
                if not (run / f"epoch-{args.epochs}").exists():
                    run_finetune("tiny", [str(fit[-1])], run,
                                 finetune_options(method=method, epochs=args.epochs, seed=seed,
                                              **(LORA if method == "lora" else {})),
                                 resume=run.exists(), progress=False,
                                 watch=WatchOptions(watched, every=args.every, n=args.carve or args.watch_n))
                import json

                best_step = json.loads((run / "best" / "mfcli.json").read_text())["metrics"]["watch"]["step"]
                steps.append(best_step)
                for which, ckpt in (("best", run / "best"), ("last", run / f"epoch-{args.epochs}")):
                    judged = evaluate(str(ckpt), list(data), out / f"seed-{seed}" / f"{method}-{which}.judged.jsonl",
                                      judge)
                    got[which].append(figures(base, judged, target))
            spe_note = ", ".join(str(s) for s in steps)
            for which in ("best", "last"):
                f = got[which]
                diff = ""
                if which == "best":
                    diff = ", ".join(mean_sd([b[k] - last[k] for b, last in zip(got["best"], got["last"])])
                                     for k in ("h", "h_kept", "kept", "target"))
                lines.append(f"| {target} | {method} | {'best/ (watch)' if which == 'best' else f'epoch {args.epochs}'} "
                             f"| {mean_sd([x['h'] for x in f])} | {mean_sd([x['h_kept'] for x in f])} | "
                             f"{mean_sd([x['kept'] for x in f])} | "
                             f"{mean_sd([x['target'] for x in f])} | {diff} | {spe_note if which == 'best' else ''} |")
            print("\n".join(lines[-2:]), flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
