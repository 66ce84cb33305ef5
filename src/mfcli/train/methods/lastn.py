from mfcli.train.methods.base import Method, default_layers, last_layer_names, projector_names
from mfcli.train.methods.contract import register
from mfcli.train.methods.shared_options import LayersOptions


@register("lastn", summary="projector + the last N decoder layers (Model Tailor: 12 of 32)", fsdp=True,
          options=LayersOptions)
class LastN(Method):
    """Projector + the last N decoder layers, fully (Model Tailor: 12 of 32; MDGD: 6 of 32)."""

    default_lr = 2e-5

    def trainable(self, model, family, opts):
        n = opts.method_options.layers or default_layers(model, family)
        return projector_names(model, family) + last_layer_names(model, family, n)
