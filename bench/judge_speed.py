"""Judge throughput, in one run: the embed judge once loaded, and the openai judge against a local
OpenAI-compatible server (tests/fake_openai.py on 127.0.0.1) at concurrency 32.

    python bench/judge_speed.py [--n 20000]

Targets: embed >= 2,000 answers/s on 2 CPU cores; openai >= 200 judgements/s.
The answers mimic EMT outputs: template answers over each label set plus free-text hallucinations,
drawn with repetition as real model outputs repeat (the judge embeds each distinct string once).
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_openai import FakeOpenAI  # noqa: E402

from mfcli.eval.judges.base import Item  # noqa: E402

CIFAR10 = tuple("airplane automobile bird cat deer dog frog horse ship truck".split())
MNIST = tuple(str(i) for i in range(10))
ANIMALS = tuple("bear bird cat cow dog elephant giraffe horse sheep zebra".split())
EXTRA = ["a blue street sign says arkansas on it", "The object is a(n) aircraft carrier.", "a close up of a tree",
         "The object in the image is a large black bird.", "Number 4.", "The object is a letter.",
         "a picture of a coral reef with seaweed in the foreground", "I think it is a small animal"]


def answers(n: int, distinct: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    pool = []
    for labels in (CIFAR10, MNIST, ANIMALS):
        for lab in labels:
            pool += [(f"The object is a(n) {lab}.", labels), (f"The object in the image is a {lab}.", labels),
                     (lab, labels), (f"It looks like a {lab} to me", labels)]
    pool += [(e, CIFAR10) for e in EXTRA]
    for i in range(max(0, distinct - len(pool))):  # the long tail of one-off free text
        lab = rng.choice(CIFAR10)
        pool.append((f"a photo of something near a {lab} number {i}", CIFAR10))
    items = []
    for _ in range(n):
        text, labels = rng.choice(pool)
        items.append(Item(text, rng.choice(labels), labels))
    return items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--distinct", type=int, default=1000, help="distinct answer strings among the n")
    ap.add_argument("--openai-n", type=int, default=2000)
    args = ap.parse_args()

    from mfcli.eval.judges import make_judge

    embed = make_judge("embed")
    items = answers(args.n, args.distinct)
    embed.judge(items[:50])  # warm: label embeddings, threads
    t = time.perf_counter()
    embed.judge(items)
    rate = args.n / (time.perf_counter() - t)
    print(f"embed: {args.n} answers ({len({i.output for i in items})} distinct) -> {rate:,.0f} answers/s "
          f"(target >= 2,000)")

    import os

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    from mfcli.eval.judges.openai_judge import OpenAIJudge

    o_items = [Item(f"The object is a(n) {CIFAR10[i % 10]} number {i}.", CIFAR10[(i * 7) % 10], CIFAR10)
               for i in range(args.openai_n)]  # all distinct: every one is a request
    with FakeOpenAI() as server, tempfile.TemporaryDirectory() as tmp:
        judge = OpenAIJudge("gpt-3.5-turbo", server.url, concurrency=32, cache=Path(tmp) / "c.jsonl")
        t = time.perf_counter()
        judge.judge(o_items)
        rate = args.openai_n / (time.perf_counter() - t)
        print(f"openai (local server, concurrency 32): {args.openai_n} judgements, {len(server.requests)} requests "
              f"-> {rate:,.0f} judgements/s (target >= 200)")
        t = time.perf_counter()
        OpenAIJudge("gpt-3.5-turbo", server.url, concurrency=32, cache=Path(tmp) / "c.jsonl").judge(o_items)
        print(f"openai re-run from cache: {args.openai_n / (time.perf_counter() - t):,.0f} judgements/s, "
              f"{len(server.requests)} requests in all")


if __name__ == "__main__":
    main()
