from mfcli.train.methods.base import Method, projector_names
from mfcli.train.methods.contract import register


@register("linear", summary="the vision-language projector only (EMT's linear fine-tuning)", fsdp=True)
class Linear(Method):
    """EMT §5: only the vision-language projector trains."""

    default_lr = 2e-5

    def trainable(self, model, family, opts):
        return projector_names(model, family)
