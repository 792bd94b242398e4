"""Is there anything for a prompt learner to find? The headroom of a task.

A yardstick task is only informative when the frozen CLIP's image features
hold more about the base classes than the zero-shot prompt uses: otherwise
every method ties with zero-shot CLIP (the first yardstick measurement,
docs/yardstick.md). Per task, on the base classes, this measures

* ``zero_shot``: the task's template ("a photo of a {}.");
* ``styled``: the template naming the task's first style ("a blurry photo
  of a {}."; v4 renders half the images in a second one), the prompt of a
  user who knew the shift;
* ``probe``: a 16-shot linear probe on the frozen image features, its
  weights initialised at the zero-shot text features and kept near them
  (a ridge to the initialisation); the best of :data:`PROBE_RIDGES` on the
  test images, so an optimistic bound on what a better text side could
  reach with the same shots (``probe_ridge``: the ridge that gave it);
* ``prototypes``: the normalised class means of the 16 shots' image
  features, no text at all: how well the frozen image features alone
  separate the classes. When it is far below zero-shot, the features are
  what limits every method, not the prompt (the v2 world CLIP:
  docs/yardstick.md).

* ``context_sgd``: four context vectors set to the embeddings of "a photo
  of a" before each class name (KgCoOp's and CoCoOp's context), trained
  alone by the papers' optimiser (SGD, lr 2e-3, momentum 0.9) for 100
  full-batch steps on the 16 shots' frozen features: whether a 4-token
  prompt can learn at the papers' learning rate on this CLIP at all (on
  the v2 world CLIP it cannot: docs/yardstick.md).

The probes are mmpl's diagnostics, not a published protocol.
"""
from typing import Dict

import torch
import torch.nn.functional as F

from .clips import register_arch
from .pretrain import (ARCH, LOGIT_SCALE, image_features, text_weights,
                       to_tensor, top1)
from .tasks import Task, sample_split

#: probe schedule: full-batch Adam steps, learning rate; the ridges to the
#: zero-shot weights tried
PROBE_STEPS, PROBE_LR = 300, 1e-2
PROBE_RIDGES = (0.01, 0.1, 1.0, 10.0)
#: what :func:`task_headroom` measures
HEADROOM_KEYS = ('zero_shot', 'styled', 'probe', 'probe_ridge', 'prototypes',
                 'context_sgd')
#: the context probe: KgCoOp's / CoCoOp's context and the papers' optimiser
CONTEXT_PHRASE, CONTEXT_LR, CONTEXT_MOMENTUM, CONTEXT_STEPS = (
    'a photo of a', 2e-3, 0.9, 100)


def probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor,
                   test_x: torch.Tensor, test_y: torch.Tensor,
                   init: torch.Tensor, ridge: float = 0.01) -> float:
    """Top-1 (%) of a linear probe on normalised features (N, D), weights
    (C, D) started at ``init`` and pulled back to it (``ridge``)."""
    weight = init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([weight], lr=PROBE_LR)
    for _ in range(PROBE_STEPS):
        loss = F.cross_entropy(LOGIT_SCALE * train_x @ weight.t(), train_y) \
            + ridge * (weight - init).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return top1(test_x, weight.detach(), test_y)


def prototype_accuracy(train_x: torch.Tensor, train_y: torch.Tensor,
                       test_x: torch.Tensor, test_y: torch.Tensor,
                       num_classes: int) -> float:
    """Top-1 (%) of the normalised class means of ``train_x`` (N, D) as
    class weights, on ``test_x``."""
    sums = train_x.new_zeros(num_classes, train_x.shape[1]).index_add_(
        0, train_y, train_x)
    return top1(test_x, F.normalize(sums, dim=-1), test_y)


def context_probe_accuracy(model, names, train_x: torch.Tensor,
                           train_y: torch.Tensor, test_x: torch.Tensor,
                           test_y: torch.Tensor,
                           steps: int = CONTEXT_STEPS) -> float:
    """Top-1 (%) on ``test_x`` after training the context of
    "{CONTEXT_PHRASE} {name}." alone (see the module doc): normalised
    image features (N, D), labels (N,) into ``names``."""
    import open_clip

    from mmpl.clip import TextTower
    tower = TextTower(model)
    tokenize = open_clip.get_tokenizer(register_arch(ARCH))
    n_ctx = int(tower.eot_index(tokenize([CONTEXT_PHRASE]))[0]) - 1
    ids = tokenize([f'{CONTEXT_PHRASE} {name}.' for name in names])
    eot = tower.eot_index(ids)
    with torch.no_grad():
        words = tower.embed_tokens(ids).float()  # (C, L, Dt)
    ctx = words[0, 1:1 + n_ctx].clone().requires_grad_(True)  # (n_ctx, Dt)
    optimizer = torch.optim.SGD([ctx], lr=CONTEXT_LR,
                                momentum=CONTEXT_MOMENTUM)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:  # the context alone learns
        p.requires_grad_(False)

    def weights() -> torch.Tensor:  # (C, D) class text features
        x = torch.cat([words[:, :1], ctx.expand(len(names), -1, -1),
                       words[:, 1 + n_ctx:]], dim=1)
        return F.normalize(tower.encode_batch(x, eot), dim=-1)

    try:
        for _ in range(steps):
            loss = F.cross_entropy(LOGIT_SCALE * train_x @ weights().t(),
                                   train_y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return top1(test_x, weights(), test_y)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def task_headroom(model, task: Task, shots: int = 16, seed: int = 1,
                  test_per_class: int = 60) -> Dict[str, float]:
    """:data:`HEADROOM_KEYS` -> top-1 (%) on ``task``'s base classes (the
    ridge for ``probe_ridge``) for an open_clip ``model`` (eval mode)."""
    n_base = -(-len(task.classes) // 2)
    names = task.classes[:n_base]
    out: Dict[str, float] = {}
    train, train_y = sample_split(task, shots, seed)
    test, test_y = sample_split(task, test_per_class, seed + 1000)
    keep_train, keep_test = train_y < n_base, test_y < n_base
    train_x = image_features(model, to_tensor(train[keep_train]))
    test_x = image_features(model, to_tensor(test[keep_test]))
    train_y = torch.from_numpy(train_y[keep_train])
    test_y = torch.from_numpy(test_y[keep_test])
    plain = text_weights(model, names, task.template)
    out['zero_shot'] = top1(test_x, plain, test_y)
    out['styled'] = top1(test_x, text_weights(model, names,
                                              task.styled_template()), test_y)
    with torch.enable_grad():
        probes = {r: probe_accuracy(train_x, train_y, test_x, test_y, plain,
                                    r) for r in PROBE_RIDGES}
    out['probe_ridge'] = max(probes, key=probes.get)
    out['probe'] = probes[out['probe_ridge']]
    out['prototypes'] = prototype_accuracy(train_x, train_y, test_x, test_y,
                                           n_base)
    with torch.enable_grad():
        out['context_sgd'] = context_probe_accuracy(
            model, names, train_x, train_y, test_x, test_y)
    return out

