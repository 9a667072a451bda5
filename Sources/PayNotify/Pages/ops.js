// PayNotify ops page: follows /v1/ops/events with the admin token, lists alerts, charts the stats.
// The token lives only in the form field and the open EventSource, never in storage.
(function () {
  "use strict";

  const WINDOW_MS = 120_000;
  const MAX_ALERTS = 200;
  // Samples further apart than this are not joined by a line: the stream stalled or reconnected.
  const GAP_MS = 2_500;

  const $ = (id) => document.getElementById(id);

  let source = null;
  let samples = []; // { t, open, webhooks, p50, p99 }, oldest first, the last WINDOW_MS only
  let alertCount = 0;

  const charts = [
    { canvas: $("chart-streams"), unit: "", series: [{ label: "", key: "open", color: "--chart-1" }] },
    { canvas: $("chart-webhooks"), unit: "/s", series: [{ label: "", key: "webhooks", color: "--chart-1" }] },
    {
      canvas: $("chart-latency"),
      unit: " ms",
      series: [
        { label: "p50", key: "p50", color: "--chart-1" },
        { label: "p99", key: "p99", color: "--chart-2" },
      ],
    },
  ];

  function connect(token) {
    source?.close();
    samples = [];
    drawCharts();
    setConnection("connecting", "connecting…");
    setConnected(true);

    const current = new EventSource("/v1/ops/events?token=" + encodeURIComponent(token));
    current.addEventListener("open", () => setConnection("live", "live"));
    current.addEventListener("error", () => {
      // CONNECTING: a network error, the browser retries by itself. CLOSED: the server answered
      // with an error status (401 for a wrong token, 404 when no admin token is configured).
      if (current.readyState === EventSource.CLOSED) {
        setConnection("refused", "token refused or ops stream disabled");
        setConnected(false);
      } else {
        setConnection("reconnecting", "reconnecting…");
      }
    });
    current.addEventListener("alert", (event) => withJSON(event, addAlert));
    current.addEventListener("stats", (event) => withJSON(event, addStats));
    current.addEventListener("endpoints", (event) => withJSON(event, showEndpoints));
    source = current;
  }

  function disconnect() {
    source?.close();
    source = null;
    setConnection("idle", "disconnected");
    setConnected(false);
  }

  function withJSON(event, handle) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return; // not ours to show; the server only sends JSON
    }
    handle(data);
  }

  function setConnection(state, text) {
    $("connection").dataset.state = state;
    $("connection").textContent = text;
  }

  function setConnected(connected) {
    $("connect").disabled = connected;
    $("disconnect").disabled = !connected;
  }

  // ----- alerts -----

  function addAlert(alert) {
    const item = document.createElement("li");
    item.className = "alert";

    const time = document.createElement("time");
    const created = new Date(alert.created_at);
    if (Number.isNaN(created.getTime())) {
      time.textContent = String(alert.created_at ?? "–");
    } else {
      time.dateTime = created.toISOString();
      time.textContent = created.toLocaleTimeString();
      time.title = created.toLocaleString();
    }

    const kind = document.createElement("span");
    kind.className = "badge kind";
    kind.dataset.kind = String(alert.kind ?? "");
    kind.textContent = String(alert.kind ?? "alert");

    const provider = textSpan("alert-provider", alert.provider);
    const order = textSpan("alert-order mono", alert.order_id);
    const message = textSpan("alert-message", alert.message);

    item.append(time, kind, provider, order, message);
    const list = $("alerts");
    list.prepend(item);
    while (list.children.length > MAX_ALERTS) list.lastElementChild.remove();

    alertCount += 1;
    $("alert-count").textContent = String(alertCount);
    $("alerts-empty").hidden = true;
  }

  function textSpan(className, value) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = value == null ? "" : String(value);
    return span;
  }

  // ----- merchant webhook endpoints -----

  function showEndpoints(health) {
    const endpoints = Array.isArray(health.endpoints) ? health.endpoints : [];
    const table = $("endpoints");
    const body = table.querySelector("tbody");
    body.replaceChildren(
      ...endpoints.map((endpoint) => {
        const row = document.createElement("tr");
        const cells = [
          String(endpoint.url ?? endpoint.id ?? "–"),
          endpoint.enabled ? (endpoint.failing_since ? "failing" : "healthy") : "disabled",
          endpoint.last_success_at ? new Date(endpoint.last_success_at).toLocaleString() : "never",
          endpoint.failing_since ? new Date(endpoint.failing_since).toLocaleString() : "–",
          String(endpoint.backlog ?? "–"),
          typeof endpoint.oldest_pending_seconds === "number" ? formatNumber(endpoint.oldest_pending_seconds) + " s" : "–",
        ];
        for (const text of cells) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        row.dataset.state = cells[1];
        return row;
      }),
    );
    table.hidden = endpoints.length === 0;
    $("endpoints-empty").hidden = endpoints.length > 0;
  }

  // ----- stats -----

  function addStats(stats) {
    $("instance").textContent = String(stats.instance ?? "–");
    const listener = $("listener");
    listener.textContent = String(stats.listener ?? "–");
    listener.dataset.state = String(stats.listener ?? "");
    $("stat-ops").textContent = String(stats.ops_streams ?? "–");
    $("stat-dropped").textContent = String(stats.dropped_streams ?? "–");

    const rates = Object.entries(stats.webhooks_per_second ?? {}).filter(([, rate]) => typeof rate === "number");
    rates.sort(([a], [b]) => a.localeCompare(b));
    const total = rates.reduce((sum, [, rate]) => sum + rate, 0);
    $("webhook-breakdown").textContent = rates.length
      ? rates.map(([outcome, rate]) => outcome + " " + formatNumber(rate) + "/s").join(" · ")
      : "no webhooks in the last second";

    const latency = stats.delivery_latency_ms ?? {};
    const now = Date.now();
    samples.push({
      t: now,
      open: numberOrNull(stats.open_streams),
      webhooks: total,
      p50: numberOrNull(latency.p50), // null: nothing was delivered that second, drawn as a gap
      p99: numberOrNull(latency.p99),
    });
    while (samples.length > 0 && samples[0].t < now - WINDOW_MS) samples.shift();
    drawCharts();
  }

  function numberOrNull(value) {
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  }

  function formatNumber(value) {
    if (value >= 100) return String(Math.round(value));
    return String(Number(value.toFixed(value < 1 ? 2 : 1)));
  }

  /** The smallest of 1, 2, 5 × 10ⁿ at or above `value`: the chart's top line. */
  function niceCeiling(value) {
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map((step) => step * power).find((top) => top >= value);
  }

  function drawCharts() {
    const now = samples.length > 0 ? samples[samples.length - 1].t : Date.now();
    charts.forEach((chart) => drawChart(chart, now));
  }

  function drawChart(chart, now) {
    const { canvas } = chart;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;

    // Back the canvas with device pixels, draw in CSS pixels: crisp on high-density screens.
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);

    const style = getComputedStyle(canvas);
    const color = (name) => style.getPropertyValue(name).trim();
    context.font = "11px " + style.fontFamily;

    const plot = { left: 40, right: width - 10, top: 26, bottom: height - 20 };
    const values = samples.flatMap((sample) => chart.series.map((series) => sample[series.key]));
    const top = niceCeiling(Math.max(2, ...values.filter((value) => value !== null)));
    const x = (t) => plot.left + ((t - (now - WINDOW_MS)) / WINDOW_MS) * (plot.right - plot.left);
    const y = (value) => plot.bottom - (value / top) * (plot.bottom - plot.top);

    // Grid at 0, half and top, labelled on the left; the time axis below.
    context.strokeStyle = color("--border");
    context.fillStyle = color("--muted");
    context.lineWidth = 1;
    context.textAlign = "right";
    context.textBaseline = "middle";
    for (const value of [0, top / 2, top]) {
      const lineY = Math.round(y(value)) + 0.5;
      context.beginPath();
      context.moveTo(plot.left, lineY);
      context.lineTo(plot.right, lineY);
      context.stroke();
      context.fillText(formatNumber(value), plot.left - 6, lineY);
    }
    context.textBaseline = "bottom";
    context.textAlign = "left";
    context.fillText("−120 s", plot.left, height - 2);
    context.textAlign = "right";
    context.fillText("now", plot.right, height - 2);

    if (samples.length === 0) {
      context.textAlign = "center";
      context.textBaseline = "middle";
      context.fillText("waiting for stats…", (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2);
      return;
    }

    // Each series: runs of consecutive samples become lines, a lone sample a dot.
    context.lineWidth = 1.5;
    context.lineJoin = "round";
    for (const series of chart.series) {
      context.strokeStyle = context.fillStyle = color(series.color);
      for (const run of runs(series.key)) {
        if (run.length === 1) {
          context.beginPath();
          context.arc(x(run[0].t), y(run[0].value), 2, 0, 2 * Math.PI);
          context.fill();
          continue;
        }
        context.beginPath();
        run.forEach((point, index) => {
          if (index === 0) context.moveTo(x(point.t), y(point.value));
          else context.lineTo(x(point.t), y(point.value));
        });
        context.stroke();
      }
    }

    // Legend with the current values, top left; a dot marks each current value on its line.
    const latest = samples[samples.length - 1];
    for (const series of chart.series) {
      if (latest[series.key] === null) continue;
      context.fillStyle = color(series.color);
      context.beginPath();
      context.arc(x(latest.t), y(latest[series.key]), 3, 0, 2 * Math.PI);
      context.fill();
    }

    let legendX = plot.left;
    context.textAlign = "left";
    context.textBaseline = "middle";
    context.font = "600 12px " + style.fontFamily;
    for (const series of chart.series) {
      const value = latest[series.key];
      const text = (series.label ? series.label + " " : "") + (value === null ? "–" : formatNumber(value) + chart.unit);
      context.fillStyle = color(series.color);
      context.fillRect(legendX, 7, 10, 10);
      context.fillStyle = color("--text");
      context.fillText(text, legendX + 14, 12);
      legendX += 14 + context.measureText(text).width + 16;
    }
  }

  /** The samples of one series split where a value is missing or the samples are too far apart. */
  function runs(key) {
    const result = [];
    let run = [];
    let previousT = -Infinity;
    for (const sample of samples) {
      const value = sample[key];
      if (value === null || sample.t - previousT > GAP_MS) {
        if (run.length > 0) result.push(run);
        run = [];
      }
      if (value !== null) run.push({ t: sample.t, value });
      previousT = sample.t;
    }
    if (run.length > 0) result.push(run);
    return result;
  }

  $("connect-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("admin-token").value.trim();
    if (token) connect(token);
  });
  $("disconnect").addEventListener("click", disconnect);
  window.addEventListener("resize", drawCharts);
  drawCharts();
})();
