"""The torch helpers' dropout: the cheaper mask keeps the distribution of ``nn.Dropout``."""

import torch

from adtag.models.nn import Dropout


def test_dropout_rate_scale_and_eval():
    torch.manual_seed(0)
    x = torch.ones(200, 1000)
    for p in (0.2, 0.5):
        drop = Dropout(p).train()
        y = drop(x)
        kept = y != 0
        assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 200,000 draws: ~0.001 standard error
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)), rtol=1e-4)  # unbiased on average
        assert not torch.equal(drop(x), y)  # a fresh mask each call
        assert torch.equal(drop.eval()(x), x)  # identity when evaluating


def test_dropout_mask_columns_independent():
    """Neighbouring elements (the two halves of one random word) are dropped independently."""
    torch.manual_seed(1)
    kept = (Dropout(0.5).train()(torch.ones(400_000)) != 0).float().view(-1, 2)
    both = (kept[:, 0] * kept[:, 1]).mean().item()
    assert abs(both - 0.25) < 0.005


def test_dropout_gradient_is_the_mask():
    torch.manual_seed(2)
    x = torch.randn(64, 300, requires_grad=True)
    y = Dropout(0.3).train()(x)
    y.sum().backward()
    assert torch.allclose(x.grad, (y.detach() / x.detach()).nan_to_num())
