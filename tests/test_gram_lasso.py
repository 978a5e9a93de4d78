"""The Gram-solved LASSO gives scikit-learn's LassoCV answer: same alphas, choice and fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LassoCV
from sklearn.model_selection import TimeSeriesSplit
from sklearn.preprocessing import StandardScaler

from ml.gram_lasso import CHUNK_ROWS, CHUNKS, ChunkCache, GramLassoCV, moments, range_moments


def _data(n: int, p: int, density: float, seed: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = sparse.random(n, p, density=density, random_state=seed, format="csr")
    X.data = rng.standard_normal(X.nnz) + 0.5  # non-centred columns: the intercept matters
    w = np.where(rng.random(p) < 0.3, rng.normal(size=p), 0.0)
    return X, X @ w + 2.0 + rng.normal(0, 0.5, n)


@pytest.mark.parametrize(
    ("n", "p", "density", "seed", "dense"),
    [
        (300, 8, 1.0, 0, True),
        (1500, 40, 0.15, 1, False),
        (1500, 40, 0.15, 2, True),
        (97, 12, 0.5, 3, False),
    ],
)
def test_same_alpha_grid_choice_and_coefficients_as_lassocv(
    n: int, p: int, density: float, seed: int, dense: bool
) -> None:
    X, y = _data(n, p, density, seed)
    design = X.toarray() if dense else X
    ref = LassoCV(alphas=30, cv=TimeSeriesSplit(4), max_iter=20000, tol=1e-3).fit(design, y)
    ours = GramLassoCV(n_splits=4, n_alphas=30).fit(design, y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-6)
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-6)
    np.testing.assert_allclose(ours.predict(design), ref.predict(design), atol=1e-6)
    assert ours.n_features_in_ == p and ours.n_iter_ >= 1


def test_a_constant_target_gives_lassocv_flat_answer() -> None:
    X, _ = _data(200, 6, 0.5, 4)
    y = np.full(200, 3.0)
    ref = LassoCV(alphas=30, cv=TimeSeriesSplit(4), tol=1e-3).fit(X, y)
    ours = GramLassoCV().fit(X, y)
    np.testing.assert_allclose(ours.alphas_, ref.alphas_)
    assert not ours.coef_.any() and ours.intercept_ == pytest.approx(3.0)


def test_moments_add_up_over_blocks_and_chunks() -> None:
    X, y = _data(40_000, 5, 0.3, 5)  # more rows than one chunk of the Gram's product
    whole, (a, b) = moments(X, y), (moments(X[:123], y[:123]), moments(X[123:], y[123:]))
    both = a + b
    dense = X.toarray()
    np.testing.assert_allclose(whole.gram, dense.T @ dense)
    np.testing.assert_allclose(both.gram, whole.gram)
    np.testing.assert_allclose(both.xy, dense.T @ y)
    assert (
        both.n == 40_000 and both.ysum == pytest.approx(y.sum()) and both.yy == pytest.approx(y @ y)
    )


def test_too_few_rows_for_the_folds_is_one_clear_error() -> None:
    X, y = _data(4, 3, 1.0, 6)
    with pytest.raises(ValueError, match="number of folds=5 greater than the number of samples=4"):
        GramLassoCV(n_splits=4).fit(X, y)


def test_moments_read_by_group_are_the_same_and_so_is_the_fit() -> None:
    """A per-product slope design (dense columns, then each product's own columns): read a
    product at a time, the moments and the fit are what reading every column gives."""
    rng = np.random.default_rng(5)
    n, products, dense_cols, slopes = 12_000, 7, 3, 4
    product = rng.integers(0, products, n)
    values = rng.standard_normal((n, slopes)) + 1.0
    rows = np.repeat(np.arange(n), slopes)
    columns = (product[:, None] * slopes + np.arange(slopes)).ravel() + dense_cols
    per_product = sparse.csr_matrix(
        (values.ravel(), (rows, columns)), shape=(n, dense_cols + products * slopes)
    )
    base = sparse.csr_matrix(rng.standard_normal((n, dense_cols)))
    X = sparse.hstack([base, per_product[:, dense_cols:]], format="csr")
    y = X @ rng.normal(size=X.shape[1]) + rng.normal(0, 0.5, n)
    plain, grouped = moments(X, y), moments(X, y, groups=product)
    for field in ("xsum", "gram", "xy"):
        np.testing.assert_allclose(getattr(grouped, field), getattr(plain, field), rtol=1e-10)
    alone = GramLassoCV(n_splits=4, n_alphas=20).fit(X, y)
    by_group = GramLassoCV(n_splits=4, n_alphas=20).fit(X, y, groups=product)
    assert by_group.alpha_ == pytest.approx(alone.alpha_, rel=1e-12)
    np.testing.assert_allclose(by_group.coef_, alone.coef_, atol=1e-9)


def test_standardized_is_lassocv_on_scaled_columns_with_coefficients_of_the_unscaled() -> None:
    X, y = _data(1500, 40, 0.15, 7)
    X = X @ sparse.diags(np.linspace(0.1, 30.0, 40))  # columns of very different scales
    scaler = StandardScaler(with_mean=False).fit(X)
    ref = LassoCV(alphas=30, cv=TimeSeriesSplit(4), max_iter=20000, tol=1e-3)
    ref.fit(scaler.transform(X), y)
    ours = GramLassoCV(n_splits=4, n_alphas=30, standardize=True).fit(X, y)
    np.testing.assert_allclose(ours.scale_, scaler.scale_, rtol=1e-9)
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-9)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(ours.coef_ * scaler.scale_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.predict(X), ref.predict(scaler.transform(X)), atol=1e-6)


def test_later_fits_reuse_the_chunks_they_share_and_give_what_a_fresh_fit_gives() -> None:
    """Fits on longer and longer prefixes of the same rows (a segment's cut-offs) read the
    chunks of rows the earlier fits read from the cache, with the same answer as without it."""
    X, y = _data(20 * CHUNK_ROWS + 123, 12, 0.3, 8)
    prefixes = [16 * CHUNK_ROWS + 5, 18 * CHUNK_ROWS + 77, X.shape[0]]
    _empty(CHUNKS)
    fits = [GramLassoCV(standardize=True).fit(X[:n], y[:n]) for n in prefixes]
    assert len(CHUNKS.kept) <= 20  # no chunk read twice: every one computed once at most ...
    assert CHUNKS.hits >= 20  # ... and the later fits found most of theirs
    for n, fit in zip(prefixes, fits, strict=True):
        _empty(CHUNKS)
        fresh = GramLassoCV(standardize=True).fit(X[:n], y[:n])
        assert fit.alpha_ == fresh.alpha_
        np.testing.assert_array_equal(fit.coef_, fresh.coef_)


def _empty(cache: ChunkCache) -> None:
    cache.kept.clear()
    cache.bytes = cache.hits = 0


def test_the_cache_keeps_at_most_its_bytes_and_tells_chunks_apart_by_content() -> None:
    X, y = _data(3 * CHUNK_ROWS, 6, 0.5, 9)
    cache = ChunkCache(max_bytes=2 * 6 * 6 * 8)  # two Gram matrices of 6 columns
    first = cache.moments(X[:CHUNK_ROWS], y[:CHUNK_ROWS], None)
    assert cache.moments(X[:CHUNK_ROWS], y[:CHUNK_ROWS], None) is first
    other = cache.moments(X[:CHUNK_ROWS], y[:CHUNK_ROWS] + 1.0, None)  # same rows, other target
    assert other.ysum != first.ysum
    cache.moments(X[CHUNK_ROWS : 2 * CHUNK_ROWS], y[CHUNK_ROWS : 2 * CHUNK_ROWS], None)
    assert len(cache.kept) == 2 and cache.bytes <= cache.max_bytes
    assert cache.moments(X[:CHUNK_ROWS], y[:CHUNK_ROWS], None) is not first  # dropped, read again


def test_range_moments_are_the_moments_of_the_range() -> None:
    X, y = _data(3 * CHUNK_ROWS + 50, 5, 0.4, 10)
    groups = np.arange(X.shape[0]) % 3
    for a, b in [(0, X.shape[0]), (17, 2 * CHUNK_ROWS + 3), (CHUNK_ROWS, 2 * CHUNK_ROWS), (5, 9)]:
        found, plain = range_moments(X, y, groups, a, b), moments(X[a:b], y[a:b])
        assert found.n == b - a
        np.testing.assert_allclose(found.gram, plain.gram, rtol=1e-10)
        np.testing.assert_allclose(found.xy, plain.xy, rtol=1e-10)
