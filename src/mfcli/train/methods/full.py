from dataclasses import dataclass

from mfcli.params import option
from mfcli.train.methods.base import Method
from mfcli.train.methods.contract import register


@dataclass(frozen=True)
class FullOptions:
    train_vision: bool = option(False, "full: also train the vision tower.")


@register("full", summary="the whole language model + projector", fsdp=True, options=FullOptions)
class Full(Method):
    """The whole language model + projector; the vision tower stays frozen unless --train-vision."""

    default_lr = 2e-5

    def trainable(self, model, family, opts):
        vision, projector = family.prefix("vision_tower"), family.prefix("projector")
        # Qwen2-VL's projector (the patch merger) sits inside its vision module: it trains all the same
        return [n for n, _ in model.named_parameters()
                if opts.method_options.train_vision or not n.startswith(vision) or n.startswith(projector)]
