/* Doraflow dashboard: a small vanilla front end over the public API.
 *
 * The API key lives in sessionStorage only (gone when the tab closes) and is sent as a bearer
 * token to this origin alone. Everything shown comes from /api/v1; the page computes no metric —
 * it formats what the API returns. All text from the API is inserted with textContent (pull
 * request titles are user input), never as HTML.
 */
"use strict";

(() => {
  const KEY_STORAGE = "doraflow.key";
  const API = "/api/v1";
  const WINDOWS = ["7d", "30d", "90d", "180d", "365d"];
  const WINDOW_DAYS = { "7d": 7, "30d": 30, "90d": 90, "180d": 180, "365d": 365 };
  const COLORS = {
    elite: "#10b981", high: "#38bdf8", medium: "#f59e0b", low: "#ef4444",
    accent: "#7c9cff", violet: "#a78bfa", muted: "#8b95a9", grid: "#1d2536", text: "#e6eaf2",
    coding: "#7c9cff", pickup: "#f59e0b", review: "#a78bfa", deploy: "#10b981",
  };
  // The tiles, in the order DORA presents them. Recovery depends on the benchmark year:
  // 2023 measures failed deployment recovery time, 2021 time to restore service.
  const TILES = {
    "2023": ["deployment_frequency", "lead_time_for_changes", "change_failure_rate",
      "failed_deployment_recovery_time", "rework_rate"],
    "2021": ["deployment_frequency", "lead_time_for_changes", "change_failure_rate",
      "time_to_restore_service", "rework_rate"],
  };
  const META = {
    deployment_frequency: { label: "Deployment frequency", better: "higher", tab: "deployments" },
    lead_time_for_changes: { label: "Lead time for changes", better: "lower", tab: "pull-requests" },
    change_failure_rate: { label: "Change failure rate", better: "lower", tab: "deployments" },
    failed_deployment_recovery_time: { label: "Failed deployment recovery", better: "lower", tab: "incidents" },
    time_to_restore_service: { label: "Time to restore service", better: "lower", tab: "incidents" },
    rework_rate: { label: "Rework rate", better: "lower", tab: "deployments" },
  };

  const state = {
    window: "30d", team: "", repo: "", benchmark: "2023", tab: "pull-requests",
    cursor: null, repositories: [], teams: [], charts: {}, generation: 0,
  };

  // ---------------------------------------------------------------- helpers

  const $ = (selector) => document.querySelector(selector);

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "title") node.title = value;
      else if (name === "href") node.href = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, params) {
    const url = new URL(API + path, location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value === null || value === undefined || value === "") continue;
      for (const item of [].concat(value)) url.searchParams.append(name, item);
    }
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORAGE) || ""}`, Accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  function toast(message) {
    const node = $("#toast");
    node.textContent = message;
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, 6000);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return { number: "—", unit: "" };
    const s = Math.max(0, seconds);
    if (s < 3600) return { number: (s / 60).toFixed(s < 600 ? 1 : 0), unit: "min" };
    if (s < 2 * 86400) return { number: (s / 3600).toFixed(1), unit: "hours" };
    return { number: (s / 86400).toFixed(1), unit: "days" };
  }

  function durationText(seconds) {
    const d = duration(seconds);
    return d.unit ? `${d.number} ${d.unit === "hours" ? "h" : d.unit === "days" ? "d" : "min"}` : "—";
  }

  function formatMetric(name, metric) {
    if (!metric || metric.value === null) return { number: "—", unit: "" };
    const v = metric.value;
    if (metric.unit === "deployments_per_day") {
      if (v >= 1) return { number: v.toFixed(1), unit: "per day" };
      if (v * 7 >= 1) return { number: (v * 7).toFixed(1), unit: "per week" };
      return { number: (v * 30).toFixed(1), unit: "per month" };
    }
    if (metric.unit === "seconds") return duration(v);
    if (metric.unit === "ratio") return { number: (v * 100).toFixed(1), unit: "%" };
    return { number: v.toFixed(1), unit: metric.unit };
  }

  function delta(name, current, previous) {
    if (!current || !previous || current.value === null || previous.value === null) return null;
    const better = META[name].better;
    if (current.unit === "ratio") {
      const points = (current.value - previous.value) * 100;
      if (Math.abs(points) < 0.5) return { text: "→ steady", cls: "same" };
      const improved = better === "lower" ? points < 0 : points > 0;
      return { text: `${points > 0 ? "▲" : "▼"} ${Math.abs(points).toFixed(1)} pp`, cls: improved ? "better" : "worse" };
    }
    if (previous.value === 0) return null;
    const change = (current.value - previous.value) / previous.value;
    if (Math.abs(change) < 0.02) return { text: "→ steady", cls: "same" };
    const improved = better === "lower" ? change < 0 : change > 0;
    return { text: `${change > 0 ? "▲" : "▼"} ${Math.abs(change * 100).toFixed(0)}%`, cls: improved ? "better" : "worse" };
  }

  function shortDate(iso) {
    return new Date(iso).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  }

  function dateTime(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString(undefined, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC",
    });
  }

  function scopeParams() {
    if (state.repo) return { scope: "repository", id: state.repo };
    if (state.team) return { scope: "team", id: state.team };
    return { scope: "organization" };
  }

  // ---------------------------------------------------------------- URL state

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (WINDOWS.includes(params.get("window"))) state.window = params.get("window");
    if (["2021", "2023"].includes(params.get("benchmark"))) state.benchmark = params.get("benchmark");
    if (["pull-requests", "deployments", "incidents"].includes(params.get("tab"))) state.tab = params.get("tab");
    state.team = params.get("team") || "";
    state.repo = params.get("repo") || "";
  }

  function writeHash() {
    const params = new URLSearchParams({ window: state.window, benchmark: state.benchmark, tab: state.tab });
    if (state.team) params.set("team", state.team);
    if (state.repo) params.set("repo", state.repo);
    history.replaceState(null, "", `#${params}`);
  }

  // ---------------------------------------------------------------- login

  function showLogin(message) {
    $("#app").hidden = true;
    $("#login").hidden = false;
    const error = $("#login-error");
    error.hidden = !message;
    error.textContent = message || "";
    $("#api-key").focus();
    document.body.dataset.state = "login";
  }

  async function signIn(key) {
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      const me = await api("/me");
      $("#org-name").textContent = me.organization.name;
      $("#login").hidden = true;
      $("#app").hidden = false;
      await loadFilters();
      await refresh();
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        sessionStorage.removeItem(KEY_STORAGE);
        showLogin(error.message || "That key was not accepted.");
      } else {
        showLogin(`The server could not be reached (${error.message}).`);
      }
    }
  }

  // ---------------------------------------------------------------- filters

  async function loadFilters() {
    const [teams, repositories] = await Promise.all([
      api("/teams", { limit: 200 }), api("/repositories", { limit: 200 }),
    ]);
    state.teams = teams.items;
    state.repositories = repositories.items;
    const teamSelect = $("#filter-team");
    teamSelect.replaceChildren(h("option", { value: "" }, "All teams"),
      ...state.teams.map((team) => h("option", { value: team.id }, team.name)));
    if (!state.teams.some((team) => team.id === state.team)) state.team = "";
    teamSelect.value = state.team;
    fillRepositories();
    $("#filter-benchmark").value = state.benchmark;
    markWindow();
  }

  function fillRepositories() {
    const select = $("#filter-repo");
    const visible = state.team ? state.repositories.filter((r) => r.team_ids.includes(state.team)) : state.repositories;
    select.replaceChildren(h("option", { value: "" }, state.team ? "All of the team's" : "All repositories"),
      ...visible.map((repo) => h("option", { value: repo.id }, repo.name)));
    if (!visible.some((repo) => repo.id === state.repo)) state.repo = "";
    select.value = state.repo;
  }

  function markWindow() {
    for (const button of document.querySelectorAll("#filter-window button")) {
      const active = button.dataset.window === state.window;
      button.classList.toggle("active", active);
      button.setAttribute("aria-checked", String(active));
    }
  }

  // ---------------------------------------------------------------- refresh

  async function refresh() {
    const generation = ++state.generation;
    writeHash();
    document.body.dataset.state = "loading";
    $("main").classList.add("loading");
    const scope = scopeParams();
    const base = { ...scope, window: state.window };
    const trendWindow = WINDOW_DAYS[state.window] < 90 ? "90d" : state.window;
    try {
      const [dora, trend, deployments, incidents] = await Promise.all([
        api("/analytics/dora", { ...base, benchmark: state.benchmark, compare: "true" }),
        api("/analytics/dora/trend", {
          ...scope, window: trendWindow, benchmark: state.benchmark, granularity: "week",
        }),
        api("/analytics/deployments", { ...base, limit: 200 }),
        api("/analytics/incidents", { ...base, limit: 200 }),
      ]);
      if (generation !== state.generation) return;  // a newer refresh superseded this one
      renderHeadline(dora);
      renderTiles(dora);
      renderThroughput(trend, trendWindow);
      renderBreakdown(dora);
      renderStability(trend);
      renderTimeline(deployments.items, incidents.items, dora.window);
      await loadDrill(true);
      if (generation === state.generation) document.body.dataset.state = "ready";
    } catch (error) {
      if (error.status === 401) { sessionStorage.removeItem(KEY_STORAGE); showLogin("Your key is no longer valid."); return; }
      toast(`Could not load metrics: ${error.message}`);
      document.body.dataset.state = "error";
    } finally {
      if (generation === state.generation) $("main").classList.remove("loading");
    }
  }

  function renderHeadline(dora) {
    const days = WINDOW_DAYS[state.window];
    const kind = { organization: "Organization", team: "Team", repository: "Repository" }[dora.scope.kind];
    $("#scope-title").textContent = `${dora.scope.name}`;
    const end = new Date(new Date(dora.window.end) - 1);
    $("#scope-subtitle").textContent =
      `${kind} · last ${days} days (${shortDate(dora.window.start)} – ${shortDate(end.toISOString())}) · ` +
      `compared with the ${days} days before · DORA ${dora.benchmark} benchmark`;
  }

  function renderTiles(dora) {
    const tiles = TILES[state.benchmark].map((name) => {
      const metric = dora.metrics[name];
      const previous = dora.previous ? dora.previous[name] : null;
      const shown = formatMetric(name, metric);
      const change = delta(name, metric, previous);
      const tier = metric && metric.tier;
      const tierBadge = tier
        ? h("span", { class: `tier tier-${tier}` }, tier)
        : h("span", { class: "tier tier-none", title: (metric && metric.details && metric.details.tier_note) || "" },
          metric && metric.value !== null ? "no tier" : "no data");
      const sampleLabel = name === "lead_time_for_changes" ? "changes"
        : name.endsWith("recovery_time") ? "failed deployments"
          : name === "time_to_restore_service" ? "incidents" : "deployments";
      const extra = metric && metric.p90 !== null && metric.unit === "seconds"
        ? `p75 ${durationText(metric.p75)} · p90 ${durationText(metric.p90)}` : "";
      return h("article", {
        class: `tile ${tier || ""} ${metric && metric.value === null ? "empty" : ""}`,
        dataset: { metric: name, tab: META[name].tab },
        tabindex: "0",
        title: "Show the items behind this number",
      },
      h("h3", {}, META[name].label),
      h("div", { class: "value" }, h("span", { class: "number" }, shown.number), h("span", { class: "unit" }, shown.unit)),
      h("div", { class: "row" }, tierBadge, change ? h("span", { class: `delta ${change.cls}`, title: "vs the previous window" }, change.text) : null),
      metric && metric.value === null
        ? h("div", { class: "reason" }, metric.reason)
        : h("div", { class: "foot" }, h("span", {}, `${metric ? metric.sample_size : 0} ${sampleLabel}`), h("span", {}, extra)));
    });
    $("#tiles").replaceChildren(...tiles);
  }

  function chart(id, config) {
    if (state.charts[id]) state.charts[id].destroy();
    state.charts[id] = new Chart(document.getElementById(id), config);
  }

  function hoursOf(metric) {
    return metric && metric.value !== null ? +(metric.value / 3600).toFixed(2) : null;
  }

  function axisHours(value) {
    return value >= 48 ? `${(value / 24).toFixed(0)}d` : `${value}h`;
  }

  function renderThroughput(trend, trendWindow) {
    const labels = trend.series.map((p) => shortDate(p.start));
    $("#trend-caption").textContent = `per week · last ${WINDOW_DAYS[trendWindow]} days`;
    chart("chart-throughput", {
      data: {
        labels,
        datasets: [
          {
            type: "bar", label: "Deployments", yAxisID: "y",
            data: trend.series.map((p) => (p.metrics.deployment_frequency || {}).sample_size || 0),
            // Partial buckets (the week still running, a window cut mid-week) are drawn faded.
            backgroundColor: (ctx) => (ctx.dataIndex !== undefined && trend.series[ctx.dataIndex]?.partial
              ? "rgba(124,156,255,.35)" : "rgba(124,156,255,.85)"),
            borderRadius: 5, maxBarThickness: 26,
          },
          {
            type: "line", label: "Lead time (median)", yAxisID: "y1",
            data: trend.series.map((p) => hoursOf(p.metrics.lead_time_for_changes)),
            borderColor: COLORS.elite, backgroundColor: COLORS.elite, cubicInterpolationMode: "monotone", pointRadius: 3, spanGaps: true,
          },
        ],
      },
      options: baseOptions({
        y: { position: "left", beginAtZero: true, title: { display: true, text: "deployments" }, ticks: { precision: 0 } },
        y1: { position: "right", beginAtZero: true, grid: { display: false }, title: { display: true, text: "lead time" },
          ticks: { callback: axisHours } },
      }, (item) => (item.dataset.yAxisID === "y1" ? `${item.dataset.label}: ${durationText(item.raw * 3600)}`
        : `${item.dataset.label}: ${item.raw}${trend.series[item.dataIndex].partial ? " (partial week)" : ""}`)),
    });
    // The legend would take its swatch from the first bar, which is often a faded partial week.
    const legend = state.charts["chart-throughput"].options.plugins.legend;
    legend.labels.generateLabels = (c) => Chart.defaults.plugins.legend.labels.generateLabels(c).map((label, i) => (
      i === 0 ? { ...label, fillStyle: "rgba(124,156,255,.85)", strokeStyle: "rgba(124,156,255,.85)" } : label));
    state.charts["chart-throughput"].update("none");
  }

  function renderStability(trend) {
    const labels = trend.series.map((p) => shortDate(p.start));
    const recovery = state.benchmark === "2021" ? "time_to_restore_service" : "failed_deployment_recovery_time";
    chart("chart-stability", {
      data: {
        labels,
        datasets: [
          {
            type: "bar", label: "Change failure rate", yAxisID: "y",
            data: trend.series.map((p) => {
              const m = p.metrics.change_failure_rate;
              return m && m.value !== null ? +(m.value * 100).toFixed(1) : null;
            }),
            backgroundColor: "rgba(239,68,68,.7)", borderRadius: 5, maxBarThickness: 26,
          },
          {
            type: "line", label: META[recovery].label, yAxisID: "y1",
            data: trend.series.map((p) => hoursOf(p.metrics[recovery])),
            borderColor: COLORS.medium, backgroundColor: COLORS.medium, cubicInterpolationMode: "monotone", pointRadius: 3, spanGaps: true,
          },
        ],
      },
      options: baseOptions({
        y: { position: "left", beginAtZero: true, suggestedMax: 30, title: { display: true, text: "failure rate" },
          ticks: { callback: (v) => `${v}%` } },
        y1: { position: "right", beginAtZero: true, grid: { display: false }, title: { display: true, text: "recovery" },
          ticks: { callback: axisHours } },
      }, (item) => (item.dataset.yAxisID === "y1"
        ? `${item.dataset.label}: ${durationText(item.raw * 3600)}` : `${item.dataset.label}: ${item.raw}%`)),
    });
  }

  function renderBreakdown(dora) {
    const lead = dora.metrics.lead_time_for_changes;
    const breakdown = (lead && lead.details && lead.details.cycle_time_breakdown) || {};
    const stages = ["coding", "pickup", "review", "deploy"];
    const medians = stages.map((stage) => (breakdown[stage] && breakdown[stage].median) ?? null);
    chart("chart-breakdown", {
      type: "bar",
      data: {
        labels: ["median PR"],
        datasets: stages.map((stage, i) => ({
          label: stage[0].toUpperCase() + stage.slice(1),
          data: [medians[i] === null ? 0 : +(medians[i] / 3600).toFixed(2)],
          backgroundColor: COLORS[stage], borderRadius: 4, barThickness: 34,
        })),
      },
      options: {
        ...baseOptions({
          x: { stacked: true, beginAtZero: true, ticks: { callback: axisHours } },
          y: { stacked: true, display: false },
        }, (item) => `${item.dataset.label}: ${durationText(item.raw * 3600)}`),
        indexAxis: "y",
      },
    });
    const cards = stages.map((stage, i) => {
      const d = duration(medians[i]);
      const info = breakdown[stage] || {};
      return h("div", {},
        h("dt", {}, h("i", { class: `sw-${stage}` }), stage),
        h("dd", {}, d.number, h("small", {}, d.unit)),
        h("dd", { class: "muted", title: "p90" }, h("small", {}, info.p90 ? `p90 ${durationText(info.p90)}` : "")));
    });
    $("#breakdown").replaceChildren(...cards);
  }

  function renderTimeline(deployments, incidents, window) {
    const services = [...new Set([...deployments.map((d) => d.service), ...incidents.map((i) => i.service || "unknown")])].sort();
    const row = Object.fromEntries(services.map((s, i) => [s, i]));
    const point = (iso, y) => ({ x: new Date(iso).getTime(), y });
    const ok = deployments.filter((d) => !d.failed).map((d) => point(d.deployed_at, row[d.service]));
    const failed = deployments.filter((d) => d.failed).map((d) => point(d.deployed_at, row[d.service]));
    const segments = [];
    const now = Date.now();
    for (const incident of incidents) {
      const y = row[incident.service || "unknown"] + 0.32;
      segments.push(point(incident.created_at, y));
      segments.push({ x: incident.resolved_at ? new Date(incident.resolved_at).getTime() : now, y });
      segments.push({ x: NaN, y: NaN });
    }
    $("#timeline-caption").textContent = `${deployments.length} deployments · ${incidents.length} incidents`;
    chart("chart-timeline", {
      type: "scatter",
      data: {
        datasets: [
          { label: "Deployment", data: ok, backgroundColor: "rgba(16,185,129,.85)", pointRadius: 4, pointHoverRadius: 6 },
          { label: "Failed deployment", data: failed, backgroundColor: COLORS.low, pointStyle: "rectRot", pointRadius: 6 },
          {
            label: "Incident (open → resolved)", data: segments, showLine: true, spanGaps: false,
            borderColor: "rgba(245,158,11,.9)", backgroundColor: COLORS.medium, borderWidth: 4,
            pointStyle: "triangle", pointRadius: (ctx) => (ctx.dataIndex % 3 === 0 ? 6 : 0),
          },
        ],
      },
      options: baseOptions({
        x: {
          type: "linear", min: new Date(window.start).getTime(), max: Math.min(new Date(window.end).getTime(), now + 3600e3),
          ticks: { maxTicksLimit: 8, callback: (v) => shortDate(new Date(v).toISOString()) },
        },
        y: {
          min: -0.6, max: services.length - 0.2, reverse: true,
          ticks: { stepSize: 1, autoSkip: false, callback: (v) => (Number.isInteger(v) ? services[v] : "") },
        },
      }, (item) => {
        const when = dateTime(new Date(item.raw.x).toISOString());
        return `${item.dataset.label} · ${services[Math.round(item.raw.y - 0.32)] ?? services[Math.round(item.raw.y)]} · ${when}`;
      }),
    });
  }

  function baseOptions(scales, label) {
    const styled = {};
    for (const [axis, options] of Object.entries(scales)) {
      styled[axis] = {
        ...options,
        grid: { color: COLORS.grid, ...(options.grid || {}) },
        border: { display: false },
        ticks: { color: COLORS.muted, ...(options.ticks || {}) },
        title: options.title ? { color: COLORS.muted, ...options.title } : undefined,
      };
    }
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: navigator.webdriver ? false : { duration: 350 },
      interaction: { mode: "nearest", intersect: false },
      plugins: {
        legend: { labels: { color: COLORS.text, boxWidth: 12, boxHeight: 12, usePointStyle: true } },
        tooltip: { callbacks: { label: (item) => label(item) ?? `${item.dataset.label}: ${item.formattedValue}` } },
      },
      scales: styled,
    };
  }

  // ---------------------------------------------------------------- drill-down

  const COLUMNS = {
    "pull-requests": [
      ["Deployed", (r) => dateTime(r.first_deployed_at)],
      ["Repository", (r) => r.repository],
      ["#", (r) => `#${r.number}`, "num"],
      ["Title", (r) => r.title || "", "wrap"],
      ["Author", (r) => r.author || "—"],
      ["Coding", (r) => durationText(r.coding_seconds), "num"],
      ["Pickup", (r) => durationText(r.pickup_seconds), "num"],
      ["Review", (r) => durationText(r.review_seconds), "num"],
      ["Deploy", (r) => durationText(r.deploy_seconds), "num"],
      ["Stages", (r) => stageBar(r)],
      ["Size", (r) => `+${r.lines_added ?? 0} −${r.lines_deleted ?? 0}`, "num"],
    ],
    deployments: [
      ["Deployed", (r) => dateTime(r.deployed_at)],
      ["Service", (r) => r.service],
      ["Repository", (r) => r.repository || "—"],
      ["Outcome", (r) => outcomePill(r)],
      ["Duration", (r) => durationText(r.duration_seconds), "num"],
      ["Revision", (r) => (r.revision ? h("code", {}, r.revision.slice(0, 8)) : "—")],
      ["Incidents", (r) => (r.incident_count ? h("span", { class: "pill bad" }, String(r.incident_count)) : "0"), "num"],
      ["Source", (r) => `${r.source} · ${r.external_id}`],
    ],
    incidents: [
      ["Opened", (r) => dateTime(r.created_at)],
      ["Title", (r) => r.title || r.external_id, "wrap"],
      ["Service", (r) => r.service || "—"],
      ["Severity", (r) => (r.severity ? h("span", { class: `pill ${/1|crit/i.test(r.severity) ? "bad" : "warn"}` }, r.severity) : "—")],
      ["Restored after", (r) => (r.resolved_at ? durationText(r.time_to_restore_seconds) : h("span", { class: "pill bad" }, "open")), "num"],
      ["Caused by", (r) => (r.deployment_id ? h("code", {}, r.deployment_id.slice(0, 8)) : "—")],
      ["Attribution", (r) => h("span", { title: r.attribution_explanation }, r.attribution)],
    ],
  };

  // The change failure rate's verdict on the deployment, with its reasons on hover.
  function outcomePill(row) {
    const verdict = row.failed
      ? h("span", { class: "pill bad", title: row.failure_reasons.join(", ") }, "failed")
      : h("span", { class: "pill ok" }, "ok");
    return h("span", {}, verdict,
      row.rework ? h("span", { class: "pill warn", title: row.rework_reasons.join(", ") }, " rework") : null,
      row.is_hotfix ? h("span", { class: "pill warn", title: "hotfix" }, " hotfix") : null,
      row.is_rollback ? h("span", { class: "pill warn", title: "rollback" }, " rollback") : null);
  }

  function stageBar(row) {
    const parts = [
      ["coding", row.coding_seconds],
      ["pickup", row.pickup_seconds],
      ["review", row.review_seconds],
      ["deploy", row.deploy_seconds],
    ].map(([stage, s]) => [stage, Math.max(0, s || 0)]);
    const total = parts.reduce((sum, [, s]) => sum + s, 0);
    const bar = h("span", { class: "bar", title: parts.map(([st, s]) => `${st} ${durationText(s)}`).join(" · ") });
    if (total > 0) {
      for (const [stage, s] of parts) {
        const piece = h("i", { class: `sw-${stage}` });
        piece.style.width = `${(100 * s) / total}%`;
        bar.append(piece);
      }
    }
    return bar;
  }

  async function loadDrill(reset) {
    if (reset) state.cursor = null;
    for (const button of document.querySelectorAll(".tabs button")) {
      const active = button.dataset.tab === state.tab;
      button.classList.toggle("active", active);
      button.setAttribute("aria-selected", String(active));
    }
    const params = { ...scopeParams(), window: state.window, limit: 25, cursor: state.cursor };
    const page = await api(`/analytics/${state.tab}`, params);
    const columns = COLUMNS[state.tab];
    const table = $("#drill-table");
    if (reset) {
      table.tHead.replaceChildren(h("tr", {}, columns.map(([title, , cls]) => h("th", { class: cls || "" }, title))));
      table.tBodies[0].replaceChildren();
    }
    const rows = page.items.map((item) => h("tr", {}, columns.map(([, cell, cls]) => h("td", { class: cls || "" }, cell(item)))));
    if (reset && rows.length === 0) {
      rows.push(h("tr", { class: "empty-row" }, h("td", { colspan: String(columns.length) }, "Nothing in this window.")));
    }
    table.tBodies[0].append(...rows);
    state.cursor = page.next_cursor;
    $("#drill-more").hidden = !page.next_cursor;
    const noun = { "pull-requests": "pull requests deployed", deployments: "production deployments", incidents: "incidents opened" }[state.tab];
    $("#drill-caption").textContent = `${page.total} ${noun} in the window`;
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $("#login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("#api-key").value.trim();
      if (key) signIn(key);
    });
    $("#logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      $("#api-key").value = "";
      showLogin("");
    });
    $("#filter-window").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-window]");
      if (!button || button.dataset.window === state.window) return;
      state.window = button.dataset.window;
      markWindow();
      refresh();
    });
    $("#filter-team").addEventListener("change", (event) => {
      state.team = event.target.value;
      fillRepositories();
      refresh();
    });
    $("#filter-repo").addEventListener("change", (event) => { state.repo = event.target.value; refresh(); });
    $("#filter-benchmark").addEventListener("change", (event) => { state.benchmark = event.target.value; refresh(); });
    document.querySelector(".tabs").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-tab]");
      if (button) openTab(button.dataset.tab);
    });
    $("#tiles").addEventListener("click", (event) => {
      const tile = event.target.closest(".tile");
      if (tile) openTab(tile.dataset.tab, true);
    });
    $("#tiles").addEventListener("keydown", (event) => {
      const tile = event.target.closest(".tile");
      if (tile && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); openTab(tile.dataset.tab, true); }
    });
    $("#drill-more").addEventListener("click", () => loadDrill(false).catch((e) => toast(e.message)));
  }

  async function openTab(tab, scroll) {
    state.tab = tab;
    writeHash();
    document.body.dataset.state = "loading";
    try {
      await loadDrill(true);
      document.body.dataset.state = "ready";
      if (scroll) $("#drilldown").scrollIntoView({ behavior: navigator.webdriver ? "auto" : "smooth", block: "start" });
    } catch (error) {
      toast(`Could not load ${tab}: ${error.message}`);
      document.body.dataset.state = "error";
    }
  }

  function start() {
    if (window.Chart) {
      Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      Chart.defaults.color = COLORS.muted;
    }
    readHash();
    wire();
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) signIn(key); else showLogin("");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
