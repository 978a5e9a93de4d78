"""A neural network with categorical embeddings, as a scikit-learn estimator (PyTorch, CPU).

Each categorical column (store, product, week of year, …) gets an embedding whose size grows
with its number of levels; the embeddings and the standardized numeric features feed an MLP
head that predicts log1p(units). Training stops early on a time-based validation split (the
most recent weeks of the training data) and keeps the best epoch's weights. `n_seeds` nets are
trained from different initial weights (seeds `random_state`, `random_state` + 1, …) and their
log forecasts averaged: one net's accuracy depended on its seed by several MAPE points on
Dominick's data, the average much less. Seeds are fixed and training runs single-threaded, so
two fits on the same data give the same model.

The loss is squared error on log1p(units) (about the median) or, with `objective="mape"` (what
`ensemble_objective: mape` gives it), absolute error on log1p(units) weighted by 1/units +
1/mean units, whose optimum is what minimises MAPE + WAPE (as in `ml/boosting.py`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ml.metrics import check_objective, mape_weights

CONSTANT = 1e-9  # relative standard deviation under which a numeric column is constant


class _Net(nn.Module):
    def __init__(self, cardinalities: list[int], n_numeric: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        dims = [min(16, (n + 2) // 2) for n in cardinalities]
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

    def start_at(self, value: float) -> None:
        """Start the output at `value` (the mean target), so training learns deviations."""
        last = self.head[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.bias.fill_(value)

    def forward(self, codes: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        parts = [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(torch.cat([*parts, numeric], dim=1)).squeeze(1)


class _TrainingData(NamedTuple):
    codes: torch.Tensor
    numeric: torch.Tensor
    target: torch.Tensor  # log1p(units)
    weights: torch.Tensor | None  # per row with objective "mape": absolute error, weighted
    train: torch.Tensor  # row indices
    val: torch.Tensor

    def loss(self, pred: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Squared error, or with `weights` the weighted absolute error, over `rows`."""
        if self.weights is None:
            return ((pred - self.target[rows]) ** 2).mean()
        return (self.weights[rows] * (pred - self.target[rows]).abs()).mean()


class EmbeddingNetForecaster(RegressorMixin, BaseEstimator):
    """Embeddings for `categorical_features` + `numeric_features` → MLP → log1p(units).

    `time_column` orders rows in time; the last `validation_fraction` of its distinct values
    form the early-stopping validation split.
    """

    forecaster_name = "nn"

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> EmbeddingNetForecaster:
        """The ensemble member for one segment."""
        return cls(
            numeric_features=numeric,
            categorical_features=categorical,
            max_epochs=params.nn_max_epochs,
            random_state=params.random_state,
            objective=params.ensemble_objective,
        )

    def __init__(
        self,
        numeric_features: tuple[str, ...] = (),
        categorical_features: tuple[str, ...] = (),
        time_column: str = "week_start",
        hidden: tuple[int, ...] = (32, 16),
        max_epochs: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-5,
        patience: int = 4,
        validation_fraction: float = 0.15,
        random_state: int = 0,
        n_seeds: int = 3,
        objective: str = "wape",
    ) -> None:
        self.numeric_features = numeric_features
        self.categorical_features = categorical_features
        self.time_column = time_column
        self.hidden = hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_seeds = n_seeds
        self.objective = objective

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> EmbeddingNetForecaster:
        target = np.log1p(np.asarray(y, dtype=np.float32))
        if len(X) != len(target) or len(X) < 10:
            raise ValueError(f"need at least 10 rows with one target each, got {len(X)}")
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be at least 1, got {self.n_seeds}")
        check_objective(self.objective)
        self.levels_ = {
            c: {v: i + 1 for i, v in enumerate(sorted(X[c].astype(str).unique()))}
            for c in self.categorical_features
        }
        numeric = X[list(self.numeric_features)].to_numpy(dtype=np.float64)
        self.mean_ = np.nanmean(numeric, axis=0) if numeric.shape[1] else np.zeros(0)
        self.scale_ = np.nanstd(numeric, axis=0) if numeric.shape[1] else np.zeros(0)
        # a column constant in training has a standard deviation of rounding error (1e-17 for
        # 0.1 repeated), not 0: dividing by it made any other value at scoring ~1e15 and the
        # forecast absurd. Below CONSTANT relative to its mean, a column is left unscaled.
        constant = self.scale_ <= CONSTANT * np.maximum(1.0, np.abs(self.mean_))
        self.scale_ = np.where(constant, 1.0, self.scale_)
        cardinalities = [len(v) for v in self.levels_.values()]
        data = self._training_data(X, target)  # shared by every seed's net
        self.nets_, epochs = [], []
        for seed in range(self.random_state, self.random_state + self.n_seeds):
            with _deterministic(seed):
                net = _Net(cardinalities, numeric.shape[1], self.hidden)
                net.start_at(float(target.mean()))
                epochs.append(self._train(net, data))
            self.nets_.append(net)
        self.n_epochs_ = tuple(epochs)
        self.n_features_in_ = X.shape[1]
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Models pickled before `n_seeds` held one net in `net_`: they load as one seed."""
        state = dict(state)
        if "net_" in state:
            state["nets_"], state["n_epochs_"] = [state.pop("net_")], (state["n_epochs_"],)
            state.setdefault("n_seeds", 1)
        state.setdefault("objective", "wape")
        super().__setstate__(state)  # type: ignore[misc]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "nets_")
        codes, numeric = self._tensors(X)
        outs = []
        for net in self.nets_:
            net.eval()
            with torch.no_grad(), _deterministic(self.random_state):
                outs.append(net(codes, numeric).numpy().astype(float))
        return np.clip(np.expm1(np.mean(outs, axis=0)), 0.0, None)

    def _tensors(self, X: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        codes = np.zeros((len(X), len(self.categorical_features)), dtype=np.int64)
        for i, column in enumerate(self.categorical_features):
            codes[:, i] = X[column].astype(str).map(self.levels_[column]).fillna(0).to_numpy()
        numeric = X[list(self.numeric_features)].to_numpy(dtype=np.float64)
        numeric = np.nan_to_num((numeric - self.mean_) / self.scale_, nan=0.0)
        return torch.from_numpy(codes), torch.from_numpy(numeric.astype(np.float32))

    def _validation_mask(self, X: pd.DataFrame) -> np.ndarray:
        """True for rows in the most recent `validation_fraction` of weeks (none if too few)."""
        weeks = np.sort(X[self.time_column].unique())
        n_val = int(len(weeks) * self.validation_fraction)
        if n_val < 1 or n_val >= len(weeks):
            return np.zeros(len(X), dtype=bool)
        return (X[self.time_column] >= weeks[-n_val]).to_numpy()

    def _training_data(self, X: pd.DataFrame, target: np.ndarray) -> _TrainingData:
        """The tensors of a fit, its early-stopping split and, with "mape", the row weights."""
        is_val = self._validation_mask(X)
        codes, numeric = self._tensors(X)
        weights = None
        if self.objective == "mape":
            weights = torch.from_numpy(mape_weights(np.expm1(target.astype(np.float64))))
        return _TrainingData(
            codes,
            numeric,
            torch.from_numpy(target),
            weights,
            torch.from_numpy(np.flatnonzero(~is_val)),
            torch.from_numpy(np.flatnonzero(is_val)),
        )

    def _train(self, net: _Net, data: _TrainingData) -> int:
        """Mini-batch Adam with early stopping; leaves the best epoch's weights in `net`."""
        codes, numeric, train_idx, val_idx = data.codes, data.numeric, data.train, data.val
        optimizer = torch.optim.Adam(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        best, best_epoch, best_state = np.inf, 0, None
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            for batch in train_idx[torch.randperm(len(train_idx))].split(self.batch_size):
                optimizer.zero_grad()
                data.loss(net(codes[batch], numeric[batch]), batch).backward()
                optimizer.step()
            if len(val_idx) == 0:
                best_epoch = epoch
                continue
            net.eval()
            with torch.no_grad():
                val = float(data.loss(net(codes[val_idx], numeric[val_idx]), val_idx))
            if val < best - 1e-6:
                best, best_epoch = val, epoch
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            elif epoch - best_epoch >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        return best_epoch


class _deterministic:
    """Seed torch and run single-threaded inside the block; restore the thread count after."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)
