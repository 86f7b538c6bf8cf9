// otel-bridge viewer: recent traces (GET /v1/traces), one trace's waterfall
// (GET /v1/traces/{id}, OTLP/JSON) and the live feed (GET /v1/stream).
// Plain browser JavaScript, no build step, no dependencies.
"use strict";

// Every canonical kind is its own SSE event name on the feed; EventSource only
// delivers named events to listeners registered by name. The server writes the
// kinds into the page (data-kinds), so this list never drifts from the code.
const KINDS = (document.body.dataset.kinds || "").split(" ").filter(Boolean);
const NOTICES = ["missed", "lagged"];
const LIVE_MAX = 500;
const STATUS_ERROR = 2; // OTLP Status.StatusCode.STATUS_CODE_ERROR

let token = sessionStorage.getItem("otel-bridge-token") || "";
let source = null;
let selected = null;

const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "muted";
}

async function getJSON(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs a bearer token");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function fmtMs(ms) {
  if (ms == null) return "";
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms.toFixed(ms < 10 ? 2 : 0) + " ms";
}

function fmtCost(usd) {
  return usd == null ? "" : "$" + usd.toFixed(usd < 0.01 ? 6 : 4);
}

function fmtTime(ns) {
  return new Date(Number(BigInt(ns) / 1000000n)).toLocaleTimeString([], { hour12: false });
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

// --- recent traces ------------------------------------------------------------

async function loadTraces() {
  const body = await getJSON("/v1/traces?limit=50");
  const tbody = $("traces");
  tbody.replaceChildren();
  for (const t of body.traces) {
    const row = document.createElement("tr");
    row.dataset.traceId = t.trace_id;
    if (t.status === "error" || t.error_count > 0) row.className = "error";
    if (t.trace_id === selected) row.classList.add("selected");
    cell(row, t.start_time_unix_nano ? fmtTime(t.start_time_unix_nano) : "");
    cell(row, t.run_id);
    cell(row, t.agent);
    // The run's own span is exported when the run ends; until then only its calls are stored.
    cell(row, t.name || "(run in progress)");
    cell(row, fmtMs(t.duration_ms));
    cell(row, t.span_count + (t.error_count ? " (" + t.error_count + " err)" : ""));
    cell(row, t.input_tokens + t.output_tokens || "");
    cell(row, fmtCost(t.cost_usd));
    row.addEventListener("click", () => showTrace(t.trace_id));
    tbody.appendChild(row);
  }
}

// --- one trace: the span waterfall ---------------------------------------------

function attrValue(v) {
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if ("arrayValue" in v) return (v.arrayValue.values || []).map(attrValue);
  return null;
}

// OTLP/JSON -> rows in tree order: [{span, depth, offsetMs, durationMs, error}].
function buildWaterfall(otlp) {
  const spans = [];
  for (const rs of otlp.resourceSpans || []) {
    for (const ss of rs.scopeSpans || []) spans.push(...(ss.spans || []));
  }
  if (spans.length === 0) return [];
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  for (const s of spans) {
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(s);
  }
  const start = (s) => BigInt(s.startTimeUnixNano);
  for (const list of children.values()) list.sort((a, b) => (start(a) < start(b) ? -1 : start(a) > start(b) ? 1 : 0));
  const t0 = spans.map(start).reduce((a, b) => (b < a ? b : a));
  const rows = [];
  const walk = (parent, depth) => {
    for (const s of children.get(parent) || []) {
      rows.push({
        span: s,
        depth,
        offsetMs: Number(start(s) - t0) / 1e6,
        durationMs: Number(BigInt(s.endTimeUnixNano) - start(s)) / 1e6,
        error: (s.status && s.status.code) === STATUS_ERROR,
      });
      walk(s.spanId, depth + 1);
    }
  };
  walk("", 0);
  return rows;
}

async function showTrace(traceId) {
  selected = traceId;
  for (const row of $("traces").children) row.classList.toggle("selected", row.dataset.traceId === traceId);
  $("trace-title").textContent = "Trace " + traceId;
  $("span-detail").hidden = true;
  const box = $("waterfall");
  box.replaceChildren();
  let rows;
  try {
    rows = buildWaterfall(await getJSON("/v1/traces/" + traceId));
  } catch (err) {
    box.textContent = err.message;
    return;
  }
  const total = Math.max(...rows.map((r) => r.offsetMs + r.durationMs), 0.001);
  for (const r of rows) {
    const div = document.createElement("div");
    div.className = "span" + (r.error ? " error" : "");
    div.dataset.spanId = r.span.spanId;
    const label = document.createElement("div");
    label.className = "label";
    label.style.paddingLeft = r.depth * 14 + "px";
    label.textContent = r.span.name;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.left = (100 * r.offsetMs) / total + "%";
    bar.style.width = (100 * r.durationMs) / total + "%";
    const dur = document.createElement("span");
    dur.className = "dur";
    dur.style.left = (100 * (r.offsetMs + r.durationMs)) / total + "%";
    dur.textContent = fmtMs(r.durationMs);
    track.append(bar, dur);
    div.append(label, track);
    div.addEventListener("click", () => showSpan(r.span));
    box.appendChild(div);
  }
}

function showSpan(span) {
  const attrs = {};
  for (const a of span.attributes || []) attrs[a.key] = attrValue(a.value);
  const detail = $("span-detail");
  detail.textContent = JSON.stringify(
    { name: span.name, spanId: span.spanId, parentSpanId: span.parentSpanId, status: span.status, attributes: attrs,
      events: span.events },
    null, 2,
  );
  detail.hidden = false;
}

// --- the live feed ----------------------------------------------------------------

function liveLine(kind, data) {
  const li = document.createElement("li");
  li.className = kind.split(".")[0];
  if (data.seq != null) li.dataset.seq = data.seq;
  if (data.error || kind.endsWith(".failed") || kind === "error") li.classList.add("error");
  const add = (text, cls) => {
    if (text == null || text === "") return;
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = String(text);
    li.append(span, " ");
  };
  add(fmtTime(data.timestamp_ns), "time");
  add(data.run_id, "run");
  add(kind, "kind");
  add(data.name || data.tool_name || data.model || data.agent || data.original_type, "name");
  add(fmtMs(data.duration_ms), "duration");
  add(data.usage ? (data.usage.input ?? 0) + "→" + (data.usage.output ?? 0) + " tok" : "", "tokens");
  add(fmtCost(data.cost_usd), "cost");
  add(data.error, "error");
  li.addEventListener("click", () => showTrace(data.trace_id));
  return li;
}

function prepend(li) {
  if ($("live-pause").checked) return;
  const list = $("live");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > LIVE_MAX) list.removeChild(list.lastChild);
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadTraces().catch((e) => setStatus(e.message, true)), 500);
}

function connect() {
  if (source) source.close();
  const url = "/v1/stream" + (token ? "?access_token=" + encodeURIComponent(token) : "");
  source = new EventSource(url);
  source.onopen = () => setStatus("live", false);
  source.onerror = () => setStatus("feed disconnected, retrying…", true);
  for (const kind of KINDS) {
    source.addEventListener(kind, (ev) => {
      const data = JSON.parse(ev.data);
      prepend(liveLine(kind, data));
      if (kind.startsWith("run.")) refreshSoon();
      if (data.trace_id === selected && (kind.endsWith(".completed") || kind.endsWith(".finished") || kind.endsWith(".failed"))) {
        showTrace(selected);
      }
    });
  }
  for (const notice of NOTICES) {
    source.addEventListener(notice, (ev) => {
      const li = document.createElement("li");
      li.className = "notice";
      li.textContent = notice + ": " + ev.data;
      prepend(li);
    });
  }
}

function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    token = hash.get("token");
    sessionStorage.setItem("otel-bridge-token", token);
  }
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value;
    sessionStorage.setItem("otel-bridge-token", token);
    $("token-form").hidden = true;
    refresh(null);
  });
  $("refresh").onclick = () => loadTraces().catch((e) => setStatus(e.message, true));
  refresh(hash.get("trace"));
  if (hash.get("live") !== "0") connect();
}

// The trace list, then the wanted trace (or the newest one).
function refresh(wanted) {
  loadTraces()
    .then(() => {
      const first = $("traces").firstChild;
      const id = wanted || (first && first.dataset.traceId);
      if (id) return showTrace(id);
    })
    .catch((e) => setStatus(e.message, true));
  if (source) connect();
}

if (typeof document !== "undefined") start();
