"""Forecasters as scikit-learn estimators: `fit(X, y)` returns self, predictions are ≥ 0.

The LASSO is fit on log1p(units): demand is multiplicative (store × product × season ×
promotion), and the log compresses the heavy right tail of fast movers so slow movers with many
zero weeks are not swamped. Predictions are transformed back with expm1 and clipped at 0.

Products respond differently to price and promotion (a premium brand's buyers are less price
sensitive than a store brand's), and each has its own seasonal curve, holiday lift, trend and
response to an unusually hot week, so the LASSO can give each product its own slope on the
planned-promotion, calendar and temperature-anomaly features (`sloped`, one column per product
level of `slopes_by`, zero for the other products' rows); the LASSO keeps the slopes the data
supports. These columns are built sparse (each row has one non-zero per sloped feature). The
design is kept dense while at least `min_dense_density` of its cells are non-zero, sparse below
(many products: the dense matrix, rows × products, would dwarf its values). Either way the
LASSO is solved on Gram matrices (`ml/gram_lasso.py`): the rows are read once per fit, not on
every coefficient update. A fit's design is built in pieces of `DESIGN_ROWS` rows counted from
its first row, each remembered by its rows' content (`DESIGNS`): a segment's fits at later
cut-offs see the same time-sorted rows and a few weeks more, so they build only the new rows.

A series delivered every other week sells 0 in its off weeks whatever the season or price, and
a linear model cannot say "season × delivery week": fit on both kinds of week, every slope
comes out about halved. With a `gate` column (`cycle_ship_share`, the share of the series'
recent weeks at the same point of the delivery cycle that shipped), every column is multiplied
by the gate and the gate is a column of its own: the model is gate × (level + season + price
…), so the slopes are learnt on the weeks that ship and the off weeks are forecast about 0. For
a series that ships every week the gate is about 1 and the model is the plain one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted

from ml import targets
from ml.content_cache import ContentCache, digest
from ml.gram_lasso import GramLassoCV

PLANNED_FEATURES = ("promo", "discount")  # and every `event_*` column: known ahead, per product
SEASONAL_FEATURES = ("woy_sin1", "woy_cos1", "woy_sin2", "woy_cos2", "holiday", "trend_years")
WEATHER_FEATURES = ("temp_anomaly_c",)  # a hot week lifts drinks more than bread
GATE = "cycle_ship_share"  # ml/features.py


def planned(numeric: tuple[str, ...]) -> tuple[str, ...]:
    """The features of planned promotions and prices among `numeric`."""
    return tuple(c for c in numeric if c in PLANNED_FEATURES or c.startswith("event_"))


def per_product(numeric: tuple[str, ...]) -> tuple[str, ...]:
    """The features each product gets its own slope on: planned ones, season, holidays, trend,
    unusual heat."""
    calendar = (*SEASONAL_FEATURES, *WEATHER_FEATURES)
    return (*planned(numeric), *(c for c in numeric if c in calendar))


class LassoForecaster(RegressorMixin, BaseEstimator):
    """Standard scaling + LASSO on log1p(target), alpha chosen by time-series cross-validation.

    With `slopes_by` (a column of X, e.g. product_id), each feature in `sloped` also gets one
    slope per level seen in training. With `gate` (a column of X in [0, 1]), every column is
    multiplied by it and it is a column of its own (see the module docstring). Rows must be in
    time order (oldest first) for the cross-validation to respect time.
    """

    forecaster_name = "lasso"

    @classmethod
    def for_segment(
        cls, numeric: tuple[str, ...], categorical: tuple[str, ...], params: Any
    ) -> LassoForecaster:
        """The ensemble member for one segment (numeric features only)."""
        return cls(
            features=numeric,
            n_splits=params.lasso_cv_folds,
            slopes_by="product_id",
            sloped=per_product(numeric) if params.lasso_calendar_slopes else planned(numeric),
            gate=GATE if GATE in numeric else None,
        )

    def __init__(
        self,
        features: tuple[str, ...] | None = None,
        n_splits: int = 4,
        n_alphas: int = 30,
        max_iter: int = 20000,
        slopes_by: str | None = None,
        sloped: tuple[str, ...] = (),
        gate: str | None = None,
        min_dense_density: float = 0.2,
    ) -> None:
        self.features = features
        self.n_splits = n_splits
        self.n_alphas = n_alphas
        self.max_iter = max_iter
        self.slopes_by = slopes_by
        self.sloped = sloped
        self.gate = gate
        self.min_dense_density = min_dense_density

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True  # log1p needs targets ≥ 0 (unit counts)
        return tags

    def _columns(self, X: pd.DataFrame | np.ndarray, remember: bool = False) -> Any:
        """The design: `features`, then the per-level slopes and the gate if set (CSR). With
        `remember`, pieces of it are found again by their rows' content (`DESIGNS`)."""
        columns = X if self.features is None else X[list(self.features)]  # type: ignore[index]
        if not self._builds_design():
            return columns
        frame = pd.DataFrame(X)
        inputs = _DesignInputs(pd.DataFrame(columns).to_numpy(dtype=float))
        if self.slopes_by is not None and self.sloped:
            levels = pd.Index(self.slope_levels_)
            code = levels.get_indexer(pd.Index(frame[self.slopes_by].astype(str)))
            values = frame[list(self.sloped)].to_numpy(dtype=float)
            inputs = inputs._replace(sloped=values, codes=code, n_levels=len(levels))
        if self.gate is not None:
            inputs = inputs._replace(gate=frame[self.gate].to_numpy(dtype=float)[:, None])
        return remembered_design(inputs) if remember else inputs.design()

    def _builds_design(self) -> bool:
        return (self.slopes_by is not None and bool(self.sloped)) or self.gate is not None

    def _names(self, X: pd.DataFrame | np.ndarray) -> list[str]:
        """The design's column names, as `_columns` orders them."""
        names = [str(c) for c in (self.features or pd.DataFrame(X).columns)]
        if self.slopes_by is not None and self.sloped:
            by = self.slopes_by
            names += [f"{f}|{by}={v}" for f in self.sloped for v in self.slope_levels_]
        if self.gate is not None:
            names = [*(f"{n}*{self.gate}" for n in names), self.gate]
        return names

    def fit(self, X: pd.DataFrame | np.ndarray, y: pd.Series | np.ndarray) -> LassoForecaster:
        """Fit on rows in time order; `features` (default: every column) must be numeric."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        y = targets.units(y)
        if len(y) <= self.n_splits:
            raise ValueError(
                f"time-series cross-validation with {self.n_splits} splits needs more samples, "
                f"got n_samples = {len(y)}"
            )
        if self.slopes_by is not None:
            self.slope_levels_ = sorted(pd.DataFrame(X)[self.slopes_by].astype(str).unique())
        design = self._columns(X, remember=True)
        built = self._builds_design()
        if built and design.nnz >= self.min_dense_density * np.prod(design.shape):
            design = design.toarray()
        # sparse: GramLassoCV centres and scales on its moments, so that a segment's fits at
        # later cut-offs share the moments of the rows they have in common (ml/gram_lasso.py)
        solved_sparse = built and sparse.issparse(design)
        lasso = GramLassoCV(
            self.n_splits,
            self.n_alphas,
            max_iter=self.max_iter,
            tol=1e-3,
            standardize=solved_sparse,
        )
        pipeline = make_pipeline(lasso) if solved_sparse else make_pipeline(StandardScaler(), lasso)
        if solved_sparse and self.slopes_by is not None:  # a product's rows use its slopes only
            groups, _ = pd.factorize(pd.DataFrame(X)[self.slopes_by])  # ints sort 20x faster
            self.pipeline_: Pipeline = pipeline.fit(design, np.log1p(y), gramlassocv__groups=groups)
        else:
            self.pipeline_ = pipeline.fit(design, np.log1p(y))
        self.alpha_ = float(lasso.alpha_)
        self.n_iter_ = int(lasso.n_iter_)
        self.n_features_in_ = self.pipeline_.n_features_in_
        if built:
            self.feature_names_in_ = np.asarray(self._names(X), dtype=object)
        elif hasattr(self.pipeline_, "feature_names_in_"):
            self.feature_names_in_ = self.pipeline_.feature_names_in_
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        design = self._columns(X)
        if self._builds_design() and getattr(self.pipeline_[0], "with_mean", False):  # fit dense
            design = design.toarray()
        return np.clip(np.expm1(self.pipeline_.predict(design)), 0.0, None)


class _Block(NamedTuple):
    """Columns of the design with the same number of cells per row: each row's values and their
    column indices (rows × cells, indices increasing along a row), of a block `width` wide."""

    values: np.ndarray
    columns: np.ndarray
    width: int

    @classmethod
    def dense(cls, values: np.ndarray) -> _Block:
        n, width = values.shape
        return cls(values, np.broadcast_to(np.arange(width), (n, width)), width)

    @classmethod
    def coded(cls, values: np.ndarray, code: np.ndarray, n_levels: int) -> _Block:
        """One column per sloped feature × level (feature-major): the feature's `values` on that
        level's rows, 0 elsewhere; `code` is each row's level index, -1 for a level not seen in
        training, which has no column (its cells are 0)."""
        values = np.where(code[:, None] >= 0, values, 0.0)
        columns = np.maximum(code, 0)[:, None] + n_levels * np.arange(values.shape[1])
        return cls(values, columns, values.shape[1] * n_levels)

    def gated(self, gate: np.ndarray) -> _Block:
        return self._replace(values=self.values * gate)

    @staticmethod
    def csr(blocks: list[_Block]) -> sparse.csr_matrix:
        """The blocks side by side, as CSR without stored zeros: built in one pass rather than
        by stacking sparse matrices (which cost a production segment more than its moments)."""
        offsets = np.cumsum([0, *(b.width for b in blocks)])
        values = np.hstack([b.values for b in blocks])
        columns = np.hstack([b.columns + o for b, o in zip(blocks, offsets[:-1], strict=True)])
        n, cells = values.shape
        matrix = sparse.csr_matrix(
            (values.ravel(), columns.ravel(), np.arange(0, n * cells + 1, cells)),
            shape=(n, int(offsets[-1])),
        )
        matrix.eliminate_zeros()
        return matrix


class _DesignInputs(NamedTuple):
    """What the design is built from, row by row: its rows [a, b) depend on rows [a, b) alone."""

    dense: np.ndarray  # rows × features
    sloped: np.ndarray | None = None  # rows × sloped features, with ...
    codes: np.ndarray | None = None  # ... each row's slope level (-1: not seen in training)
    n_levels: int = 0
    gate: np.ndarray | None = None  # rows × 1

    def rows(self, a: int, b: int) -> _DesignInputs:
        def cut(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[a:b]

        return self._replace(
            dense=self.dense[a:b],
            sloped=cut(self.sloped),
            codes=cut(self.codes),
            gate=cut(self.gate),
        )

    def design(self) -> sparse.csr_matrix:
        blocks = [_Block.dense(self.dense)]
        if self.sloped is not None and self.codes is not None:
            blocks.append(_Block.coded(self.sloped, self.codes, self.n_levels))
        if self.gate is not None:
            blocks = [*(b.gated(self.gate) for b in blocks), _Block.dense(self.gate)]
        return _Block.csr(blocks)

    def digest(self) -> bytes:
        arrays = [a for a in (self.dense, self.sloped, self.codes, self.gate) if a is not None]
        flags = np.array([self.sloped is not None, self.gate is not None, self.n_levels])
        return digest([flags, *arrays])


DESIGN_ROWS = 16_384  # rows of a remembered piece of a fit's design (counted from row 0)
DESIGNS: ContentCache[sparse.csr_matrix] = ContentCache(
    max_bytes=384 * 2**20,  # a production segment's design: about 130 MB
    size=lambda m: m.data.nbytes + m.indices.nbytes + m.indptr.nbytes,
)


def remembered_design(inputs: _DesignInputs) -> sparse.csr_matrix:
    """`inputs.design()`, its whole `DESIGN_ROWS` pieces from `DESIGNS`: a segment's fits at
    later cut-offs (longer prefixes of the same time-sorted rows) build only their new rows."""
    n = len(inputs.dense)
    whole = n // DESIGN_ROWS * DESIGN_ROWS
    pieces = []
    for start in range(0, whole, DESIGN_ROWS):
        piece = inputs.rows(start, start + DESIGN_ROWS)
        pieces.append(DESIGNS.get(piece.digest(), piece.design))
    if whole < n or not pieces:
        pieces.append(inputs.rows(whole, n).design())
    return sparse.vstack(pieces, format="csr")


class ColumnBaseline(RegressorMixin, BaseEstimator):
    """A historical-average baseline whose value the feature table computes at forecast time.

    `column="hist_avg"` is the trailing-window average per store × product; `"same_woy_avg"` is
    the average of the same week in earlier years. Both use only weeks ≤ t − H.
    """

    def __init__(self, column: str = "hist_avg") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray | None = None) -> ColumnBaseline:
        if self.column not in X.columns:
            raise ValueError(f"baseline column {self.column!r} is not in the features")
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.clip(np.nan_to_num(X[self.column].to_numpy(dtype=float)), 0.0, None)
