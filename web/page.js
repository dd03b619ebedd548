// cograph's live page. It holds no data of its own: it reads GET /api/view
// and then follows GET /api/stream (server-sent events, read with fetch so
// that a bearer token can go with it), replacing what it shows with each
// document. The token, when the hub has one, is kept in sessionStorage:
// this tab only.
"use strict";

const IDLE_MARK_S = 300; // a holder idle this long is marked
const $ = (id) => document.getElementById(id);
let view = null;
let clockOffset = 0; // server clock minus ours, in ms

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function token() { return sessionStorage.getItem("cograph-token"); }
function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = token();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

function serverNow() { return Date.now() + clockOffset; }
function ago(iso) {
  const s = Math.max(0, Math.round((serverNow() - Date.parse(iso)) / 1000));
  return duration(s) + " ago";
}
function duration(s) {
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}
// The first `n` of a list, and how many more.
function few(list, n) {
  return list.slice(0, n).join(", ") + (list.length > n ? " and " + (list.length - n) + " more" : "");
}
function clock(iso) { return new Date(Date.parse(iso)).toLocaleTimeString(); }
function claim(h) {
  if (h.permits) return el("span", { class: "mode permits" }, h.permits + " permit" + (h.permits > 1 ? "s" : ""));
  return el("span", { class: "mode " + (h.mode || "") }, h.mode || "?");
}

// ---- rendering --------------------------------------------------------

function render() {
  if (!view) return;
  $("revision").textContent = "revision " + view.revision + " · " + view.root_hash.slice(0, 12);
  const nf = view.modules.reduce((n, m) => n + m.functions.length, 0);
  $("counts").textContent = view.agents.length + " agents · " + view.locks.length + " locked · " + nf + " functions";
  const r = view.rates;
  $("rates").textContent = "per min: " + [
    ["commits", r.commits], ["conflicts", r.conflicts], ["denials", r.denials],
    ["timeouts", r.timeouts], ["deadlocks", r.deadlocks],
  ].map(([k, v]) => k + " " + (Math.round(v * 10) / 10)).join(" · ");
  renderAgents();
  renderLocks();
  renderCommits();
  renderEvents();
  renderProgram();
}

function renderAgents() {
  const body = $("agents").tBodies[0];
  $("agents-count").textContent = "(" + view.agents.length + ")";
  body.replaceChildren(...(view.agents.length ? view.agents.map((a) => el("tr", { "data-agent": a.id },
    el("td", {}, el("b", {}, a.name), a.purpose ? el("div", { class: "muted" }, a.purpose) : null),
    el("td", {}, a.transport),
    el("td", { title: a.connected_since }, ago(a.connected_since)),
    el("td", { title: a.last_active, class: a.idle_s >= IDLE_MARK_S ? "idle" : null }, ago(a.last_active)),
    el("td", { class: "res" }, a.holds.map((h) => el("span", { class: "holder" }, h))),
    el("td", { class: "res" }, a.waits.map((w) => el("span", { class: "waiter" }, w))),
    el("td", {}, el("button", { class: "danger", title: "end this agent: its locks and queue places go",
      onclick: () => act({ action: "end_agent", agent: a.id }, "End agent " + a.name + " (" + a.id + ")? Its locks and queue places go at once.") }, "end")),
  )) : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "no agents connected"))]));
}

function renderLocks() {
  const body = $("locks").tBodies[0];
  $("locks-count").textContent = "(" + view.locks.length + ")";
  const now = serverNow();
  body.replaceChildren(...(view.locks.length ? view.locks.map((l) => {
    const kind = (/^(module|path|named|semaphore):/.exec(l.resource) || [null, "function"])[1];
    const oldest = l.waiters.reduce((m, w) => Math.min(m, Date.parse(w.since)), Infinity);
    return el("tr", { "data-resource": l.resource },
      el("td", { class: "res" }, el("span", { class: "kind" }, kind), l.resource,
        l.capacity ? el("div", { class: "muted" }, l.in_use + " of " + l.capacity + " permits in use") : null),
      el("td", {}, l.holders.map((h) => {
        const left = h.expires_at ? Math.max(0, Math.round((Date.parse(h.expires_at) - now) / 1000)) : null;
        const idle = (h.idle_s || 0) >= IDLE_MARK_S;
        return el("span", { class: "holder", "data-holder": h.agent_id }, claim(h), " ", el("b", {}, h.agent_name),
          h.resource ? el("span", { class: "muted" }, (h.below ? " below " : " on ") + h.resource) : null,
          h.purpose ? " — " + h.purpose : null,
          el("span", { class: "muted" }, left === null ? "" : " · " + duration(left) + " left"),
          idle ? el("span", { class: "idle", title: "the holder has been idle " + duration(h.idle_s) }, " · idle " + duration(h.idle_s)) : null);
      })),
      el("td", {}, l.waiters.map((w) => el("span", { class: "waiter" }, w.position + ". ", claim(w), " ", el("b", {}, w.agent_name),
        w.purpose ? " — " + w.purpose : null)),
        l.waiters.length ? el("div", { class: "muted" }, "oldest waiting " + duration(Math.round((now - oldest) / 1000))) : null),
      el("td", {}, l.holders.length ? el("button", { class: "danger", title: "break every lock on this resource",
        onclick: () => act({ action: "break_lock", resource: l.resource }, "Break every lock on " + l.resource + "? Holders lose it at once and their tokens stop authorising.") }, "break") : null));
  }) : [el("tr", {}, el("td", { colspan: 4, class: "empty" }, "nothing is locked"))]));
}

function renderCommits() {
  $("commits").replaceChildren(...(view.commits.length ? view.commits.map((c) => el("li", { "data-revision": c.revision, onclick: () => showDiff(c.revision), title: "show the diff" },
    el("span", { class: "rev" }, "r" + c.revision), el("b", {}, c.agent), " ",
    c.merged ? el("span", { class: "merged" }, "merged " + c.merged) : null,
    el("div", { class: "summary", title: c.summary }, c.summary),
    el("div", { class: "time" }, clock(c.at) + " · " + few(c.functions, 6)),
  )) : [el("li", { class: "empty" }, "no commits yet")]));
}

function renderEvents() {
  $("events").replaceChildren(...(view.events.length ? view.events.map((e) => el("li", { class: "ev-" + e.kind },
    el("span", { class: "time" }, clock(e.at)), el("b", {}, e.agent), " ", e.text,
  )) : [el("li", { class: "empty" }, "nothing has happened yet")]));
}

// The program: one column per module, each function a box coloured by its
// lock state, calls drawn as curves; clicking a function highlights its calls.
let selected = null;
function renderProgram() {
  const mods = view.modules;
  const nf = mods.reduce((n, m) => n + m.functions.length, 0);
  $("program-count").textContent = "(" + mods.length + " modules, " + nf + " functions)";
  const W = 190, H = 20, GAP = 4, COL = 240, TOP = 22;
  const pos = new Map();
  let height = TOP;
  mods.forEach((m, i) => m.functions.forEach((f, j) => {
    const y = TOP + j * (H + GAP);
    pos.set(f.name, { x: 8 + i * COL, y });
    height = Math.max(height, y + H + 8);
  }));
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", Math.max(8 + mods.length * COL, 300));
  svg.setAttribute("height", height);
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  mods.forEach((m, i) => svg.append(mk("text", { x: 8 + i * COL, y: 14, class: "module-label" }, m.name || "(top level)")));
  const edges = mk("g", {});
  svg.append(edges);
  for (const m of mods) for (const f of m.functions) for (const c of f.calls) {
    const a = pos.get(f.name), b = pos.get(c);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const bend = Math.max(30, Math.abs(x2 - x1) / 2);
    const d = x2 > x1 ? `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`
      : `M${a.x + W},${y1} C${a.x + W + 40},${y1} ${b.x + W + 40},${y2} ${b.x + W},${y2}`;
    edges.append(mk("path", { d, class: "edge" + (selected === f.name || selected === c ? " hot" : "") }));
  }
  for (const m of mods) for (const f of m.functions) {
    const p = pos.get(f.name);
    const g = mk("g", { class: "fn " + f.lock + (selected === f.name ? " sel" : ""), "data-function": f.name, "data-lock": f.lock, transform: `translate(${p.x},${p.y})` });
    g.append(mk("title", {}, f.name + " — " + f.lock + (f.calls.length ? "\ncalls " + f.calls.join(", ") : "")));
    g.append(mk("rect", { width: W, height: H }));
    const short = f.name.includes("::") ? f.name.slice(f.name.lastIndexOf("::") + 2) : f.name;
    g.append(mk("text", { x: 6, y: 14 }, short.length > 24 ? short.slice(0, 23) + "…" : short));
    g.addEventListener("click", () => { selected = selected === f.name ? null : f.name; renderProgram(); });
    svg.append(g);
  }
  $("program").replaceChildren(svg);
}

// ---- actions and the diff ---------------------------------------------

async function act(body, question) {
  if (!confirm(question)) return;
  const r = await fetch("/api/act", { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) alert("refused: " + (answer.error || r.status));
}

// A line diff of two texts (longest common subsequence; functions are short).
function lineDiff(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push(["  ", x[i]]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] > L[i + 1][j])) { out.push(["+ ", y[j]]); j++; }
    else { out.push(["- ", x[i]]); i++; }
  }
  return out;
}

async function showDiff(revision) {
  const r = await fetch("/api/commit/" + revision, { headers: headers() });
  const c = await r.json();
  const box = $("diff");
  if (!r.ok) { box.replaceChildren(el("p", { class: "bad" }, c.error || "no such commit")); $("diff-dialog").showModal(); return; }
  box.replaceChildren(
    el("h2", { "data-diff-revision": c.revision }, "Revision " + c.revision + " by " + c.agent),
    el("p", {}, c.summary, el("span", { class: "muted" }, " · " + clock(c.at))),
    ...c.functions.map((f) => {
      const lines = f.change === "changed" ? lineDiff(f.before, f.after)
        : (f.after || f.before || "").split("\n").map((l) => [f.change === "created" ? "+ " : "- ", l]);
      return el("div", { class: "fn-diff", "data-function": f.name },
        el("h3", {}, f.name, el("span", { class: "muted" }, " " + f.change)),
        el("pre", {}, lines.map(([s, l]) => el("span", { class: s === "+ " ? "add" : s === "- " ? "del" : null }, s + l + "\n"))),
        f.diff.length ? el("div", { class: "muted" }, f.diff.join(" · ")) : null);
    }));
  $("diff-dialog").showModal();
}

// ---- the stream -------------------------------------------------------

function setLive(on, text) {
  const e = $("live");
  e.className = "pill " + (on ? "on" : "off");
  e.textContent = text;
}

function accept(doc) {
  view = doc;
  clockOffset = Date.parse(doc.now) - Date.now();
  window.cographViews = (window.cographViews || 0) + 1; // for tests: documents received
  render();
}

async function follow() {
  for (let backoff = 500; ; backoff = Math.min(backoff * 2, 8000)) {
    try {
      const r = await fetch("/api/stream", { headers: headers() });
      if (r.status === 401) { askToken(token() ? "the token was refused" : ""); return; }
      if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
      $("token-form").hidden = true;
      $("main").hidden = false;
      setLive(true, "live");
      backoff = 500;
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = "message", data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (event === "view" && data) accept(JSON.parse(data));
          if (event === "problem") setLive(false, "hub: " + JSON.parse(data).error);
        }
      }
    } catch (e) {
      // The hub restarted or the network dropped: try again.
    }
    setLive(false, "reconnecting…");
    await new Promise((ok) => setTimeout(ok, backoff));
  }
}

function askToken(message) {
  $("main").hidden = true;
  $("token-form").hidden = false;
  $("token-error").textContent = message || "";
  setLive(false, "token needed");
  $("token").focus();
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("cograph-token", $("token").value);
  follow();
});

// Lease countdowns and ages move with the clock, not only with changes.
setInterval(() => { if (view && !document.hidden) { renderAgents(); renderLocks(); } }, 1000);
follow();
