"""The training log's name, a leaf both training loops (train/loop.py and the CLIP fine-tune) and the
report's readers share: RUN/train_log.jsonl, one row per optimiser step (docs/formats.md, "Fine-tuning
runs")."""

LOG = "train_log.jsonl"
WATCH_FILE = "watch.jsonl"  # the forgetting watch's records (train/watch/), beside it
