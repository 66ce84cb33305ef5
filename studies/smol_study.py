"""The papers' findings on `smol`, the built-in LLaVA on a real pre-trained language model (issue 40;
docs/results.md, "The built-in smol").

    MFCLI_PINNED=1 python studies/smol_study.py --target counting --seeds 0 --epochs 1 --out runs/smol-study

On the target's training split (prepare's train.jsonl), per seed: `full` and `lora` fine-tunes of smol
at its recommended settings (LLaVA-1.5's rates), and Model Tailor at 10 % of the `full` fine-tune's
changes with both decorators (calibrated on 128 of the target's training records). Every model is
scored on every task's held-out split — the pre-trained image tasks capped at --pretrained-limit
examples each (emt on a 135M model is minutes per thousand records on 2 cores), the target in full —
and on `facts`, what the language model knows without an image; smol-base (SmolLM2 untouched) is
asked `facts` too. The table, the front and the paired tests are `mfcli report`'s (OUT/report.md,
OUT/report.json), the base `smol`. Steps whose outputs exist are skipped.
"""

import argparse
from pathlib import Path

from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.eval.judges import make_judge
from mfcli.merge.methods import tailor_options
from mfcli.study import Study
from mfcli.train.methods import finetune_options

FINETUNES = {"full": dict(method="full"), "lora": dict(method="lora")}  # smol's recommendations fill the rest
MERGES = {"tailor-paper": dict(method="tailor", variant="paper"), "tailor-refined": dict(method="tailor", variant="refined")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="counting")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--pretrained-limit", type=int, default=500, help="examples kept per pre-trained image task")
    ap.add_argument("--methods", default=",".join([*FINETUNES, *MERGES]))
    ap.add_argument("--out", type=Path, default=Path("runs/smol-study"))
    args = ap.parse_args()
    study = Study(args.out)
    pretrained = [t for t, v in TASKS.items() if v.role == PRETRAINED]
    data = [study.prepare(t, args.pretrained_limit) for t in pretrained] + [study.prepare("facts")]
    target = study.prepare(args.target)
    data.append(target)
    judge = make_judge("exact")
    judged = [study.evaluate("smol-base", [args.out / "data" / "facts"], args.out / "smol-base.judged.jsonl", judge),
              study.evaluate("smol", data, args.out / "smol.judged.jsonl", judge)]
    wanted = args.methods.split(",")
    for seed in (int(s) for s in args.seeds.split(",")):
        root = args.out / f"seed-{seed}"
        for name, fields in FINETUNES.items():
            if name in wanted or (name == "full" and any(m in wanted for m in MERGES)):
                run = study.finetune("smol", target, root / name,
                                     finetune_options(**fields, seed=seed, epochs=args.epochs))
                if name in wanted:
                    judged.append(study.evaluate(str(run / f"epoch-{args.epochs}"), data,
                                                 root / f"{name}.judged.jsonl", judge))
        sft = root / "full" / f"epoch-{args.epochs}"
        for name, fields in MERGES.items():
            if name in wanted:
                d = study.tailor("smol", [sft], root / name,
                                 tailor_options(**fields, sparsity=0.1, seed=seed, data=str(target / "train.jsonl")))
                judged.append(study.evaluate(str(d), data, root / f"{name}.judged.jsonl", judge))
    study.report(judged, [args.out / "report.md", args.out / "report.json"], base="smol", echo=True)


if __name__ == "__main__":
    main()
