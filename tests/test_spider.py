"""SPIDER (issue 42; ICML 2025, Code/train/SPIDER.py), on the hand case of ../shared/methods-after-mt.md §2(e):
W₀ = [[1, 2], [3, 4]], the summed gradient G = [[4, 3], [2, 1]], one SGD step of lr 0.1."""

import pytest
import torch

from mfcli.train.methods.spider import Spider, importance, keep_coefficients

W0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
G = torch.tensor([[4.0, 3.0], [2.0, 1.0]])


def test_importance_is_the_sigmoid_of_the_unbiased_z_score():
    assert importance(W0) == pytest.approx(torch.tensor([[0.2383, 0.4044], [0.5956, 0.7617]]), abs=1e-4)
    assert importance(G) == pytest.approx(torch.tensor([[0.7617, 0.5956], [0.4044, 0.2383]]), abs=1e-4)
    # the population std would give 0.2119 for the smallest entry: the (n − 1) convention is the code's
    assert float(importance(W0)[0, 0]) == pytest.approx(0.2383, abs=1e-4)
    assert not importance(torch.zeros(2, 2)).any()  # an all-zero tensor ranks 0


def test_the_keep_coefficients_of_the_hand_case():
    c = keep_coefficients(importance(W0), importance(G))
    assert c == pytest.approx(torch.tensor([[1.0, 0.8777], [0.0, 0.0]]), abs=1e-4)  # raw c / 0.67865, clipped at 1


def test_after_a_step_the_update_is_blended_back_toward_w0():
    w = torch.nn.Parameter(W0.clone())
    method = Spider()
    method.w0, method.i_pre, method.g_sum = [W0.clone()], [importance(W0)], [torch.zeros(2, 2)]
    w.grad = G.clone()  # the step's (clipped) gradient; G was empty before it
    with torch.no_grad():
        w -= 0.1 * w.grad  # SGD, lr 0.1: W_after = W0 − 0.1 G
    method.after_step([w])
    assert w.detach() == pytest.approx(torch.tensor([[0.6, 1.7367], [3.0, 4.0]]), abs=1e-4)
    assert method.g_sum[0] == pytest.approx(G)  # the running sum holds this step's gradient


def test_a_zero_gradient_resets_to_w0():
    w = torch.nn.Parameter(W0 + 1.0)  # moved by some step
    method = Spider()
    method.w0, method.i_pre, method.g_sum = [W0.clone()], [importance(W0)], [torch.zeros(2, 2)]
    w.grad = torch.zeros(2, 2)
    method.after_step([w])
    assert torch.equal(w.detach(), W0)  # c = 0 everywhere: every entry back to its pre-trained value
