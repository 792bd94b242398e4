"""``block_batch_first``: the transformer block with contiguous projections
(the training path of the towers) equals open_clip's block, values and
gradients, image blocks and causal text blocks."""
import open_clip
import torch

from mmpl.clip.prefix_attention import block_batch_first


def _compare(block, x, mask=None):
    kwargs = {} if mask is None else dict(attn_mask=mask)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1 = block(x1, **kwargs)
    y2 = block_batch_first(block, x2, mask)
    w = torch.randn_like(y1)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(y2, y1, atol=1e-5, rtol=0)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=0)


def test_equals_open_clip_block_in_training():
    torch.manual_seed(0)
    model = open_clip.create_model('mmpl-tiny-vit')
    model.requires_grad_(False)
    _compare(model.visual.transformer.resblocks[0], torch.randn(3, 9, 64))
    mask = model.attn_mask[:12, :12]
    _compare(model.transformer.resblocks[1], torch.randn(4, 12, 64), mask)
