import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from mfcli.errors import MfcliError
from mfcli.train.loop import run_finetune
from mfcli.train.methods.mdgd import project_onto, project_out, topq_mask
from mfcli.train.methods import finetune_options

SMALL = dict(batch_size=4, epochs=2)


def small(method: str) -> dict:
    """SMALL for `method`: the LoRA-based ones at a rank the size of pico's layers."""
    return {**SMALL, **(dict(lora_r=4, lora_alpha=8) if method in ("lora", "lorasculpt") else {})}


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("ft-data")
    prepare("animals", root / "animals", PrepareOptions(limit=20))  # 16 train -> 4 steps/epoch at batch 4
    return root / "animals"


@pytest.fixture(scope="module")
def one_process(pico, train_data, tmp_path_factory):
    """The 1-process runs other tests compare against, each trained once per module (tests only read
    them): `one_process(method="full", epochs=2, ...)` -> its run directory."""
    runs = {}

    def run(**opts):
        key = tuple(sorted(opts.items()))
        if key not in runs:
            runs[key] = run_finetune("tiny", [str(train_data)], tmp_path_factory.mktemp("one") / "run",
                                     finetune_options(**opts), progress=False)
        return runs[key]

    return run


def weights(d):
    name = "adapter_model.safetensors" if (d / "adapter_model.safetensors").is_file() else "model.safetensors"
    return load_file(str(d / name))


@pytest.mark.parametrize("method", ["linear", "lora", "lastn", "full", "parts", "spider", "mdgd", "mdgd-gm"])
def test_every_method_runs_and_checkpoints_load(pico, one_process, method):
    from transformers import AutoModelForImageTextToText

    out = one_process(method=method, **small(method))
    assert sorted(p.name for p in out.iterdir()) == ["epoch-1", "epoch-2", "train_log.jsonl"]
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9))
    loss = [r["loss"] for r in log]  # 4 steps an epoch over the same 16 examples: the second pass fits better
    assert sum(loss[4:]) < sum(loss[:4]), loss
    manifest = json.loads((out / "epoch-1" / "mfcli.json").read_text())
    assert manifest["options"]["method"] == method and manifest["parents"] == [str(pico["tiny"])]
    assert manifest["data"][0]["path"].endswith("train.jsonl") and len(manifest["data"][0]["sha256"]) == 64
    if method == "lora":
        from peft import PeftModel

        base = AutoModelForImageTextToText.from_pretrained(pico["tiny"])
        PeftModel.from_pretrained(base, out / "epoch-2")
        keys = weights(out / "epoch-2")
        assert any("lora_A" in k for k in keys) and any("multi_modal_projector" in k for k in keys)
        assert not any("vision_tower" in k for k in keys)  # LoRA stays out of the CLIP tower
    else:
        model = AutoModelForImageTextToText.from_pretrained(out / "epoch-2")
        base = AutoModelForImageTextToText.from_pretrained(pico["tiny"])
        changed = {n for (n, a), (_, b) in zip(model.named_parameters(), base.named_parameters()) if not torch.equal(a, b)}
        assert changed and not any("vision_tower" in n for n in changed)
        if method == "linear":
            assert all("multi_modal_projector" in n for n in changed)
    if method.startswith("mdgd"):
        assert {"visual_loss", "cos_grad_pre"} <= set(log[0]) and "visual_loss" in log[-1]


@pytest.mark.parametrize("method", ["full", "lora", "mdgd-gm", "spider", "dowser", "lorasculpt"])
def test_resume_is_bit_identical(pico, train_data, one_process, tmp_path, method):
    ref = one_process(method=method, **small(method))
    cut = run_finetune("tiny", [str(train_data)], tmp_path / "cut", finetune_options(method=method, **small(method)),
                       progress=False)
    import shutil

    shutil.rmtree(cut / "epoch-2")  # as if killed during epoch 2
    lora = ["--lora-r", "4", "--lora-alpha", "8"] if method == "lora" else []  # refused for a method that ignores them
    r = run_cli("finetune", "tiny", train_data, "--out", cut, "--method", method, "--epochs", "2", "--batch-size", "4",
                *lora, "--resume")
    assert r.returncode == 0, r.stderr
    a, b = weights(ref / "epoch-2"), weights(cut / "epoch-2")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = [json.loads(x)["loss"] for x in (ref / "train_log.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (cut / "train_log.jsonl").read_text().splitlines()]
    assert la == lb


@pytest.mark.parametrize("method", ["lastn", "mdgd"])
def test_two_process_ddp_matches_single_process(pico, train_data, one_process, tmp_path, method):
    """MDGD all-reduces its four gradients before projecting, so 2 processes take the 1-process steps.

    The lr is pinned small: Adam divides by sqrt(v), so on a parameter whose gradient is ~0 the last-bit
    difference of a 2-way all-reduce becomes a step of order lr — at tiny's recommended 5e-4 that exceeds
    the tolerance now and then, though both runs take the same steps."""
    single = one_process(method=method, batch_size=4, epochs=1, lr=2e-5)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mfcli",
           "finetune", "tiny", str(train_data), "--out", str(tmp_path / "two"), "--method", method,
           "--batch-size", "2", "--epochs", "1", "--device", "cpu", "--lr", "2e-5"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = weights(single / "epoch-1"), weights(tmp_path / "two" / "epoch-1")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert any(not torch.equal(a[k], weights(pico["tiny"])[k]) for k in a)  # it did train


def _torchrun(*args, timeout=300, accelerate=False):
    """2 CPU processes, under torchrun or `accelerate launch --use_fsdp` (which exports ACCELERATE_USE_FSDP)."""
    launcher = ([sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no", "--use_fsdp"] if accelerate else
                [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    cmd = [*launcher, "-m", "mfcli", "finetune", *[str(a) for a in args], "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "FSDP, weights, gradients and optimiser state sharded over 2 processes" in r.stderr


def _same(a, b, atol=1e-6, rtol=1e-5):
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), rtol=rtol, atol=atol) for k in a)


@pytest.mark.parametrize("method", ["full", "lastn"])
def test_fsdp_on_two_processes_matches_one_and_resumes(pico, train_data, one_process, tmp_path, method):
    """FSDP shards weights, gradients and AdamW state; the checkpoints it writes are the ordinary,
    unsharded ones, equal to a 1-process run's, and a run interrupted under FSDP resumes under FSDP."""
    epochs = 2 if method == "full" else 1
    # at LLaVA's lr: 2 processes sum gradients in another order, and tiny's own 5e-4 would carry that
    # float-rounding difference past the 1e-6 this equality is checked at
    single = one_process(method=method, batch_size=4, epochs=epochs, lr=2e-5)
    two = tmp_path / "two"
    common = ("tiny", train_data, "--out", two, "--method", method, "--batch-size", "2", "--epochs", epochs,
              "--lr", "2e-5")
    if method == "lastn":  # accelerate's own FSDP switch, no --fsdp
        _torchrun(*common, accelerate=True)
    else:
        common = (*common, "--fsdp")
        _torchrun(*common)
    last = f"epoch-{epochs}"
    assert _same(weights(single / last), weights(two / last))
    state = lambda d: load_file(str(d / "trainer_state.safetensors"))  # noqa: E731
    # Adam's moments to 1e-4 relative: the LM head's gradients (up to 0.05 on pico) summed over 2
    # processes in another order differ by ~4e-5 relative in float32; a missing all-reduce or a shard
    # written to the wrong place differs by a factor of 2 or entirely
    assert _same({k: v for k, v in state(single / last).items() if k.startswith("opt.")},
                 {k: v for k, v in state(two / last).items() if k.startswith("opt.")}, rtol=1e-4)
    if method == "full":  # as if killed during epoch 2, then resumed under FSDP
        import shutil

        shutil.rmtree(two / "epoch-2")
        _torchrun(*common, "--resume")
        assert _same(weights(single / "epoch-2"), weights(two / "epoch-2"))


def test_fsdp_refuses_what_it_cannot_shard(monkeypatch):
    from mfcli.dist import Dist
    from mfcli.train.sharding import fsdp_requested, make_sharding

    assert not fsdp_requested(False)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # `accelerate launch` with an FSDP config
    assert fsdp_requested(False)

    from mfcli.train.methods import get

    two = Dist(0, 2, "cpu")
    assert not make_sharding(True, Dist(), get("mdgd")).fsdp  # one process: nothing to shard
    for method in ("mdgd", "mdgd-gm", "lora", "clip"):  # a custom update, an adapter, another model
        with pytest.raises(MfcliError, match=f"--method {method} does not run under FSDP"):
            make_sharding(True, two, get(method))
    assert all(make_sharding(True, two, get(m)).fsdp for m in ("full", "lastn", "linear"))


@pytest.mark.parametrize("refresh", [0, 1, 2])
def test_mdgd_gm_updates_only_masked_fraction(pico, train_data, tmp_path, refresh):
    out = run_finetune("tiny", [str(train_data)], tmp_path / "gm",
                       finetune_options(method="mdgd-gm", batch_size=4, max_steps=4, mask_ratio=0.1, mask_refresh=refresh),
                       progress=False)
    a, b = weights(pico["tiny"]), weights(out / "epoch-1")
    trained = [k for k in a if "multi_modal_projector" in k or ("language_model" in k and ".layers.1." in k)]
    changed = sum(int((a[k] != b[k]).sum()) for k in trained)
    total = sum(a[k].numel() for k in trained)  # mdgd's default set on tiny: the projector and the last layer
    assert changed == sum(int((a[k] != b[k]).sum()) for k in a)  # nothing else moved
    if refresh == 0:  # one mask for the whole run; the threshold is estimated on a sample above 65,536 entries
        assert 0.08 * total < changed <= 0.12 * total
    else:  # a refreshed mask may move other entries too, but never more than the masks' union
        assert 0.08 * total < changed <= 0.24 * total
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    with_pre = [r["step"] for r in log if "cos_grad_pre" in r]
    assert with_pre == {0: [1], 1: [1, 2, 3, 4], 2: [1, 3]}[refresh]  # ∇L_t(θ_pre) only when selecting the mask


def test_projections():
    torch.manual_seed(0)
    g = [torch.randn(5, 3), torch.randn(4)]
    v = [torch.randn(5, 3), torch.randn(4)]
    for per_tensor in (False, True):
        perp = project_out(g, v, per_tensor)
        dots = [float((x * y).sum()) for x, y in zip(perp, v)]
        if per_tensor:  # each tensor orthogonal to its own v
            assert all(abs(d) < 1e-4 for d in dots)
            onto = project_onto(g, v, per_tensor)  # and the projection is parallel to v, tensor by tensor
            assert all(torch.allclose(o / (o.norm() + 1e-12), y / y.norm() * torch.sign((o * y).sum()), atol=1e-5)
                       for o, y in zip(onto, v))
        else:  # orthogonal over all tensors at once
            assert abs(sum(dots)) < 1e-4
    assert project_out(g, [torch.zeros(5, 3), torch.zeros(4)], False)[0].equal(g[0])  # v = 0: nothing removed
    mask = topq_mask([torch.arange(10.0), torch.arange(10.0)], 0.1, False)
    assert sum(int(m.sum()) for m in mask) == 2


def _t(*rows):
    return [torch.tensor(r, dtype=torch.float32) for r in rows]


def _hand_made():
    """Two tensors (2 and 3 entries). g⊥ = g − (⟨g,v⟩/‖v‖²)v = (0, 2 | 0, 1, 0) (Eq. 6); v_pre takes the
    first entry of tensor 2 out of g_pre: g⊥_pre = (0, 1 | 0, 1, 0) (Eq. 7)."""
    from mfcli.train.methods.mdgd import Gradients

    return Gradients(g=_t([1, 2], [0, 1, 0]), v=_t([1, 0], [0, 0, 0]),
                     g_pre=_t([0, 1], [1, 1, 0]), v_pre=_t([0, 0], [1, 0, 0]))


@pytest.mark.parametrize("variant, flip_pre, expected", [
    # Eq. 8: (⟨g⊥, g⊥_pre⟩/‖g⊥_pre‖²) g⊥_pre = 3/2 (0, 1 | 0, 1, 0); + λv, λ = 0.5
    ("paper", False, [0.5, 1.5, 0.0, 1.5, 0.0]),
    ("paper", True, [0.5, 1.5, 0.0, 1.5, 0.0]),  # a projection onto −u is the projection onto u
    ("pcgrad", False, [0.5, 2.0, 0.0, 1.0, 0.0]),  # no conflict: g⊥ unchanged
    ("pcgrad", True, [0.5, 0.5, 0.0, -0.5, 0.0]),  # conflict: g⊥ − (−3/2)(−(0, 1 | 0, 1, 0))
    ("decoupled", False, [0.5, 2.0, 0.0, 1.0, 0.0]),
])
def test_mdgd_combination_on_hand_made_vectors(variant, flip_pre, expected):
    """METHODS.md §3 Eq. 6-9, over all trainable entries, for every variant."""
    from mfcli.train.methods.mdgd import Mdgd, MdgdOptions

    grads = _hand_made()
    if flip_pre:
        grads.g_pre = [-x for x in grads.g_pre]
    step = Mdgd().combine(grads, MdgdOptions(lambda_visual=0.5, mdgd_variant=variant))
    assert step.mask is None
    assert torch.equal(torch.cat(step.g_perp), torch.tensor([0.0, 2.0, 0.0, 1.0, 0.0]))
    assert torch.allclose(torch.cat(step.g_perp_pre), torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0]) * (-1 if flip_pre else 1))
    assert torch.allclose(torch.cat(step.update), torch.tensor(expected))


def test_mdgd_per_tensor_and_without_visual_align():
    from mfcli.train.methods.mdgd import Mdgd, MdgdOptions

    # per tensor: (0, 2) onto (0, 1) → (0, 2); (0, 1, 0) onto (0, 1, 0) → (0, 1, 0); + 0.5·(1, 0 | 0, 0, 0)
    step = Mdgd().combine(_hand_made(), MdgdOptions(lambda_visual=0.5, projection="per-tensor"))
    assert torch.allclose(torch.cat(step.update), torch.tensor([0.5, 2.0, 0.0, 1.0, 0.0]))
    step = Mdgd().combine(_hand_made(), MdgdOptions(lambda_visual=0.0))  # "w/o visual align"
    assert torch.allclose(torch.cat(step.update), torch.tensor([0.0, 1.5, 0.0, 1.5, 0.0]))


def test_mdgd_gm_combination_on_hand_made_vectors():
    """Eq. 10-11: M = top-q of g⊥ ⊙ g⊥_pre; d = M ⊙ (g⊥ + λv); the mask holds until re-selected.
    g = (1, 2 | 3, 4, 5), v = (0, 0 | 0, 0, 1) → g⊥ = (1, 2 | 3, 4, 0); g_pre = 1, v_pre = (0, 0 | 0, 1, 0)
    → g⊥_pre = (1, 1 | 1, 0, 1); agreement (1, 2 | 3, 0, 0): q = 0.4 keeps entries 1 and 2 (with g_pre
    in place of g⊥_pre the agreement would be (1, 2 | 3, 4, 0) and keep entries 2 and 3)."""
    from mfcli.train.methods.mdgd import Gradients, MdgdGm, MdgdGmOptions

    method = MdgdGm()
    opts = MdgdGmOptions(lambda_visual=0.5, mask_ratio=0.4)
    grads = Gradients(g=_t([1, 2], [3, 4, 5]), v=_t([0, 0], [0, 0, 1]),
                      g_pre=_t([1, 1], [1, 1, 1]), v_pre=_t([0, 0], [0, 1, 0]))
    step = method.combine(grads, opts)
    assert torch.equal(torch.cat(step.mask), torch.tensor([False, True, True, False, False]))
    assert torch.allclose(torch.cat(step.update), torch.tensor([0.0, 2.0, 3.0, 0.0, 0.0]))
    # a later step without g_pre: the selected mask still applies, and λv enters with its sign
    later = Gradients(g=_t([0, 0], [0, 1, 0]), v=_t([0, 0], [1, 0, 0]))
    step = method.combine(later, opts)
    assert torch.allclose(torch.cat(step.update), torch.tensor([0.0, 0.0, 0.5, 0.0, 0.0]))


def test_mdgd_trains_the_paper_s_share_of_layers(pico, train_data, tmp_path):
    """The last 6/32 of the decoder layers + the projector (tiny: 1 of 2); both drift gradients and
    the two gradient norms are logged."""
    out = run_finetune("tiny", [str(train_data)], tmp_path / "m", finetune_options(method="mdgd", batch_size=4, max_steps=2),
                       progress=False)
    a, b = weights(pico["tiny"]), weights(out / "step-2")
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(".layers.1." in k or "multi_modal_projector" in k for k in changed)
    assert any("multi_modal_projector" in k for k in changed) and any(".layers.1." in k for k in changed)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert all(r["task_grad_norm"] > 0 for r in log)
    assert log[0]["visual_grad_norm"] == 0.0 and log[1]["visual_grad_norm"] > 0  # θ = θ_pre at step 1


def test_bad_inputs(pico, train_data, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "train_log.jsonl").write_text("")
    r = run_cli("finetune", "tiny", train_data, "--out", tmp_path / "taken", "--method", "linear")
    assert r.returncode == 1 and "already holds a run" in r.stderr
    r = run_cli("finetune", "tiny", train_data, "--out", tmp_path / "t", "--lora-targets", "nope_proj",
                "--lora-r", "4", "--max-steps", "1")
    assert r.returncode == 1 and "matches no module" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("finetune", "tiny", train_data, "--out", tmp_path / "m", "--method", "fulll")
    assert r.returncode == 2 and "Did you mean 'full'" in r.stderr  # a usage error, as click's own
    import shutil

    from safetensors.torch import save_file

    poisoned = tmp_path / "poisoned"  # a checkpoint with a NaN weight: the loss is NaN at step 1
    shutil.copytree(pico["tiny"], poisoned)
    w = weights(poisoned)
    w[next(k for k in w if "lm_head" in k)].view(-1)[0] = float("nan")
    save_file(w, str(poisoned / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(MfcliError, match=r"the loss became nan at step 1"):
        run_finetune(str(poisoned), [str(train_data)], tmp_path / "nan", finetune_options(method="linear", batch_size=4),
                     progress=False)
    assert not any(d.name.startswith(("epoch", "step")) for d in (tmp_path / "nan").iterdir())
    bad = tmp_path / "bad"

    shutil.copytree(train_data, bad)
    first = json.loads((bad / "train.jsonl").read_text().splitlines()[0])
    (bad / first["image"]).write_bytes(b"broken")
    r = run_cli("finetune", "tiny", bad, "--out", tmp_path / "b", "--method", "linear", "--max-steps", "1")
    assert r.returncode == 1 and "cannot read image" in r.stderr and first["id"] in r.stderr


def same_weights(a_dir, b_dir) -> bool:
    a, b = weights(a_dir), weights(b_dir)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def losses(run_dir) -> list[float]:
    return [json.loads(x)["loss"] for x in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_mid_epoch_resume_is_bit_identical(pico, train_data, tmp_path):
    """Resume from a `--save-steps` checkpoint in the middle of an epoch: the epoch goes on from its
    next batch (same order), not from its first."""
    import shutil

    ref = run_finetune("tiny", [str(train_data)], tmp_path / "ref", finetune_options(method="full", **SMALL), progress=False)
    cut = run_finetune("tiny", [str(train_data)], tmp_path / "cut", finetune_options(method="full", save_steps=3, **SMALL),
                       progress=False)
    for d in cut.iterdir():  # as if killed at step 5: only step-3 (mid epoch 1, 4 steps an epoch) survives
        if d.is_dir() and d.name != "step-3":
            shutil.rmtree(d)
    r = run_cli("finetune", "tiny", train_data, "--out", cut, "--method", "full", "--epochs", "2", "--batch-size", "4",
                "--save-steps", "3", "--resume")
    assert r.returncode == 0, r.stderr
    assert same_weights(ref / "epoch-1", cut / "epoch-1") and same_weights(ref / "epoch-2", cut / "epoch-2")
    assert losses(ref) == losses(cut)


def test_ctrl_c_checkpoint_resumes_to_the_uninterrupted_run(pico, train_data, tmp_path):
    out = tmp_path / "run"
    args = ["finetune", "tiny", str(train_data), "--out", str(out), "--method", "full", "--batch-size", "2",
            "--epochs", "12"]
    p = subprocess.Popen([sys.executable, "-m", "mfcli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=os.environ,  # SIGINT at its default, as in a terminal (CI ignores it)
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:
        log = out / "train_log.jsonl"
        if log.is_file() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "resumable checkpoint" in err and "Traceback" not in err
    ckpt = Path(err.split("resumable checkpoint at ")[1].split(";")[0])
    assert (ckpt / "trainer_state.safetensors").is_file()
    stopped_at = json.loads((ckpt / "trainer_state.json").read_text())["progress"]["global_step"]
    assert 3 <= stopped_at < 96 and len(losses(out)) == stopped_at  # the log agrees with the checkpoint
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    ref = run_finetune("tiny", [str(train_data)], tmp_path / "ref",
                       finetune_options(method="full", batch_size=2, epochs=12), progress=False)
    assert same_weights(ref / "epoch-12", out / "epoch-12")
    assert losses(ref) == losses(out)


def test_clip_method_on_tiny_clip(pico, train_data, tmp_path):
    from transformers import CLIPModel

    from mfcli.eval.emt import EmtOptions, run_emt

    out = run_finetune("tiny-clip", [str(train_data)], tmp_path / "clip",
                       finetune_options(method="clip", epochs=2, batch_size=8, lr=1e-3), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["epoch-1", "epoch-2", "train_log.jsonl"]
    tuned, base = CLIPModel.from_pretrained(out / "epoch-2"), CLIPModel.from_pretrained(pico["tiny-clip"])
    changed = {n for (n, a), (_, b) in zip(tuned.named_parameters(), base.named_parameters()) if not torch.equal(a, b)}
    assert changed and all(n.startswith(("vision_model.", "visual_projection.")) for n in changed)
    run_emt(str(out / "epoch-2"), [str(train_data)], tmp_path / "p.jsonl", EmtOptions(), progress=False)
    assert json.loads((out / "epoch-1" / "mfcli.json").read_text())["options"]["method"] == "clip"

    # the loss (EMT §3.2): the mean over the step's images of the cross-entropy of CLIP's scaled
    # image-prompt similarities against the image's label, its first step computed here by hand
    from transformers import AutoProcessor

    from mfcli.data.prompts import clip_prompt, noun_for
    from mfcli.io.records import read_dataset_info
    from mfcli.models.clip import image_features, text_features
    from mfcli.train.data import load_examples, open_image

    examples, files = load_examples([str(train_data)])
    first = [examples[i] for i in torch.randperm(len(examples), generator=torch.Generator().manual_seed(0))[:8]]
    labels = read_dataset_info(files[0]).labels
    proc = AutoProcessor.from_pretrained(pico["tiny-clip"])
    with torch.no_grad():
        text = proc.tokenizer([clip_prompt(noun_for(labels), x) for x in labels], padding=True, return_tensors="pt")
        t = text_features(base, text["input_ids"], text["attention_mask"])  # unit vectors
        pix = proc.image_processor(images=[open_image(e) for e in first], return_tensors="pt")["pixel_values"]
        v = image_features(base, pix)
        want = torch.nn.functional.cross_entropy(base.logit_scale.exp() * v @ t.T,
                                                 torch.tensor([labels.index(e.label) for e in first]))
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["loss"] == pytest.approx(float(want), rel=1e-4)

    # the one training loop's checkpoints: a run cut during epoch 2 resumes to the same weights
    import shutil

    from mfcli.train.watch import WatchOptions

    shutil.rmtree(out / "epoch-2")
    run_finetune("tiny-clip", [str(train_data)], tmp_path / "clip", finetune_options(method="clip", epochs=2,
                 batch_size=8, lr=1e-3), resume=True, progress=False)
    assert all(torch.equal(a, b) for (_, a), (_, b) in
               zip(tuned.named_parameters(), CLIPModel.from_pretrained(out / "epoch-2").named_parameters()))
    with pytest.raises(MfcliError, match="--watch scores an MLLM's answers"):
        run_finetune("tiny-clip", [str(train_data)], tmp_path / "w", finetune_options(method="clip"), progress=False,
                     watch=WatchOptions((str(train_data),)))


def test_one_schedule_warm_up_then_cosine_to_zero():
    import math

    from mfcli.train.schedule import warmup_cosine, warmup_steps

    assert warmup_steps(60, 0.05) == 3 and warmup_steps(61, 0.05) == 4 and warmup_steps(10, 0.0) == 1
    f = warmup_cosine(103, 0.03)  # 4 warm-up steps, then 99 of decay
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4 + 99 // 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 49 / 99)))
    assert f(103) == pytest.approx(0.0) and f(200) == pytest.approx(0.0)  # never negative past the end


def test_model_defaults_fill_only_unset_options():
    from mfcli.errors import UsageError
    from mfcli.train.options import with_model_defaults

    manifest = {"full": {"lr": 5e-4}, "lora": {"lr": 3e-4, "lora_r": 16}}  # a manifest's finetune_defaults
    opts, supplied = with_model_defaults(finetune_options(method="full"), manifest)
    assert opts.lr == 5e-4 and supplied == {"lr": 5e-4}
    opts, supplied = with_model_defaults(finetune_options(method="full", lr=1e-5), manifest)
    assert opts.lr == 1e-5 and supplied == {}  # a flag always wins
    opts, _ = with_model_defaults(finetune_options(method="lora", lora_alpha=8), manifest)
    own = opts.method_options
    assert (opts.lr, own.lora_r, own.lora_alpha, own.projector_lr) == (3e-4, 16, 8, None)
    opts, supplied = with_model_defaults(finetune_options(method="lastn"), manifest)  # nothing for lastn
    assert opts.lr is None and supplied == {}
    opts, _ = with_model_defaults(finetune_options(method="lora"), None)  # a model without recommendations: LLaVA's
    assert (opts.lr, opts.method_options.lora_r, opts.method_options.lora_alpha) == (None, 128, 256)
    opts, _ = with_model_defaults(finetune_options(method="lastn"), {"lastn": {"layers": 1}})  # lastn's own option
    assert opts.method_options.layers == 1
    with pytest.raises(UsageError, match="recommends epochs for full"):
        with_model_defaults(finetune_options(method="full"), {"full": {"epochs": 9}})
    with pytest.raises(UsageError, match="recommends lora_r for full, which it does not read"):
        with_model_defaults(finetune_options(method="full"), {"full": {"lora_r": 9}})


def test_finetune_uses_the_models_recommendation_and_children_inherit_it(pico, train_data, tmp_path):
    recommended = json.loads((pico["tiny"] / "mfcli.json").read_text())["finetune_defaults"]
    assert recommended["lora"]["lr"] != 2e-4 and recommended["lora"]["lora_r"] != 128  # not LLaVA's values
    out = run_finetune("tiny", [str(train_data)], tmp_path / "rec", finetune_options(method="lora", batch_size=4, epochs=1),
                       progress=False)
    m = json.loads((out / "epoch-1" / "mfcli.json").read_text())
    for k, v in recommended["lora"].items():
        assert m["options"][k] == v, k
    assert m["finetune_defaults"] == recommended  # a fine-tune of tiny recommends what tiny does
    config = json.loads((out / "epoch-1" / "adapter_config.json").read_text())
    assert config["r"] == recommended["lora"]["lora_r"] and config["lora_alpha"] == recommended["lora"]["lora_alpha"]
    peak = max(json.loads(x)["lr"] for x in (out / "train_log.jsonl").read_text().splitlines())
    assert recommended["lora"]["lr"] / 2 < peak <= recommended["lora"]["lr"]

    flagged = run_finetune("tiny", [str(train_data)], tmp_path / "flag",
                           finetune_options(method="lora", lr=1e-5, lora_r=4, lora_alpha=8, batch_size=4, epochs=1),
                           progress=False)
    m = json.loads((flagged / "epoch-1" / "mfcli.json").read_text())
    assert (m["options"]["lr"], m["options"]["lora_r"], m["options"]["lora_alpha"]) == (1e-5, 4, 8)
    assert m["options"]["projector_lr"] == recommended["lora"]["projector_lr"]  # unset: still the model's


def test_labels_tiny_never_saw_round_trip_and_are_learnt(pico, tmp_path):
    """Issue 10 (1): tiny's byte-level tokenizer never maps a user's label to <unk>, and a fine-tune on a
    folder whose class names tiny never saw teaches it to answer them."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from transformers import AutoTokenizer

    from mfcli.data.prepare import PrepareOptions, prepare
    from mfcli.eval.emt import EmtOptions, run_emt
    from mfcli.eval.judges import make_judge
    from mfcli.eval.judging import judge_file

    tok = AutoTokenizer.from_pretrained(pico["tiny"])
    for text in ("golden_retriever", "crème brûlée", "7", "tabby", "Ünïcödé 猫 🐈"):
        ids = tok(text, add_special_tokens=False).input_ids
        assert tok.unk_token_id not in ids and tok.decode(ids) == text, text
    assert len(tok(" golden", add_special_tokens=False).input_ids) <= 2  # common words stay whole-ish

    # two classes pico's barely trained vision tells apart (dark and bright digits): the point is the words
    digits = load_digits()
    folder = tmp_path / "pets"
    for label, (digit, scale) in (("tabby", (0, 60)), ("golden_retriever", (1, 255))):
        (folder / label).mkdir(parents=True)
        for k, img in enumerate(digits.images[digits.target == digit][:40]):
            Image.fromarray((img * scale / 16).astype(np.uint8)).resize((24, 24)).convert("RGB").save(
                folder / label / f"{k}.png")
    prepare(str(folder), tmp_path / "data", PrepareOptions())
    run = run_finetune("tiny", [str(tmp_path / "data")], tmp_path / "run",
                       finetune_options(method="full", epochs=8, batch_size=8, lr=3e-3), progress=False)
    preds = tmp_path / "p.jsonl"
    run_emt(str(run / "epoch-8"), [str(tmp_path / "data")], preds, EmtOptions(batch_size=16), progress=False)
    summary = judge_file(str(preds), str(tmp_path / "j.jsonl"), make_judge("exact"))
    rows = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert {r["label"] for r in rows} == {"tabby", "golden_retriever"}
    accuracy = sum(r["correct"] for r in rows) / len(rows)
    assert accuracy >= 0.9, (accuracy, [r["output"] for r in rows[:4]], summary)


def test_a_ctrl_c_after_the_loops_last_check_is_not_lost():
    # DeferredInterrupt turns the first Ctrl-C into a request the loop checks after each step; one that
    # lands after the last check (during the final save) must still stop the command when the loop ends,
    # and must not replace an exception already on its way out
    from mfcli.train.interrupt import DeferredInterrupt

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with DeferredInterrupt() as stop:
            stop._handler(signal.SIGINT, None)
    with pytest.raises(ValueError):
        with DeferredInterrupt() as stop:
            stop._handler(signal.SIGINT, None)
            raise ValueError("the run failed")
    with DeferredInterrupt():
        pass  # no request: nothing raised
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
