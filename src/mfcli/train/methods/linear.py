from mfcli.train.methods.base import Method, projector_names


class Linear(Method):
    """EMT §5: only the vision-language projector trains."""

    name = "linear"
    default_lr = 2e-5

    def trainable(self, model, family, opts):
        return projector_names(model, family)
