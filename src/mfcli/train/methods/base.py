"""What every method shares: freezing, parameter groups, saving a full checkpoint."""

from __future__ import annotations


class Method:
    name = ""
    default_lr = 2e-5  # LLaVA-1.5's fine-tuning learning rate for full models
    custom_update = False  # True: the method forms its own update (MDGD) instead of loss.backward()

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
        return model, [{"params": [p for _, p in chosen], "lr": lr, "names": [n for n, _ in chosen]}]

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

    def after_step(self, params) -> None:
        """Right after optimizer.step()."""

    def extra_state(self) -> dict | None:
        """Tensors saved with the trainer state (and handed back on resume)."""
        return None

    def load_extra_state(self, extra: dict, device) -> None:
        pass

    def finish(self, trainer) -> None:
        """Once training ended (train/loop.py's Trainer: its model, processor, out and manifest())."""


def last_layer_names(model, family, n: int) -> list[str]:
    layers = family.module(model, "decoder_layers")
    if n > len(layers):
        from mfcli.errors import MfcliError

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
