"""A LASSO cross-validated along its alpha path and solved on Gram matrices.

Same model, folds, alpha grid and selection rule as scikit-learn's `LassoCV` with time-ordered
contiguous folds (`TimeSeriesSplit`), at a fraction of its cost on a tall design. `LassoCV`'s
sparse solver touches every row on every coefficient update; here the rows are read once: the
design is cut at the folds' boundaries into time blocks, each block's moments (X'X, X'1, X'y,
1'y, y'y) are computed once, a fold's training moments are the sum of its blocks', and centring
for the intercept is done on the moments (X'X − n·x̄x̄'). Coordinate descent then runs on the
Gram matrix (scikit-learn's `lasso_path` with `precompute=Gram, Xy=`), warm-started along the
alpha path: O(rows × cols²) once, then O(cols²) per sweep whatever the number of rows. Only the
validation error reads rows again (each fold's test block times the path's coefficients).

A segment's fits at successive cut-offs see the same rows, each a few weeks more: a block's
moments are summed from chunks of `CHUNK_ROWS` rows counted from the first row, each chunk's
remembered by its content (`CHUNKS`, bounded), so a later fit reads only its new rows and the
ends of its blocks. With `standardize`, columns are scaled to unit variance on the moments (as
`StandardScaler(with_mean=False)` would scale them), so the chunks are of the unscaled design,
the same in every fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import lasso_path
from sklearn.model_selection import TimeSeriesSplit
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.content_cache import ContentCache, digest

_CHUNK_ROWS = 16_384  # sparse rows densified at a time for the Gram's matrix product
_GROUP_CHUNK_ROWS = 4_096  # ... read by group: a chunk spans few groups' columns
CHUNK_ROWS = 8_192  # rows of a remembered chunk of moments (counted from row 0)


@dataclass(frozen=True)
class Moments:
    """The sufficient statistics of least squares on a block of rows."""

    n: int
    xsum: np.ndarray  # X'1
    gram: np.ndarray  # X'X
    xy: np.ndarray  # X'y
    ysum: float
    yy: float

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.n + other.n,
            self.xsum + other.xsum,
            self.gram + other.gram,
            self.xy + other.xy,
            self.ysum + other.ysum,
            self.yy + other.yy,
        )

    def scaled(self, scale: np.ndarray) -> Moments:
        """The moments of X / scale (column-wise)."""
        inverse = 1.0 / scale
        return Moments(
            self.n,
            self.xsum * inverse,
            self.gram * np.outer(inverse, inverse),
            self.xy * inverse,
            self.ysum,
            self.yy,
        )

    def scale(self) -> np.ndarray:
        """Each column's standard deviation (1 for a constant one), as `StandardScaler`'s."""
        mean = self.xsum / self.n
        std = np.sqrt(np.maximum(np.diag(self.gram) / self.n - mean**2, 0.0))
        return np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)

    def centred(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
        """Gram, X'y and y'y of the mean-centred block, and the means of X and y."""
        x_mean, y_mean = self.xsum / self.n, self.ysum / self.n
        gram = self.gram - self.n * np.outer(x_mean, x_mean)
        xy = self.xy - self.n * x_mean * y_mean
        return gram, xy, max(self.yy - self.n * y_mean**2, 0.0), x_mean, y_mean


def moments(
    X: np.ndarray | sparse.spmatrix, y: np.ndarray, groups: np.ndarray | None = None
) -> Moments:
    """The moments of rows `X`, `y`, a chunk of rows at a time through dense BLAS. With
    `groups` (a label per row; rows of a group use the same few columns, as a product's rows
    use its slopes), the rows are read group by group and a sparse chunk is densified on the
    columns it uses only: about 30 of 269 at production density, rather than all of them."""
    n, p = X.shape
    gram, xsum, xy = np.zeros((p, p)), np.zeros(p), np.zeros(p)
    grouped = groups is not None and sparse.issparse(X)
    order = np.argsort(groups, kind="stable") if groups is not None and grouped else np.arange(n)
    chunk = _GROUP_CHUNK_ROWS if grouped else _CHUNK_ROWS
    for start in range(0, n, chunk):
        rows = order[start : start + chunk]
        dense, cols, square = _chunk(X, rows, grouped)
        gram[square] += dense.T @ dense
        xsum[cols] += dense.sum(axis=0)
        xy[cols] += dense.T @ y[rows]
    return Moments(n, xsum, gram, xy, float(y.sum()), float(y @ y))


class ChunkCache(ContentCache[Moments]):
    """Moments of row chunks by their content (design rows, targets and groups), the least
    recently used dropped beyond `max_bytes`: a pure function's results, safe to share."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, lambda found: found.gram.nbytes)

    def moments(
        self, X: np.ndarray | sparse.spmatrix, y: np.ndarray, groups: np.ndarray | None
    ) -> Moments:
        return self.get(_digest(X, y, groups), lambda: moments(X, y, groups))


CHUNKS = ChunkCache(max_bytes=256 * 2**20)  # a segment's chunks at 342 columns: about 35 MB


def range_moments(
    X: np.ndarray | sparse.spmatrix, y: np.ndarray, groups: np.ndarray | None, a: int, b: int
) -> Moments:
    """The moments of rows [a, b): the whole `CHUNK_ROWS` chunks inside from `CHUNKS`, the
    rows before the first and after the last read directly."""
    first, last = -(-a // CHUNK_ROWS) * CHUNK_ROWS, b // CHUNK_ROWS * CHUNK_ROWS
    if first >= last:
        return moments(X[a:b], y[a:b], None if groups is None else groups[a:b])
    spans = [(a, first), *((s, s + CHUNK_ROWS) for s in range(first, last, CHUNK_ROWS)), (last, b)]
    parts = [
        (CHUNKS.moments if end - start == CHUNK_ROWS else moments)(
            X[start:end], y[start:end], None if groups is None else groups[start:end]
        )
        for start, end in spans
        if end > start
    ]
    return sum(parts[1:], parts[0])


def _digest(X: np.ndarray | sparse.spmatrix, y: np.ndarray, groups: np.ndarray | None) -> bytes:
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
        arrays = [X.data, X.indices, X.indptr - X.indptr[0], np.asarray(X.shape)]
    else:
        arrays = [np.asarray(X), np.asarray(X.shape)]
    return digest([*arrays, y, *([] if groups is None else [groups])])


def _chunk(
    X: np.ndarray | sparse.spmatrix, rows: np.ndarray, grouped: bool
) -> tuple[np.ndarray, Any, Any]:
    """`rows` of X as a dense array, with the index of its columns and of their Gram; grouped,
    only the columns the rows use."""
    if not sparse.issparse(X):
        return np.asarray(X[rows]), slice(None), slice(None)
    block = sparse.csr_matrix(X[rows])
    if not grouped:
        return block.toarray(), slice(None), slice(None)
    cols = np.unique(block.indices)
    return block[:, cols].toarray(), cols, np.ix_(cols, cols)


def alpha_grid(full: Moments, n_alphas: int, eps: float) -> np.ndarray:
    """`LassoCV`'s grid: from the smallest alpha that zeroes every coefficient, down by `eps`."""
    _, xy, _, _, _ = full.centred()
    alpha_max = float(np.max(np.abs(xy))) / full.n
    if alpha_max <= np.finfo(np.float64).resolution:
        return np.full(n_alphas, np.finfo(np.float64).resolution)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


def path(
    block: Moments, alphas: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, float, list[int]]:
    """Coefficients (cols × alphas, warm-started down the path), x̄, ȳ and iterations per alpha.

    `lasso_path` takes the centred Gram and X'y, which is all its Gram solver reads of the data
    but for y'y (its tolerance and duality gap): the rows it is also handed only give it their
    count, so they are p + 1 zero rows and a target of norm √(y'y); alphas are rescaled from the
    block's row count to theirs. (`tests/test_gram_lasso.py` checks the path against LassoCV's.)
    """
    gram, xy, yy, x_mean, y_mean = block.centred()
    p = len(xy)
    rows = p + 1
    target = np.zeros(rows)
    target[0] = np.sqrt(yy)
    _, coefs, _, n_iter = lasso_path(
        np.zeros((rows, p), order="F"),
        target,
        alphas=alphas * block.n / rows,
        precompute=np.ascontiguousarray(gram),
        Xy=np.ascontiguousarray(xy),
        max_iter=max_iter,
        tol=tol,
        check_input=False,
        return_n_iter=True,
    )
    return coefs, x_mean, y_mean, list(n_iter)


def _edges(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> list[int]:
    """The block edges of `TimeSeriesSplit` folds: each trains on [0, a), tests on [a, b)."""
    return sorted({0, n, *(int(t[0]) for _, t in folds), *(int(t[-1]) + 1 for _, t in folds)})


class GramLassoCV(RegressorMixin, BaseEstimator):
    """LASSO with an intercept, alpha chosen by the mean validation MSE over time-series folds.

    The folds are `TimeSeriesSplit(n_splits)`'s: each trains on the rows before a contiguous
    test block. With `standardize`, the columns are scaled to unit variance over all rows first
    (`scale_`; `coef_` is of the unscaled columns). Fitted: `alpha_`, `alphas_`, `mse_path_`
    (alphas × folds), `coef_`, `intercept_`, `n_iter_` (of the final fit at `alpha_`).
    """

    def __init__(
        self,
        n_splits: int = 4,
        n_alphas: int = 30,
        eps: float = 1e-3,
        max_iter: int = 20000,
        tol: float = 1e-3,
        standardize: bool = False,
    ) -> None:
        self.n_splits = n_splits
        self.n_alphas = n_alphas
        self.eps = eps
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize

    def fit(
        self, X: np.ndarray | sparse.spmatrix, y: np.ndarray, groups: np.ndarray | None = None
    ) -> GramLassoCV:
        """Fit on rows in time order. `groups` (optional, a label per row) only speeds up a
        block-sparse design: see `moments`; the fit is the same."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=True)
        if groups is not None and np.asarray(groups).dtype.kind not in "iu":
            groups = np.unique(groups, return_inverse=True)[1]  # codes: hashable by content
        folds = list(TimeSeriesSplit(n_splits=self.n_splits).split(X))
        edges = _edges(folds, len(y))
        upto: dict[int, Moments] = {}  # moments of rows [0, edge)
        for a, b in pairwise(edges):
            block = range_moments(X, y, groups, a, b)
            upto[b] = upto[a] + block if a in upto else block
        self.scale_ = upto[len(y)].scale() if self.standardize else np.ones(X.shape[1])
        upto = {edge: m.scaled(self.scale_) for edge, m in upto.items()}
        full = upto[len(y)]
        self.alphas_ = alpha_grid(full, self.n_alphas, self.eps)
        mse = [self._fold_mse(upto[int(test[0])], X, y, test) for _, test in folds]
        self.mse_path_ = np.column_stack(mse)
        best = int(np.argmin(self.mse_path_.mean(axis=1)))
        self.alpha_ = float(self.alphas_[best])
        coefs, x_mean, y_mean, n_iter = path(
            full, self.alphas_[best : best + 1], self.max_iter, self.tol
        )
        self.coef_ = coefs[:, 0] / self.scale_
        self.intercept_ = float(y_mean - x_mean @ coefs[:, 0])
        self.n_iter_ = n_iter[0]
        return self

    def _fold_mse(
        self, train: Moments, X: np.ndarray | sparse.spmatrix, y: np.ndarray, test: np.ndarray
    ) -> np.ndarray:
        """The validation MSE on `test` of each alpha of the path fit on `train`."""
        coefs, x_mean, y_mean, _ = path(train, self.alphas_, self.max_iter, self.tol)
        intercepts = y_mean - x_mean @ coefs
        fitted = np.asarray(
            safe_sparse_dot(X[test[0] : test[-1] + 1], coefs / self.scale_[:, None])
        )
        return np.mean((fitted + intercepts - y[test, None]) ** 2, axis=0)

    def predict(self, X: np.ndarray | sparse.spmatrix) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return np.asarray(safe_sparse_dot(X, self.coef_)) + self.intercept_
