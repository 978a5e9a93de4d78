"""`config/pipeline.yaml`: how the weekly batch forecasts, its lifecycle gates and drift checks.

`large_segment_rows` and `large_segment` let a segment with many rows train differently from
the rest (`for_large_segment`): at production density the LASSO alone is as accurate on the
gates' WAPE as the ensemble, for a fraction of its training (benchmarks/scale/README.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from demandops.core.calendar import HolidayCalendar
from demandops.core.limits import InputLimits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LifecycleConfig(_Strict):
    """Promotion gates and staleness (see demandops/lifecycle/policy.py and docs/lifecycle.md)."""

    gate_metric: Literal["mape", "wape"] = "wape"
    max_error: float = Field(default=0.45, gt=0)
    min_improvement_over_baseline: float = Field(default=0.20, ge=0, lt=1)
    champion_tolerance: float = Field(default=0.05, ge=0)
    stale_after_days: int = Field(default=60, ge=1)
    # champion/challenger (docs/serving.md): a registered version per segment, beside the
    # registry alias `challenger`, forecasting for this share of stores (by store hash)
    challengers: dict[str, str] = {}
    challenger_share: float = Field(default=0.2, gt=0, lt=1)
    challenger_alpha: float = Field(default=0.05, gt=0, lt=1)  # Wilcoxon significance level


class DriftConfig(_Strict):
    """Drift between the training window and the scoring batch (demandops/monitoring/drift.py)."""

    reference_weeks: int = Field(default=13, ge=1, le=260)
    bins: int = Field(default=10, ge=2, le=100)
    psi_alert: float = Field(default=0.25, gt=0)
    ks_alert: float = Field(default=0.3, gt=0, le=1)
    exclude: list[str] = []
    # seasonal features: compared with the same weeks a year earlier (± seasonal_window_weeks),
    # alerting on the standardized mean shift, not on PSI / KS
    seasonal: list[str] = []
    seasonal_window_weeks: int = Field(default=2, ge=0, le=13)
    shift_alert: float = Field(default=1.5, gt=0)


# what `large_segment:` may change: how a segment trains, not the backtest every segment shares
LARGE_SEGMENT_KEYS = (
    "ensemble",
    "ensemble_trial",
    "ensemble_objective",
    "ensemble_wape_tolerance",
    "ensemble_volume_gate",
    "ensemble_validation_windows",
    "ensemble_validation_weeks",
    "lasso_cv_folds",
    "lasso_calendar_slopes",
    "nn_max_epochs",
    "nn_warm_start",
    "nn_epoch_rows",
    "nn_seeds",
)


class PipelineConfig(_Strict):
    """How the weekly batch forecasts."""

    horizon_weeks: int = Field(ge=1, le=52)
    backtest_origins: int = Field(ge=1, le=26)
    baseline_window_weeks: int = Field(ge=1, le=104)
    velocity_threshold: float = Field(gt=0)
    lasso_cv_folds: int = Field(ge=2, le=20)
    # "module:Class" of each member (imported by the training step: ml/members.py)
    ensemble: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = Field(
        min_length=1
    )
    # members tried per segment, joining its ensemble where they win (ml/member_trial.py)
    ensemble_trial: list[Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]] = []
    # what the blend's weights minimise on the validation window (ml/ensemble.py)
    ensemble_objective: Literal["wape", "mape"] = "wape"
    ensemble_wape_tolerance: float = Field(default=0.05, ge=0, le=1)
    # with mape: weeks forecast far above the segment's mean blend for WAPE (ml/ensemble.py)
    ensemble_volume_gate: float | None = Field(default=None, gt=0)
    # the blend's own backtest: windows of weeks at the end of the training data (ml/ensemble.py)
    ensemble_validation_windows: int = Field(default=3, ge=1, le=12)
    ensemble_validation_weeks: int = Field(default=4, ge=1, le=26)
    nn_max_epochs: int = Field(default=30, ge=1, le=1000)
    # a segment's net fits after its first start from its latest fit on earlier weeks (fit_memo)
    nn_warm_start: bool = True
    # training rows one net epoch samples at most (each seed its own sample); null: every row
    nn_epoch_rows: int | None = Field(default=65_536, ge=1024)
    # nets of different initial weights whose forecasts are averaged (ml/embedding_net.py)
    nn_seeds: int = Field(default=3, ge=1, le=10)
    # per-product LASSO slopes on the calendar: week-of-year terms, holiday, trend (ml/models.py)
    lasso_calendar_slopes: bool = True
    lifecycle: LifecycleConfig = LifecycleConfig()
    drift: DriftConfig = DriftConfig()
    # each region's holidays where regions.yaml gives them (filled in from it by load_settings)
    holidays: dict[str, HolidayCalendar] = {}
    limits: InputLimits = InputLimits()  # what a raw file may hold (demandops/core/limits.py)
    # a segment of more training rows than this trains with `large_segment`'s settings; null: never
    large_segment_rows: int | None = Field(default=None, ge=1)
    large_segment: dict[str, Any] = {}  # keys of LARGE_SEGMENT_KEYS

    @model_validator(mode="after")
    def _large_segment_is_valid(self) -> PipelineConfig:
        unknown = sorted(set(self.large_segment) - set(LARGE_SEGMENT_KEYS))
        if unknown:
            allowed = ", ".join(LARGE_SEGMENT_KEYS)
            raise ValueError(f"large_segment cannot set {', '.join(unknown)}; it may set {allowed}")
        try:
            if self.large_segment:
                self.for_large_segment()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"large_segment.{where}: {first['msg']}") from None
        return self

    @model_validator(mode="after")
    def _trial_members_are_not_configured(self) -> PipelineConfig:
        both = [m for m in self.ensemble_trial if m in self.ensemble]
        if both:
            raise ValueError(
                f"ensemble_trial: {', '.join(both)} is already in ensemble (a member on trial "
                "joins where it wins; one in ensemble: is blended in every segment): name it once"
            )
        return self

    def for_large_segment(self) -> PipelineConfig:
        """The settings a segment of more than `large_segment_rows` rows trains with."""
        merged = {**self.model_dump(), **self.large_segment}
        return PipelineConfig.model_validate(
            merged | {"large_segment_rows": None, "large_segment": {}}
        )
