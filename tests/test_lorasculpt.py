"""LoRASculpt (issue 42; CVPR 2025, llava/train/LoRASculpt_Trainer.py), on the hand cases of
../shared/methods-after-mt.md §5(e), then end to end on tiny: after the set step each LoRA tensor keeps
exactly its top fraction, the saved adapter is exactly that sparse, and a resume takes the same steps."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from mfcli.train.loop import run_finetune
from mfcli.train.methods.lorasculpt import SculptOptions, cmr, magnitude_guide, top_magnitude_mask
from mfcli.train.methods import finetune_options

W = torch.tensor([[0.6, -0.8], [0.0, 0.0]])  # ‖W‖_F = 1
B = torch.tensor([[1.0], [2.0]])
A = torch.tensor([[1.0, 1.0]])


def test_the_guide_and_the_regulariser_of_the_hand_case():
    m = magnitude_guide(W, 1.0)
    assert m == pytest.approx(torch.tensor([[0.960907, 0.999744], [0.028945, 0.028945]]), abs=1e-6)
    assert float(cmr([(m, A, B)], 1e-3)) == pytest.approx(1.389076e-3, abs=1e-9)  # λ‖M ⊙ BA‖_F, not squared
    assert float(cmr([(m, A, B), (m, A, 2 * B)], 1.0)) == pytest.approx(1.5 * 1.389076, abs=1e-5)  # a mean


def test_the_regularisers_gradient_matches_finite_differences():
    m = magnitude_guide(W, 1.0).double()
    a, b = A.double().requires_grad_(), B.double().requires_grad_()
    cmr([(m, a, b)], 1.0).backward()
    eps = 1e-6
    for t, g in ((a, a.grad), (b, b.grad)):
        for i in range(t.numel()):
            bumped = t.detach().clone().flatten()
            bumped[i] += eps
            args = (m, bumped.view_as(t), b.detach()) if t is a else (m, a.detach(), bumped.view_as(t))
            numeric = (float(cmr([args], 1.0)) - float(cmr([(m, a.detach(), b.detach())], 1.0))) / eps
            assert float(g.flatten()[i]) == pytest.approx(numeric, abs=1e-4)


def test_the_mask_keeps_the_top_magnitudes_and_masked_entries_stay_zero():
    a = torch.tensor([[0.1, -0.5, 0.3, 0.05]])
    mask = top_magnitude_mask(a, 0.5)
    assert mask.tolist() == [[False, True, True, False]]  # keeps −0.5 and 0.3
    stepped = a * mask - 0.01  # an optimiser step moves every entry, masked ones included
    stepped.mul_(mask)  # the re-mask after the step
    assert stepped[~mask].eq(0).all() and stepped[mask].ne(0).all()


def _opts(**own):
    return finetune_options(method="lorasculpt", batch_size=4, epochs=2, lora_r=4, lora_alpha=8, lr=1e-3,
                        method_options=SculptOptions(**own))


@pytest.fixture(scope="module")
def animals(pico, tmp_path_factory):
    from mfcli.data.prepare import PrepareOptions, prepare

    root = tmp_path_factory.mktemp("sculpt-data")
    prepare("animals", root / "animals", PrepareOptions(limit=20))  # 16 train: 4 steps an epoch at batch 4
    return root / "animals"


def test_after_the_set_step_the_adapter_is_exactly_sparse_and_resumes(pico, animals, tmp_path):
    ref = run_finetune("tiny", [str(animals)], tmp_path / "ref", _opts(sculpt_step=3, sculpt_keep=0.25),
                       progress=False)
    adapter = load_file(ref / "epoch-2" / "adapter_model.safetensors")
    lora = {k: v for k, v in adapter.items() if "lora_A" in k or "lora_B" in k}
    assert lora and all(int(v.ne(0).sum()) == int(v.numel() * 0.25) for v in lora.values())
    log = [json.loads(x) for x in (ref / "train_log.jsonl").read_text().splitlines()]
    # the regulariser, once per step: 0 at step 1 (peft starts B at zero, so B A = 0), positive after
    assert log[0]["reg"] == 0.0 and all(r["reg"] > 0 for r in log[1:])
    cut = run_finetune("tiny", [str(animals)], tmp_path / "cut", _opts(sculpt_step=3, sculpt_keep=0.25),
                       progress=False)
    shutil.rmtree(cut / "epoch-2")  # as if killed during epoch 2, after the masks were made
    run_finetune("tiny", [str(animals)], cut, _opts(sculpt_step=3, sculpt_keep=0.25), resume=True, progress=False)
    a, b = load_file(ref / "epoch-2" / "adapter_model.safetensors"), load_file(cut / "epoch-2" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_its_options_are_its_own(pico, animals, tmp_path):
    r = run_cli("finetune", "tiny", animals, "--method", "lora", "--sculpt-keep", "0.05", "--out", tmp_path / "x")
    assert r.returncode == 2 and "--sculpt-keep does nothing with --method lora" in r.stderr
    r = run_cli("finetune", "tiny", animals, "--method", "lorasculpt", "--sculpt-keep", "0", "--out", tmp_path / "y")
    assert r.returncode == 2 and "--sculpt-keep must be in (0, 1]" in r.stderr
