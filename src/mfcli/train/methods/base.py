"""What every method shares: freezing, parameter groups, saving a full checkpoint."""

from __future__ import annotations

from mfcli.errors import MfcliError
from mfcli.models.chat import IGNORE_INDEX
from mfcli.models.load import load_mllm
from mfcli.train.data import Batcher


class Method:
    """The MLLM defaults of every hook of the method contract (train/methods/contract.py); what a method
    is — adapter, FSDP, watchable, one process or many, the options it reads — it declares where it
    registers (`@register`)."""

    name = ""  # set by `register`
    default_lr = 2e-5  # LLaVA-1.5's fine-tuning learning rate for full models
    weight_decay: float | None = None  # None: --weight-decay's (LLaVA: 0)
    custom_update = False  # True: the method forms its own update (MDGD) instead of loss.backward()

    # What the model is and how a batch becomes a loss: an MLLM answering its training question by
    # default; a method that trains another kind of model (CLIP) overrides these four.

    def check_data(self, files, examples) -> None:
        """Once the training records are read, before any model loads: refuse what this method cannot train."""

    def load(self, path: str, device, dtype):
        """The model to fine-tune (models/load.py's Loaded: model, processor, family)."""
        return load_mllm(path, device=device, dtype=dtype)

    def batcher(self, processor):
        """examples -> a dict of tensors."""
        return Batcher(processor)

    def units(self, batcher, examples) -> int:
        """What the step's loss is a mean over: the answer tokens of these examples."""
        n = 0
        for ex in examples:
            _, labels = batcher.encoder.encode(ex.question, ex.answer)
            n += sum(1 for x in labels[1:] if x != IGNORE_INDEX)
        return max(1, n)

    def loss_sum(self, ctx, model, batch):
        """The batch's summed loss: next-token NLL over the answer tokens."""
        o = model(**ctx.inputs(batch))
        return ctx.nll_sum(o.logits, batch["labels"])

    def trainable(self, model, family, opts) -> list[str]:
        """Names of the parameters this method trains."""
        raise NotImplementedError

    def prepare(self, model, family, opts, resume_from=None):
        """Freeze everything but the trainable set; return (model, optimiser parameter groups)."""
        names = set(self.trainable(model, family, opts))
        for n, p in model.named_parameters():
            p.requires_grad_(n in names)
        lr = opts.lr or self.default_lr
        chosen = [(n, p) for n, p in model.named_parameters() if n in names]
        group = {"params": [p for _, p in chosen], "lr": lr, "names": [n for n, _ in chosen]}
        if self.weight_decay is not None:
            group["weight_decay"] = self.weight_decay
        return model, [group]

    def save(self, model, processor, d, parent: str, state_dict: dict | None = None) -> None:
        """state_dict: the full weights when they were gathered from shards (FSDP)."""
        model.save_pretrained(d, state_dict=state_dict)
        processor.save_pretrained(d)

    # Hooks for a method with state of its own (MDGD); the loop calls them and knows nothing more.

    def start(self, ctx) -> None:
        """Once the model, its trainable parameters and the optimiser exist."""

    def update(self, ctx, micro_batches, n_tokens: int) -> tuple[float, dict]:
        """custom_update only: set every trainable parameter's .grad; return (loss, log fields)."""
        raise NotImplementedError

    def extra_loss(self, ctx):
        """A regulariser added once per optimiser step (its gradient joins the task's before clipping), or
        None; LoRASculpt's conflict-mitigation term."""
        return None

    def after_step(self, params) -> None:
        """Right after optimizer.step()."""

    def extra_state(self) -> dict | None:
        """Tensors saved with the trainer state (and handed back on resume)."""
        return None

    def load_extra_state(self, extra: dict, device) -> None:
        pass

    def finish(self, end) -> None:
        """Once training ended (contract.RunEnd: the model, its processor, the run dir, the manifest)."""


def last_layer_names(model, family, n: int) -> list[str]:
    layers = family.module(model, "decoder_layers")
    if n > len(layers):
        raise MfcliError(f"--layers {n} asked for, but the model has {len(layers)} decoder layers.",
                         f"Use --layers {len(layers)} or fewer.")
    prefixes = tuple(f"{family.decoder_layers}.{i}." for i in range(len(layers) - n, len(layers)))
    return [name for name, _ in model.named_parameters() if name.startswith(prefixes)]


def projector_names(model, family) -> list[str]:
    return [n for n, _ in model.named_parameters() if n.startswith(family.prefix("projector"))]


def default_layers(model, family) -> int:
    """Model Tailor's share: the last 12 of 32 decoder layers (3/8), at least one."""
    return max(1, round(len(family.module(model, "decoder_layers")) * 12 / 32))


def mdgd_default_layers(model, family) -> int:
    """MDGD's share on LLaVA: the last 6 of 32 decoder layers, at least one (tiny: 1 of 2)."""
    return max(1, round(len(family.module(model, "decoder_layers")) * 6 / 32))
