"""What a model answered on one task, from a judged file: its verdicts, its most frequent answers, and
(classification) which label it named for which true one — the counts docs/results.md quotes.

    python studies/answers.py runs/r6-animals/seed-0/lastn-3.judged.jsonl --task animals --verdict off_label
    python studies/answers.py runs/r6-counting/seed-2/full-3.judged.jsonl --task counting --confusions
"""

import argparse
import json
from collections import Counter


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("judged", help="a judged file (`mfcli judge` or `mfcli emt --judge`)")
    ap.add_argument("--task", required=True)
    ap.add_argument("--verdict", default=None, help="only the answers with this verdict (e.g. off_label)")
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--confusions", action="store_true", help="(true label, named label) of the wrong answers")
    args = ap.parse_args()

    with open(args.judged, encoding="utf-8") as f:
        records = [r for r in map(json.loads, f) if r.get("task") == args.task]
    print(f"{args.task}: {len(records)} records; verdicts {dict(Counter(r.get('verdict') for r in records))}")
    chosen = [r for r in records if args.verdict in (None, r.get("verdict"))]
    print(f"most frequent answers{f' ({args.verdict})' if args.verdict else ''}, of {len(chosen)}:")
    for answer, n in Counter(r["output"] for r in chosen).most_common(args.top):
        print(f"  {n:4d}  {answer!r}")
    if args.confusions:
        wrong = Counter((r["label"], r.get("matched")) for r in records if r.get("verdict") == "wrong_label")
        print("wrong labels (true → named):", ", ".join(f"{a} → {b}: {n}" for (a, b), n in sorted(wrong.items())))


if __name__ == "__main__":
    main()
