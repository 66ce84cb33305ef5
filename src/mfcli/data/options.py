"""`mfcli prepare`'s options, in a module of their own so that the command line reads them without
importing the readers (PIL, numpy)."""

from __future__ import annotations

from dataclasses import dataclass

from mfcli.errors import UsageError
from mfcli.kinds import QaFields, kind_names
from mfcli.params import option


@dataclass(frozen=True)
class PrepareOptions:
    """`mfcli prepare`'s options (a field made with `option` is its --flag, with this help)."""

    # keep at most this many examples (a seeded sample of each split), for quick runs
    limit: int | None = option(None, "Keep at most N examples: a --seed-ed sample of each split, in proportion; "
                                     "never changes which are held out.")
    # EMT evaluates on 20 % randomly selected samples (Appendix D.1)
    eval_fraction: float = option(0.2, "Held-out fraction for eval.jsonl (EMT: 0.2); held out by the example's "
                                       "identity (docs/formats.md).")
    # what everything that chooses (the watch's best/, early stopping, a study's setting) chooses on
    val_fraction: float = option(0.1, "Share of the not-held-out examples carved into val.jsonl, the split "
                                      "mfcli chooses on (0: none); carved by image, never moved by --limit "
                                      "or --seed.")
    seed: int = option(0, "The --limit sample and the rows' order; never which examples are held out.")
    # train.jsonl form: "llava" (conversations) or "sharegpt" (messages/images)
    format: str = option("llava", "train.jsonl form: llava or sharegpt.")
    # JSON/CSV mapping raw labels to readable names (miniImageNet wnids)
    label_names: str | None = option(None, "JSON/CSV mapping raw labels to names.")
    # override the EMT prompt ("{labels}", "{noun}" filled in), the caption instruction, or the VQA form
    # ("{question}" filled in)
    prompt: str | None = option(None, "Custom EMT prompt; {labels} and {noun} are filled in.")
    split: str | None = option(None, "Dataset split for hub ids (default train).")
    strict: bool = option(False, "Fail on a corrupt image instead of skipping it.")  # else skipped and counted
    kind: str | None = option(None, f"What the rows hold: {', '.join(kind_names()[:-1])} or {kind_names()[-1]} "
                                    "(default: from their fields).")
    fields: QaFields = QaFields()  # column names of questions, answers, captions, options (their own flags)
    image_field: str = option("image", "CSV/JSONL column of image paths.")
    label_field: str = option("label", "CSV/JSONL column of labels.")  # classification
    # the task's name in every record (and so in judge summaries and reports); not a built-in's
    task: str | None = option(None, "The task's name in the records (default: the folder's name, the file's "
                                    "stem, the dataset's name).")

    def __post_init__(self):
        if not 0.0 < self.eval_fraction < 1.0:
            raise UsageError(f"--eval-fraction must be in (0, 1), got {self.eval_fraction}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}.")
        if self.format not in ("llava", "sharegpt"):
            raise UsageError(f"--format must be 'llava' or 'sharegpt', got '{self.format}'.")
        if self.task is not None and (not self.task.strip() or any(c.isspace() for c in self.task)):
            raise UsageError(f"--task must be a name without spaces, got '{self.task}'.")
        if self.limit is not None and self.limit < 2:
            raise UsageError(f"--limit must be at least 2, got {self.limit}.")
