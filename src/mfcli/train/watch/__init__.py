"""The forgetting watch: score the pre-trained tasks and the target while a fine-tune trains, keep the
checkpoint with the best trade-off, stop in time (`mfcli finetune … --watch DATA…`).

EMT §5.3 finds the best trade-off early in fine-tuning and a worse one with more steps; the watch shows
that as it happens instead of after every epoch was evaluated. What it does, in order:

1. draws a fixed sample of `--watch-n` records per task from each watched data set's validation split,
   `val.jsonl` (`--watch-on eval` takes the held-out `eval.jsonl` instead: recorded in best/'s manifest
   as `selected_on`, and `mfcli report` marks every score of that checkpoint on those records, since a
   checkpoint chosen on the records it is scored on reads high) — a seeded permutation per task,
   independent of the training seed, so every run of a study is watched on the same records;
2. scores the model before training (step 0) once per (model, sample) — cached in the mfcli cache —
   with the batched greedy generation `mfcli emt` uses and the judge each record's kind calls for
   (exact match for labels, VQA accuracy, CIDEr-D, option match);
3. scores it again every `--watch-every` steps and at each epoch's end, on the training model itself
   (eval mode, no gradient, no second copy), and appends one `mfcli.watch/1` record to RUN/watch.jsonl;
4. keeps RUN/best/ (weights and a manifest naming the evaluation) whenever the criterion improves, and,
   if asked, stops after `--watch-patience` evaluations without improvement or when kept falls below
   `--watch-floor`.

Under torchrun / accelerate each process generates its share of every batch and the outputs are
gathered, so every process scores the same answers (with FSDP, generation keeps the processes in step).
"""

from __future__ import annotations

from mfcli.train.watch.options import CRITERIA, SPLIT_FILES, WatchOptions, parse_every, schedule  # noqa: F401
from mfcli.train.watch.records import Tracker, live_line, make_record  # noqa: F401
from mfcli.train.watch.runner import BEST_DIR, RunView, Watch  # noqa: F401
from mfcli.train.watch.sample import draw_sample, score_outputs, split_of  # noqa: F401
