#include "gateway/console.h"

#include <string>

#include "common/crypto.h"

namespace tidegate::gateway {

namespace {

// The stylesheet. The pool kinds keep the reports' colours: owned blue, elastic orange
// (Okabe-Ito, common/report.h).
constexpr std::string_view kStyle = R"css(
:root { --ink: #222; --muted: #666; --line: #e3e3e3; --owned: #0072B2; --elastic: #E69F00;
        --bad: #D55E00; --good: #009E73; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--ink); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 0.6em 1.2em; padding: 0.7em 1.2em;
         background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15em; margin: 0; }
header .meta { color: var(--muted); }
#status { margin-left: auto; display: flex; align-items: center; gap: 0.5em; }
#status::before { content: ""; width: 0.7em; height: 0.7em; border-radius: 50%; background: var(--muted); }
body[data-state="live"] #status::before { background: var(--good); }
body[data-state="error"] #status::before, body[data-state="needs-token"] #status::before { background: var(--bad); }
#token-form { display: none; gap: 0.4em; align-items: center; }
body[data-state="needs-token"] #token-form { display: flex; }
#token-form input { font: inherit; padding: 0.25em 0.5em; width: 18em; }
button, .linkish { font: inherit; cursor: pointer; }
.linkish { background: none; border: none; color: var(--owned); padding: 0; text-decoration: underline; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1em; padding: 1em 1.2em; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 0.9em 0.8em; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 1em; margin: 0.2em 0 0.5em; }
h3 { font-size: 0.95em; margin: 0.8em 0 0.3em; }
table { border-collapse: collapse; width: 100%; font-size: 0.93em; }
th, td { text-align: left; padding: 0.25em 0.5em; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
.badge { display: inline-block; padding: 0 0.45em; border-radius: 3px; font-size: 0.85em; color: #fff; }
.badge.owned { background: var(--owned); } .badge.elastic { background: var(--elastic); }
.badge.down { background: var(--bad); } .badge.up { background: var(--good); } .badge.sat { background: var(--elastic); }
.bar { display: inline-block; width: 5em; height: 0.65em; background: var(--line); border-radius: 2px; vertical-align: middle; margin-right: 0.4em; }
.bar > span { display: block; height: 100%; background: var(--owned); border-radius: 2px; }
.slots { display: inline-flex; gap: 2px; vertical-align: middle; }
.slots i { width: 0.8em; height: 0.8em; border-radius: 2px; display: inline-block; }
.slots i.owned { background: var(--owned); } .slots i.elastic { background: var(--elastic); }
.slots i.wait { border: 1.5px dashed var(--muted); } .slots i.drain { background: var(--line); }
.charts { display: flex; flex-wrap: wrap; gap: 0.5em; }
.charts > div { flex: 1 1 480px; min-width: 0; }
.charts svg { max-width: 100%; height: auto; }
#message { padding: 0 1.2em; color: var(--bad); }
.reason { color: var(--muted); }
)css";

// The body: empty frames the script fills. No data is in the page itself.
constexpr std::string_view kBody = R"html(
<header>
  <h1>tidegate console</h1>
  <span class="meta" id="config"></span>
  <form id="token-form" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" type="password" placeholder="spec.auth.adminToken">
    <button type="submit">Connect</button>
  </form>
  <span id="status">connecting</span>
  <button class="linkish" id="forget" type="button" hidden>forget token</button>
</header>
<p id="message"></p>
<main>
  <section class="wide" id="traffic"><h2>Traffic</h2>
    <div class="charts"><div id="chart-requests"></div><div id="chart-ttft"></div></div>
    <p class="reason" id="traffic-now"></p></section>
  <section id="services"><h2>Services: replicas per node pool</h2><div></div></section>
  <section id="nodes"><h2>Node pools: nodes and cost so far</h2><div></div></section>
  <section class="wide" id="pools"><h2>Inference pools and their endpoints</h2><div></div></section>
  <section class="wide" id="events"><h2>Last scaling decisions</h2><div></div></section>
</main>
)html";

// The script. Every value from the server goes into the DOM as text (textContent), never as
// markup; the charts are SVG documents parsed as XML and imported (the report code escapes all
// text in them and writes no script).
constexpr std::string_view kScript = R"js(
"use strict";
const KEY = "tidegate-admin-token";
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

// A token in the fragment (#token=...) moves to sessionStorage and leaves the address bar.
{
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}
let token = sessionStorage.getItem(KEY) || "";
let updates = 0;

class NeedsToken extends Error {}

async function get(path, as) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch(path, { headers, cache: "no-store" });
  if (r.status === 401) throw new NeedsToken("the admin API needs the admin token");
  if (!r.ok) {
    let msg = "HTTP " + r.status;
    try { msg = (await r.json()).error.message; } catch (e) {}
    throw new Error(msg);
  }
  return as === "text" ? r.text() : r.json();
}

// el("td", {class: "num"}, "text", child...): an element with attributes and text or children.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function table(headers, rows, numeric) {
  const num = new Set(numeric || []);
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", { class: num.has(i) ? "num" : null }, h)))),
    el("tbody", {}, ...rows));
}
function cell(v, numeric) { return el("td", { class: numeric ? "num" : null }, v); }
function fill(id, ...nodes) { $(id).querySelector("div").replaceChildren(...nodes); }
function empty(text) { return el("p", { class: "empty" }, text); }

const fmt = {
  n: (v, d = 0) => (typeof v === "number" && isFinite(v) ? v.toFixed(d) : "–"),
  pct: (v) => (typeof v === "number" && isFinite(v) ? Math.round(v * 100) + "%" : "–"),
  secs: (v) => {
    if (typeof v !== "number" || !isFinite(v)) return "–";
    if (v < 1) return Math.round(v * 1000) + " ms";
    if (v < 120) return v.toFixed(v < 10 ? 2 : 0) + " s";
    return Math.floor(v / 60) + " min " + Math.round(v % 60) + " s";
  },
  // Cost in the configuration's price unit; small amounts keep four decimals.
  cost: (v) => (typeof v === "number" && isFinite(v) ? v.toFixed(Math.abs(v) < 1 ? 4 : 2) : "–"),
  ago: (v) => (v < 1 ? "now" : (v < 120 ? Math.round(v) + " s" : fmt.secs(v)) + " ago"),
};

// --- Traffic -------------------------------------------------------------------------------
async function charts() {
  for (const name of ["requests", "ttft"]) {
    const svg = await get("/admin/charts/" + name + ".svg", "text");
    const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
    if (doc.querySelector("parsererror")) continue;
    $("chart-" + name).replaceChildren(document.importNode(doc.documentElement, true));
  }
}
function trafficNow(traffic) {
  const pts = (traffic && traffic.points) || [];
  const last = pts.slice(-10);
  const sum = (f) => last.reduce((a, p) => a + (p[f] || 0), 0);
  const p90s = last.map((p) => p.ttft_p90_s).filter((v) => typeof v === "number");
  $("traffic-now").textContent = last.length === 0 ? "No traffic sampled yet." :
    "Last " + last.length + " s: " + fmt.n(sum("requests_per_s") / last.length, 1) + " requests/s, " +
    fmt.n(sum("errors_per_s") / last.length, 2) + " errors/s" +
    (p90s.length ? ", TTFT p90 up to " + fmt.secs(Math.max(...p90s)) : "") + ".";
}

// --- Services and node pools ---------------------------------------------------------------
// A replica's state in four kinds: ready, starting, waiting (for a node), draining.
function kindOf(state) {
  const s = String(state || "").toLowerCase();
  if (s === "ready" || s === "running") return "ready";
  if (s === "pending" || s === "provisioning" || s === "unschedulable") return "waiting";
  if (s === "draining" || s === "terminating") return "draining";
  return "starting";
}
// The replicas of a service as [{pool, state}]: the local controller lists them; the
// Kubernetes controller lists pods per unit.
function replicasOf(svc) {
  if (Array.isArray(svc.replicas)) return svc.replicas.map((r) => ({ pool: r.pool || "", state: r.state }));
  const out = [];
  for (const u of svc.units || [])
    for (const p of u.pods || []) out.push({ pool: (u.pools || []).join("/"), state: p.state });
  return out;
}
function services(state) {
  const list = state.services || [];
  const nodePools = state.node_pools || [];
  const elastic = new Map(nodePools.map((p) => [p.name, !!p.elastic]));
  if (list.length === 0) return fill("services", empty("No InferenceService: the controller is not running."));
  const blocks = [];
  for (const svc of list) {
    const reps = replicasOf(svc);
    const pools = nodePools.map((p) => p.name);
    for (const r of reps) if (!pools.includes(r.pool)) pools.push(r.pool);
    const rows = [];
    for (const pool of pools) {
      const c = { ready: 0, starting: 0, waiting: 0, draining: 0 };
      for (const r of reps) if (r.pool === pool) c[kindOf(r.state)]++;
      const kind = pool === "" ? "" : elastic.get(pool) ? "elastic" : "owned";
      const slots = el("span", { class: "slots" });
      for (const k of ["ready", "starting", "waiting", "draining"])
        for (let i = 0; i < c[k]; i++)
          slots.append(el("i", { class: k === "ready" || k === "starting" ? kind : k === "waiting" ? "wait" : "drain", title: k }));
      rows.push(el("tr", { "data-service": svc.name, "data-pool": pool, "data-ready": c.ready,
                           "data-starting": c.starting, "data-waiting": c.waiting, "data-draining": c.draining },
        el("td", {}, pool === "" ? el("span", { class: "reason" }, "no node yet") : pool, " ",
           kind ? el("span", { class: "badge " + kind }, kind) : null),
        cell(c.ready, true), cell(c.starting, true), cell(c.waiting, true), cell(c.draining, true),
        el("td", {}, slots)));
    }
    const ready = reps.filter((r) => kindOf(r.state) === "ready").length;
    blocks.push(el("h3", {}, svc.name, " ",
      el("span", { class: "reason" }, "model " + (svc.model || "–") + " · " + ready + " ready of " +
        (svc.desired ?? "–") + " desired")));
    blocks.push(table(["node pool", "ready", "starting", "waiting for a node", "draining", ""], rows, [1, 2, 3, 4]));
    if (svc.last_decision) blocks.push(el("p", { class: "reason" }, "Autoscaler: " + svc.last_decision));
  }
  fill("services", ...blocks);
}
function nodePools(state) {
  const list = state.node_pools || [];
  if (list.length === 0) return fill("nodes", empty("No NodePool configured."));
  let total = 0;
  const rows = list.map((p) => {
    total += p.cost || 0;
    const used = p.gpus_used ?? 0, free = p.gpus_free ?? Math.max(0, (p.gpus ?? 0) - used);
    return el("tr", { "data-node-pool": p.name, "data-nodes": p.nodes, "data-cost": p.cost },
      el("td", {}, p.name, " ", el("span", { class: "badge " + (p.elastic ? "elastic" : "owned") }, p.elastic ? "elastic" : "owned")),
      cell(p.nodes, true), cell(p.provisioning || 0, true), cell(used + " / " + (used + free), true),
      cell(fmt.cost(p.cost), true));
  });
  rows.push(el("tr", {}, el("th", {}, "total"), cell(""), cell(""), cell(""), el("th", { class: "num", id: "cost-total" }, fmt.cost(total))));
  fill("nodes", table(["node pool", "nodes", "provisioning", "GPUs used / all", "cost so far"], rows, [1, 2, 3, 4]));
}

// --- Inference pools and endpoints ---------------------------------------------------------
function pools(state) {
  const list = state.pools || [];
  if (list.length === 0) return fill("pools", empty("No InferencePool configured."));
  const blocks = [];
  for (const p of list) {
    const eps = p.endpoints || [];
    blocks.push(el("h3", { "data-inference-pool": p.name }, p.name, " ",
      el("span", { class: "reason" }, eps.filter((e) => e.ready).length + " of " + eps.length + " endpoints ready")));
    if (eps.length === 0) { blocks.push(empty("No endpoint.")); continue; }
    const rows = eps.map((e) => {
      const m = e.metrics || {};
      const badge = !e.ready ? el("span", { class: "badge down" }, "down") :
        e.saturated ? el("span", { class: "badge sat" }, "saturated") : el("span", { class: "badge up" }, "ready");
      return el("tr", { "data-endpoint": e.address, "data-inflight": e.inflight },
        el("td", {}, e.address), el("td", {}, badge),
        cell(fmt.n(m.waiting), true), cell(fmt.n(m.running), true),
        el("td", {}, el("span", { class: "bar" }, el("span")), fmt.pct(m.kv_cache)),
        cell(e.inflight, true), el("td", { class: "reason" }, (e.models || []).join(", ")),
        cell(e.scrape_age_s == null ? "–" : fmt.secs(e.scrape_age_s), true),
        el("td", { class: "reason" }, e.error || ""));
    });
    // Bar widths through the CSSOM (allowed by the page's Content-Security-Policy).
    rows.forEach((r, i) => {
      const kv = (eps[i].metrics || {}).kv_cache;
      r.querySelector(".bar > span").style.width = Math.max(0, Math.min(1, kv || 0)) * 100 + "%";
    });
    blocks.push(table(["endpoint", "state", "queue", "running", "KV cache", "in flight", "models", "scraped", "error"], rows, [2, 3, 5, 7]));
  }
  fill("pools", ...blocks);
}

// --- Scaling decisions ---------------------------------------------------------------------
function events(state) {
  const list = state.scaling_events;
  if (!Array.isArray(list)) return fill("events", empty("No controller: nothing is scaled."));
  if (list.length === 0) return fill("events", empty("No scaling decision yet."));
  const rows = list.map((e) => el("tr", { "data-event": e.kind, "data-direction": e.direction },
    cell(fmt.ago(e.age_s)),
    el("td", {}, e.kind === "scale" ?
      el("span", {}, e.service + " ", el("span", { class: "badge " + (e.direction === "up" ? "elastic" : "owned") },
        e.from + " → " + e.to)) : el("span", {}, "nodes · " + (e.pool || ""))),
    el("td", { class: "reason" }, e.reason)));
  fill("events", table(["when", "what", "why"], rows));
}

// --- The loop ------------------------------------------------------------------------------
function setState(s, text) {
  document.body.dataset.state = s;
  $("status").textContent = text;
  $("forget").hidden = !token;
}
async function refresh() {
  try {
    const state = await get("/admin/state");
    $("config").textContent = state.config || "";
    services(state);
    nodePools(state);
    pools(state);
    events(state);
    trafficNow(state.traffic);
    await charts();
    $("message").textContent = "";
    document.body.dataset.updates = String(++updates);
    setState("live", "live · updated " + new Date().toLocaleTimeString());
  } catch (e) {
    if (e instanceof NeedsToken) {
      setState("needs-token", token ? "the admin token was refused" : "needs the admin token");
      return false;  // wait for the form
    }
    setState("error", "disconnected");
    $("message").textContent = String(e.message || e);
  }
  return true;
}
let timer = null;
async function loop() {
  clearTimeout(timer);
  if (await refresh()) timer = setTimeout(loop, POLL_MS);
}
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  if (token) sessionStorage.setItem(KEY, token);
  loop();
});
$("forget").addEventListener("click", () => {
  token = "";
  sessionStorage.removeItem(KEY);
  loop();
});
loop();
)js";

std::string sha256Source(std::string_view text) {
  return "'sha256-" + crypto::base64Encode(crypto::sha256(text)) + "'";
}

}  // namespace

std::string_view consolePage() {
  static const std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"referrer\" content=\"no-referrer\">\n"
      "<title>tidegate console</title>\n<style>" +
      std::string(kStyle) + "</style>\n</head>\n<body data-state=\"connecting\">" +
      std::string(kBody) + "<script>" + std::string(kScript) + "</script>\n</body>\n</html>\n";
  return page;
}

http::Headers consoleHeaders() {
  // Only this page's own script and stylesheet run (by their hashes), it fetches only its own
  // origin, and no other site may frame it.
  static const std::string csp = "default-src 'none'; script-src " + sha256Source(kScript) +
                                 "; style-src " + sha256Source(kStyle) +
                                 "; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                                 "frame-ancestors 'none'";
  return {{"Content-Security-Policy", csp},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"},
          {"Cache-Control", "no-cache"}};
}

}  // namespace tidegate::gateway
