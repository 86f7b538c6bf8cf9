// otel-bridge viewer: search the embedded store (GET /v1/traces), read one trace
// (GET /v1/traces/{id}, OTLP/JSON) as a span tree with a time ruler, watch a
// running run grow from the live feed (GET /v1/stream), and tail the feed.
// Plain browser JavaScript, no build step, no dependencies, no network
// requests beyond this sidecar.
"use strict";

const $ = (id) => document.getElementById(id);
// The server writes its attribute names, operation names and settings into the
// page (web/viewer.py), so the script never spells an attribute name itself.
const CFG = JSON.parse($("config").textContent);
const A = CFG.attrs;
const OP = CFG.ops;
const KINDS = CFG.kinds;
const STATUS_ERROR = 2; // OTLP Status.StatusCode.STATUS_CODE_ERROR
const ROW_H = 24; // px, every tree row: fixed, so the rows can be virtualised
const OVERSCAN = 12;
const LIVE_MAX = 500;
const PAGE = new URLSearchParams(location.search);
// ?now=<epoch ms> freezes the page's clock (screenshots, tests).
const FIXED_NOW = PAGE.has("now") ? Number(PAGE.get("now")) : null;
const now = () => (FIXED_NOW != null ? FIXED_NOW : Date.now());
const TOKEN_KEY = "otel-bridge-token";
const TIMINGS = {}; // ms: the last trace's fetch, parse and first render, and the last rows render

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let tokenWaiters = null;

// --- small helpers --------------------------------------------------------------

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? "" : v);
    }
  }
  for (const c of children) if (c != null && c !== false) e.append(c);
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.className = isError ? "error" : "muted";
}

function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return "";
  if (ms === 0) return "0";
  if (ms >= 60000) return Math.floor(ms / 60000) + "m " + ((ms % 60000) / 1000).toFixed(0) + "s";
  if (ms >= 1000) return (ms / 1000).toFixed(2) + "s";
  if (ms >= 10) return ms.toFixed(0) + "ms";
  if (ms >= 1) return ms.toFixed(1) + "ms";
  return (ms * 1000).toFixed(0) + "µs";
}

function fmtCost(usd) {
  if (usd == null) return "";
  return "$" + usd.toFixed(usd < 0.01 ? 5 : usd < 1 ? 4 : 2);
}

function fmtInt(n) {
  return n == null ? "" : Number(n).toLocaleString("en-US");
}

function pad(n, w = 2) {
  return String(n).padStart(w, "0");
}

// Times in UTC, ISO-like: unambiguous, and the same on every machine.
function fmtClock(ms) {
  const date = new Date(ms);
  return pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes()) + ":" + pad(date.getUTCSeconds());
}

function fmtDate(ms) {
  const date = new Date(ms);
  return date.getUTCFullYear() + "-" + pad(date.getUTCMonth() + 1) + "-" + pad(date.getUTCDate()) + " " + fmtClock(ms);
}

const nsToMs = (ns) => Number(BigInt(ns) / 1000n) / 1000;

function prettyJSON(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// --- the API, with the token asked for once ------------------------------------

function askToken() {
  if (!tokenWaiters) {
    tokenWaiters = [];
    const dialog = $("token-dialog");
    if (!dialog.open) dialog.showModal();
  }
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

async function api(path) {
  for (;;) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const response = await fetch(path, { headers });
    if (response.status === 401) {
      await askToken();
      continue;
    }
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(response.status + " " + response.statusText);
    }
    if (!response.ok) throw new Error(body.message || response.statusText);
    return { body, text };
  }
}

function streamURL(params) {
  const q = new URLSearchParams(params);
  if (token) q.set("access_token", token);
  const s = q.toString();
  return "/v1/stream" + (s ? "?" + s : "");
}

// One feed subscription that resumes where it left off. EventSource resends
// Last-Event-ID on its own reconnects; when we open a new one ourselves (the
// browser gave up, or drop() was called), last_event_id carries the last seq.
const FEEDS = new Set();

class Feed {
  constructor(params, onEvent, onNotice, onState) {
    this.params = params;
    this.onEvent = onEvent;
    this.onNotice = onNotice;
    this.onState = onState || (() => {});
    this.lastSeq = params.last_event_id != null ? String(params.last_event_id) : null;
    this.source = null;
    this.closed = false;
    FEEDS.add(this);
    this.open();
  }
  open() {
    const params = { ...this.params };
    if (this.lastSeq != null) params.last_event_id = this.lastSeq;
    const source = new EventSource(streamURL(params));
    this.source = source;
    source.onopen = () => this.onState("live");
    source.onerror = () => {
      if (this.closed) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser will not retry (e.g. a 401 or 503): we do, from the last seq.
        this.onState("reconnecting");
        setTimeout(() => this.source === source && !this.closed && this.open(), 2000);
      } else this.onState("reconnecting");
    };
    for (const kind of KINDS) {
      source.addEventListener(kind, (ev) => {
        // The kind "error" shares its name with EventSource's own connection error, which has no data.
        if (!(ev instanceof MessageEvent)) return;
        if (ev.lastEventId) this.lastSeq = ev.lastEventId;
        this.onEvent(kind, JSON.parse(ev.data));
      });
    }
    for (const notice of ["missed", "lagged"]) {
      source.addEventListener(notice, (ev) => this.onNotice && this.onNotice(notice, JSON.parse(ev.data)));
    }
  }
  // Cut the connection (as a network drop would) ...
  cut() {
    if (this.source) this.source.close();
    this.source = null;
  }
  // ... and open a new one that resumes from the last seq.
  resume() {
    if (!this.closed && !this.source) this.open();
  }
  close() {
    FEEDS.delete(this);
    this.closed = true;
    if (this.source) this.source.close();
  }
}

// --- routing: everything a view shows is in the URL hash -------------------------

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

function setHash(params, replace) {
  const text = "#" + params.toString();
  if (location.hash === text || (text === "#" && !location.hash)) return;
  if (replace) history.replaceState(null, "", text);
  else location.hash = text;
}

let lastSearch = "";
let current = null; // the view's teardown

function route() {
  const h = hashParams();
  if (current) current();
  current = null;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  if (h.get("trace")) {
    $("trace-view").hidden = false;
    current = openTrace(h.get("trace"), h.get("span"));
  } else if (h.get("view") === "tail") {
    $("tail-view").hidden = false;
    $("nav-tail").classList.add("active");
    current = openTail(h);
  } else {
    $("search-view").hidden = false;
    $("nav-search").classList.add("active");
    current = openSearch(h);
  }
}

// --- search ------------------------------------------------------------------------

const SEARCH_FIELDS = ["agent", "model", "status", "since", "until", "min_duration_ms", "max_duration_ms", "q", "sort", "limit"];
const knownAgents = new Set();
const knownModels = new Set();

function openSearch(h) {
  const form = $("search");
  for (const name of SEARCH_FIELDS) {
    const input = form.elements[name];
    const wanted = h.get(name);
    if (wanted != null) input.value = wanted;
    else if (input.tagName === "SELECT") input.selectedIndex = name === "limit" ? 1 : 0;
    else input.value = "";
  }
  lastSearch = location.hash;
  const params = new URLSearchParams();
  for (const name of SEARCH_FIELDS) if (h.get(name)) params.set(name, h.get(name));
  let stopped = false;
  const load = () =>
    api("/v1/traces?" + params.toString())
      .then(({ body }) => {
        if (stopped) return;
        $("search-error").hidden = true;
        showResults(body.traces);
      })
      .catch((e) => {
        if (stopped) return;
        $("search-error").textContent = e.message;
        $("search-error").hidden = false;
      });
  load();
  // Runs start and end while we look: the list follows the feed's run events.
  let timer = null;
  const feed = new Feed(
    { kind: "run" },
    () => {
      clearTimeout(timer);
      timer = setTimeout(load, 400);
    },
    null,
    (state) => setStatus(state === "live" ? "live" : "feed disconnected, reconnecting…", state !== "live"),
  );
  // Running rows show their growing duration.
  const tick = FIXED_NOW == null ? setInterval(() => document.querySelectorAll("#results tr.running").length && load(), 5000) : null;
  return () => {
    stopped = true;
    feed.close();
    clearTimeout(timer);
    clearInterval(tick);
  };
}

function showResults(traces) {
  for (const t of traces) {
    if (t.agent) knownAgents.add(t.agent);
    for (const m of t.models || []) knownModels.add(m);
  }
  $("agents").replaceChildren(...[...knownAgents].sort().map((a) => el("option", { value: a })));
  $("models").replaceChildren(...[...knownModels].sort().map((m) => el("option", { value: m })));
  $("results-count").textContent = traces.length + (traces.length === 1 ? " run" : " runs");
  const tbody = $("results").tBodies[0];
  tbody.replaceChildren(
    ...traces.map((t) => {
      const startMs = nsToMs(t.start_time_unix_nano);
      const row = el(
        "tr",
        { class: t.status, dataset: { traceId: t.trace_id }, tabindex: "0" },
        el("td", { text: fmtDate(startMs), title: new Date(startMs).toISOString() }),
        el("td", { class: "mono", text: t.run_id || t.trace_id.slice(0, 12) }),
        el("td", { text: t.agent || "" }),
        el("td", { text: (t.models || []).join(", ") }),
        el("td", {}, el("span", { class: "badge " + t.status, text: t.status })),
        el("td", { class: "num", text: fmtMs(t.duration_ms) }),
        // A running run's spans are stored as they end: say so, its tree also shows the open ones.
        el("td", { class: "num", text: t.span_count + (t.status === "running" ? " ended" : "") + (t.error_count ? " · " + t.error_count + " err" : "") }),
        el("td", { class: "num", text: t.llm_calls + " / " + t.tool_calls }),
        el("td", { class: "num", text: fmtInt(t.input_tokens + t.output_tokens) }),
        el("td", { class: "num", text: fmtCost(t.cost_usd) }),
      );
      const open = () => goTrace(t.trace_id);
      row.addEventListener("click", open);
      row.addEventListener("keydown", (ev) => ev.key === "Enter" && open());
      return row;
    }),
  );
  drawScatter(traces);
}

function goTrace(traceId, spanId) {
  const p = new URLSearchParams({ trace: traceId });
  if (spanId) p.set("span", spanId);
  setHash(p);
}

// Duration over start time, one dot per listed run (like Jaeger's search scatter).
function drawScatter(traces) {
  const svg = $("scatter");
  svg.replaceChildren();
  const W = svg.clientWidth || 600;
  const H = svg.clientHeight || 140;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const L = 52, R = 12, T = 10, B = 22;
  if (!traces.length) {
    svg.append(Object.assign(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" }), { textContent: "no runs match" }));
    return;
  }
  const xs = traces.map((t) => nsToMs(t.start_time_unix_nano));
  const ys = traces.map((t) => t.duration_ms);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 - x0 < 1000) { x0 -= 500; x1 += 500; }
  const y1 = Math.max(...ys, 1) * 1.1;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - (y / y1) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    const y = sy(y1 * f);
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }));
    svg.append(Object.assign(svgEl("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "axis" }), { textContent: fmtMs(y1 * f) }));
  }
  for (const f of [0, 0.5, 1]) {
    const x = x0 + (x1 - x0) * f;
    svg.append(Object.assign(svgEl("text", { x: sx(x), y: H - 6, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle", class: "axis" }), { textContent: fmtClock(x) }));
  }
  traces.forEach((t, i) => {
    const c = svgEl("circle", { cx: sx(xs[i]), cy: sy(ys[i]), r: 5, class: "dot " + t.status, tabindex: "-1" });
    const title = svgEl("title");
    title.textContent = (t.run_id || t.trace_id) + " · " + fmtMs(t.duration_ms) + " · " + t.status;
    c.append(title);
    c.dataset.traceId = t.trace_id;
    c.addEventListener("click", () => goTrace(t.trace_id));
    svg.append(c);
  });
}

function searchSubmit(ev) {
  ev.preventDefault();
  const form = $("search");
  const p = new URLSearchParams();
  for (const name of SEARCH_FIELDS) {
    const v = form.elements[name].value.trim();
    if (v && !(name === "sort" && v === "-time") && !(name === "limit" && v === "50")) p.set(name, v);
  }
  setHash(p);
  if (location.hash === lastSearch || (!p.toString() && !location.hash)) route();
}

// --- one trace -----------------------------------------------------------------------

function attrValue(v) {
  if (v == null) return null;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if ("arrayValue" in v) return (v.arrayValue.values || []).map(attrValue);
  if ("kvlistValue" in v) return Object.fromEntries((v.kvlistValue.values || []).map((kv) => [kv.key, attrValue(kv.value)]));
  return null;
}

function attrsOf(list) {
  const out = {};
  for (const a of list || []) out[a.key] = attrValue(a.value);
  return out;
}

// What a span is, for its colour: agent, chat, tool, step or other (error wins).
function opOf(name, attrs) {
  const op = attrs[A.operation];
  if (op === OP.agent || op === OP.workflow) return "agent";
  if (op === OP.chat) return "chat";
  if (op === OP.tool) return "tool";
  if (name === OP.step || name.startsWith(OP.step + " ")) return "step";
  return "other";
}

// A trace being read: spans by id, with the tree and the layout derived from them.
class TraceModel {
  constructor(traceId) {
    this.traceId = traceId;
    this.spans = new Map();
    this.collapsed = new Set();
    this.t0 = null; // epoch ms of the earliest span
    this.running = false;
  }
  addOtlp(doc) {
    for (const rs of doc.resourceSpans || []) {
      for (const ss of rs.scopeSpans || []) {
        for (const s of ss.spans || []) {
          const attrs = attrsOf(s.attributes);
          this.put({
            id: s.spanId,
            parent: s.parentSpanId || null,
            name: s.name,
            start: nsToMs(s.startTimeUnixNano),
            end: nsToMs(s.endTimeUnixNano),
            attrs,
            events: (s.events || []).map((e) => ({ name: e.name, t: nsToMs(e.timeUnixNano), attrs: attrsOf(e.attributes) })),
            status: s.status || {},
            error: (s.status && s.status.code) === STATUS_ERROR,
            open: false,
            op: opOf(s.name, attrs),
          });
        }
      }
    }
  }
  put(span) {
    const old = this.spans.get(span.id);
    // A finished span from the store replaces what the feed sketched; feed events seen on it stay.
    if (old && old.open && !span.open && old.events.length && !span.events.length) span.events = old.events;
    this.spans.set(span.id, span);
    if (this.t0 == null || span.start < this.t0) this.t0 = span.start;
  }
  // The feed's view of a run: spans open at *.started, closed at *.completed/failed/finished.
  addFeedEvent(kind, d) {
    const t = nsToMs(d.timestamp_ns);
    const [group, what] = [kind.split(".")[0], kind.split(".").slice(1).join(".")];
    const spanning = ["run", "agent", "step", "llm", "tool"].includes(group) && what !== "chunk" && what !== "stream.started" && what !== "stream.ended" && kind !== "tool.requested";
    let span = this.spans.get(d.span_id);
    if (spanning && what === "started") {
      if (span) return;
      const name = feedSpanName(group, d);
      const attrs = {};
      attrs[A.operation] = { run: OP.agent, agent: OP.agent, llm: OP.chat, tool: OP.tool, step: null }[group];
      this.put({ id: d.span_id, parent: d.parent_span_id, name, start: t, end: null, attrs, events: [], status: {}, error: false, open: true, op: opOf(name, attrs) });
      return;
    }
    if (spanning && ["completed", "finished", "failed"].includes(what)) {
      if (span && !span.open) return;
      if (!span) {
        const name = feedSpanName(group, d);
        const attrs = {};
        attrs[A.operation] = { run: OP.agent, agent: OP.agent, llm: OP.chat, tool: OP.tool, step: null }[group];
        span = { id: d.span_id, parent: d.parent_span_id, name, start: t - (d.duration_ms || 0), attrs, events: [], status: {}, open: true, op: opOf(name, attrs) };
        this.put(span);
      }
      span.end = t;
      span.open = false;
      span.live = true; // ended on the feed; the store's copy settles it
      if (what === "failed") {
        span.error = true;
        span.op = span.op;
        span.status = { code: STATUS_ERROR, message: d.error || "" };
      }
      return;
    }
    if (span) span.events.push({ name: kind, t, attrs: feedEventAttrs(d) });
  }
  build(nowMs) {
    const ids = new Set(this.spans.keys());
    const children = new Map();
    const roots = [];
    for (const s of this.spans.values()) {
      if (s.parent && ids.has(s.parent)) {
        if (!children.has(s.parent)) children.set(s.parent, []);
        children.get(s.parent).push(s);
      } else roots.push(s);
    }
    const byStart = (a, b) => a.start - b.start || (a.end ?? Infinity) - (b.end ?? Infinity);
    roots.sort(byStart);
    for (const list of children.values()) list.sort(byStart);
    this.children = children;
    this.roots = roots;
    let tEnd = -Infinity;
    for (const s of this.spans.values()) {
      s.shownEnd = s.open ? Math.max(s.start, nowMs) : s.end;
      if (s.shownEnd > tEnd) tEnd = s.shownEnd;
    }
    this.tEnd = tEnd;
    this.critical = criticalPath(roots, children);
    this.flatten();
  }
  flatten() {
    const rows = [];
    const walk = (list, depth) => {
      for (const s of list) {
        s.depth = depth;
        rows.push(s);
        if (!this.collapsed.has(s.id)) walk(this.children.get(s.id) || [], depth + 1);
      }
    };
    walk(this.roots, 0);
    this.rows = rows;
  }
}

function feedSpanName(group, d) {
  if (group === "llm") return OP.chat + (d.model ? " " + d.model : "");
  if (group === "tool") return OP.tool + (d.tool_name ? " " + d.tool_name : "");
  if (group === "step") return OP.step + (d.name ? " " + d.name : "");
  return OP.agent + (d.agent ? " " + d.agent : d.name ? " " + d.name : "");
}

function feedEventAttrs(d) {
  const out = {};
  for (const k of ["name", "status", "text", "error", "duration_ms"]) if (d[k] != null) out[k] = d[k];
  return out;
}

// The critical path: from each root's end walk back through the child that
// finished last before the cursor, then the one before that (Jaeger's rule).
function criticalPath(roots, children) {
  const on = new Set();
  const visit = (span, cap) => {
    on.add(span.id);
    let cursor = Math.min(span.shownEnd, cap);
    const kids = [...(children.get(span.id) || [])].sort((a, b) => b.shownEnd - a.shownEnd);
    for (const k of kids) {
      if (k.start >= cursor) continue;
      if (k.shownEnd <= cursor || k.start < cursor) {
        visit(k, cursor);
        cursor = k.start;
      }
    }
  };
  for (const r of roots) visit(r, Infinity);
  return on;
}

let traceState = null;

function openTrace(traceId, spanId) {
  const model = new TraceModel(traceId);
  const st = { model, selected: spanId, feed: null, stopped: false, timer: null, otlpText: null, summary: null };
  traceState = st;
  setStatus("", false); // a stored trace needs no feed; a running one says "live" once followed
  $("back").href = lastSearch || "#";
  $("trace-title").textContent = "Trace " + traceId.slice(0, 16) + "…";
  $("trace-status").textContent = "";
  $("totals").replaceChildren();
  $("wf-rows").replaceChildren();
  $("detail").replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  $("run-events").replaceChildren();
  $("run-events-pane").hidden = true;
  const link = $("trace-link");
  link.hidden = !CFG.traceUrlTemplate;
  if (CFG.traceUrlTemplate) link.href = CFG.traceUrlTemplate.replaceAll("{trace_id}", traceId).replaceAll("{span_id}", spanId || "");

  const opened = performance.now();
  const load = async () => {
    const [{ body: doc, text }, { body: list }] = await Promise.all([
      api("/v1/traces/" + traceId),
      api("/v1/traces?q=" + traceId + "&limit=1"),
    ]);
    if (st.stopped) return;
    st.otlpText = text;
    st.summary = list.traces.find((t) => t.trace_id === traceId) || null;
    const fetched = performance.now();
    model.addOtlp(doc);
    model.running = !!st.summary && st.summary.status === "running";
    TIMINGS.fetchMs = fetched - opened;
    TIMINGS.parseMs = performance.now() - fetched;
  };
  const startLive = () => {
    if (st.feed || !st.summary || !st.summary.run_id) return;
    $("run-events-pane").hidden = false;
    // last_event_id=0: replay what the feed still holds of this run, then go live.
    st.feed = new Feed(
      { run_id: st.summary.run_id, last_event_id: 0 },
      (kind, d) => onRunEvent(st, kind, d),
      (notice, body) => body.reason === "evicted" && runEventLine(notice + ": " + (body.missed ?? "some") + " events left the feed's memory", "notice"),
      (state) => setStatus(state === "live" ? "live" : "feed disconnected, resuming…", state !== "live"),
    );
  };
  load()
    .then(() => {
      if (st.stopped) return;
      if (model.running) startLive();
      const t = performance.now();
      render(st, true);
      TIMINGS.renderMs = performance.now() - t;
      TIMINGS.spans = model.spans.size;
    })
    .catch((e) => {
      if (st.stopped) return;
      // A run that has just started may not be in the store yet: follow it from the feed.
      $("detail").replaceChildren(el("p", { class: "error", text: e.message }));
    });
  return () => {
    st.stopped = true;
    if (st.feed) st.feed.close();
    clearInterval(st.timer);
    clearTimeout(st.settle);
    if (traceState === st) traceState = null;
  };
}

function onRunEvent(st, kind, d) {
  if (d.trace_id !== st.model.traceId) return;
  st.model.addFeedEvent(kind, d);
  const t0 = st.model.t0 ?? nsToMs(d.timestamp_ns);
  const li = runEventLine(null, "ev " + kind.split(".")[0] + (d.error ? " error" : ""));
  li.dataset.seq = d.seq;
  li.dataset.spanId = d.span_id;
  li.append(
    el("span", { class: "t", text: "+" + fmtMs(nsToMs(d.timestamp_ns) - t0) }),
    el("span", { class: "kind", text: kind }),
    el("span", { class: "name", text: d.name || d.tool_name || d.model || d.agent || "" }),
    el("span", { class: "muted", text: [d.duration_ms != null ? fmtMs(d.duration_ms) : "", d.usage ? (d.usage.input ?? 0) + "→" + (d.usage.output ?? 0) + " tok" : "", d.error || ""].filter(Boolean).join(" · ") }),
  );
  li.addEventListener("click", () => selectSpan(st, d.span_id, true));
  if (kind === "run.finished" || kind === "run.failed") settleWhenStored(st);
  scheduleRender(st);
}

function runEventLine(text, cls) {
  const list = $("run-events");
  const li = el("li", { class: cls, text });
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 30;
  list.append(li);
  while (list.children.length > LIVE_MAX) list.firstChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
  return li;
}

// The run ended on the feed; its own span reaches the store after the grace
// period. Reload until the store says it is done, then the live view stops.
function settleWhenStored(st) {
  if (st.settling) return;
  st.settling = true;
  const attempt = async () => {
    if (st.stopped) return;
    try {
      const { body } = await api("/v1/traces?q=" + st.model.traceId + "&limit=1");
      const s = body.traces[0];
      if (s && s.status !== "running") {
        const { body: doc, text } = await api("/v1/traces/" + st.model.traceId);
        if (st.stopped) return;
        st.otlpText = text;
        st.summary = s;
        for (const [id, span] of st.model.spans) if (span.open || span.live) st.model.spans.delete(id);
        st.model.addOtlp(doc);
        st.model.running = false;
        $("run-live").textContent = "ended";
        $("run-live").className = "badge " + s.status;
        render(st, false);
        return;
      }
    } catch (e) {
      setStatus(e.message, true);
    }
    st.settle = setTimeout(attempt, 500);
  };
  st.settle = setTimeout(attempt, 300);
}

function scheduleRender(st) {
  if (st.pending) return;
  st.pending = requestAnimationFrame(() => {
    st.pending = null;
    if (!st.stopped) render(st, false);
  });
}

function render(st, first) {
  const m = st.model;
  if (!m.spans.size) {
    $("detail").replaceChildren(el("p", { class: "muted", text: "No spans yet: the run has started, its calls will appear here." }));
  }
  m.build(now());
  renderHead(st);
  renderRuler(m);
  renderRows(st);
  if (!st.shown && m.spans.size) {
    st.shown = true;
    const want = st.selected && m.spans.has(st.selected) ? st.selected : m.rows[0] && m.rows[0].id;
    // Open a trace at its first error when it has one: that is what people come for.
    const firstError = !st.selected && m.rows.find((s) => s.error && s.parent);
    selectSpan(st, firstError ? firstError.id : want, true);
  } else if (st.selected && m.spans.has(st.selected) && st.detailFor !== detailKey(m.spans.get(st.selected))) {
    renderDetail(st, m.spans.get(st.selected));
  }
  clearInterval(st.timer);
  st.timer = null;
  const anyOpen = [...m.spans.values()].some((s) => s.open);
  if (anyOpen && FIXED_NOW == null) st.timer = setInterval(() => scheduleRender(st), 250);
}

const detailKey = (s) => s.id + ":" + s.open + ":" + s.end + ":" + s.events.length + ":" + Object.keys(s.attrs).length;

function totalsOf(m) {
  let llm = 0, tools = 0, tin = 0, tout = 0, cost = 0, priced = false, errors = 0, rootCost = null;
  for (const s of m.spans.values()) {
    if (s.op === "chat") {
      llm++;
      tin += Number(s.attrs[A.inputTokens] || 0);
      tout += Number(s.attrs[A.outputTokens] || 0);
      if (s.attrs[A.cost] != null) { cost += Number(s.attrs[A.cost]); priced = true; }
    }
    if (s.op === "tool") tools++;
    if (s.error) errors++;
    if (!s.parent && s.attrs[A.cost] != null && s.op === "agent") rootCost = Number(s.attrs[A.cost]);
  }
  const start = m.t0;
  return { duration: m.tEnd - start, llm, tools, tin, tout, cost: rootCost ?? (priced ? cost : null), errors };
}

function renderHead(st) {
  const m = st.model;
  const s = st.summary;
  const root = m.roots && m.roots[0];
  $("trace-title").textContent = (root ? root.name : "run") + (s && s.run_id ? " · " + s.run_id : "");
  $("trace-title").title = "trace " + m.traceId;
  const status = m.running ? "running" : s ? s.status : "ok";
  $("trace-status").textContent = status;
  $("trace-status").className = "badge " + status;
  const tot = totalsOf(m);
  const item = (k, v, cls) => [el("div", {}, el("dt", { text: k }), el("dd", { class: cls, text: v }))];
  $("totals").replaceChildren(
    ...item("Duration", fmtMs(tot.duration)),
    ...item("Spans", fmtInt(m.spans.size)),
    ...item("LLM calls", fmtInt(tot.llm)),
    ...item("Tool calls", fmtInt(tot.tools)),
    ...item("Tokens", fmtInt(tot.tin) + " in · " + fmtInt(tot.tout) + " out"),
    ...item("Cost", tot.cost == null ? "—" : fmtCost(tot.cost)),
    ...item("Errors", fmtInt(tot.errors), tot.errors ? "error" : ""),
    ...item("Started", m.t0 != null ? fmtDate(m.t0) : ""),
  );
  const dl = $("trace-download");
  dl.download = "trace-" + m.traceId + ".json";
  dl.onclick = (ev) => {
    ev.preventDefault();
    if (!st.otlpText) return;
    const url = URL.createObjectURL(new Blob([st.otlpText], { type: "application/json" }));
    const a = el("a", { href: url, download: dl.download });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
}

// Tick spacing: 1, 2 or 5 times a power of ten, one tick per ~80 px of ruler, at least three.
function niceStep(total, ticks) {
  const raw = total / ticks;
  const p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const f of [1, 2, 5, 10]) if (raw <= f * p) return f * p;
  return 10 * p;
}

function renderRuler(m) {
  const ruler = $("ruler");
  ruler.replaceChildren();
  const total = Math.max(m.tEnd - m.t0, 0.001);
  const step = niceStep(total, Math.max(3, Math.floor((ruler.clientWidth || 540) / 80)));
  for (let t = 0; t <= total + 1e-9; t += step) {
    const pct = (100 * t) / total;
    // A label too near the right edge would run into the one before it: the line alone.
    ruler.append(el("div", { class: "tick", style: `left:${pct}%` }, pct > 90 ? null : el("span", { text: fmtMs(t) })));
  }
  $("wf-rows").style.setProperty("--tick-step", (100 * step) / total + "%");
}

const NARROW = window.matchMedia("(max-width: 760px)");

function renderRows(st) {
  const began = performance.now();
  const m = st.model;
  const scroll = $("wf-scroll");
  // Stacked panes on a phone: the tree is as tall as its rows, up to 60% of the screen.
  scroll.style.height = NARROW.matches ? Math.min(m.rows.length * ROW_H + 2, innerHeight * 0.6) + "px" : "";
  $("wf-spacer").style.height = m.rows.length * ROW_H + "px";
  const first = Math.max(0, Math.floor(scroll.scrollTop / ROW_H) - OVERSCAN);
  const count = Math.ceil((scroll.clientHeight || 600) / ROW_H) + 2 * OVERSCAN;
  const last = Math.min(m.rows.length, first + count);
  const box = $("wf-rows");
  box.style.transform = `translateY(${first * ROW_H}px)`;
  const total = Math.max(m.tEnd - m.t0, 0.001);
  const frag = document.createDocumentFragment();
  for (let i = first; i < last; i++) frag.append(rowFor(st, m.rows[i], total, i));
  box.replaceChildren(frag);
  TIMINGS.rowsMs = performance.now() - began;
}

function rowFor(st, s, total, index) {
  const m = st.model;
  const kids = m.children.get(s.id);
  const collapsed = m.collapsed.has(s.id);
  const cls = ["row", "op-" + s.op];
  if (s.error) cls.push("error");
  if (s.open) cls.push("open");
  if (m.critical.has(s.id)) cls.push("critical");
  if (s.id === st.selected) cls.push("selected");
  const row = el("div", {
    class: cls.join(" "),
    role: "treeitem",
    "aria-level": String(s.depth + 1),
    "aria-selected": s.id === st.selected ? "true" : "false",
    "aria-expanded": kids ? String(!collapsed) : null,
    dataset: { spanId: s.id, index: String(index) },
  });
  const toggle = kids
    ? el("button", { class: "toggle", type: "button", tabindex: "-1", "aria-label": collapsed ? "expand" : "collapse", text: collapsed ? "▸" : "▾", onclick: (ev) => { ev.stopPropagation(); toggleSpan(st, s.id); } })
    : el("span", { class: "toggle" });
  const label = el(
    "div",
    { class: "label-col", style: `padding-left:${4 + s.depth * 14}px`, title: s.name },
    toggle,
    el("span", { class: "swatch" }),
    el("span", { class: "name", text: s.name }),
    kids && collapsed ? el("span", { class: "count", text: String(countDescendants(m, s.id)) }) : null,
  );
  const left = (100 * (s.start - m.t0)) / total;
  const width = Math.max((100 * (s.shownEnd - s.start)) / total, 0);
  const bar = el("div", { class: "bar", style: `left:${left}%;width:${width}%` });
  const track = el("div", { class: "track" }, bar);
  for (const e of s.events) {
    const pos = (100 * (e.t - m.t0)) / total;
    track.append(el("span", { class: "mark" + (e.name === A.exceptionEvent || /fail|error/.test(e.name) ? " bad" : ""), style: `left:${pos}%`, title: e.name + " +" + fmtMs(e.t - m.t0) }));
  }
  // The duration label sits right of the bar, or left of it when the bar ends near the edge.
  const label2 = el("span", { class: "dur", text: fmtMs(s.shownEnd - s.start) + (s.open ? "…" : "") });
  if (left + width <= 80) label2.style.left = left + width + "%";
  else if (left >= 12) {
    label2.style.right = 100 - left + "%";
    label2.classList.add("before");
  } else {
    label2.style.right = 100 - left - width + "%";
    label2.classList.add("inside");
  }
  track.append(label2);
  row.append(label, track);
  row.addEventListener("click", () => selectSpan(st, s.id, false));
  return row;
}

function countDescendants(m, id) {
  let n = 0;
  const stack = [...(m.children.get(id) || [])];
  while (stack.length) {
    const s = stack.pop();
    n++;
    stack.push(...(m.children.get(s.id) || []));
  }
  return n;
}

function toggleSpan(st, id, expand) {
  const m = st.model;
  if (!m.children.has(id)) return;
  const collapse = expand == null ? !m.collapsed.has(id) : !expand;
  if (collapse) m.collapsed.add(id);
  else m.collapsed.delete(id);
  m.flatten();
  $("wf-spacer").style.height = m.rows.length * ROW_H + "px";
  renderRows(st);
}

function selectSpan(st, id, scrollTo) {
  const m = st.model;
  const span = m.spans.get(id);
  if (!span) return;
  // Selecting a span inside a collapsed branch opens the branch.
  let changed = false;
  for (let p = m.spans.get(span.parent); p; p = m.spans.get(p.parent)) {
    if (m.collapsed.delete(p.id)) changed = true;
  }
  if (changed) m.flatten();
  st.selected = id;
  const p = new URLSearchParams({ trace: m.traceId, span: id });
  setHash(p, true);
  if (CFG.traceUrlTemplate) $("trace-link").href = CFG.traceUrlTemplate.replaceAll("{trace_id}", m.traceId).replaceAll("{span_id}", id);
  if (scrollTo) {
    const i = m.rows.indexOf(span);
    const scroll = $("wf-scroll");
    if (i * ROW_H < scroll.scrollTop || (i + 1) * ROW_H > scroll.scrollTop + scroll.clientHeight) {
      scroll.scrollTop = Math.max(0, i * ROW_H - scroll.clientHeight / 3);
    }
  }
  renderRows(st);
  renderDetail(st, span);
}

// --- the span detail pane ---------------------------------------------------------------

const GROUP_ORDER = ["operation", "provider", "agent", "request", "response", "usage", "tool", "conversation", "input", "output"];

function tagGroups(attrs) {
  const groups = new Map();
  const add = (g, k) => {
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(k);
  };
  const keys = Object.keys(attrs).sort();
  for (const k of keys) {
    if (k === A.inputMessages || k === A.outputMessages) continue; // shown as a conversation
    if (k.startsWith(CFG.genAiPrefix)) add("GenAI · " + k.split(".")[1], k);
  }
  const ordered = [...groups.entries()].sort((a, b) => rank(a[0]) - rank(b[0]));
  const rest = new Map();
  for (const k of keys) {
    if (k.startsWith(CFG.genAiPrefix)) continue;
    const g = k.startsWith(CFG.bridgePrefix) ? "otel-bridge" : k.startsWith("error.") || k.startsWith("exception.") ? "error" : "other";
    if (!rest.has(g)) rest.set(g, []);
    rest.get(g).push(k);
  }
  for (const g of ["error", "otel-bridge", "other"]) if (rest.has(g)) ordered.push([g, rest.get(g)]);
  return ordered;
}

function rank(group) {
  const i = GROUP_ORDER.indexOf(group.replace("GenAI · ", ""));
  return i < 0 ? GROUP_ORDER.length : i;
}

function showValue(v) {
  if (Array.isArray(v)) return v.map(String).join(", ");
  if (typeof v === "object" && v) return JSON.stringify(v);
  return String(v);
}

function renderDetail(st, s) {
  const m = st.model;
  st.detailFor = detailKey(s);
  const a = s.attrs;
  const box = $("detail");
  const parts = [];
  parts.push(
    el("h2", { class: "op-" + s.op + (s.error ? " error" : "") }, el("span", { class: "swatch" }), " " + s.name),
    el(
      "p",
      { class: "meta" },
      el("span", { class: "badge " + (s.open ? "running" : s.error ? "error" : "ok"), text: s.open ? "open" : s.error ? "error" : "ok" }),
      " " + fmtMs(s.shownEnd - s.start) + (s.open ? " so far" : "") + " · starts at +" + fmtMs(s.start - m.t0) + " · span " + s.id,
    ),
  );
  if (s.error) {
    const why = s.status.message || a[A.errorMessage] || "";
    const type = a[A.errorType];
    const exc = s.events.find((e) => e.name === A.exceptionEvent);
    parts.push(
      el(
        "div",
        { class: "error-box" },
        el("strong", { text: "Error" + (type ? ": " + type : "") }),
        why ? el("p", { text: why }) : null,
        exc && exc.attrs[A.exceptionMessage] && exc.attrs[A.exceptionMessage] !== why ? el("p", { text: exc.attrs[A.exceptionMessage] }) : null,
        a[A.closeReason] ? el("p", { class: "muted", text: "closed by the bridge: " + a[A.closeReason] }) : null,
      ),
    );
  }
  if (s.op === "chat") parts.push(llmFigures(a), conversation(a));
  if (s.op === "tool") parts.push(toolIO(a));
  if (s.op === "agent") parts.push(conversation(a));
  const table = el("table", { class: "tags" });
  for (const [group, keys] of tagGroups(a)) {
    table.append(el("tr", { class: "group" }, el("th", { colspan: "2", text: group })));
    for (const k of keys) table.append(el("tr", { dataset: { key: k } }, el("td", { class: "k", text: k }), el("td", { class: "v", text: showValue(a[k]) })));
  }
  parts.push(el("h3", { text: "Tags" }), Object.keys(a).length ? table : el("p", { class: "muted", text: s.open ? "Tags arrive when the span ends." : "none" }));
  if (s.events.length) {
    const list = el("ol", { class: "events" });
    for (const e of s.events) {
      const attrs = Object.entries(e.attrs);
      list.append(
        el(
          "li",
          { class: e.name === A.exceptionEvent ? "error" : "" },
          el("span", { class: "t", text: "+" + fmtMs(e.t - m.t0) }),
          " ",
          el("strong", { text: e.name }),
          attrs.length ? el("table", { class: "tags" }, ...attrs.map(([k, v]) => el("tr", {}, el("td", { class: "k", text: k }), el("td", { class: "v", text: showValue(v) })))) : null,
        ),
      );
    }
    parts.push(el("h3", { text: "Events (" + s.events.length + ")" }), list);
  }
  box.replaceChildren(...parts.filter(Boolean));
}

function llmFigures(a) {
  const figs = [
    ["Model", a[A.responseModel] || a[A.requestModel]],
    ["Input tokens", fmtInt(a[A.inputTokens])],
    ["Output tokens", fmtInt(a[A.outputTokens])],
    ["Cache read", fmtInt(a[A.cacheReadTokens])],
    ["Cache write", fmtInt(a[A.cacheWriteTokens] ?? a[A.cacheCreationTokens])],
    ["Reasoning", fmtInt(a[A.reasoningTokens])],
    ["First chunk", a[A.ttfc] != null ? fmtMs(a[A.ttfc] * 1000) : ""],
    ["Cost", fmtCost(a[A.cost])],
    ["Finish", showValue(a[A.finishReasons] ?? "")],
  ].filter(([, v]) => v != null && v !== "");
  if (!figs.length) return null;
  return el("dl", { class: "figures" }, ...figs.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
}

// gen_ai.input.messages / gen_ai.output.messages (JSON, the GenAI conventions'
// shape: [{role, parts: [{type: text|tool_call|tool_call_response|reasoning, ...}]}]).
function conversation(a) {
  const msgs = [];
  for (const key of [A.inputMessages, A.outputMessages]) {
    const raw = a[key];
    if (raw == null) continue;
    let list;
    try {
      list = typeof raw === "string" ? JSON.parse(raw) : raw;
    } catch {
      list = [{ role: key === A.inputMessages ? "user" : "assistant", parts: [{ type: "text", content: String(raw) }] }];
    }
    if (!Array.isArray(list)) list = [list];
    for (const msg of list) msgs.push(msg);
  }
  if (!msgs.length) return null;
  const box = el("div", { class: "conversation" });
  for (const msg of msgs) {
    const bubble = el("div", { class: "msg role-" + (msg.role || "unknown") }, el("div", { class: "role", text: msg.role || "?" }));
    const partsList = msg.parts || (msg.content != null ? [{ type: "text", content: msg.content }] : []);
    for (const p of partsList) {
      if (p.type === "text") bubble.append(el("div", { class: "text", text: p.content ?? "" }));
      else if (p.type === "reasoning" || p.type === "thinking")
        bubble.append(el("details", { class: "thinking" }, el("summary", { text: "thinking" }), el("div", { class: "text", text: p.content ?? "" })));
      else if (p.type === "tool_call")
        bubble.append(el("div", { class: "call" }, el("strong", { text: "→ " + (p.name || "tool") }), el("pre", { text: prettyJSON(p.arguments ?? "") })));
      else if (p.type === "tool_call_response")
        bubble.append(el("div", { class: "call" }, el("strong", { text: "← result" + (p.id ? " " + p.id : "") }), el("pre", { text: prettyJSON(p.response ?? p.result ?? "") })));
      else bubble.append(el("pre", { text: JSON.stringify(p, null, 2) }));
    }
    box.append(bubble);
  }
  return el("div", {}, el("h3", { text: "Conversation" }), box);
}

function toolIO(a) {
  const args = a[A.toolArguments];
  const result = a[A.toolResult];
  if (args == null && result == null) return el("p", { class: "muted", text: "Tool arguments and result were not captured (mapping.capture_content)." });
  return el(
    "div",
    { class: "tool-io" },
    el("h3", { text: "Arguments" }),
    el("pre", { text: args == null ? "—" : prettyJSON(args) }),
    el("h3", { text: "Result" }),
    el("pre", { text: result == null ? "—" : prettyJSON(result) }),
  );
}

// --- keyboard navigation in the tree ----------------------------------------------------

function treeKey(ev) {
  const st = traceState;
  if (!st || !st.model.rows) return;
  const m = st.model;
  const i = Math.max(0, m.rows.findIndex((s) => s.id === st.selected));
  const s = m.rows[i];
  const go = (j) => {
    ev.preventDefault();
    const target = m.rows[Math.min(Math.max(j, 0), m.rows.length - 1)];
    if (target) selectSpan(st, target.id, true);
  };
  switch (ev.key) {
    case "ArrowDown": return go(i + 1);
    case "ArrowUp": return go(i - 1);
    case "Home": return go(0);
    case "End": return go(m.rows.length - 1);
    case "PageDown": return go(i + Math.floor($("wf-scroll").clientHeight / ROW_H));
    case "PageUp": return go(i - Math.floor($("wf-scroll").clientHeight / ROW_H));
    case "ArrowRight":
      ev.preventDefault();
      if (s && m.children.has(s.id) && m.collapsed.has(s.id)) toggleSpan(st, s.id, true);
      else if (s && m.children.has(s.id)) go(i + 1);
      return;
    case "ArrowLeft":
      ev.preventDefault();
      if (s && m.children.has(s.id) && !m.collapsed.has(s.id)) toggleSpan(st, s.id, false);
      else if (s && s.parent && m.spans.has(s.parent)) selectSpan(st, s.parent, true);
      return;
    case "Enter":
    case " ":
      ev.preventDefault();
      if (s) toggleSpan(st, s.id);
      return;
  }
}

// --- live tail of all runs ----------------------------------------------------------------

const TAIL_FIELDS = ["run_id", "agent", "kind", "dialect", "source"];

function openTail(h) {
  const form = $("tail-filters");
  const params = {};
  for (const name of TAIL_FIELDS) {
    form.elements[name].value = h.get(name) || "";
    if (h.get(name)) params[name] = h.get(name);
  }
  $("tail").replaceChildren();
  $("tail-error").hidden = true;
  // Check the filters first: EventSource hides a 400's message.
  let stopped = false;
  const probe = new AbortController();
  fetch(streamURL(params), { signal: probe.signal, headers: token ? { Authorization: "Bearer " + token } : {} })
    .then(async (r) => {
      if (r.status === 400) throw new Error((await r.json()).message);
      probe.abort();
    })
    .catch((e) => {
      if (stopped || e.name === "AbortError") return;
      $("tail-error").textContent = e.message;
      $("tail-error").hidden = false;
    });
  const feed = new Feed(
    params,
    (kind, d) => tailLine(kind, d),
    (notice, d) => tailNotice(notice + ": " + JSON.stringify(d)),
    (state) => setStatus(state === "live" ? "live" : "feed disconnected, resuming…", state !== "live"),
  );
  return () => {
    stopped = true;
    probe.abort();
    feed.close();
  };
}

function tailLine(kind, d) {
  if ($("tail-pause").checked) return;
  const li = el(
    "li",
    { class: kind.split(".")[0] + (d.error || kind.endsWith("failed") ? " error" : ""), dataset: { seq: String(d.seq), traceId: d.trace_id } },
    el("span", { class: "t", text: fmtClock(nsToMs(d.timestamp_ns)) }),
    el("span", { class: "run", text: d.run_id }),
    el("span", { class: "kind", text: kind }),
    el("span", { class: "name", text: d.name || d.tool_name || d.model || d.agent || d.original_type || "" }),
    el("span", { class: "muted", text: [d.duration_ms != null ? fmtMs(d.duration_ms) : "", d.usage ? (d.usage.input ?? 0) + "→" + (d.usage.output ?? 0) + " tok" : "", fmtCost(d.cost_usd), d.error || ""].filter(Boolean).join(" · ") }),
  );
  li.addEventListener("click", () => goTrace(d.trace_id, d.span_id));
  const list = $("tail");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > LIVE_MAX) list.lastChild.remove();
}

function tailNotice(text) {
  const list = $("tail");
  list.insertBefore(el("li", { class: "notice", text }), list.firstChild);
}

// --- start ----------------------------------------------------------------------------------

function start() {
  const h = hashParams();
  if (h.get("token")) {
    // A token in a link: keep it for the session and take it out of the address bar.
    token = h.get("token");
    sessionStorage.setItem(TOKEN_KEY, token);
    h.delete("token");
    history.replaceState(null, "", "#" + h.toString());
  }
  $("token-form").addEventListener("submit", () => {
    token = $("token").value;
    sessionStorage.setItem(TOKEN_KEY, token);
    const waiters = tokenWaiters || [];
    tokenWaiters = null;
    for (const w of waiters) w();
    route();
  });
  $("search").addEventListener("submit", searchSubmit);
  $("search-reset").addEventListener("click", (ev) => {
    ev.preventDefault();
    setHash(new URLSearchParams());
    if (!location.hash || location.hash === "#") route();
  });
  $("tail-filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ view: "tail" });
    for (const name of TAIL_FIELDS) {
      const v = $("tail-filters").elements[name].value.trim();
      if (v) p.set(name, v);
    }
    setHash(p);
  });
  $("wf").addEventListener("keydown", treeKey);
  $("wf-scroll").addEventListener("scroll", () => {
    if (traceState && !traceState.scrollPending) {
      traceState.scrollPending = requestAnimationFrame(() => {
        if (traceState) {
          traceState.scrollPending = null;
          renderRows(traceState);
        }
      });
    }
  });
  window.addEventListener("resize", () => traceState && traceState.model.rows && renderRows(traceState));
  window.addEventListener("hashchange", () => {
    // Selecting a span rewrites the hash in place; only a new trace or view re-routes.
    const h2 = hashParams();
    if (traceState && h2.get("trace") === traceState.model.traceId) {
      if (h2.get("span") && h2.get("span") !== traceState.selected) selectSpan(traceState, h2.get("span"), true);
      return;
    }
    route();
  });
  route();
}

// For the browser tests and bench/bench_viewer.py: cut the feed connections, then
// resume them by Last-Event-ID; how long the last trace took to load and draw.
window.otelBridgeViewer = {
  timings: TIMINGS,
  cutFeeds() {
    for (const feed of FEEDS) feed.cut();
  },
  resumeFeeds() {
    for (const feed of FEEDS) feed.resume();
  },
};

start();
