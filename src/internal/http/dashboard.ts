/**
 * The dashboard: one self-contained page (no build step, no framework, nothing fetched from elsewhere) served at `/`.
 * A table of tasks whose progress bars move with one Server-Sent Events stream (`/api/events`), filters by status and
 * kind, a form to start a task of a known kind, and a task's detail — its own event stream, the log tail, the result
 * or failure, and pause, resume and cancel. Text is set with `textContent` only (task data never becomes markup); the
 * token, when the server wants one, is kept in the browser's local storage and sent as a header.
 */

import { createHash } from "node:crypto"

const style = `
:root { font-family: system-ui, sans-serif; line-height: 1.4; color: #111; background: #fff; }
*, *::before, *::after { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 0.75rem; }
h1 { font-size: 1.3rem; margin: 0 0 0.5rem; }
h2 { font-size: 1.1rem; margin: 1rem 0 0.4rem; }
h3 { font-size: 1rem; margin: 0.8rem 0 0.3rem; }
form, .actions { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; }
input, select, textarea, button { font: inherit; padding: 0.3rem 0.5rem; border: 1px solid #555; border-radius: 4px; }
button { background: #eee; cursor: pointer; }
button:disabled { cursor: default; opacity: 0.5; }
textarea { width: 100%; min-height: 3rem; font-family: ui-monospace, monospace; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 0.3rem 0.4rem; border-bottom: 1px solid #ccc; vertical-align: middle; }
td.progress { min-width: 10rem; }
progress { width: 100%; height: 1rem; }
.id { font-family: ui-monospace, monospace; word-break: break-all; }
.link { border: none; background: none; padding: 0; text-decoration: underline; color: inherit; text-align: left; }
pre { background: #f4f4f4; padding: 0.5rem; overflow: auto; max-height: 20rem; white-space: pre-wrap; }
[role=alert]:not(:empty) { border: 2px solid #000; padding: 0.3rem; font-weight: bold; }
.full { flex-basis: 100%; }
.status { font-weight: bold; text-transform: uppercase; font-size: 0.85rem; }
@media (max-width: 640px) { .wide { display: none; } td.progress { min-width: 6rem; } }
`

const script = `
"use strict";
const $ = (id) => document.getElementById(id);
const tokenKey = "vltask-token";
const token = () => localStorage.getItem(tokenKey) || "";
const authHeaders = () => (token() ? { authorization: "Bearer " + token() } : {});

const showAuth = (message) => { $("auth").hidden = false; $("auth-error").textContent = message || ""; };

async function api(method, path, body) {
  const headers = { ...authHeaders(), ...(body === undefined ? {} : { "content-type": "application/json" }) };
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data;
  try { data = text === "" ? undefined : JSON.parse(text); } catch { data = undefined; }
  if (response.status === 401) showAuth(data && data.message);
  if (!response.ok) throw new Error((data && data.message) || response.status + " " + response.statusText);
  return data;
}

/** Reads a Server-Sent Events stream with fetch (EventSource cannot send the token), until aborted or ended. */
async function follow(path, onEvent, signal) {
  const response = await fetch(path, { headers: authHeaders(), signal });
  if (response.status === 401) { showAuth("This server needs a token."); return; }
  if (!response.ok || response.body === null) throw new Error(response.status + " " + response.statusText);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = /^event: (.*)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      if (name && data) onEvent(name[1], JSON.parse(data[1]));
    }
  }
}

const number = (n) => n.toLocaleString("en-US");
const progressText = (p) => {
  if (p.total === undefined) return number(p.done);
  const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0;
  return pct + "%  " + number(p.done) + "/" + number(p.total);
};
const ago = (t) => {
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 60 ? s + "s ago" : s < 3600 ? Math.floor(s / 60) + "m ago" : s < 86400 ? Math.floor(s / 3600) + "h ago" : Math.floor(s / 86400) + "d ago";
};
const statusOf = (t) => (t.stale ? t.status + " (stale)" : t.status);
const setBar = (bar, p) => {
  if (p.total === undefined || p.total === 0) { bar.removeAttribute("value"); bar.max = 1; }
  else { bar.max = p.total; bar.value = Math.min(p.done, p.total); }
};
const cell = (text, className) => {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text !== undefined) td.textContent = text;
  return td;
};

function canPause(t) { return t.status === "running" || t.status === "pending"; }
function canResume(t) { return t.resumable; }
function canCancel(t) { return ["pending", "running", "paused", "failed"].includes(t.status); }

async function act(id, action) {
  try { const info = await api("POST", "/api/tasks/" + encodeURIComponent(id) + "/" + action); if (current === id) renderDetail(info); }
  catch (e) { $("list-error").textContent = e.message; }
}

function actions(t) {
  const box = document.createElement("div");
  box.className = "actions";
  for (const [action, label, allowed] of [["pause", "Pause", canPause(t)], ["resume", "Resume", canResume(t)], ["cancel", "Cancel", canCancel(t)]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.dataset.action = action;
    button.disabled = !allowed;
    button.addEventListener("click", () => act(t.id, action));
    box.append(button);
  }
  return box;
}

function renderRows(page) {
  const rows = $("rows");
  rows.replaceChildren();
  for (const t of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.id = t.id;
    tr.dataset.status = t.status;
    const idCell = cell(undefined, "id");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = t.id;
    open.addEventListener("click", () => openTask(t.id));
    idCell.append(open);
    const progress = cell(undefined, "progress");
    const bar = document.createElement("progress");
    setBar(bar, t.progress);
    const label = document.createElement("div");
    label.className = "progress-text";
    label.textContent = progressText(t.progress) + (t.progress.message ? "  " + t.progress.message : "");
    progress.append(bar, label);
    const controls = cell();
    controls.append(actions(t));
    tr.append(idCell, cell(t.kind, "wide"), cell(statusOf(t), "status"), progress, cell(ago(t.updatedAt), "wide"), controls);
    rows.append(tr);
  }
  $("empty").hidden = page.items.length > 0;
  $("more").textContent = page.next === undefined ? "" : "More tasks after " + page.next + " (narrow the filters).";
}

let listController;
function followList() {
  if (listController) listController.abort();
  listController = new AbortController();
  const params = new URLSearchParams();
  const status = $("filter-status").value;
  const kind = $("filter-kind").value.trim();
  if (status) params.set("status", status);
  if (kind) params.set("kind", kind);
  params.set("limit", "100");
  const signal = listController.signal;
  const run = () => follow("/api/events?" + params, (name, page) => { if (name === "tasks") { $("list-error").textContent = ""; renderRows(page); } }, signal)
    .catch((e) => { if (!signal.aborted) $("list-error").textContent = "Lost the server: " + e.message; })
    .finally(() => { if (!signal.aborted) setTimeout(run, 2000); });
  run();
}

let current;
let detailController;
async function loadLogs(id) {
  try {
    const lines = await api("GET", "/api/tasks/" + encodeURIComponent(id) + "/logs");
    $("d-logs").textContent = lines.slice(-50).map((l) => new Date(l.time).toISOString().slice(11, 19) + " " + l.level + " " + l.message).join("\\n");
  } catch (e) { $("d-logs").textContent = e.message; }
}
async function loadResult(id) {
  try { $("d-result").textContent = JSON.stringify((await api("GET", "/api/tasks/" + encodeURIComponent(id) + "/result")).result, null, 2); }
  catch (e) { $("d-result").textContent = e.message; }
}
function renderDetail(t) {
  $("d-id").textContent = t.id;
  $("d-kind").textContent = t.kind;
  $("d-status").textContent = statusOf(t);
  $("d-reason").textContent = t.reason ? "— " + t.reason : "";
  setBar($("d-bar"), t.progress);
  $("d-progress").textContent = progressText(t.progress);
  $("d-message").textContent = t.progress.message || "";
  $("d-failure").textContent = t.failure ? t.failure.kind + ": " + t.failure.message : "";
  $("d-failure-box").hidden = !t.failure;
  $("d-result-box").hidden = t.status !== "completed";
  $("d-actions").replaceChildren(actions(t));
  $("detail").dataset.status = t.status;
}
function openTask(id) {
  current = id;
  $("detail").hidden = false;
  $("d-result").textContent = "";
  $("d-logs").textContent = "";
  if (detailController) detailController.abort();
  detailController = new AbortController();
  let lastLogs = 0;
  follow("/api/tasks/" + encodeURIComponent(id) + "/events", (name, t) => {
    if (id !== current) return;
    renderDetail(t);
    if (Date.now() - lastLogs > 1000 || name === "end") { lastLogs = Date.now(); loadLogs(id); }
    if (t.status === "completed") loadResult(id);
  }, detailController.signal).catch((e) => { if (id === current && !detailController.signal.aborted) $("d-message").textContent = e.message; });
  $("detail").scrollIntoView();
}

async function loadKinds() {
  try {
    const kinds = await api("GET", "/api/kinds");
    $("kind").replaceChildren(...kinds.map((k) => { const o = document.createElement("option"); o.value = k; o.textContent = k; return o; }));
    $("start").hidden = kinds.length === 0;
  } catch { /* shown by the list */ }
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("start-error").textContent = "";
  let input;
  try { input = JSON.parse($("input").value || "{}"); } catch (e) { $("start-error").textContent = "The input is not JSON: " + e.message; return; }
  const id = $("task-id").value.trim();
  try {
    const info = await api("POST", "/api/tasks", { kind: $("kind").value, input, ...(id ? { id } : {}) });
    openTask(info.id);
  } catch (e) { $("start-error").textContent = e.message; }
});
$("filters").addEventListener("change", followList);
$("filters").addEventListener("submit", (e) => { e.preventDefault(); followList(); });
$("d-close").addEventListener("click", () => { current = undefined; if (detailController) detailController.abort(); $("detail").hidden = true; });
$("auth-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem(tokenKey, $("token").value);
  $("auth").hidden = true;
  loadKinds();
  followList();
});
loadKinds();
followList();
`

/**
 * The page's Content-Security-Policy: its own inline script and style (by hash) and calls to its own origin, nothing
 * else — no other script can run in it, and it can send nothing elsewhere.
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src 'sha256-${createHash("sha256").update(script).digest("base64")}'`,
  `style-src 'sha256-${createHash("sha256").update(style).digest("base64")}'`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

/** The dashboard's page. */
export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vltask</title>
<link rel="icon" href="data:,">
<style>${style}</style>
</head>
<body>
<header>
  <h1>vltask</h1>
  <form id="filters" aria-label="Filters">
    <label>Status <select id="filter-status">
      <option value="">any</option><option>pending</option><option>running</option><option>paused</option>
      <option>completed</option><option>failed</option><option>cancelled</option>
    </select></label>
    <label>Kind <input id="filter-kind" size="12" placeholder="any"></label>
  </form>
</header>
<section id="auth" hidden>
  <h2>Token</h2>
  <form id="auth-form"><label>This server needs a token: <input id="token" type="password" autocomplete="off"></label><button>Use it</button></form>
  <p id="auth-error" role="alert"></p>
</section>
<section id="start" hidden>
  <h2>Start a task</h2>
  <form id="start-form">
    <label>Kind <select id="kind"></select></label>
    <label>Id <input id="task-id" size="14" placeholder="generated"></label>
    <label class="full">Input (JSON) <textarea id="input">{}</textarea></label>
    <button id="start-button">Start</button>
  </form>
  <p id="start-error" role="alert"></p>
</section>
<section id="detail" hidden aria-live="polite">
  <h2>Task <span id="d-id" class="id"></span></h2>
  <p><span id="d-kind"></span> — <span id="d-status" class="status"></span> <span id="d-reason"></span></p>
  <progress id="d-bar"></progress>
  <p><span id="d-progress"></span> <span id="d-message"></span></p>
  <div id="d-actions"></div>
  <div id="d-result-box" hidden><h3>Result</h3><pre id="d-result"></pre></div>
  <div id="d-failure-box" hidden><h3>Failure</h3><pre id="d-failure"></pre></div>
  <h3>Log</h3><pre id="d-logs"></pre>
  <button id="d-close" type="button">Close</button>
</section>
<section>
  <h2>Tasks</h2>
  <p id="list-error" role="alert"></p>
  <table>
    <thead><tr><th>Id</th><th class="wide">Kind</th><th>Status</th><th>Progress</th><th class="wide">Updated</th><th>Actions</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <p id="empty" hidden>No tasks.</p>
  <p id="more"></p>
</section>
<script>${script}</script>
</body>
</html>
`
