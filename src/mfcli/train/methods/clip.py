"""`clip`: fine-tune a CLIP vision encoder as a classifier (EMT §3.2, App. B.2), in the one training loop.

Each image is scored against the CLIP prompts of its task's labels (`a photo of a {object}.`, `a photo of
the number: "{digit}".`) and trained with cross-entropy on those logits; the text tower stays frozen, so
the class embeddings are computed once. EMT used Adam, lr 1e-5, weight decay 0.001, batch 128 on
ViT-L/14; on `tiny-clip` this reproduces its CLIP forgetting table (evaluate each epoch with
`mfcli emt CKPT DATA`). Everything else — schedule, checkpoints, resume, the log — is the trainer's.
"""

from __future__ import annotations

from mfcli.data.prompts import clip_prompt, noun_for
from mfcli.errors import MfcliError
from mfcli.io.records import read_dataset_info
from mfcli.models.clip import image_features, text_features
from mfcli.models.load import load_clip
from mfcli.train.data import open_image
from mfcli.train.methods.base import Method
from mfcli.train.methods.contract import register

VISION = ("vision_model.", "visual_projection.")


# one process: the loss reaches the vision tower outside the model's forward (DDP would not sync it);
# not watchable: the watch scores an MLLM's answers (evaluate its epochs with `mfcli emt`)
@register("clip", summary="a CLIP vision encoder as a classifier (EMT §3.2; tiny-clip)", watchable=False,
          multi_process=False)
class Clip(Method):
    default_lr = 1e-5  # EMT App. B.2
    weight_decay = 0.001  # EMT App. B.2

    def check_data(self, files, examples) -> None:
        """Every record's label must be one of its task's labels (dataset.json beside train.jsonl)."""
        self.labels: dict[str, tuple[str, ...]] = {}
        for f in files:
            info = read_dataset_info(f)
            if info is not None:
                self.labels[info.name] = info.labels
        for ex in examples:
            labels = self.labels.get(ex.task)
            if not labels or ex.label not in labels:
                raise MfcliError(f"record '{ex.id}' has no known label set (task '{ex.task}').",
                                 "Use files made by `mfcli prepare` (they carry dataset.json).")
        self.tasks = sorted(self.labels)

    def load(self, path: str, device, dtype):
        return load_clip(path, device=device, dtype=dtype)

    def trainable(self, model, family, opts) -> list[str]:
        return [n for n, _ in model.named_parameters() if n.startswith(VISION)]

    def start(self, ctx) -> None:
        import torch

        tok = ctx.processor.tokenizer
        with torch.no_grad():
            self.class_emb = {}
            for task in self.tasks:
                labels = self.labels[task]
                enc = tok([clip_prompt(noun_for(labels), x) for x in labels], padding=True, return_tensors="pt")
                self.class_emb[task] = text_features(ctx.model, enc["input_ids"].to(ctx.device),
                                                     enc["attention_mask"].to(ctx.device))
        self.scale = ctx.model.logit_scale.exp().detach()

    def batcher(self, processor):
        import torch

        def batch(examples) -> dict:
            pix = processor.image_processor(images=[open_image(e) for e in examples], return_tensors="pt")
            return {"pixel_values": pix["pixel_values"],
                    "task_ids": torch.tensor([self.tasks.index(e.task) for e in examples]),
                    "targets": torch.tensor([self.labels[e.task].index(e.label) for e in examples])}
        return batch

    def units(self, batcher, examples) -> int:
        return len(examples)  # the loss is a mean over images

    def loss_sum(self, ctx, model, batch):
        import torch

        feats = image_features(model, batch["pixel_values"])
        return sum(torch.nn.functional.cross_entropy(
            self.scale * feats[i:i + 1] @ self.class_emb[self.tasks[int(t)]].T, batch["targets"][i:i + 1])
            for i, t in enumerate(batch["task_ids"]))
