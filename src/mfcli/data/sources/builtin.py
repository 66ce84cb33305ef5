"""The built-in tasks (data/tasks.py) by name: `mfcli prepare digits`."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mfcli.data.facts import facts
from mfcli.data.sources.base import Example, Request, Source, register
from mfcli.data.tasks import PRETRAINED, TASKS
from mfcli.errors import MfcliError
from mfcli.kinds import kind_of


def _from_array(a: np.ndarray):
    return lambda: Image.fromarray(a)


# the built-in tasks asked without an image (no model was built on them: tiny's recipe reads TASKS only)
TEXT_TASKS = {"facts": "short questions a small language model mostly answers (capitals, opposites, plurals, "
                       "arithmetic, everyday facts), one-word answers, no image (data/facts.py)"}


@register("builtin", claims=lambda req: req.spec in TASKS or req.spec in TEXT_TASKS, summary="a built-in task by name")
def read(req: Request) -> Source:
    if req.spec in TEXT_TASKS:
        if req.kind is not None and req.kind != "text":
            raise MfcliError(f"built-in task '{req.spec}' is a text task, not {req.kind}.", "Drop --kind.")
        examples = [Example(f"{i:05d}", f.references[0], None, f.question, f.references)
                    for i, f in enumerate(facts())]
        # the language model's own knowledge, from its pre-training: a pre-trained task
        return Source(req.spec, f"builtin:{req.spec}", (), examples, role=PRETRAINED, kind="text", builtin=True)
    name, task = req.spec, TASKS[req.spec]
    if req.kind is not None and req.kind != task.kind:
        raise MfcliError(f"built-in task '{name}' is a {task.kind} task, not {req.kind}.", "Drop --kind.")
    if not kind_of(task.kind).labelled:
        images, items = task.load()
        examples = [Example(f"{i:05d}", qa.references[0], _from_array(images[i]), qa.question, qa.references)
                    for i, qa in enumerate(items)]
        return Source(name, f"builtin:{name}", (), examples, role=task.role, kind=task.kind, prompt=task.prompt,
                      builtin=True)
    images, ids = task.load()
    examples = [Example(f"{i:05d}", task.labels[int(y)], _from_array(images[i])) for i, y in enumerate(ids)]
    return Source(name, f"builtin:{name}", task.labels, examples, task.noun, task.role, builtin=True)
