"""NPS-style merging (issue 42; after Du et al., ACL 2025, whose code could not be read): the hand case of
../shared/methods-after-mt.md §3(e), the same through `mfcli tailor`'s merge with the band weights fixed
by hand (CMA-ES bypassed) at an exact budget, and the CMA-ES search end to end on tiny, scored on
validation records only."""

import json

import pytest
import torch

from conftest import run_cli
from mfcli.merge.fuse import merge_state
from mfcli.merge.methods.nps import band_of, nps_patch
from mfcli.merge.methods import tailor_options

TAU = torch.tensor([0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8, 0.9, -1.0])


def test_two_equal_bands_put_the_largest_half_first():
    assert band_of(TAU.abs(), TAU != 0, 2).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("weights, kept", [((0.2, 1.0), [2, 3, 4]), ((0.45, 1.0), [4, 8, 9]), ((1.0, 1.0), [7, 8, 9])])
def test_the_band_weights_decide_what_is_kept(weights, kept):
    patch, mask = nps_patch(TAU, 0.3, list(weights), "mask")
    assert mask.nonzero().flatten().tolist() == kept  # all 1: plain magnitude pruning
    assert torch.equal(patch[mask], TAU[mask]) and not patch[~mask].any()


def test_the_two_variants_differ_as_the_spec_says():
    mask_only, _ = nps_patch(TAU, 0.3, [0.45, 1.0], "mask")
    reweighted, _ = nps_patch(TAU, 0.3, [0.45, 1.0], "reweighted")
    assert mask_only[[4, 8, 9]].tolist() == pytest.approx([0.5, 0.9, -1.0])
    assert reweighted[[4, 8, 9]].tolist() == pytest.approx([0.5, 0.405, -0.45])


def test_through_the_merge_with_fixed_weights_the_budget_is_exact():
    pre = torch.zeros(10)
    fused, report = merge_state({"w": pre}, [{"w": TAU.clone()}],
                                tailor_options(method="nps", sparsity=0.3, nps_bands=2, nps_weights="0.45,1"))
    assert fused["w"].nonzero().flatten().tolist() == [4, 8, 9] and report.tensors[0].kept == 3
    with pytest.raises(Exception, match="--nps-weights needs 2"):
        tailor_options(method="nps", nps_bands=2, nps_weights="1,1,1")


def test_the_search_scores_validation_records_and_records_its_choice(pico, tmp_path):
    data = tmp_path / "counting"
    assert run_cli("prepare", "counting", "--out", data, "--limit", "60").returncode == 0
    sft = tmp_path / "sft"
    assert run_cli("finetune", "tiny", data, "--method", "full", "--max-steps", "2", "--out", sft).returncode == 0
    ckpt = next(p for p in sft.iterdir() if p.is_dir())
    r = run_cli("tailor", "tiny", ckpt, "--method", "nps", "--nps-search", data / "eval.jsonl", "--out", tmp_path / "x")
    assert r.returncode == 2 and "never the held-out split" in r.stderr and not (tmp_path / "x").exists()
    out = tmp_path / "nps"
    r = run_cli("tailor", "tiny", ckpt, "--method", "nps", "--nps-bands", "2", "--nps-search", data,
                "--nps-budget", "3", "--data", data / "train.jsonl", "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("validation score") == 4  # three candidates, then the choice
    chosen = json.loads((out / "mfcli.json").read_text())["options"]
    assert len(chosen["nps_weights"].split(",")) == 2 and chosen["nps_search"] == [str(data)]
