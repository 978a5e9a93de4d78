"""The embedding net's PyTorch modules and their training, for `ml.embedding_net`.

`Net` is one net: an embedding per categorical column and an MLP head. `SeedStack` holds the
nets of several seeds with each parameter stacked on a first axis, so that one forward and
backward pass trains them all; `train_seeds` runs minibatch Adam on it until no seed has
improved for `patience` epochs, and leaves each seed's best epoch's weights (a seed whose own
patience ran out earlier trains on with the others, but only a better epoch replaces its best).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, cardinalities: list[int], n_numeric: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        dims = embedding_dims(cardinalities)
        # index 0 of every embedding stands for a level unseen in training
        self.embeddings = nn.ModuleList(
            nn.Embedding(n + 1, d) for n, d in zip(cardinalities, dims, strict=True)
        )
        width = sum(dims) + n_numeric
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)

    def tables(self) -> list[nn.Embedding]:
        return [m for m in self.embeddings if isinstance(m, nn.Embedding)]

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.head if isinstance(m, nn.Linear)]

    def start_at(self, value: float) -> None:
        """Start the output at `value` (the mean target), so training learns deviations."""
        last = self.head[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.bias.fill_(value)

    def forward(self, codes: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        parts = [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(torch.cat([*parts, numeric], dim=1)).squeeze(1)


def embedding_dims(cardinalities: list[int]) -> list[int]:
    """Each categorical column's embedding size, from its number of levels."""
    return [min(16, (n + 2) // 2) for n in cardinalities]


class SeedStack(nn.Module):
    """Nets of one shape trained side by side: each parameter of theirs stacked on a first axis
    (seeds), so that one forward and backward pass trains every seed. The seeds do not interact
    (Adam's update is elementwise), so each learns what it would alone on the same batches."""

    def __init__(self, nets: list[Net]) -> None:
        super().__init__()
        self.tables = nn.ParameterList(
            _stacked(net.tables()[i].weight for net in nets) for i in range(len(nets[0].tables()))
        )
        linears = [net.linears() for net in nets]
        self.weights = nn.ParameterList(
            _stacked(layers[k].weight.T for layers in linears) for k in range(len(linears[0]))
        )
        self.biases = nn.ParameterList(
            _stacked(layers[k].bias[None, :] for layers in linears) for k in range(len(linears[0]))
        )

    def forward(self, codes: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """seeds × rows × columns of codes and numeric inputs → seeds × rows of log forecasts.

        The first layer is `Net`'s on the concatenated embeddings, computed without
        concatenating: each table is multiplied by its rows of the first layer's weights, and
        a row looks up its levels' products (a fifth cheaper a step, backward included)."""
        seeds = torch.arange(len(codes))[:, None]
        first = self.weights[0]
        x = torch.baddbmm(self.biases[0], numeric, first[:, first.shape[1] - numeric.shape[2] :])
        offset = 0
        for i, table in enumerate(self.tables):
            weights = first[:, offset : offset + table.shape[2]]
            offset += table.shape[2]
            projected = torch.bmm(table, weights)  # seeds × levels × first layer's width
            rows = codes[:, :, i] + seeds * projected.shape[1]  # the seeds' tables end to end
            x = x + nn.functional.embedding(rows, projected.reshape(-1, projected.shape[2]))
        for weight, bias in zip(self.weights[1:], self.biases[1:], strict=True):
            x = torch.baddbmm(bias, torch.relu(x), weight)
        return x.squeeze(2)

    def copy_into(self, nets: list[Net]) -> None:
        """Write each seed's parameters back into its `Net`."""
        with torch.no_grad():
            for s, net in enumerate(nets):
                for table, embedding in zip(self.tables, net.tables(), strict=True):
                    embedding.weight.copy_(table[s])
                layers = net.linears()
                for weight, bias, layer in zip(self.weights, self.biases, layers, strict=True):
                    layer.weight.copy_(weight[s].T)
                    layer.bias.copy_(bias[s, 0])


def _stacked(tensors: Iterable[torch.Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).contiguous())


class TrainingData(NamedTuple):
    codes: torch.Tensor
    numeric: torch.Tensor
    target: torch.Tensor  # log1p(units)
    weights: torch.Tensor | None  # per row with objective "mape": absolute error, weighted
    train: torch.Tensor  # row indices
    val: torch.Tensor

    def inputs(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The codes and numeric inputs of `rows` (any shape), with the columns last."""
        flat = rows.reshape(-1)
        return (
            self.codes.index_select(0, flat).view(*rows.shape, -1),
            self.numeric.index_select(0, flat).view(*rows.shape, -1),
        )

    def loss(self, pred: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Squared error, or with `weights` the weighted absolute error, over `rows`: the mean
        over the last axis (one loss per seed for seeds × rows)."""
        if self.weights is None:
            return ((pred - self.target[rows]) ** 2).mean(dim=-1)
        return (self.weights[rows] * (pred - self.target[rows]).abs()).mean(dim=-1)


class TrainingOptions(NamedTuple):
    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int  # epochs without improvement before a seed stops
    epoch_rows: int | None = None  # rows an epoch samples at most (each seed its own); None: all


def train_seeds(
    stack: SeedStack, data: TrainingData, seeds: range, options: TrainingOptions
) -> list[int]:
    """Mini-batch Adam, every seed's net in one pass, until no seed has improved on its
    validation loss for `options.patience` epochs; leaves each seed's best epoch's weights in
    `stack` and returns those epochs."""
    optimizer = torch.optim.Adam(
        stack.parameters(),
        lr=options.learning_rate,
        weight_decay=options.weight_decay,
        foreach=True,
    )
    shuffles = [torch.Generator().manual_seed(seed) for seed in seeds]
    best = _BestEpochs(stack)
    val_rows = data.val.expand(len(shuffles), -1)
    val_inputs = data.inputs(val_rows)  # the same rows every epoch: gathered once
    for epoch in range(1, options.max_epochs + 1):
        stack.train()
        for batch in _batches(data.train, shuffles, options.batch_size, options.epoch_rows):
            optimizer.zero_grad()
            data.loss(stack(*data.inputs(batch)), batch).sum().backward()
            optimizer.step()
        if len(data.val) == 0:
            best.epochs.fill_(epoch)
            continue
        stack.eval()
        with torch.no_grad():
            best.update(epoch, data.loss(stack(*val_inputs), val_rows))
        if bool((epoch - best.epochs >= options.patience).all()):
            break
    if len(data.val):
        best.restore()
    return [int(e) for e in best.epochs]


def _batches(
    rows: torch.Tensor, shuffles: list[torch.Generator], size: int, limit: int | None
) -> tuple[torch.Tensor, ...]:
    """One epoch's minibatches (seeds × rows): every seed shuffles `rows` its own way and takes
    the first `limit` (all if None)."""
    order = [rows[torch.randperm(len(rows), generator=g)[:limit]] for g in shuffles]
    return torch.stack(order).split(size, dim=1)


class _BestEpochs:
    """Each seed's best validation loss so far, its epoch, and a copy of its parameters then."""

    def __init__(self, stack: SeedStack) -> None:
        self.params = list(stack.parameters())
        self.kept = [p.detach().clone() for p in self.params]
        self.loss = torch.full((len(self.kept[0]),), np.inf)
        self.epochs = torch.zeros(len(self.kept[0]), dtype=torch.long)

    def update(self, epoch: int, loss: torch.Tensor) -> None:
        better = loss < self.loss - 1e-6
        self.loss = torch.where(better, loss, self.loss)
        self.epochs = self.epochs.masked_fill(better, epoch)
        for param, kept in zip(self.params, self.kept, strict=True):
            kept[better] = param.detach()[better]

    def restore(self) -> None:
        """Each seed's best parameters back (a seed that never improved keeps its last)."""
        improved = self.epochs > 0
        with torch.no_grad():
            for param, kept in zip(self.params, self.kept, strict=True):
                param[improved] = kept[improved]


class deterministic:
    """Seed torch and run single-threaded inside the block; restore the thread count after."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)
