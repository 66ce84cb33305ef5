"""Model-Dowser-style sparse fine-tuning (issue 42), on the hand case of ../shared/methods-after-mt.md
§1(e) — x = [1, 2], W1 = [[1, −2], [0.5, 1]], W2 = [[2, 0], [1, −1], [0, 3]], identity activations — then
on tiny: the trainable set is exactly the lowest ρ of each matrix and nothing else moves."""

import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from mfcli.train.methods.dowser import all_signs, dowser_scores, lowest_mask


def _net():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.0]]))
        net[1].weight.copy_(torch.tensor([[2.0, 0.0], [1.0, -1.0], [0.0, 3.0]]))
    return net


def test_exhaustive_signs_give_the_exact_jacobian_norms():
    net, x = _net(), torch.tensor([[1.0, 2.0]])
    s = dowser_scores({"l1": net[0], "l2": net[1]}, lambda: net(x), lambda f: all_signs(f.shape))
    assert s["l2"] == pytest.approx(torch.tensor([[6.0, 0.0], [3.0, 2.5], [0.0, 7.5]]))  # J = I
    r5, r10 = math.sqrt(5), math.sqrt(10)  # ‖J_i‖ of layer 1: the column norms of W2
    assert s["l1"] == pytest.approx(torch.tensor([[1 * r5 * 1, 2 * r5 * 2], [0.5 * r10 * 1, 1 * r10 * 2]]), abs=1e-4)


def test_random_draws_land_near_the_exact_norms():
    net, x = _net(), torch.tensor([[1.0, 2.0]])
    gen = torch.Generator().manual_seed(0)
    draws = lambda f: ((torch.randint(0, 2, f.shape, generator=gen).float() * 2 - 1) for _ in range(4096))  # noqa: E731
    s = dowser_scores({"l1": net[0]}, lambda: net(x), draws)
    exact = torch.tensor([[2.2361, 8.9443], [1.5811, 6.3246]])
    assert ((s["l1"] - exact).abs() / exact).max() < 0.05


def test_the_lowest_half_trains_and_one_step_moves_only_it():
    net, x = _net(), torch.tensor([[1.0, 2.0]])
    s = dowser_scores({"l1": net[0], "l2": net[1]}, lambda: net(x), lambda f: all_signs(f.shape))
    m1, m2 = lowest_mask(s["l1"], 0.5), lowest_mask(s["l2"], 0.5)
    assert m1.int().tolist() == [[1, 0], [1, 0]]
    assert m2.int().tolist() == [[0, 1], [0, 1], [1, 0]]  # zero weights score 0: always trainable
    before = [p.detach().clone() for p in net.parameters()]
    for p, m in zip(net.parameters(), (m1, m2)):
        p.register_hook(lambda g, m=m: g * m)
    net(x).sum().backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    for p, b, m in zip(net.parameters(), before, (m1, m2)):
        assert torch.equal(p[~m], b[~m]) and (p[m] != b[m]).any()


def test_on_tiny_exactly_the_lowest_ratio_of_each_matrix_trains(pico, tmp_path):
    from mfcli.train.loop import run_finetune
    from mfcli.train.methods.dowser import DowserOptions
    from mfcli.train.methods import finetune_options

    data = tmp_path / "digits"
    assert run_cli("prepare", "digits", "--out", data, "--limit", "40").returncode == 0
    own = DowserOptions(dowser_ratio=0.2, dowser_prompts=2, dowser_draws=2, dowser_length=4)
    out = run_finetune("tiny", [str(data)], tmp_path / "run", finetune_options(
        method="dowser", layers=1, lr=1e-3, max_steps=2, batch_size=8, weight_decay=0.1, method_options=own),
        progress=False)
    base = load_file(pico["tiny"] / "model.safetensors")
    after = load_file(next(out.glob("*/model.safetensors")))
    last = max(int(k.split(".")[3]) for k in base if k.startswith("language_model.model.layers."))
    tuned = {k for k in base if k.startswith(f"language_model.model.layers.{last}.") and k.endswith("proj.weight")}
    changed = {k for k in base if not torch.equal(base[k], after[k])}
    assert changed == tuned  # the last block's linear weights; no norm, projector or other block
    for k in tuned:  # within each, at most the lowest 20 % (weight decay on: frozen entries put back)
        assert 0 < int((base[k] != after[k]).sum()) <= round(0.2 * base[k].numel())
    r = run_cli("finetune", "tiny", data, "--method", "lastn", "--dowser-ratio", "0.2", "--out", tmp_path / "x")
    assert r.returncode == 2 and "--dowser-ratio does nothing with --method lastn" in r.stderr
