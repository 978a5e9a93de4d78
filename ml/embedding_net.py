"""A neural network with categorical embeddings, as a scikit-learn estimator (PyTorch, CPU).

Each categorical column (store, product, week of year, …) gets an embedding whose size grows
with its number of levels; the embeddings and the standardized numeric features feed an MLP
head that predicts log1p(units). Training stops early on a time-based validation split (the
most recent weeks of the training data) and keeps the best epoch's weights. `n_seeds` nets are
trained from different initial weights (seeds `random_state`, `random_state` + 1, …) and their
log forecasts averaged: one net's accuracy depended on its seed by several MAPE points on
Dominick's data, the average much less. The seeds' nets train side by side, in one pass per
minibatch (`SeedStack`). Seeds are fixed and training runs single-threaded, so two fits on the
same data give the same model.

`fit_from` (what `ml.fit_memo` calls with a segment's earlier fits) starts each seed's net from
the latest fit on earlier weeks instead of at random, and stops after `warm_patience` epochs
without improvement instead of `patience`: at production density a segment's later fits took
1-4 epochs to their best instead of 6-11 from scratch.

With `epoch_rows`, an epoch trains on at most that many rows, each seed a new random sample of
its own every epoch: at production density (300,000 rows a segment) a full pass per epoch
cost as much as the rest of the segment's training, for the same accuracy of the ensemble.
Likewise early stopping scores each epoch on at most `validation_rows` of the validation
weeks' rows (a fixed sample): scoring 45,000 rows × 3 seeds every epoch cost a fifth of a
production fit, and the loss of 16,384 rows is as clear a signal.

The loss is squared error on log1p(units) (about the median) or, with `objective="mape"` (what
`ensemble_objective: mape` gives it), absolute error on log1p(units) weighted by 1/units +
1/mean units, whose optimum is what minimises MAPE + WAPE (as in `ml/boosting.py`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ml import targets
from ml.metrics import check_objective, mape_weights
from ml.seed_nets import (
    Net,
    SeedStack,
    TrainingData,
    TrainingOptions,
    deterministic,
    embedding_dims,
    train_seeds,
)

_Net = Net  # models pickled before ml/seed_nets.py name the class here

CONSTANT = 1e-9  # relative standard deviation under which a numeric column is constant


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
            warm_start=params.nn_warm_start,
            epoch_rows=params.nn_epoch_rows,
            n_seeds=params.nn_seeds,
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
        warm_patience: int = 2,
        validation_fraction: float = 0.15,
        random_state: int = 0,
        n_seeds: int = 3,
        objective: str = "wape",
        warm_start: bool = True,
        epoch_rows: int | None = None,
        validation_rows: int | None = 16384,
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
        self.warm_patience = warm_patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_seeds = n_seeds
        self.objective = objective
        self.warm_start = warm_start
        self.epoch_rows = epoch_rows
        self.validation_rows = validation_rows

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> EmbeddingNetForecaster:
        return self._fit(X, y, None)

    def fit_from(
        self, fits: list[EmbeddingNetForecaster], X: pd.DataFrame, y: pd.Series | np.ndarray
    ) -> EmbeddingNetForecaster:
        """`fit`, each seed's net starting from the weights of the most recent of `fits` (nets
        of these parameters) that was trained on weeks before the last of `X` only; from scratch
        if there is none or `warm_start` is off. `ml.fit_memo` passes a segment's earlier fits."""
        last = X[self.time_column].max()
        earlier = [f for f in fits if f.last_week_ < last]
        previous = max(earlier, key=lambda f: f.last_week_) if earlier else None
        return self._fit(X, y, previous if self.warm_start else None)

    def _fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        previous: EmbeddingNetForecaster | None,
    ) -> EmbeddingNetForecaster:
        target = np.log1p(targets.units(y, np.float32))
        if len(X) != len(target) or len(X) < 10:
            raise ValueError(f"need at least 10 rows with one target each, got {len(X)}")
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be at least 1, got {self.n_seeds}")
        check_objective(self.objective)
        self.levels_ = {
            c: {v: i + 1 for i, v in enumerate(sorted(set(_texts(X[c])[1])))}
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
        self.last_week_ = X[self.time_column].max()
        seeds = range(self.random_state, self.random_state + self.n_seeds)
        if previous is not None and (
            _dims(previous) != _dims(self) or len(previous.nets_) < len(seeds)
        ):
            previous = None  # an embedding's size moved, or seeds it lacks: start afresh
        data = self._training_data(X, target)  # shared by every seed's net
        self.nets_: list[Net] = [
            self._initial_net(seed, float(target.mean()), previous) for seed in seeds
        ]
        stack = SeedStack(self.nets_)
        with deterministic(self.random_state):
            patience = self.patience if previous is None else self.warm_patience
            options = TrainingOptions(
                self.max_epochs,
                self.batch_size,
                self.learning_rate,
                self.weight_decay,
                patience,
                self.epoch_rows,
            )
            self.n_epochs_ = tuple(train_seeds(stack, data, seeds, options))
        stack.copy_into(self.nets_)
        self.continued_ = previous is not None
        self.n_features_in_ = X.shape[1]
        return self

    def _initial_net(
        self, seed: int, mean_target: float, previous: EmbeddingNetForecaster | None
    ) -> Net:
        """Seed `seed`'s net before training: random, its output at the mean target; or with
        `previous`, that fit's net for the seed carried over to this fit's levels and scaling."""
        cardinalities = [len(v) for v in self.levels_.values()]
        with deterministic(seed):
            net = Net(cardinalities, len(self.numeric_features), self.hidden)
        if previous is None:
            net.start_at(mean_target)
        else:
            self._carry_over(previous, previous.nets_[seed - self.random_state], net)
        return net

    def _carry_over(self, previous: EmbeddingNetForecaster, old: Net, new: Net) -> None:
        """`old`'s weights into `new`: embedding rows matched by level (a new level keeps its
        random start), the first layer rescaled so that it computes from this fit's
        standardized inputs what it computed from `previous`'s."""
        with torch.no_grad():
            for column, table, old_table in zip(
                self.categorical_features, new.tables(), old.tables(), strict=True
            ):
                known = previous.levels_[column]
                pairs = [(j, known[v]) for v, j in self.levels_[column].items() if v in known]
                rows, old_rows = map(list, zip(*[(0, 0), *pairs], strict=True))
                table.weight[rows] = old_table.weight[old_rows]
            for layer, old_layer in zip(new.linears(), old.linears(), strict=True):
                layer.weight.copy_(old_layer.weight)
                layer.bias.copy_(old_layer.bias)
            # old input u = (x - m_old) / s_old = z · s_new / s_old + (m_new - m_old) / s_old
            first, n_numeric = new.linears()[0], len(self.numeric_features)
            ratio = np.nan_to_num(self.scale_ / previous.scale_, nan=1.0)
            shift = np.nan_to_num((self.mean_ - previous.mean_) / previous.scale_, nan=0.0)
            numeric_weights = first.weight[:, first.weight.shape[1] - n_numeric :]
            first.bias.add_(numeric_weights @ torch.from_numpy(shift.astype(np.float32)))
            numeric_weights.mul_(torch.from_numpy(ratio.astype(np.float32)))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Models pickled before `n_seeds` held one net in `net_`: they load as one seed."""
        state = dict(state)
        if "net_" in state:
            state["nets_"], state["n_epochs_"] = [state.pop("net_")], (state["n_epochs_"],)
            state.setdefault("n_seeds", 1)
        state.setdefault("objective", "wape")
        state.setdefault("warm_start", False)
        state.setdefault("warm_patience", state.get("patience", 4))
        state.setdefault("epoch_rows", None)
        state.setdefault("validation_rows", None)
        super().__setstate__(state)  # type: ignore[misc]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "nets_")
        codes, numeric = self._tensors(X)
        outs = []
        for net in self.nets_:
            net.eval()
            with torch.no_grad(), deterministic(self.random_state):
                outs.append(net(codes, numeric).numpy().astype(float))
        return np.clip(np.expm1(np.mean(outs, axis=0)), 0.0, None)

    def _tensors(self, X: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        codes = np.zeros((len(X), len(self.categorical_features)), dtype=np.int64)
        for i, column in enumerate(self.categorical_features):
            rows, texts = _texts(X[column])
            known = pd.Index(list(self.levels_[column])).get_indexer(texts) + 1  # unseen: 0
            codes[:, i] = known[rows]
        numeric = X[list(self.numeric_features)].to_numpy(dtype=np.float64)
        numeric = np.nan_to_num((numeric - self.mean_) / self.scale_, nan=0.0)
        # rows contiguous: a minibatch gathers rows (column-major, a fit spent 18 % gathering)
        numeric = np.ascontiguousarray(numeric, dtype=np.float32)
        return torch.from_numpy(codes), torch.from_numpy(numeric)

    def _validation_mask(self, X: pd.DataFrame) -> np.ndarray:
        """True for rows in the most recent `validation_fraction` of weeks (none if too few)."""
        weeks = np.sort(X[self.time_column].unique())
        n_val = int(len(weeks) * self.validation_fraction)
        if n_val < 1 or n_val >= len(weeks):
            return np.zeros(len(X), dtype=bool)
        return (X[self.time_column] >= weeks[-n_val]).to_numpy()

    def _validation_sample(self, is_val: np.ndarray) -> np.ndarray:
        """The validation rows early stopping scores: all, or a fixed random `validation_rows`
        of them (in row order) where there are more."""
        rows = np.flatnonzero(is_val)
        if self.validation_rows is None or len(rows) <= self.validation_rows:
            return rows
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(rows, self.validation_rows, replace=False))

    def _training_data(self, X: pd.DataFrame, target: np.ndarray) -> TrainingData:
        """The tensors of a fit, its early-stopping split and, with "mape", the row weights."""
        is_val = self._validation_mask(X)
        codes, numeric = self._tensors(X)
        weights = None
        if self.objective == "mape":
            weights = torch.from_numpy(mape_weights(np.expm1(target.astype(np.float64))))
        return TrainingData(
            codes,
            numeric,
            torch.from_numpy(target),
            weights,
            torch.from_numpy(np.flatnonzero(~is_val)),
            torch.from_numpy(self._validation_sample(is_val)),
        )


def _texts(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's index into the distinct values, and those values as text (as `astype(str)`
    gives them): converting the few distinct values, not every row, cost a production segment
    several CPU-seconds less."""
    rows, distinct = pd.factorize(values, use_na_sentinel=False)
    return rows, pd.Index(pd.Series(distinct, dtype=values.dtype).astype(str))


def _dims(fit: EmbeddingNetForecaster) -> list[int]:
    return embedding_dims([len(levels) for levels in fit.levels_.values()])
