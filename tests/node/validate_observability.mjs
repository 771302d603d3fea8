// validate_observability.mjs: checks tidegate's Grafana dashboard, Prometheus rules and
// Prometheus configuration against what tidegate, its engine simulator, vLLM and llama.cpp
// really expose.
//
//   node validate_observability.mjs --tidegate BIN [--promtool BIN] [--llama-server BIN]
//        [--expect-invalid] INPUT...
//
// INPUT is a Grafana dashboard (*.json), a Prometheus rules file (YAML with `groups`) or a
// Prometheus configuration (YAML with `scrape_configs`). Checks:
// - a dashboard is importable: Grafana's classic JSON model (id null, uid, title, schemaVersion
//   36 or later, when datasources became {type, uid} references), a template variable
//   `datasource` of type datasource for Prometheus, every data panel and target on
//   ${datasource}, unique panel ids and refIds, gridPos inside the 24-column grid without
//   overlaps, known panel types;
// - every PromQL expression (panel targets, rules) parses: `promtool check rules` on a rules
//   file made of them, Grafana's $__ macros replaced by durations and $variables by ".*";
// - every metric name in every expression and template query is exposed: by a live
//   `tidegate serve` (gateway, controller with a local pool, API keys, plans and a ledger,
//   after a few requests, a 429 and a 401) or a live `tidegate engine`, listed in
//   fixtures/vllm_metrics.txt (vLLM's names, with their sources) or llama.cpp's (the live
//   llama-server when --llama-server or TIDEGATE_LLAMA_SERVER names it, else
//   fixtures/llamacpp_metrics.txt), defined as a recording rule by a rules INPUT, or `up`
//   (Prometheus' own). A histogram is only reachable through its _bucket, _sum and _count
//   series. A label matcher on a metric the live processes showed samples of must name one of
//   its labels (or one Prometheus adds: job, instance, and those prometheus.yml adds);
// - a rules file passes `promtool check rules`; alerts have `for`, a severity, a summary and a
//   description; recording rules are named level:metric:operations;
// - a configuration passes `promtool check config`, and its commented Kubernetes example
//   (between "BEGIN kubernetes example" and "END kubernetes example") is YAML of scrape
//   configs for the same jobs (Debian's promtool has no Kubernetes service discovery to check
//   it with).
//
// Exit status: 0 valid, 1 invalid (each error on stderr), 2 usage or environment error.
// --expect-invalid checks the validator itself: every INPUT must fail with an error containing
// the text its author expects (a dashboard's description "expect-error: TEXT", a YAML comment
// "# expect-error: TEXT"); exit 0 if each does.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VLLM_LIST = path.join(HERE, "fixtures/vllm_metrics.txt");
const LLAMA_LIST = path.join(HERE, "fixtures/llamacpp_metrics.txt");
// Labels Prometheus puts on every series it scrapes, and those deploy/prometheus/prometheus.yml
// adds by relabelling: matchers on them are always fine.
const SCRAPE_LABELS = new Set(["job", "instance", "pod", "namespace", "service"]);
// Panel types of Grafana's core visualisations this dashboard may use.
const PANEL_TYPES = new Set(["row", "timeseries", "stat", "gauge", "bargauge", "table", "heatmap",
  "text", "state-timeline", "status-history", "barchart", "piechart"]);

// ---- arguments ----------------------------------------------------------------------------

function usage(msg) {
  console.error(`validate_observability: ${msg}`);
  console.error("usage: node validate_observability.mjs --tidegate BIN [--promtool BIN] " +
    "[--llama-server BIN] [--expect-invalid] INPUT...");
  process.exit(2);
}

const opts = { tidegate: null, promtool: "promtool",
  "llama-server": process.env.TIDEGATE_LLAMA_SERVER || null, expectInvalid: false };
const inputs = [];
for (let args = process.argv.slice(2); args.length;) {
  const a = args.shift();
  if (a === "--tidegate" || a === "--promtool" || a === "--llama-server") {
    if (!args.length) usage(`${a} needs a value`);
    opts[a.slice(2)] = args.shift();
  } else if (a === "--expect-invalid") {
    opts.expectInvalid = true;
  } else if (a.startsWith("--")) {
    usage(`unknown option ${a}`);
  } else {
    inputs.push(a);
  }
}
if (!inputs.length) usage("no input");
if (!opts.tidegate) usage("--tidegate is required (the live processes define tidegate's names)");
try {
  fs.accessSync(opts.tidegate, fs.constants.X_OK);
} catch {
  usage(`${opts.tidegate} is not an executable`);
}
if (spawnSync(opts.promtool, ["--version"]).status !== 0) usage(`${opts.promtool} does not run`);

// ---- the Prometheus text format --------------------------------------------------------------

// Parses an exposition into {types: name -> type, labels: sample name -> Set of label names}.
function parseExposition(text) {
  const types = new Map();
  const labels = new Map();
  for (const line of text.split("\n")) {
    const t = line.match(/^# TYPE (\S+) (\S+)/);
    if (t) types.set(t[1], t[2]);
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s/);
    if (!m) continue;
    const set = labels.get(m[1]) || new Set();
    for (const l of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g))
      set.add(l[1]);
    labels.set(m[1], set);
  }
  return { types, labels };
}

// The series names a family can be queried by: a histogram's (or summary's) _bucket, _sum and
// _count, never its bare name (no series carries it); anything else its own name.
function seriesNames(family, type) {
  if (type === "histogram") return [`${family}_bucket`, `${family}_sum`, `${family}_count`];
  if (type === "summary") return [family, `${family}_sum`, `${family}_count`];
  return [family];
}

// known: series name -> {source, labels: Set or null (unknown)}.
function addExposition(known, source, text) {
  const { types, labels } = parseExposition(text);
  for (const [family, type] of types)
    for (const name of seriesNames(family, type)) {
      const l = labels.get(name);
      known.set(name, { source, labels: l || null });  // null: no sample, labels unknown
    }
}

// A list file: "name type ..." lines, # comments.
function readList(file) {
  const out = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const s = line.replace(/#.*/, "").trim();
    if (!s) continue;
    const [name, type] = s.split(/\s+/);
    out.push({ name, type });
  }
  return out;
}

function addList(known, source, entries) {
  for (const { name, type } of entries)
    for (const n of seriesNames(name, type))
      if (!known.has(n)) known.set(n, { source, labels: null });
}

// ---- live processes -----------------------------------------------------------------------

const children = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tidegate-observability-"));
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);

// Starts a process and resolves with the first stdout line matching `re` (rejects after
// `timeoutMs` or when the process exits first, with its stderr).
function startAndWait(argv, re, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stderr = "";
    child.stderr.on("data", (d) => { stderr += d; });
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")}: ${why}\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no "${re}" in ${timeoutMs} ms`), timeoutMs);
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const m = line.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on("exit", (code) => fail(`exited with ${code}`));
    child.on("error", (e) => fail(e.message));
  });
}

async function http(url, init = {}) {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(15000) });
  return { status: r.status, body: await r.text() };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `cond` (async, may throw: counts as false) every 100 ms until it is true or `timeoutMs`
// passes; returns whether it became true. For state of another process, never for timing.
async function eventually(cond, timeoutMs) {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(100)) {
    try {
      if (await cond()) return true;
    } catch {}
  }
  return false;
}

// A port free on 127.0.0.1 now (for llama-server, which cannot bind port 0 and say which).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    }).on("error", reject);
  });
}

// The gateway of this test: a static pool in front of the engine we start (so its address is
// known), and a service the controller scales over an owned and an elastic node pool (its
// replicas are `tidegate engine` too); API keys required, one plan with a limit of two requests
// a minute, a ledger; the key's SHA-256 in the file, as operators write it.
function serveConfig(enginePort, keyHash) {
  return `
apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: observability-test}
spec:
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  controller: {interval: 200ms}
  auth: {apiKeys: required, adminToken: admin-test}
  rateLimit: {backend: local}
  ledger: {path: ${tmp}/ledger.db, flushInterval: 100ms}
  pricing:
    pools:
    - {pool: static-pool, pricePerHour: 1.0}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: static-pool}
spec:
  targetPortNumber: ${enginePort}
  selector: {app: static-engine}
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: static-engine, labels: {app: static-engine}}
spec: {addresses: ["127.0.0.1:${enginePort}"]}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: static-model}
spec: {modelName: static-model, criticality: Critical, poolRef: {name: static-pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: scaled-pool}
spec:
  targetPortNumber: 8000
  selector: {app: scaled}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: scaled-model}
spec: {modelName: scaled-model, criticality: Critical, poolRef: {name: scaled-pool}}
---
apiVersion: scheduling.alibabacloud.com/v1alpha1
kind: ResourcePolicy
metadata: {name: scaled, namespace: default}
spec:
  selector: {app: scaled}
  strategy: prefer
  units:
  - {resource: ecs, nodeSelector: {pool: owned}}
  - {resource: elastic, nodeSelector: {pool: cloud}}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: owned, labels: {pool: owned}}
spec: {kind: fixed, nodes: 1, gpusPerNode: 1, pricePerNodeHour: 0.9}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud, labels: {pool: cloud}}
spec: {kind: elastic, maxNodes: 1, gpusPerNode: 1, provisioningDelay: 1s, pricePerNodeHour: 3.06}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: scaled, labels: {app: scaled}}
spec:
  servedModelName: scaled-model
  command: [tidegate, engine, --port, "{port}", --served-model-name, "{model}", --log-level, warn]
  resources: {gpus: 1}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - {metric: "vllm:num_requests_waiting", target: 4}
---
apiVersion: tidegate.io/v1alpha1
kind: UsagePlan
metadata: {name: tiny}
spec: {requestsPerMinute: 2, tokensPerDay: 100000}
---
apiVersion: tidegate.io/v1alpha1
kind: APIKey
metadata: {name: test-key}
spec:
  plan: tiny
  sha256: ${keyHash}
`;
}

async function tidegateExpositions() {
  const engine = await startAndWait([opts.tidegate, "engine", "--port", "0",
    "--served-model-name", "static-model", "--log-level", "warn"],
    /listening on http:\/\/[^:]+:(\d+)/);
  const enginePort = Number(engine[1]);
  const secret = "sk-test";
  const config = path.join(tmp, "serve.yaml");
  const keyHash = createHash("sha256").update(secret).digest("hex");
  fs.writeFileSync(config, serveConfig(enginePort, keyHash));
  const serve = await startAndWait([opts.tidegate, "serve", "-c", config, "--log-level", "warn"],
    /listening on http:\/\/127\.0\.0\.1:(\d+) admin http:\/\/127\.0\.0\.1:(\d+)/);
  const gw = `http://127.0.0.1:${serve[1]}`;
  const admin = `http://127.0.0.1:${serve[2]}`;

  // Requests so that labelled series exist: a stream and a plain completion through the
  // static pool, a third one over the plan's two a minute (429), one without a key (401). Sent
  // once the gateway has scraped the engine (a 503 would use up the plan's two requests).
  const ready = /^tidegate_pool_ready_endpoints\{pool="static-pool"\} 1$/m;
  if (!(await eventually(async () => ready.test((await http(`${admin}/metrics`)).body), 30000)))
    throw new Error("the gateway did not see its engine ready within 30 s");
  const chat = (stream, key = secret) => http(`${gw}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key && { Authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ model: "static-model", messages: [{ role: "user", content: "Hello" }],
      max_tokens: 4, stream }),
  });
  const statuses = [(await chat(true)).status, (await chat(false)).status,
    (await chat(false)).status, (await chat(false, null)).status];
  if (statuses.join() !== "200,200,429,401")
    throw new Error(`the gateway answered ${statuses.join()}, expected 200,200,429,401`);

  // The controller's replica of `scaled` becomes Ready.
  let metrics = "";
  const replica = /^tidegate_replicas\{[^}]*state="Ready"/m;
  const scrape = async () => (metrics = (await http(`${admin}/metrics`)).body);
  if (!(await eventually(async () => replica.test(await scrape()), 30000)))
    throw new Error("the controller's replica did not become Ready within 30 s");
  const engineMetrics = (await http(`http://127.0.0.1:${enginePort}/metrics`)).body;
  return { gateway: metrics, engine: engineMetrics };
}

async function llamaExposition(bin) {
  const model = process.env.TIDEGATE_LLAMA_MODEL ||
    path.join(path.dirname(bin), "../models/tiny-echo-f16.gguf");
  const port = await freePort();
  const args = ["-m", model, "--host", "127.0.0.1", "--port", String(port), "-c", "1024", "-np",
    "2", "-t", "1", "--metrics", "-a", "tiny", "--log-disable"];
  const child = spawn(bin, args, { stdio: "ignore" });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  const healthy = async () =>
    child.exitCode === null && (await http(`${base}/health`)).status === 200;
  if (!(await eventually(healthy, 60000)))
    throw new Error(`${bin} did not become healthy on port ${port} (exit code ${child.exitCode})`);
  await http(`${base}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "tiny", prompt: "the quick brown fox", max_tokens: 4 }),
  });
  const r = await http(`${base}/metrics`);
  if (r.status !== 200) throw new Error(`${bin} /metrics answered ${r.status}`);
  return r.body;
}

// ---- PromQL ---------------------------------------------------------------------------------

// Grafana's macros and template variables, so that promtool can parse what Grafana would send.
function substituteGrafana(expr) {
  return expr.replaceAll("$__rate_interval", "5m").replaceAll("$__interval", "1m")
    .replaceAll("$__range", "1h").replace(/\$\{[^}]+\}|\$[a-zA-Z_]\w*/g, ".*");
}

const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
  "group_right", "bool", "offset", "inf", "nan"]);
// Aggregation operators: `sum by (a) (x)` puts a keyword, not "(", after the name.
const AGGREGATIONS = new Set(["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
  "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"]);
const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);

// The metric names an expression selects, with the label names of each selector's matchers:
// [{name, labels: [...]}]. A small lexer is enough: identifiers followed by "(" are functions or
// aggregations, grouping clauses and keywords are not metrics, strings, {matchers} and [ranges]
// are skipped (label names only recorded). Throws on a character PromQL has no use for.
function selectors(expr) {
  const toks = [];
  for (let i = 0; i < expr.length;) {
    const c = expr[i];
    if (/\s/.test(c)) { ++i; continue; }
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < expr.length && expr[j] !== c) j += expr[j] === "\\" && c !== "`" ? 2 : 1;
      toks.push({ t: "str" }); i = j + 1; continue;
    }
    if (c === "#") { while (i < expr.length && expr[i] !== "\n") ++i; continue; }
    const id = expr.slice(i).match(/^[a-zA-Z_:][a-zA-Z0-9_:]*/);
    if (id) { toks.push({ t: "id", v: id[0] }); i += id[0].length; continue; }
    const num = expr.slice(i).match(/^[0-9.][0-9a-zA-Z_.+]*/);
    if (num) { toks.push({ t: "num" }); i += num[0].length; continue; }
    if ("(){}[],".includes(c)) { toks.push({ t: c }); ++i; continue; }
    if ("+-*/%^=!<>~@".includes(c)) { toks.push({ t: "op" }); ++i; continue; }
    throw new Error(`unexpected character ${JSON.stringify(c)} at ${i}`);
  }
  const out = [];
  for (let k = 0; k < toks.length; ++k) {
    const tok = toks[k];
    if (tok.t === "[") { while (k < toks.length && toks[k].t !== "]") ++k; continue; }
    if (tok.t === "{") {  // matchers without a metric name before them: {__name__=...}
      while (k < toks.length && toks[k].t !== "}") ++k;
      continue;
    }
    if (tok.t !== "id") continue;
    const next = toks[k + 1];
    if (GROUPING.has(tok.v)) {  // by (a, b): label names, not metrics
      if (next && next.t === "(") while (k < toks.length && toks[k].t !== ")") ++k;
      continue;
    }
    if (KEYWORDS.has(tok.v.toLowerCase()) || AGGREGATIONS.has(tok.v)) continue;
    if (next && next.t === "(") continue;  // a function or an aggregation
    const sel = { name: tok.v, labels: [] };
    if (next && next.t === "{") {
      for (k += 2; k < toks.length && toks[k].t !== "}"; ++k)
        if (toks[k].t === "id" && toks[k + 1] && toks[k + 1].t === "op") sel.labels.push(toks[k].v);
    }
    out.push(sel);
  }
  return out;
}

// Runs `promtool check rules` over the expressions (each as a recording rule); returns
// {index: message} for those that do not parse.
function promtoolParse(exprs) {
  if (!exprs.length) return {};
  const file = path.join(tmp, `exprs-${Math.random().toString(36).slice(2)}.yml`);
  fs.writeFileSync(file, stringifyYaml({ groups: [{ name: "check", rules: exprs.map((e, i) => ({
    record: `check:expr_${i + 1}`, expr: substituteGrafana(e) })) }] }));
  const r = spawnSync(opts.promtool, ["check", "rules", file], { encoding: "utf8" });
  const bad = {};
  if (r.status === 0) return bad;
  for (const line of (r.stdout + r.stderr).split("\n")) {
    const m = line.match(/rule (\d+), "check:expr_\d+": (.*)/);
    if (m) bad[Number(m[1]) - 1] = m[2];
  }
  if (!Object.keys(bad).length) bad[-1] = (r.stdout + r.stderr).trim();
  return bad;
}

// ---- the checks -----------------------------------------------------------------------------

// Checks the metric names (and matcher labels) of `expr`; pushes errors prefixed with `where`.
// `label`, when given, is a label every selected metric must have (label_values' second argument).
function checkNames(expr, where, known, errors, label) {
  let sels;
  try {
    sels = selectors(substituteGrafana(expr));
  } catch (e) {
    errors.push(`${where}: ${e.message} in ${JSON.stringify(expr)}`);
    return;
  }
  for (const s of sels) {
    const k = known.get(s.name);
    if (!k) {
      errors.push(`${where}: metric ${s.name} is exposed by none of tidegate serve, tidegate ` +
        `engine, vLLM, llama.cpp or the recording rules`);
      continue;
    }
    for (const l of label ? [...s.labels, label] : s.labels)
      if (l !== "__name__" && k.labels && !k.labels.has(l) && !SCRAPE_LABELS.has(l))
        errors.push(`${where}: ${s.name} (${k.source}) has no label ${l} ` +
          `(it has: ${[...k.labels].sort().join(", ")})`);
  }
}

const isDatasourceRef = (ds) => ds && typeof ds === "object" && ds.uid === "${datasource}";

function checkDashboard(file, d, known, errors) {
  const err = (m) => errors.push(`${file}: ${m}`);
  if (d.id !== null) err("id must be null (an import creates the dashboard)");
  for (const f of ["uid", "title"])
    if (typeof d[f] !== "string" || !d[f]) err(`${f} must be a non-empty string`);
  if (typeof d.uid === "string" && !/^[a-zA-Z0-9_-]{1,40}$/.test(d.uid))
    err("uid must be 1-40 of [a-zA-Z0-9_-]");
  if (!Number.isInteger(d.schemaVersion) || d.schemaVersion < 36)
    err("schemaVersion must be an integer >= 36");
  if (!d.time || typeof d.time.from !== "string" || typeof d.time.to !== "string")
    err("time {from, to} missing");
  if (!Array.isArray(d.panels) || !d.panels.length) {
    err("no panels");
    return [];
  }
  const vars = d.templating && Array.isArray(d.templating.list) ? d.templating.list : null;
  if (!vars) err("templating.list missing");
  const dsVars = (vars || []).filter((v) => v.name === "datasource");
  if (dsVars.length !== 1 || dsVars[0].type !== "datasource" || dsVars[0].query !== "prometheus")
    err('needs one template variable "datasource" of type datasource with query "prometheus"');

  const exprs = [];  // [{expr, where}]
  for (const v of vars || []) {
    if (v.type !== "query") continue;
    const where = `${file}: variable ${v.name}`;
    if (!isDatasourceRef(v.datasource)) errors.push(`${where}: datasource must be \${datasource}`);
    const q = typeof v.query === "string" ? v.query : v.query && v.query.query;
    const m = typeof q === "string" && q.match(/^\s*label_values\((.+),\s*([a-zA-Z_]\w*)\s*\)\s*$/);
    if (!m) {
      errors.push(`${where}: query must be label_values(SELECTOR, LABEL), is ${JSON.stringify(q)}`);
      continue;
    }
    exprs.push({ expr: m[1], where });
    checkNames(m[1], where, known, errors, m[2]);
  }

  // Rows hold their panels in `panels` when collapsed; ids are unique over all of them.
  const all = [];
  for (const p of d.panels) {
    all.push(p);
    for (const c of p.panels || []) all.push(c);
  }
  const ids = new Set();
  const placed = [];
  for (const p of all) {
    const where = `${file}: panel ${p.id} "${p.title}"`;
    if (!Number.isInteger(p.id)) errors.push(`${where}: id must be an integer`);
    else if (ids.has(p.id)) errors.push(`${where}: duplicate panel id ${p.id}`);
    ids.add(p.id);
    if (!PANEL_TYPES.has(p.type)) errors.push(`${where}: unknown panel type ${p.type}`);
    const g = p.gridPos;
    if (!g || !["x", "y", "w", "h"].every((k) => Number.isInteger(g[k])) || g.x < 0 || g.y < 0 ||
        g.w < 1 || g.h < 1 || g.x + g.w > 24) {
      errors.push(`${where}: gridPos must have integers x, y >= 0, w, h >= 1, x + w <= 24`);
    } else {
      for (const q of placed)
        if (g.x < q.g.x + q.g.w && q.g.x < g.x + g.w && g.y < q.g.y + q.g.h && q.g.y < g.y + g.h)
          errors.push(`${where}: overlaps panel ${q.id}`);
      placed.push({ id: p.id, g });
    }
    if (p.type === "row" || p.type === "text") continue;
    if (!isDatasourceRef(p.datasource))
      errors.push(`${where}: datasource must be {type: prometheus, uid: \${datasource}}`);
    if (!Array.isArray(p.targets) || !p.targets.length) {
      errors.push(`${where}: no targets`);
      continue;
    }
    const refIds = new Set();
    for (const t of p.targets) {
      const tw = `${where} target ${t.refId}`;
      if (!t.refId || refIds.has(t.refId)) errors.push(`${tw}: refId missing or repeated`);
      refIds.add(t.refId);
      if (t.datasource !== undefined && !isDatasourceRef(t.datasource))
        errors.push(`${tw}: datasource must be \${datasource}`);
      if (typeof t.expr !== "string" || !t.expr.trim()) {
        errors.push(`${tw}: no expr`);
        continue;
      }
      exprs.push({ expr: t.expr, where: tw });
      checkNames(t.expr, tw, known, errors);
    }
  }
  return exprs;
}

function checkRules(file, doc, known, errors) {
  const r = spawnSync(opts.promtool, ["check", "rules", file], { encoding: "utf8" });
  if (r.status !== 0)
    errors.push(`${file}: promtool check rules failed:\n${(r.stdout + r.stderr).trim()}`);
  for (const g of doc.groups || [])
    for (const rule of g.rules || []) {
      const where = `${file}: ${rule.alert ? "alert" : "rule"} ${rule.alert || rule.record}`;
      if (rule.record && !/^[a-zA-Z_]\w*:[a-zA-Z_:]\w*(:\w+)?$/.test(rule.record))
        errors.push(`${where}: a recording rule is named level:metric:operations`);
      if (rule.alert) {
        if (!rule.for) errors.push(`${where}: no for (an alert on one evaluation flaps)`);
        if (!rule.labels || !rule.labels.severity) errors.push(`${where}: no severity label`);
        for (const a of ["summary", "description"])
          if (!rule.annotations || !rule.annotations[a])
            errors.push(`${where}: no ${a} annotation`);
      }
      if (typeof rule.expr === "string") checkNames(rule.expr, where, known, errors);
      else errors.push(`${where}: no expr`);
    }
}

function checkConfig(file, text, doc, errors) {
  const r = spawnSync(opts.promtool, ["check", "config", file], { encoding: "utf8" });
  if (r.status !== 0)
    errors.push(`${file}: promtool check config failed:\n${(r.stdout + r.stderr).trim()}`);
  const block = text.match(/^# BEGIN kubernetes example\n([\s\S]*?)^# END kubernetes example/m);
  if (!block) {
    errors.push(`${file}: no "# BEGIN kubernetes example" ... "# END kubernetes example" block`);
    return;
  }
  let example;
  try {
    example = parseYaml(block[1].replace(/^#/gm, ""));
  } catch (e) {
    errors.push(`${file}: the Kubernetes example is not YAML: ${e.message}`);
    return;
  }
  const list = Array.isArray(example) ? example : [];
  const jobs = (doc.scrape_configs || []).map((s) => s.job_name).sort().join();
  const kubeJobs = list.map((s) => s && s.job_name).sort().join();
  if (!list.length || kubeJobs !== jobs)
    errors.push(`${file}: the Kubernetes example must be scrape configs for the jobs ${jobs}, ` +
      `has ${kubeJobs}`);
  for (const s of list)
    if (!s || !Array.isArray(s.kubernetes_sd_configs) || !Array.isArray(s.relabel_configs))
      errors.push(`${file}: Kubernetes example job ${s && s.job_name}: needs ` +
        `kubernetes_sd_configs and relabel_configs`);
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const known = new Map();
  const live = await tidegateExpositions();
  addExposition(known, "tidegate serve", live.gateway);
  addExposition(known, "tidegate engine", live.engine);
  addList(known, "vLLM", readList(VLLM_LIST));
  const llamaList = readList(LLAMA_LIST);
  const llamaBin = opts["llama-server"];
  if (llamaBin && fs.existsSync(llamaBin)) {
    const text = await llamaExposition(llamaBin);
    const liveFamilies = parseExposition(text).types;
    const gone = llamaList.filter((e) => !liveFamilies.has(e.name)).map((e) => e.name);
    if (gone.length) {
      console.error(`${LLAMA_LIST}: ${llamaBin} no longer exposes ${gone.join(", ")}`);
      return 1;
    }
    addExposition(known, "llama-server", text);
  } else {
    addList(known, "llama.cpp", llamaList);
  }
  known.set("up", { source: "Prometheus", labels: new Set() });

  // Recording rules of every rules input are names like any other.
  const docs = inputs.map((file) => {
    const text = fs.readFileSync(file, "utf8");
    const doc = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
    return { file, text, doc };
  });
  for (const { doc } of docs)
    for (const g of (doc && doc.groups) || [])
      for (const rule of g.rules || [])
        if (rule.record) known.set(rule.record, { source: "recording rule", labels: null });

  let failed = 0;
  for (const { file, text, doc } of docs) {
    const errors = [];
    if (file.endsWith(".json")) {
      const exprs = checkDashboard(file, doc, known, errors);
      const bad = promtoolParse(exprs.map((e) => e.expr));
      for (const [i, msg] of Object.entries(bad))
        errors.push(i >= 0 ? `${exprs[i].where}: does not parse: ${msg}` : `${file}: ${msg}`);
    } else if (doc && doc.groups) {
      checkRules(file, doc, known, errors);
    } else if (doc && doc.scrape_configs) {
      checkConfig(file, text, doc, errors);
    } else {
      errors.push(`${file}: neither a dashboard (.json), rules (groups) nor a configuration ` +
        `(scrape_configs)`);
    }

    if (opts.expectInvalid) {
      const m = file.endsWith(".json") ? String(doc.description || "").match(/expect-error: (.+)/)
        : text.match(/^# expect-error: (.+)$/m);
      if (!m) {
        console.error(`${file}: no expect-error marker`);
        ++failed;
      } else if (errors.some((e) => e.includes(m[1]))) {
        console.log(`${file}: rejected as expected (${m[1]})`);
      } else {
        const got = errors.length ? `:\n  ${errors.join("\n  ")}` : " none";
        console.error(`${file}: expected an error containing "${m[1]}", got${got}`);
        ++failed;
      }
    } else if (errors.length) {
      for (const e of errors) console.error(e);
      ++failed;
    } else {
      console.log(`${file}: valid`);
    }
  }
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(`validate_observability: ${e.stack || e}`);
  process.exit(2);
});
