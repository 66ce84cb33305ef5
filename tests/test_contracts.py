"""Declared contracts between mfcli and its plug-ins (issue 41): each registry refuses a second entry of
one name and an entry that does not satisfy its contract, with one line; a fine-tuning method with an
option of its own is one module — named in MFCLI_PLUGINS — and gets its flag, its help line, its value,
and refusal with another method, with no other edit."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mfcli.train.methods.base import Method

PLUGIN = textwrap.dedent('''
    """A user's fine-tuning method, as one module: the projector at a scaled learning rate."""
    from dataclasses import dataclass

    from mfcli.params import option
    from mfcli.train.methods.base import Method, projector_names
    from mfcli.train.methods.contract import register


    @dataclass(frozen=True)
    class ScaledOptions:
        lr_scale: float = option(1.0, "scaled: multiply the learning rate by this.")


    @register("scaled", summary="the projector, its learning rate scaled", options=ScaledOptions)
    class Scaled(Method):
        def trainable(self, model, family, opts):
            return projector_names(model, family)

        def prepare(self, model, family, opts, resume_from=None):
            model, groups = super().prepare(model, family, opts, resume_from)
            for group in groups:
                group["lr"] *= opts.method_options.lr_scale
            return model, groups
''')


def _mfcli(tmp_path, *args, plugins="scaled_method"):
    (tmp_path / "scaled_method.py").write_text(PLUGIN)
    env = {**os.environ, "MFCLI_PLUGINS": plugins,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mfcli", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def test_a_method_with_its_own_option_is_one_module(pico, tmp_path):
    from safetensors.torch import load_file

    shown = _mfcli(tmp_path, "finetune", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "scaled: the projector, its learning rate scaled [--lr-scale]" in " ".join(shown.stdout.split())
    assert "--lr-scale" in shown.stdout and "multiply the learning rate" in " ".join(shown.stdout.split())
    data = tmp_path / "data"
    assert _mfcli(tmp_path, "prepare", "digits", "--out", data, "--limit", "60").returncode == 0
    refused = _mfcli(tmp_path, "finetune", "tiny", data, "--method", "full", "--lr-scale", "2", "--out", tmp_path / "x")
    assert refused.returncode == 2 and "--lr-scale does nothing with --method full" in refused.stderr
    assert "scaled" in refused.stderr and not (tmp_path / "x").exists()
    runs = {}
    for scale in ("0", "1"):
        out = tmp_path / f"scale-{scale}"
        r = _mfcli(tmp_path, "finetune", "tiny", data, "--method", "scaled", "--lr-scale", scale, "--max-steps", "1",
                   "--batch-size", "8", "--out", out)
        assert r.returncode == 0, r.stderr
        runs[scale] = load_file(next(out.glob("*/model.safetensors")))
        manifest = json.loads(next(out.glob("*/mfcli.json")).read_text())
        assert manifest["options"]["lr_scale"] == float(scale)  # the method's own options, flat beside the loop's
    base = load_file(pico["tiny"] / "model.safetensors")
    projector = [k for k in base if "multi_modal_projector" in k]
    assert all((runs["0"][k] == base[k]).all() for k in base)  # lr × 0: nothing moved
    assert any((runs["1"][k] != base[k]).any() for k in projector)  # lr × 1: the projector trained
    assert all((runs["1"][k] == base[k]).all() for k in base if k not in projector)  # and only it


MERGE_PLUGIN = textwrap.dedent('''
    """A user's merge method, as one module: every fine-tuned change scaled by --shrink."""
    from dataclasses import dataclass

    from mfcli.merge.contract import MethodOptions, register
    from mfcli.params import option


    @dataclass(frozen=True)
    class ShrinkOptions(MethodOptions):
        shrink: float = option(0.5, "shrink: multiply every fine-tuned change by this.")


    @register("shrink", summary="every change times --shrink", options=ShrinkOptions)
    def patch(t, opts, rep):
        rep.kept = rep.changed
        return opts.shrink * sum(t.deltas) / len(t.deltas)
''')


def test_a_merge_method_with_its_own_option_is_one_module(pico, tmp_path):
    """The merge registry's counterpart: the option's flag, its help, refusal with another method, its
    value in the merge, the manifest — from one plug-in module and no other edit."""
    from mfcli.train.loop import run_finetune
    from mfcli.train.methods import finetune_options

    (tmp_path / "shrink_merge.py").write_text(MERGE_PLUGIN)
    data = tmp_path / "data"
    assert _mfcli(tmp_path, "prepare", "digits", "--out", data, "--limit", "60").returncode == 0
    sft = run_finetune("tiny", [str(data)], tmp_path / "sft", finetune_options("full", max_steps=1, batch_size=8,
                                                                               lr=1e-3), progress=False) / "step-1"
    shown = _mfcli(tmp_path, "tailor", "--help", plugins="shrink_merge")
    assert shown.returncode == 0 and "--shrink" in shown.stdout
    assert "multiply every fine-tuned change" in " ".join(shown.stdout.split())
    refused = _mfcli(tmp_path, "tailor", "tiny", sft, "--method", "dare", "--shrink", "0.3", "--out", tmp_path / "x",
                     plugins="shrink_merge")
    assert refused.returncode == 2 and "--shrink does nothing with --method dare" in refused.stderr
    assert "(--shrink: shrink)" in refused.stderr and not (tmp_path / "x").exists()
    r = _mfcli(tmp_path, "tailor", "tiny", sft, "--method", "shrink", "--shrink", "0.25", "--out", tmp_path / "m",
               plugins="shrink_merge")
    assert r.returncode == 0, r.stderr
    from transformers import AutoModelForImageTextToText

    pre, tuned, merged = (AutoModelForImageTextToText.from_pretrained(d).state_dict()
                          for d in (pico["tiny"], sft, tmp_path / "m"))
    changed = [k for k in pre if not (tuned[k] == pre[k]).all()]
    assert changed and all(((merged[k] - pre[k]) - 0.25 * (tuned[k] - pre[k])).abs().max() < 1e-6 for k in changed)
    assert json.loads((tmp_path / "m" / "mfcli.json").read_text())["options"]["shrink"] == 0.25


def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path):
    r = _mfcli(tmp_path, "finetune", "--help", plugins="no_such_module")
    assert r.returncode == 1 and "plug-in 'no_such_module'" in r.stderr and "Traceback" not in r.stderr


def test_a_plugin_whose_registration_is_refused_is_one_line(tmp_path):
    (tmp_path / "twice.py").write_text("from mfcli.train.methods.base import Method, projector_names\n"
                                       "from mfcli.train.methods.contract import register\n\n"
                                       "@register('full', summary='again')\n"
                                       "class Again(Method):\n"
                                       "    def trainable(self, model, family, opts):\n"
                                       "        return []\n")
    r = _mfcli(tmp_path, "finetune", "--help", plugins="twice")
    assert r.returncode == 1 and "'full' is registered twice" in r.stderr and "Traceback" not in r.stderr


# ---- each registry refuses a duplicate and a non-conforming entry -------------------------------------

def test_the_method_registry_refuses_what_breaks_its_contract():
    from dataclasses import dataclass

    from mfcli.params import option
    from mfcli.train.methods.contract import REGISTRY, ignored_options, readers, register
    from mfcli.train.methods.shared_options import LayersOptions

    class NoTrainable(Method):
        pass

    class CustomWithoutUpdate(Method):
        custom_update = True

        def trainable(self, model, family, opts):
            return []

    class Fine(Method):
        def trainable(self, model, family, opts):
            return []

    @dataclass(frozen=True)
    class Clash:
        epochs: int = option(4, "clash: a name TrainOptions has.")

    @dataclass(frozen=True)
    class OwnLayers:  # --layers again, declared anew: one flag would carry two meanings
        layers: int = option(1, "clash: lastn's --layers, declared again.")

    @dataclass(frozen=True)
    class SharedLayers(LayersOptions):  # --layers shared through the class that declares it: accepted
        depth_note: str = option("", "t-shared: an option of its own.")

    with pytest.raises(TypeError, match="lacks trainable"):
        register("t-no-trainable", summary="x")(NoTrainable)
    with pytest.raises(TypeError, match="lacks update"):
        register("t-custom", summary="x")(CustomWithoutUpdate)
    with pytest.raises(ValueError, match="registered twice"):
        register("lora", summary="x")(Fine)
    with pytest.raises(ValueError, match="'epochs' is already one of TrainOptions' fields;"):
        register("t-clash", summary="x", options=Clash)(Fine)
    with pytest.raises(ValueError, match=r"'layers' is already LayersOptions's \(read by lastn, spider, dowser, mdgd, mdgd-gm\)"):
        register("t-layers", summary="x", options=OwnLayers)(Fine)
    assert not any(name.startswith("t-") for name in REGISTRY)  # nothing half-registered
    try:
        register("t-shared", summary="x", options=SharedLayers)(Fine)
        assert "t-shared" in readers("layers") and readers("depth_note") == ["t-shared"]
        assert ignored_options("t-shared", {"layers", "depth_note", "lr", "lora_r"}) == ["lora_r"]
        assert ignored_options("full", {"layers"}) == ["layers"]
    finally:
        REGISTRY.pop("t-shared", None)


def test_no_name_list_of_methods_outside_the_registry():
    """What a method is (adapter, FSDP, watchable, one process) is declared once, where it registers."""
    from pathlib import Path

    import mfcli

    root = Path(mfcli.__file__).parent
    for p in (root / "train").rglob("*.py"):
        text = p.read_text()
        assert "FSDP_METHODS" not in text and 'getattr(method, "adapter"' not in text, p
    from mfcli.train.methods import REGISTRY

    assert {n for n, s in REGISTRY.items() if s.fsdp} == {"full", "lastn", "linear", "parts"}
    assert [n for n, s in REGISTRY.items() if s.adapter] == ["lora", "lorasculpt"]
    assert [n for n, s in REGISTRY.items() if not s.watchable] == ["clip"]


@pytest.mark.parametrize("family", ["judges", "merge", "kinds", "sources", "report"])
def test_every_registry_refuses_a_second_entry_of_one_name(family):
    if family == "judges":
        from mfcli.eval.judges import register

        call = lambda: register("exact", summary="again")(lambda o, d=True: None)  # noqa: E731
    elif family == "merge":
        import mfcli.merge.methods  # noqa: F401  (registers the built-in methods, as the host does)
        from mfcli.merge.contract import register

        call = lambda: register("tailor", summary="again")(lambda i, o, r: None)  # noqa: E731
    elif family == "kinds":
        from mfcli.kinds import KINDS
        from mfcli.kinds.base import register

        call = lambda: register(type(KINDS["classification"]))  # noqa: E731
    elif family == "sources":
        from mfcli.data.sources import register

        call = lambda: register("folder", claims=lambda r: False, summary="again")(lambda r: None)  # noqa: E731
    else:
        from mfcli.report.inputs import register

        call = lambda: register("judged", claims=lambda f: False, summary="again")(lambda f, r: None)  # noqa: E731
    with pytest.raises(ValueError, match="registered twice"):
        call()


def test_a_judge_that_breaks_its_contract_is_refused_when_built(monkeypatch):
    """The host reads a judge's name, kind and metric and calls judge(); a judge lacking one, or built
    of another kind than it registered, is refused with one line — no getattr fallback hides it."""
    from mfcli.eval.judges import JUDGES, make_judge, register

    class Bare:
        name = "bare"

        def judge(self, items):
            return []

    class Mislabelled(Bare):
        name, kind, metric = "mislabelled", "vqa", "accuracy"

    monkeypatch.setitem(JUDGES, "t-bare", None)
    monkeypatch.setitem(JUDGES, "t-mislabelled", None)
    register("t-bare", summary="x")(lambda o, d=True: Bare())
    register("t-mislabelled", summary="x")(lambda o, d=True: Mislabelled())
    with pytest.raises(TypeError, match="judge 't-bare' builds a Bare, which lacks kind, metric"):
        make_judge("t-bare")
    with pytest.raises(TypeError, match="registered kind 'classification' but builds one of kind 'vqa'"):
        make_judge("t-mislabelled")
    assert make_judge("exact").kind == "classification" and make_judge("vqa").metric == "vqa_accuracy"
