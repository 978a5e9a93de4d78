"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const FILTERS = { region: "f-region", store_format: "f-format", velocity: "f-velocity" };
const COLORS = { model: "#1f77b4", hist_avg: "#ff7f0e", same_woy_avg: "#2ca02c", actual: "#222" };

function esc(v) {
  return String(v).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}
function fmt(v, digits) {
  if (v === null || v === undefined || v === "") return "";
  return typeof v === "number" ? v.toFixed(digits === undefined ? 4 : digits) : String(v);
}
function segParts(name) {
  const p = String(name).split(".");
  return { region: p[0], store_format: p[1], velocity: p[2] };
}
function keep(row) {
  const r = row.region !== undefined && row.store_format !== undefined ? row : Object.assign({}, segParts(row.segment), row);
  return Object.keys(FILTERS).every((k) => {
    const want = $(FILTERS[k]).value;
    return !want || r[k] === undefined || r[k] === "" || r[k] === want;
  });
}

function table(id, columns, rows, rowClass) {
  const head = "<tr>" + columns.map((c) => "<th>" + esc(c.label) + "</th>").join("") + "</tr>";
  const body = rows.map((r) => {
    const cls = rowClass ? rowClass(r) : "";
    const cells = columns.map((c) => {
      const v = c.value(r);
      const key = c.key ? ' data-k="' + esc(c.key(r)) + '"' : "";
      return "<td" + (typeof v === "number" ? "" : ' class="text"') + key + ">" + esc(fmt(v, c.digits)) + "</td>";
    });
    return '<tr class="' + cls + '">' + cells.join("") + "</tr>";
  });
  $(id).innerHTML = head + body.join("");
}

function bars(id, groups, series, unit) {
  // groups: [{label, values: {series: number}}]: grouped horizontal bars in inline SVG
  const rowH = 6 + 12 * series.length, left = 170, width = 420;
  const max = Math.max(1e-9, ...groups.flatMap((g) => series.map((s) => g.values[s] || 0)));
  let svg = "";
  groups.forEach((g, i) => {
    const y = 20 + i * rowH;
    svg += '<text x="4" y="' + (y + rowH / 2) + '" font-size="11">' + esc(g.label) + "</text>";
    series.forEach((s, j) => {
      const v = g.values[s];
      if (v === null || v === undefined) return;
      const w = (v / max) * width;
      svg += '<rect x="' + left + '" y="' + (y + j * 12) + '" width="' + w.toFixed(1) + '" height="10" fill="' + (COLORS[s] || "#888") + '"><title>' +
        esc(g.label + " " + s + ": " + fmt(v)) + "</title></rect>";
    });
  });
  const legend = series.map((s, j) => '<text class="legend" x="' + (left + j * 90) + '" y="12" fill="' + (COLORS[s] || "#888") + '">■ ' + esc(s) + "</text>").join("");
  const height = 30 + groups.length * rowH;
  $(id).innerHTML = '<svg xmlns="http://www.w3.org/2000/svg" width="' + (left + width + 80) + '" height="' + height + '">' + legend + svg +
    '<text x="' + (left + width) + '" y="' + (height - 2) + '" font-size="10">' + esc(unit + " max " + fmt(max, 3)) + "</text></svg>";
}

function lines(id, points) {
  // points: [{week, actual, forecast}] sorted by week: two polylines in inline SVG
  const w = 640, h = 220, pad = 40;
  if (!points.length) { $(id).innerHTML = "<p>no backtest rows</p>"; return; }
  const max = Math.max(1e-9, ...points.flatMap((p) => [p.actual, p.forecast]));
  const x = (i) => pad + (points.length === 1 ? 0 : (i * (w - 2 * pad)) / (points.length - 1));
  const y = (v) => h - pad + 10 - (v / max) * (h - 2 * pad);
  const path = (k) => points.map((p, i) => x(i).toFixed(1) + "," + y(p[k]).toFixed(1)).join(" ");
  let svg = '<polyline fill="none" stroke="' + COLORS.actual + '" stroke-width="2" points="' + path("actual") + '"/>';
  svg += '<polyline fill="none" stroke="' + COLORS.model + '" stroke-width="2" stroke-dasharray="5,3" points="' + path("forecast") + '"/>';
  points.forEach((p, i) => {
    if (i % Math.ceil(points.length / 6) === 0) svg += '<text x="' + x(i) + '" y="' + (h - 8) + '" font-size="10" text-anchor="middle">' + esc(p.week) + "</text>";
  });
  svg += '<text class="legend" x="' + pad + '" y="14">■ actual (Σ units)</text><text class="legend" x="' + (pad + 140) + '" y="14" fill="' + COLORS.model + '">■ forecast</text>';
  svg += '<text x="4" y="' + (pad - 10) + '" font-size="10">' + esc(fmt(max, 0)) + "</text>";
  $(id).innerHTML = '<svg xmlns="http://www.w3.org/2000/svg" width="' + w + '" height="' + h + '">' + svg + "</svg>";
}

function metric(rows, segment, model, name) {
  const r = rows.find((m) => m.segment === segment && m.model === model);
  return r ? r[name] : null;
}

function renderTraining() {
  const mm = D.model_metrics.filter(keep);
  const chosen = mm.filter((m) => m.chosen);
  table("training-table", [
    { label: "segment", value: (r) => r.segment },
    { label: "model", value: (r) => r.model },
    { label: "version", value: (r) => r.candidate_version },
    { label: "MAPE", value: (r) => r.mape, key: (r) => r.segment + "|mape" },
    { label: "RMSE", value: (r) => r.rmse, key: (r) => r.segment + "|rmse" },
    { label: "RMSE0", value: (r) => r.rmse0, key: (r) => r.segment + "|rmse0" },
    { label: "WAPE", value: (r) => r.wape, key: (r) => r.segment + "|wape" },
    { label: "bias", value: (r) => r.bias, key: (r) => r.segment + "|bias" },
    { label: "P10–P90 coverage", value: (r) => r.coverage80, key: (r) => r.segment + "|coverage80" },
    { label: "hist_avg MAPE", value: (r) => metric(mm, r.segment, "hist_avg", "mape") },
    { label: "hist_avg RMSE", value: (r) => metric(mm, r.segment, "hist_avg", "rmse") },
    { label: "hist_avg RMSE0", value: (r) => metric(mm, r.segment, "hist_avg", "rmse0") },
    { label: "same_woy_avg MAPE", value: (r) => metric(mm, r.segment, "same_woy_avg", "mape") },
  ], chosen);
  bars("training-chart", chosen.map((r) => ({
    label: r.segment,
    values: { model: r.mape, hist_avg: metric(mm, r.segment, "hist_avg", "mape"), same_woy_avg: metric(mm, r.segment, "same_woy_avg", "mape") },
  })), ["model", "hist_avg", "same_woy_avg"], "MAPE");
  const seen = new Set();
  const versions = D.history.filter((m) => m.chosen && keep(m)).filter((m) => {
    const k = m.segment + "|" + m.candidate_version + "|" + m.model_dataset;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  versions.sort((a, b) => (a.segment + a.run_id).localeCompare(b.segment + b.run_id));
  table("versions-table", [
    { label: "segment", value: (r) => r.segment },
    { label: "model version", value: (r) => r.candidate_version },
    { label: "first run", value: (r) => r.run_id },
    { label: "MAPE", value: (r) => r.mape },
    { label: "RMSE", value: (r) => r.rmse },
    { label: "RMSE0", value: (r) => r.rmse0 },
    { label: "hist_avg MAPE", value: (r) => metric(D.history.filter((h) => h.run_id === r.run_id), r.segment, "hist_avg", "mape") },
  ], versions);
}

function renderMonitor() {
  const steps = D.steps.filter(keep);
  const byRegion = {};
  steps.forEach((s) => { (byRegion[s.region] = byRegion[s.region] || {})[s.step] = s.seconds; });
  const names = [...new Set(D.steps.map((s) => s.step))];
  names.forEach((n, i) => { COLORS[n] = COLORS[n] || ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"][i % 6]; });
  bars("steps-chart", Object.keys(byRegion).sort().map((r) => ({ label: r, values: byRegion[r] })), names, "seconds");
  table("steps-table", [
    { label: "region", value: (r) => r.region },
    { label: "step", value: (r) => r.step },
    { label: "seconds", value: (r) => r.seconds, digits: 2, key: (r) => r.region + "|" + r.step + "|seconds" },
    { label: "status", value: (r) => r.status, key: (r) => r.region + "|" + r.step + "|status" },
    { label: "error", value: (r) => r.error || "" },
  ], steps.slice().sort((a, b) => (a.status === "failed" ? 0 : 1) - (b.status === "failed" ? 0 : 1)), (r) => (r.status === "failed" ? "fail" : ""));

  const limit = D.stale_after_days;
  const stale = D.staleness.filter(keep);
  const segs = Object.fromEntries(D.segments.map((s) => [s.segment, s]));
  table("scoring-table", [
    { label: "segment", value: (r) => r.segment },
    { label: "model", value: (r) => (segs[r.segment] || {}).model || "" },
    { label: "champion", value: (r) => String(r.champion_version) },
    { label: "trained on", value: (r) => r.trained_on },
    { label: "age (days)", value: (r) => r.age_days, digits: 0, key: (r) => r.segment + "|age" },
    { label: "stale", value: (r) => (r.stale || r.age_days > limit ? "STALE" : "") },
    { label: "fallback", value: (r) => r.fallback },
  ], stale, (r) => (r.stale || r.age_days > limit ? "stale" : ""));

  table("challenger-table", [
    { label: "segment", value: (r) => r.segment },
    { label: "champion", value: (r) => String(r.champion_version) },
    { label: "challenger", value: (r) => String(r.challenger_version) },
    { label: "store-weeks", value: (r) => r.pairs, digits: 0 },
    { label: "champion MAE", value: (r) => r.champion_mae, digits: 2, key: (r) => r.segment + "|champion_mae" },
    { label: "challenger MAE", value: (r) => r.challenger_mae, digits: 2, key: (r) => r.segment + "|challenger_mae" },
    { label: "p (Wilcoxon)", value: (r) => r.p_value, digits: 3 },
    { label: "significance", value: (r) => r.note },
  ], (D.challengers || []).filter(keep), (r) => (r.better ? "better" : ""));

  const drift = D.drift.filter(keep).slice().sort((a, b) => (b.alert - a.alert) || a.region.localeCompare(b.region));
  table("drift-table", [
    { label: "region", value: (r) => r.region },
    { label: "feature", value: (r) => r.feature },
    { label: "kind", value: (r) => r.kind },
    { label: "reference", value: (r) => r.reference },
    { label: "PSI", value: (r) => r.psi, key: (r) => r.region + "|" + r.feature + "|psi" },
    { label: "KS", value: (r) => r.ks },
    { label: "shift (sd)", value: (r) => r.shift, key: (r) => r.region + "|" + r.feature + "|shift" },
    { label: "alert", value: (r) => r.reason },
  ], drift, (r) => (r.alert ? "alert" : ""));

  table("quality-table", [
    { label: "region", value: (r) => r.region },
    { label: "check", value: (r) => r.check },
    { label: "status", value: (r) => r.status, key: (r) => r.region + "|" + r.check },
    { label: "failing", value: (r) => r.failing, digits: 0 },
    { label: "detail", value: (r) => r.detail },
  ], D.data_quality.filter(keep), (r) => (r.status === "fail" ? "fail" : ""));
  table("sources-table", [
    { label: "region", value: (r) => r.region },
    { label: "source", value: (r) => r.source },
    { label: "version", value: (r) => r.version },
    { label: "rows in", value: (r) => r.rows_in, digits: 0 },
    { label: "rows out", value: (r) => r.rows_out, digits: 0 },
    { label: "aggregated", value: (r) => r.rows_aggregated || 0, digits: 0 },
    { label: "rejected", value: (r) => r.rows_rejected, digits: 0, key: (r) => r.region + "|" + r.source + "|rejected" },
    { label: "feed", value: (r) => (r.absent ? "absent" : "used") },
  ], D.sources.filter(keep));

  const chosen = Object.fromEntries(D.segments.map((s) => [s.segment, s.model]));
  const weeks = {};
  D.forecast_actuals.filter(keep).forEach((r) => {
    const seg = r.region + "." + r.store_format + "." + r.velocity;
    if (r.model !== chosen[seg]) return;
    const w = (weeks[r.week_start] = weeks[r.week_start] || { week: r.week_start, actual: 0, forecast: 0 });
    w.actual += r.actual;
    w.forecast += r.forecast;
  });
  const points = Object.values(weeks).sort((a, b) => a.week.localeCompare(b.week));
  lines("actuals-chart", points);
  $("actuals-chart").dataset.actual = points.reduce((s, p) => s + p.actual, 0).toFixed(2);
  $("actuals-chart").dataset.forecast = points.reduce((s, p) => s + p.forecast, 0).toFixed(2);
}

function show(view) {
  ["training", "monitor"].forEach((v) => {
    $("view-" + v).classList.toggle("active", v === view);
    $("tab-" + v).classList.toggle("active", v === view);
  });
}

function state() {
  const p = new URLSearchParams(location.hash.slice(1));
  return { view: p.get("view") || "training", region: p.get("region") || "", store_format: p.get("format") || "", velocity: p.get("velocity") || "" };
}

function render() {
  renderTraining();
  renderMonitor();
}

function init() {
  const options = { region: new Set(), store_format: new Set(), velocity: new Set() };
  D.segments.forEach((s) => Object.keys(options).forEach((k) => options[k].add(s[k])));
  const s = state();
  Object.keys(FILTERS).forEach((k) => {
    const select = $(FILTERS[k]);
    [...options[k]].sort().forEach((v) => select.add(new Option(v, v)));
    select.value = s[k];
    select.addEventListener("change", render);
  });
  document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
  const run = D.runs[0];
  $("run").textContent = "run " + run.run_id + " · " + run.environment + " · scoring date " + run.scoring_date + " · " + run.segments + " segments · " +
    run.stale + " stale · " + (run.failed_regions || 0) + " failed regions · " + run.drift_alerts + " drift alerts · " + run.data_quality_failed + " data-quality failures" +
    (run.feeds_absent ? " · feeds absent: " + run.feeds_absent : "") +
    (run.warnings ? " · warning: " + run.warnings : "");
  show(s.view);
  render();
  document.body.dataset.ready = "1";
}

init();
