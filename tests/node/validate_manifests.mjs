// validate_manifests.mjs: renders tidegate's Kubernetes manifests and validates every object
// the way the API server would, without a cluster.
//
//   node validate_manifests.mjs [--tidegate BIN] [--kubectl BIN] [--expect-invalid] INPUT...
//
// INPUT is a kustomize directory (rendered with `kubectl kustomize`), a YAML file, or `-` for
// YAML on stdin. Every object must pass:
// - its schema: built-in kinds against Kubernetes' OpenAPI schemas (npm's kubernetes-models),
//   custom resources against the openAPIV3Schema of their CRD, which must be in the input
//   (ajv). Unknown fields are errors, as with `kubectl apply --validate=strict`: for built-in
//   kinds, a field the schema's validator never looked at is unknown (kubernetes-models'
//   schemas do not forbid extra properties themselves); for custom resources, every object
//   schema without x-kubernetes-preserve-unknown-fields gets additionalProperties: false.
//   A kind with neither is an error: its objects could not be applied.
// - what the API server checks beyond the schema and what would break at run time: names
//   (DNS-1123), namespaces on namespaced kinds only, workload selectors matching their pod
//   templates, Services and PodDisruptionBudgets selecting some pod template, bindings naming
//   Roles and ServiceAccounts that exist, pod templates naming ConfigMaps, claims, service
//   accounts and probe ports that exist, no wildcard in RBAC rules.
// - tidegate's own configuration: the file in a tidegate ConfigMap (key config.yaml) passes
//   `tidegate check` (with --tidegate), and a tidegate.io cluster object that is also in that
//   file says the same thing there.
//
// Exit status: 0 valid, 1 invalid (each error on stderr), 2 usage or I/O error, 77 skipped
// (kubectl is needed to render a directory and is not installed; ctest's SKIP_RETURN_CODE).
// --expect-invalid turns it into a check of the validator itself: every document of the input
// files that carries a `# expect-error: TEXT` comment must fail with an error containing TEXT,
// and every other document must pass; exit 0 if so.

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Ajv from "ajv";
import { parseAllDocuments } from "yaml";
import { ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";

const SKIP = 77;

// ---- inputs -------------------------------------------------------------------------------

function usage(msg) {
  console.error(`validate_manifests: ${msg}`);
  console.error(
    "usage: node validate_manifests.mjs [--tidegate BIN] [--kubectl BIN] [--expect-invalid] " +
      "INPUT...  (INPUT: kustomize directory, YAML file, or - for stdin)",
  );
  process.exit(2);
}

function findOnPath(name) {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const p = path.join(dir || ".", name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

const opts = { tidegate: null, kubectl: process.env.KUBECTL || null, expectInvalid: false };
const inputs = [];
for (let args = process.argv.slice(2); args.length; ) {
  const a = args.shift();
  if (a === "--tidegate" || a === "--kubectl") {
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

// One source of YAML text: its name (for messages) and its documents' texts.
function readInput(input) {
  if (input === "-") return { name: "<stdin>", text: fs.readFileSync(0, "utf8") };
  let st;
  try {
    st = fs.statSync(input);
  } catch (e) {
    usage(`${input}: ${e.message}`);
  }
  if (!st.isDirectory()) return { name: input, text: fs.readFileSync(input, "utf8") };
  const kubectl = opts.kubectl || findOnPath("kubectl");
  if (!kubectl) {
    console.log(
      `SKIP: kubectl is not installed, so ${input} cannot be rendered (kubectl kustomize). ` +
        "Install kubectl (or set KUBECTL) to run this check.",
    );
    process.exit(SKIP);
  }
  try {
    const text = execFileSync(kubectl, ["kustomize", input], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 << 20,
    });
    return { name: `kubectl kustomize ${input}`, text };
  } catch (e) {
    console.error(`${input}: kubectl kustomize failed:\n${e.stderr || e.message}`);
    process.exit(1);
  }
}

// The `# expect-error: TEXT` lines of each document (documents split at `---` lines, as YAML's
// own parser splits them for these plain fixture files).
function expectationsPerDocument(text) {
  const chunks = text.split(/^---[ \t]*$/m);
  return chunks.map((c) => [...c.matchAll(/^#\s*expect-error:\s*(.+?)\s*$/gm)].map((m) => m[1]));
}

// ---- the objects --------------------------------------------------------------------------

// Each input is one set of objects, applied together: references resolve within it.
const objects = []; // {set, source, index, obj, expect}
const errors = []; // {at: object entry or null, message}
let parseFailed = false;

for (const input of inputs) {
  const { name, text } = readInput(input);
  const expects = opts.expectInvalid ? expectationsPerDocument(text) : [];
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  docs.forEach((doc, i) => {
    if (doc.errors.length) {
      parseFailed = true;
      errors.push({ at: null, message: `${name}: document ${i + 1}: ${doc.errors[0].message}` });
      return;
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) return; // an empty document
    objects.push({ set: input, source: name, index: i + 1, obj, expect: expects[i] || [] });
  });
}

function describe(entry) {
  const o = entry.obj || {};
  const md = (o && o.metadata) || {};
  const id = `${o.kind || "?"} ${md.namespace ? md.namespace + "/" : ""}${md.name || "?"}`;
  return `${entry.source}: document ${entry.index} (${id})`;
}
function fail(entry, message) {
  errors.push({ at: entry, message });
}

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const groupOf = (apiVersion) => (apiVersion.includes("/") ? apiVersion.split("/")[0] : "");
const versionOf = (apiVersion) => apiVersion.split("/").pop();

// ---- schemas of built-in kinds (kubernetes-models) ----------------------------------------

const modelModules = new Map();
async function builtinModel(apiVersion, kind) {
  if (!/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion)) return null;
  if (!modelModules.has(apiVersion)) {
    let mod = null;
    try {
      mod = await import(`kubernetes-models/${apiVersion}`);
    } catch (e) {
      if (e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && e.code !== "ERR_MODULE_NOT_FOUND") throw e;
    }
    modelModules.set(apiVersion, mod);
  }
  const mod = modelModules.get(apiVersion);
  const cls = mod && mod[kind];
  return cls && cls.apiVersion === apiVersion && cls.kind === kind ? cls : null;
}

// A deep copy of `value` whose objects are proxies recording which keys were read, and
// whether their keys were enumerated. A schema validator reads every property its schema
// declares; a key of an object nobody enumerated that was never read is unknown to the schema.
// Objects the validator never looked into at all (free-form JSON, e.g. a default value) are
// not judged.
function tracked(value, at, records) {
  if (!value || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v, i) => tracked(v, `${at}[${i}]`, records));
  const rec = { at, keys: Object.keys(value), read: new Set(), enumerated: false };
  records.push(rec);
  const copy = {};
  for (const k of rec.keys) copy[k] = tracked(value[k], at ? `${at}.${k}` : k, records);
  return new Proxy(copy, {
    get(t, p, r) {
      if (typeof p === "string") rec.read.add(p);
      return Reflect.get(t, p, r);
    },
    has(t, p) {
      if (typeof p === "string") rec.read.add(p);
      return Reflect.has(t, p);
    },
    ownKeys(t) {
      rec.enumerated = true;
      return Reflect.ownKeys(t);
    },
    getOwnPropertyDescriptor(t, p) {
      if (typeof p === "string") rec.read.add(p);
      return Reflect.getOwnPropertyDescriptor(t, p);
    },
  });
}

// Runs a kubernetes-models class's validator on `data`; returns error strings.
function runModel(cls, data, prefix = "") {
  const records = [];
  const proxy = tracked(data, prefix, records);
  try {
    cls.prototype.validate.call(proxy);
  } catch (e) {
    if (!e || !e.errors) throw e;
    return e.errors.map((err) => `${prefix}${err.instancePath || "/"} ${err.message}`);
  }
  const out = [];
  for (const r of records) {
    if (r.enumerated || r.read.size === 0) continue;
    for (const k of r.keys)
      // x-kubernetes-* (a CRD schema's extensions) are missing from kubernetes-models' schema
      // of JSONSchemaProps; the API server knows them.
      // `description` of a schema or a printer column is documentation the validator does not
      // read; the API server accepts it there.
      if (!r.read.has(k) && !k.startsWith("x-kubernetes-") &&
          !(k === "description" && /openAPIV3Schema|additionalPrinterColumns/.test(r.at || "")))
        out.push(`unknown field "${r.at ? r.at + "." : ""}${k}"`);
  }
  return out;
}

// ---- schemas of custom resources (their CRDs, ajv) ----------------------------------------

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });

// A CRD's structural schema as a JSON schema ajv runs with Kubernetes' semantics: unknown
// fields are errors unless preserved, int-or-string is either, embedded resources carry
// apiVersion/kind/metadata. `nullable` is understood by ajv itself.
function toAjv(schema, top = false) {
  if (!isMap(schema)) return schema;
  const s = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith("x-kubernetes-")) continue;
    if (k === "properties" || k === "patternProperties") {
      s[k] = Object.fromEntries(Object.entries(v).map(([p, ps]) => [p, toAjv(ps)]));
    } else if (k === "items" || k === "not" || k === "additionalItems") {
      s[k] = Array.isArray(v) ? v.map((x) => toAjv(x)) : toAjv(v);
    } else if (k === "additionalProperties") {
      s[k] = typeof v === "boolean" ? v : toAjv(v);
    } else if (k === "allOf" || k === "anyOf" || k === "oneOf") {
      s[k] = v.map((x) => toAjv(x));
    } else {
      s[k] = v;
    }
  }
  if (schema["x-kubernetes-int-or-string"]) {
    delete s.type;
    s.anyOf = [...(s.anyOf || []), { type: "integer" }, { type: "string" }];
  }
  if (top || schema["x-kubernetes-embedded-resource"]) {
    // The API server validates metadata itself, whatever the CRD's schema says of it.
    s.properties = {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      ...(s.properties || {}),
      metadata: { type: "object" },
    };
  }
  const object = s.type === "object" || (!s.type && s.properties);
  if (object && !schema["x-kubernetes-preserve-unknown-fields"] && s.additionalProperties === undefined)
    s.additionalProperties = false;
  return s;
}

const crds = new Map(); // "group/Kind" -> CRD object
const crValidators = new Map();
function crValidator(apiVersion, kind) {
  const crd = crds.get(`${groupOf(apiVersion)}/${kind}`);
  if (!crd) return null;
  const key = `${apiVersion}/${kind}`;
  if (!crValidators.has(key)) {
    const v = (crd.spec.versions || []).find((x) => x.name === versionOf(apiVersion));
    if (!v || !v.served) {
      crValidators.set(key, { error: `version ${versionOf(apiVersion)} is not served by CRD ${crd.metadata.name}` });
    } else {
      const schema = (v.schema && v.schema.openAPIV3Schema) || { type: "object", "x-kubernetes-preserve-unknown-fields": true };
      crValidators.set(key, { crd, validate: ajv.compile(toAjv(schema, true)) });
    }
  }
  return crValidators.get(key);
}

// ---- checks beyond the schema -------------------------------------------------------------

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CLUSTER_SCOPED = new Set([
  "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
  "CustomResourceDefinition", "StorageClass", "PriorityClass", "RuntimeClass", "IngressClass",
  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "CSIDriver",
  "CSINode", "VolumeAttachment",
]);
const LABEL_NAMES = new Set(["Namespace", "Service"]); // names that must be DNS-1123 labels
const PATH_NAMES = new Set(["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]);
const EXISTING_NAMESPACES = new Set(["default", "kube-system", "kube-public", "kube-node-lease"]);
const BUILTIN_CLUSTER_ROLES = new Set(["cluster-admin", "admin", "edit", "view"]);
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);

function selectorMatches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

function checkMeta(entry) {
  const { obj } = entry;
  const md = obj.metadata || {};
  const name = md.name;
  if (typeof name !== "string" || !name) return fail(entry, "metadata.name is required");
  const ok = PATH_NAMES.has(obj.kind)
    ? !/[/%]/.test(name) && name !== "." && name !== ".."
    : LABEL_NAMES.has(obj.kind)
      ? DNS_LABEL.test(name) && name.length <= 63
      : DNS_SUBDOMAIN.test(name) && name.length <= 253;
  if (!ok)
    fail(entry, `metadata.name "${name}" is not a valid ${obj.kind} name (lowercase DNS-1123 ${LABEL_NAMES.has(obj.kind) ? "label" : "subdomain"})`);
  const crd = crds.get(`${groupOf(obj.apiVersion)}/${obj.kind}`);
  const clusterScoped = crd ? crd.spec.scope === "Cluster" : CLUSTER_SCOPED.has(obj.kind);
  if (clusterScoped && md.namespace) fail(entry, `${obj.kind} is cluster-scoped: metadata.namespace must not be set`);
  if (!clusterScoped && !md.namespace)
    fail(entry, `${obj.kind} is namespaced: metadata.namespace must be set (or it lands in the kubectl context's namespace)`);
}

function podTemplateOf(obj) {
  if (WORKLOADS.has(obj.kind)) return obj.spec?.template;
  if (obj.kind === "CronJob") return obj.spec?.jobTemplate?.spec?.template;
  if (obj.kind === "Pod") return obj;
  return null;
}

function checkReferences(entries) {
  const byKey = new Map();
  for (const e of entries) {
    const md = e.obj.metadata || {};
    byKey.set(`${e.obj.kind}/${md.namespace || ""}/${md.name}`, e);
  }
  const has = (kind, ns, name) => byKey.has(`${kind}/${ns || ""}/${name}`);
  const templates = entries
    .map((e) => ({ e, t: podTemplateOf(e.obj) }))
    .filter((x) => x.t)
    .map((x) => ({ ns: x.e.obj.metadata.namespace, labels: x.t.metadata?.labels || {} }));
  const namespaces = new Set(entries.filter((e) => e.obj.kind === "Namespace").map((e) => e.obj.metadata.name));

  for (const e of entries) {
    const { obj } = e;
    const ns = obj.metadata.namespace;
    if (ns && !namespaces.has(ns) && !EXISTING_NAMESPACES.has(ns))
      fail(e, `namespace "${ns}" is neither created here nor one every cluster has`);

    if (WORKLOADS.has(obj.kind) && obj.kind !== "Job") {
      const sel = obj.spec?.selector?.matchLabels || {};
      const labels = obj.spec?.template?.metadata?.labels || {};
      if (!selectorMatches(sel, labels)) fail(e, "spec.selector does not match spec.template.metadata.labels");
    }
    if (obj.kind === "Service" && obj.spec?.selector && !templates.some((t) => t.ns === ns && selectorMatches(obj.spec.selector, t.labels)))
      fail(e, "spec.selector selects no pod template here: the Service would have no endpoints");
    if (obj.kind === "PodDisruptionBudget") {
      const sel = obj.spec?.selector?.matchLabels || {};
      if (!templates.some((t) => t.ns === ns && selectorMatches(sel, t.labels)))
        fail(e, "spec.selector selects no pod template here: the budget protects nothing");
    }
    if (obj.kind === "Role" || obj.kind === "ClusterRole") {
      (obj.rules || []).forEach((r, i) => {
        for (const field of ["verbs", "resources", "apiGroups"])
          if ((r[field] || []).includes("*")) fail(e, `rules[${i}].${field}: "*" grants everything; list what is needed`);
      });
    }
    if (obj.kind === "RoleBinding" || obj.kind === "ClusterRoleBinding") {
      const ref = obj.roleRef || {};
      const found = ref.kind === "ClusterRole"
        ? has("ClusterRole", "", ref.name) || BUILTIN_CLUSTER_ROLES.has(ref.name) || String(ref.name).startsWith("system:")
        : has("Role", ns, ref.name);
      if (!found) fail(e, `roleRef: no ${ref.kind} named "${ref.name}"${ref.kind === "Role" ? ` in namespace ${ns}` : ""}`);
      if (obj.kind === "ClusterRoleBinding" && ref.kind !== "ClusterRole") fail(e, "roleRef: a ClusterRoleBinding can only refer to a ClusterRole");
      for (const s of obj.subjects || [])
        if (s.kind === "ServiceAccount" && !has("ServiceAccount", s.namespace, s.name) && s.name !== "default")
          fail(e, `subjects: no ServiceAccount ${s.namespace}/${s.name} here`);
    }
    const t = podTemplateOf(obj);
    if (t && t.spec) {
      const spec = t.spec;
      if (spec.serviceAccountName && spec.serviceAccountName !== "default" && !has("ServiceAccount", ns, spec.serviceAccountName))
        fail(e, `serviceAccountName: no ServiceAccount ${ns}/${spec.serviceAccountName} here`);
      for (const v of spec.volumes || []) {
        if (v.configMap && !v.configMap.optional && !has("ConfigMap", ns, v.configMap.name))
          fail(e, `volume ${v.name}: no ConfigMap ${ns}/${v.configMap.name} here`);
        if (v.persistentVolumeClaim && !has("PersistentVolumeClaim", ns, v.persistentVolumeClaim.claimName))
          fail(e, `volume ${v.name}: no PersistentVolumeClaim ${ns}/${v.persistentVolumeClaim.claimName} here`);
      }
      const volumes = new Set((spec.volumes || []).map((v) => v.name));
      for (const c of [...(spec.initContainers || []), ...(spec.containers || [])]) {
        const ports = new Set((c.ports || []).map((p) => p.name).filter(Boolean));
        for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
          const port = (c[probe]?.httpGet || c[probe]?.tcpSocket)?.port;
          if (typeof port === "string" && !ports.has(port)) fail(e, `container ${c.name}: ${probe} uses port "${port}", which the container does not name`);
        }
        for (const m of c.volumeMounts || [])
          if (!volumes.has(m.name)) fail(e, `container ${c.name}: volumeMount ${m.name} has no volume`);
      }
    }
  }
}

// tidegate's configuration file(s) in ConfigMaps: `tidegate check`, and agreement with the
// tidegate.io cluster objects of the same kind, namespace and name.
function checkTidegateConfig(entries) {
  const configs = entries.filter(
    (e) => e.obj.kind === "ConfigMap" && e.obj.data && typeof e.obj.data["config.yaml"] === "string" &&
      e.obj.metadata.labels && e.obj.metadata.labels["app.kubernetes.io/name"] === "tidegate",
  );
  const inFiles = new Map();
  for (const e of configs) {
    const text = e.obj.data["config.yaml"];
    if (opts.tidegate) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tidegate-manifests-"));
      const file = path.join(dir, "config.yaml");
      fs.writeFileSync(file, text);
      const r = spawnSync(opts.tidegate, ["check", "-c", file], { encoding: "utf8" });
      fs.rmSync(dir, { recursive: true, force: true });
      if (r.error) fail(e, `tidegate check: ${r.error.message}`);
      else if (r.status !== 0) fail(e, `data["config.yaml"] fails tidegate check:\n${(r.stderr || r.stdout).trim()}`);
    }
    for (const d of parseAllDocuments(text)) {
      const r = d.toJS();
      if (!isMap(r) || groupOf(r.apiVersion || "") !== "tidegate.io" || !isMap(r.metadata)) continue;
      inFiles.set(`${r.kind}/${r.metadata.namespace || "default"}/${r.metadata.name}`, r);
    }
  }
  const relevant = (m) =>
    Object.fromEntries(Object.entries(m || {}).filter(([k]) => !k.startsWith("app.kubernetes.io/") && !k.startsWith("kubectl.kubernetes.io/")).sort());
  const canonical = (v) =>
    Array.isArray(v) ? v.map(canonical) : isMap(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])])) : v;
  const same = (a, b) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
  for (const e of entries) {
    const { obj } = e;
    if (groupOf(obj.apiVersion) !== "tidegate.io") continue;
    const f = inFiles.get(`${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`);
    if (!f) continue;
    if (!same(f.spec, obj.spec)) fail(e, "spec differs from the same resource in the tidegate ConfigMap's config.yaml");
    if (!same(relevant(f.metadata.labels), relevant(obj.metadata.labels)))
      fail(e, "metadata.labels differ from the same resource in the tidegate ConfigMap's config.yaml");
    if (!same(relevant(f.metadata.annotations), relevant(obj.metadata.annotations)))
      fail(e, "metadata.annotations differ from the same resource in the tidegate ConfigMap's config.yaml");
  }
}

// ---- run ----------------------------------------------------------------------------------

// Each set alone: CRDs first (custom resources are validated against them), then every object,
// then the references between them.
async function validateSet(entries) {
  crds.clear();
  crValidators.clear();
  const valid = [];
  for (const e of entries) {
    const { obj } = e;
    if (!isMap(obj) || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string" || !isMap(obj.metadata)) {
      fail(e, "not a Kubernetes object (apiVersion, kind and metadata are required)");
      continue;
    }
    valid.push(e);
    if (obj.kind === "CustomResourceDefinition" && isMap(obj.spec) && isMap(obj.spec.names))
      crds.set(`${obj.spec.group}/${obj.spec.names.kind}`, obj);
  }
  const seen = new Set();
  for (const e of valid) {
    const { obj } = e;
    const key = `${groupOf(obj.apiVersion)}/${obj.kind}/${obj.metadata.namespace || ""}/${obj.metadata.name}`;
    if (seen.has(key)) fail(e, "the same object appears twice");
    seen.add(key);

    const before = errors.length;
    const cls = await builtinModel(obj.apiVersion, obj.kind);
    if (cls) {
      for (const m of runModel(cls, obj)) fail(e, m);
    } else {
      const v = crValidator(obj.apiVersion, obj.kind);
      if (!v) {
        fail(e, `no schema for ${obj.kind} (${obj.apiVersion}): neither a built-in kind nor defined by a CRD in the input (the ecosystem's CRDs are installed by their own projects; do not ship their objects here)`);
      } else if (v.error) {
        fail(e, v.error);
      } else {
        if (!v.validate(obj))
          for (const err of v.validate.errors) {
            const extra = err.keyword === "additionalProperties" ? ` ("${err.params.additionalProperty}")` : "";
            fail(e, `${err.instancePath || "/"} ${err.message}${extra}`);
          }
        for (const m of runModel(ObjectMeta, obj.metadata, "metadata")) fail(e, m);
      }
    }
    if (errors.length === before) checkMeta(e);
  }
  // All objects, those with schema errors too (the accessors tolerate any shape): one mistake
  // in a Deployment must not also read as "the Service selects nothing".
  checkReferences(valid);
  checkTidegateConfig(valid);
}

for (const input of inputs) await validateSet(objects.filter((e) => e.set === input));

if (opts.expectInvalid) {
  // The validator's own test: expectations met, and nothing else reported.
  let ok = !parseFailed;
  for (const e of objects) {
    const mine = errors.filter((x) => x.at === e).map((x) => x.message);
    if (!e.expect.length && mine.length) {
      ok = false;
      console.error(`UNEXPECTED ${describe(e)}: ${mine.join("; ")}`);
    }
    for (const want of e.expect) {
      if (mine.some((m) => m.includes(want))) {
        console.log(`caught   ${describe(e)}: ${want}`);
      } else {
        ok = false;
        console.error(`MISSED   ${describe(e)}: expected an error containing "${want}", got: ${mine.join("; ") || "none"}`);
      }
    }
  }
  // And the plain run of the same inputs fails, as a pipeline relying on the exit status sees it.
  const plain = spawnSync(process.execPath, [process.argv[1], ...inputs], { encoding: "utf8" });
  if (plain.status !== 1) {
    ok = false;
    console.error(`MISSED   a plain run of ${inputs.join(" ")} exited ${plain.status}, not 1`);
  } else {
    console.log(`caught   a plain run exits 1: ${plain.stderr.trim().split("\n").pop()}`);
  }
  const expected = objects.reduce((n, e) => n + e.expect.length, 0) + 1;
  console.log(ok ? `${expected} passed, 0 failed` : "validator self-test failed");
  process.exit(ok && expected > 0 ? 0 : 1);
}

for (const x of errors) console.error(x.at ? `${describe(x.at)}: ${x.message}` : x.message);
const kinds = new Map();
for (const e of objects) if (isMap(e.obj)) kinds.set(e.obj.kind, (kinds.get(e.obj.kind) || 0) + 1);
const summary = [...kinds].map(([k, n]) => `${n} ${k}`).join(", ");
if (errors.length) {
  console.error(`${errors.length} error(s) in ${objects.length} object(s)`);
  process.exit(1);
}
console.log(`${objects.length} object(s) valid: ${summary}`);
