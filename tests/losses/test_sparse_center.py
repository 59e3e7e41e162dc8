import torch

from dfer.losses import DferLoss, SparseCenterLoss


def _case():
    torch.manual_seed(0)
    b, d, k = 5, 4, 3
    e = torch.randn(b, d, dtype=torch.float64, requires_grad=True)
    w = torch.rand(b, d, dtype=torch.float64).requires_grad_(True)
    y = torch.tensor([0, 2, 2, 1, 2])
    loss = SparseCenterLoss(k, d).double()
    return e, w, y, loss


def _direct():
    e, w, y, loss = _case()
    c = loss.centers.detach().clone()
    value = loss(e, w, y)
    value.backward()
    return e, w, y, loss, c, e.detach() - c[y], value


def test_the_value_is_the_weighted_squared_distance_over_2b():
    e, w, _, _, _, diff, value = _direct()
    assert torch.allclose(value, (w.detach() * diff**2).sum() / (2 * e.shape[0]))


def test_the_embedding_gradient_matches_the_direct_computation():
    e, w, _, _, _, diff, _ = _direct()
    assert torch.allclose(e.grad, w.detach() * diff / e.shape[0])


def test_the_attention_weight_gradient_matches_the_direct_computation():
    e, w, _, _, _, diff, _ = _direct()
    assert torch.allclose(w.grad, diff**2 / (2 * e.shape[0]))


def test_the_centre_gradient_is_the_weighted_mean_pull_of_its_class():
    _, w, y, loss, c, diff, _ = _direct()
    expected_c = torch.zeros_like(c)
    for k in range(c.shape[0]):
        idx = y == k
        expected_c[k] = -(w.detach()[idx] * diff[idx]).sum(0) / (1 + idx.sum())
    assert torch.allclose(loss.centers.grad, expected_c)


def test_center_gradient_does_not_depend_on_lambda():
    e, w, y, loss = _case()
    (100.0 * loss(e, w, y)).backward()
    g_big = loss.centers.grad.clone()
    loss.centers.grad = None
    (0.01 * loss(e, w, y)).backward()
    assert torch.allclose(g_big, loss.centers.grad)


def test_the_centers_sgd_step_moves_each_center_toward_its_samples():
    e, w, y, loss = _case()
    loss(e, w, y).backward()
    g_big = loss.centers.grad.clone()
    before = loss.centers.detach().clone()
    opt = loss.center_optimizer(lr=0.5)
    opt.step()
    assert torch.allclose(loss.centers.detach(), before - 0.5 * g_big)
    # Class 1 has one sample: its center moves half-way (w * alpha / (1 + 1)) toward it.
    diff1 = e.detach()[3] - before[1]
    assert torch.allclose(loss.centers.detach()[1] - before[1], 0.5 * w.detach()[3] * diff1 / 2)


def test_combined_loss_scales_center_term():
    torch.manual_seed(1)
    logits = torch.randn(4, 3, requires_grad=True)
    emb = torch.randn(4, 8, requires_grad=True)
    wts = torch.rand(4, 8)
    y = torch.tensor([0, 1, 2, 1])
    crit = DferLoss(3, 8, lam=0.01)
    total, ce, sc = crit(logits, emb, wts, y)
    assert torch.allclose(total, ce + 0.01 * sc)
    assert torch.allclose(ce, torch.nn.functional.cross_entropy(logits, y))
    total.backward()
    assert emb.grad is not None and logits.grad is not None


def test_centers_start_as_in_dacl():
    torch.manual_seed(0)
    loss = SparseCenterLoss(7, 256)
    assert loss.centers.shape == (7, 256)
    assert abs(float(loss.centers.detach().std()) - (2 / 7) ** 0.5) < 0.03  # Kaiming normal with fan-in K: about 0.53
