// yard console: polls the JSON API every two seconds, keeps a few minutes of history in the
// page and draws it with uPlot. No framework: each page is a function that renders HTML from
// the latest poll and feeds its charts; buttons carry data-action attributes.

const POLL_MS = 2000;
const HISTORY = 150; // points kept per series: five minutes at one poll every two seconds

// ---- the API ------------------------------------------------------------------------------

// The session (GET /console/session): the user, their tags and the CSRF token every request
// carries (state-changing requests made with the session cookie need it).
let session = { name: "", tags: [], csrf_token: "" };

async function api(path, init = {}) {
  const headers = { ...(init.headers || {}), "X-CSRF-Token": session.csrf_token || "-" };
  const resp = await fetch(path, { credentials: "same-origin", ...init, headers });
  if (resp.status === 401 && !resp.headers.get("WWW-Authenticate")) {
    location.href = "/console/login"; // the session ended
    throw new Error("logged out");
  }
  if (resp.status === 404 && !init.method) return null; // endpoint or object missing
  if (!resp.ok) {
    let reason = resp.statusText;
    try { reason = (await resp.json()).reason || reason; } catch { /* not JSON */ }
    throw new Error(`${init.method || "GET"} ${path}: ${resp.status} ${reason}`);
  }
  return resp.status === 204 ? null : resp.json();
}

const enc = encodeURIComponent;

// ---- history and rates ----------------------------------------------------------------------

const series = new Map(); // key -> {t: [], v: []}
const counters = new Map(); // key -> {t, v}: the last sample of a counter

function record(key, t, v) {
  let s = series.get(key);
  if (!s) series.set(key, (s = { t: [], v: [] }));
  s.t.push(t);
  s.v.push(v);
  if (s.t.length > HISTORY) { s.t.shift(); s.v.shift(); }
}

// rate turns a counter into a per-second rate since its last sample (null at first).
function rate(key, t, v) {
  const prev = counters.get(key);
  counters.set(key, { t, v });
  if (!prev || t <= prev.t) return null;
  return Math.max(0, (v - prev.v) / (t - prev.t));
}

// aligned builds uPlot's data for some series keys over the union of their times.
function aligned(keys) {
  const times = [...new Set(keys.flatMap((k) => series.get(k)?.t ?? []))].sort((a, b) => a - b);
  const data = [times];
  for (const k of keys) {
    const s = series.get(k);
    const byT = new Map(s ? s.t.map((t, i) => [t, s.v[i]]) : []);
    data.push(times.map((t) => (byT.has(t) ? byT.get(t) : null)));
  }
  return data;
}

// ---- the poll -------------------------------------------------------------------------------

let state = { overview: null, topics: [], groups: [], queues: [], connections: [], at: 0 };
let showInternal = false; // the Topics page lists internal topics too

// userTopics are the clients' topics: all but the internal ones (__consumer_offsets).
function userTopics() { return state.topics.filter((t) => !t.internal); }
let lastSample = 0;

async function poll() {
  const [overview, topics, groups, queues, connections] = await Promise.all([
    api("/api/overview"), api("/api/kafka/topics"), api("/api/kafka/groups"),
    api("/api/queues"), api("/api/connections"),
  ]);
  const t = Date.now() / 1000;
  state = { overview, topics: topics || [], groups: groups || [], queues: queues || [], connections: connections || [], at: t };
  // A poll right after another (an action, a page change) shows the news but adds no point:
  // a rate over a fraction of a second is mostly noise.
  if (t - lastSample < 1) return;
  lastSample = t;

  // Kafka: produced messages and bytes from the log end offsets and sizes; consumed from the
  // groups' committed offsets.
  let ends = 0, bytes = 0;
  for (const tp of state.topics) {
    let tEnd = 0;
    for (const p of tp.partitions) tEnd += p.end_offset;
    ends += tEnd;
    bytes += tp.size_bytes;
    record(`topic:${tp.name}:msgs`, t, rate(`topic:${tp.name}:end`, t, tEnd));
    record(`topic:${tp.name}:bytes`, t, rate(`topic:${tp.name}:size`, t, tp.size_bytes));
  }
  let committed = 0;
  for (const g of state.groups) {
    for (const p of g.partitions) {
      if (p.committed_offset >= 0) committed += p.committed_offset;
      record(`lag:${g.name}:${p.topic}:${p.partition}`, t, Math.max(0, p.lag));
    }
    record(`grouplag:${g.name}`, t, g.lag);
  }
  record("kafka:in", t, rate("kafka:end", t, ends));
  record("kafka:bytes", t, rate("kafka:size", t, bytes));
  record("kafka:out", t, rate("kafka:committed", t, committed));

  // AMQP: every queue's depth, and its published and delivered rates from the counters of
  // RabbitMQ's message_stats; summed over the queues for the overview.
  let depth = 0, published = 0, delivered = 0;
  for (const q of state.queues) {
    const k = `queue:${q.vhost}:${q.name}`;
    const ms = q.message_stats || {};
    depth += q.messages;
    published += ms.publish || 0;
    delivered += ms.deliver_get || 0;
    record(`${k}:depth`, t, q.messages);
    record(`${k}:in`, t, rate(`${k}:publish`, t, ms.publish || 0));
    record(`${k}:out`, t, rate(`${k}:deliver`, t, ms.deliver_get || 0));
  }
  record("amqp:depth", t, depth);
  record("amqp:publish", t, rate("amqp:publish", t, published));
  record("amqp:deliver", t, rate("amqp:deliver", t, delivered));
}

// ---- charts ---------------------------------------------------------------------------------

const COLORS = ["#2f6fde", "#e0851f", "#2e9d5b", "#c93535", "#8a4fd1", "#1aa3a3", "#b0762c", "#d14f9a"];
const charts = new Map(); // element id -> {plot, sig}

function fmtNum(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function fmtBytes(v) {
  if (v === null || v === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  const digits = i === 0 || Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return v.toFixed(digits) + " " + units[i];
}

function yRange(u, min, max) {
  const lo = Math.min(0, min ?? 0), hi = Math.max(1, max ?? 0);
  return [lo < 0 ? lo * 1.1 : 0, hi * 1.1];
}

// chart draws (or updates) a time chart of the series lines ([{key, label}]) in the element
// with the given id; bytes: the values are bytes.
function chart(id, lines, bytes = false) {
  const el = document.getElementById(id);
  if (!el) return;
  const sig = lines.map((l) => l.key + "|" + l.label).join(",");
  const data = aligned(lines.map((l) => l.key));
  let c = charts.get(id);
  if (c && (c.sig !== sig || c.plot.root.parentNode !== el)) { c.plot.destroy(); c = null; }
  if (!c) {
    const opts = {
      width: Math.max(300, el.clientWidth), height: 220,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: {
        // At least a minute wide, so that a fresh page has sensible ticks; y from zero.
        x: { time: true, range: (u, min, max) => [Math.min(min, max - 60), max] },
        y: { range: yRange },
      },
      series: [{}, ...lines.map((l, i) => ({
        label: l.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
      }))],
      axes: [{}, { values: (u, vs) => vs.map(bytes ? fmtBytes : fmtNum), size: bytes ? 72 : 56 }],
    };
    el.innerHTML = "";
    c = { plot: new uPlot(opts, data, el), sig };
    charts.set(id, c);
  } else {
    c.plot.setData(data);
  }
}

window.addEventListener("resize", () => {
  for (const [id, c] of charts) {
    const el = document.getElementById(id);
    if (el) c.plot.setSize({ width: Math.max(300, el.clientWidth), height: 220 });
  }
});

// ---- pages ----------------------------------------------------------------------------------

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
}

const tile = (label, value, id) => `<div class="tile"${id ? ` id="${id}"` : ""}><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div></div>`;
const table = (head, rows, empty) => rows.length === 0 ? `<div class="empty">${esc(empty)}</div>`
  : `<table><thead><tr>${head.map((h) => `<th class="${h.num ? "num" : ""}">${esc(h.label ?? h)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
const last = (key) => { const s = series.get(key); return s ? s.v[s.v.length - 1] : null; };

const pages = {
  overview() {
    const o = state.overview || {};
    const kafkaConns = state.connections.filter((c) => c.protocol === "Kafka").length;
    // Internal topics (__consumer_offsets, as Kafka's tools mark them) are not counted.
    const partitions = userTopics().reduce((n, t) => n + t.partitions.length, 0);
    const lag = state.groups.reduce((n, g) => n + Math.max(0, g.lag), 0);
    return {
      html: `<h1>Overview</h1>
      <div class="tiles">
        ${tile("Kafka msg/s in", fmtNum(last("kafka:in")))}
        ${tile("Kafka bytes/s in", fmtBytes(last("kafka:bytes")))}
        ${tile("AMQP msg/s in", fmtNum(last("amqp:publish")))}
        ${tile("Topics", userTopics().length)}
        ${tile("Partitions", partitions)}
        ${tile("Consumer groups", state.groups.length)}
        ${tile("Total lag", fmtNum(lag), "total-lag")}
        ${tile("Queues", state.queues.length)}
        ${tile("Queued messages", fmtNum(o.queue_totals?.messages ?? last("amqp:depth")))}
        ${tile("AMQP connections", state.connections.length - kafkaConns)}
        ${tile("Kafka connections", kafkaConns)}
      </div>
      <div class="grid2">
        <div class="panel"><h2>Kafka: messages per second</h2><div class="chart" id="c-kafka"></div></div>
        <div class="panel"><h2>Kafka: bytes produced per second</h2><div class="chart" id="c-kafka-bytes"></div></div>
        <div class="panel"><h2>AMQP: messages per second</h2><div class="chart" id="c-amqp"></div></div>
        <div class="panel"><h2>AMQP: messages queued</h2><div class="chart" id="c-amqp-depth"></div></div>
      </div>
      <p class="muted">${esc(o.product_name || "yard")} ${esc(o.product_version || "")} · node ${esc(o.node || "")} · updated every ${POLL_MS / 1000} s</p>`,
      charts() {
        chart("c-kafka", [
          { key: "kafka:in", label: "produced msg/s" },
          { key: "kafka:out", label: "committed msg/s" },
        ]);
        chart("c-kafka-bytes", [{ key: "kafka:bytes", label: "produced bytes/s" }], true);
        chart("c-amqp", [
          { key: "amqp:publish", label: "published msg/s" },
          { key: "amqp:deliver", label: "delivered msg/s" },
        ]);
        chart("c-amqp-depth", [{ key: "amqp:depth", label: "queued" }]);
      },
    };
  },

  topics() {
    // Clients' topics by default; internal ones (internal: true in the API) on demand, marked.
    const shown = showInternal ? state.topics : userTopics();
    const nInternal = state.topics.length - userTopics().length;
    const cards = shown.map((t) => `<div class="panel topic${t.internal ? " internal" : ""}" data-topic="${esc(t.name)}">
      <h2>${esc(t.name)}${t.internal ? ' <span class="badge internal">internal</span>' : ""} <span class="badge">${t.partitions.length} partitions</span>
        <span class="muted">${fmtNum(t.messages)} messages · ${fmtBytes(t.size_bytes)} · ${fmtNum(last(`topic:${t.name}:msgs`))} msg/s · ${fmtBytes(last(`topic:${t.name}:bytes`))}/s</span></h2>
      ${table(["Partition", { label: "Start offset", num: 1 }, { label: "End offset", num: 1 }, { label: "Messages", num: 1 }, { label: "Size", num: 1 }],
        t.partitions.map((p) => `<tr><td>${p.partition}</td><td class="num">${p.start_offset}</td><td class="num">${p.end_offset}</td><td class="num">${p.end_offset - p.start_offset}</td><td class="num">${fmtBytes(p.size_bytes)}</td></tr>`), "")}
    </div>`);
    return {
      html: `<h1>Topics</h1>
      <p><button id="toggle-internal" data-action="toggle-internal">${showInternal ? "Hide" : "Show"} internal topics (${nInternal})</button></p>
      <div class="panel"><h2>Produced messages per second</h2><div class="chart" id="c-topics"></div></div>
      ${cards.join("") || '<div class="panel empty">No topics.</div>'}`,
      charts() {
        chart("c-topics", userTopics().slice(0, COLORS.length).map((t) => ({ key: `topic:${t.name}:msgs`, label: t.name })));
      },
    };
  },

  groups() {
    const rows = state.groups.map((g) => `<tr data-group="${esc(g.name)}">
      <td><a href="#/groups/${enc(g.name)}">${esc(g.name)}</a></td><td>${esc(g.state)}</td>
      <td class="num">${new Set(g.partitions.map((p) => p.topic)).size}</td><td class="num">${g.partitions.length}</td>
      <td class="num lag">${g.lag > 0 ? `<span class="badge warn">${g.lag}</span>` : `<span class="badge ok">0</span>`}</td></tr>`);
    return {
      html: `<h1>Consumer groups</h1>
      <div class="panel"><h2>Lag per group</h2><div class="chart" id="c-groups"></div></div>
      <div class="panel">${table(["Group", "State", { label: "Topics", num: 1 }, { label: "Partitions", num: 1 }, { label: "Lag", num: 1 }], rows, "No consumer groups.")}</div>`,
      charts() {
        chart("c-groups", state.groups.slice(0, COLORS.length).map((g) => ({ key: `grouplag:${g.name}`, label: g.name })));
      },
    };
  },

  group(name) {
    const g = state.groups.find((x) => x.name === name);
    if (!g) return { html: `<h1>Group ${esc(name)}</h1><div class="panel empty">No such group (yet).</div>` };
    const rows = g.partitions.map((p) => `<tr data-partition="${esc(p.topic)}-${p.partition}">
      <td>${esc(p.topic)}</td><td class="num">${p.partition}</td>
      <td class="num">${p.committed_offset < 0 ? "–" : p.committed_offset}</td><td class="num">${p.log_end_offset < 0 ? "–" : p.log_end_offset}</td>
      <td class="num lag">${p.lag < 0 ? "–" : p.lag}</td><td>${esc(p.client_id || "")} <span class="muted">${esc(p.client_host || "")}</span></td></tr>`);
    return {
      html: `<h1>Consumer group ${esc(g.name)} <span class="badge">${esc(g.state)}</span></h1>
      <div class="tiles">${tile("Total lag", g.lag, "group-lag")}${tile("Partitions", g.partitions.length)}</div>
      <div class="panel"><h2>Lag per partition</h2><div class="chart" id="c-group"></div></div>
      <div class="panel">${table(["Topic", { label: "Partition", num: 1 }, { label: "Committed", num: 1 }, { label: "Log end", num: 1 }, { label: "Lag", num: 1 }, "Member"], rows, "No committed offsets.")}</div>
      <div class="panel"><h2>Reset offsets</h2>
        <p class="muted">Allowed while the group has no members. Every partition it has committed moves to:</p>
        <div class="actions">
          <button data-action="reset-group" data-group="${esc(g.name)}" data-to="earliest">Earliest</button>
          <button data-action="reset-group" data-group="${esc(g.name)}" data-to="latest">Latest</button>
        </div></div>`,
      charts() {
        chart("c-group", g.partitions.slice(0, COLORS.length).map((p) => ({ key: `lag:${g.name}:${p.topic}:${p.partition}`, label: `${p.topic}-${p.partition}` })));
      },
    };
  },

  queues() {
    const rows = state.queues.map((q) => `<tr data-queue="${esc(q.name)}">
      <td>${esc(q.name)}</td><td>${esc(q.vhost)}</td><td>${esc(q.type)}</td>
      <td class="num depth">${q.messages}</td><td class="num">${q.messages_ready}</td><td class="num">${q.messages_unacknowledged}</td>
      <td class="num">${fmtNum(q.message_stats?.publish_details?.rate ?? last(`queue:${q.vhost}:${q.name}:in`))}</td>
      <td class="num">${fmtNum(q.message_stats?.deliver_get_details?.rate ?? last(`queue:${q.vhost}:${q.name}:out`))}</td><td class="num">${q.consumers}</td>
      <td class="actions">
        <button data-action="purge-queue" data-vhost="${esc(q.vhost)}" data-name="${esc(q.name)}">Purge</button>
        <button class="danger" data-action="delete-queue" data-vhost="${esc(q.vhost)}" data-name="${esc(q.name)}">Delete</button>
      </td></tr>`);
    const top = state.queues.slice(0, COLORS.length);
    return {
      html: `<h1>Queues</h1>
      <div class="grid2">
        <div class="panel"><h2>Depth</h2><div class="chart" id="c-qdepth"></div></div>
        <div class="panel"><h2>Published per second</h2><div class="chart" id="c-qrate"></div></div>
      </div>
      <div class="panel">${table(["Queue", "Vhost", "Type", { label: "Messages", num: 1 }, { label: "Ready", num: 1 }, { label: "Unacked", num: 1 }, { label: "In/s", num: 1 }, { label: "Out/s", num: 1 }, { label: "Consumers", num: 1 }, ""], rows, "No queues.")}</div>`,
      charts() {
        chart("c-qdepth", top.map((q) => ({ key: `queue:${q.vhost}:${q.name}:depth`, label: q.name })));
        chart("c-qrate", top.map((q) => ({ key: `queue:${q.vhost}:${q.name}:in`, label: q.name })));
      },
    };
  },

  connections() {
    const rows = state.connections.map((c) => `<tr data-connection="${esc(c.name)}">
      <td>${esc(c.name)}</td><td>${esc(c.protocol)}</td><td>${esc(c.user || "–")}</td><td>${esc(c.vhost || "–")}</td>
      <td>${new Date(c.connected_at).toLocaleTimeString()}</td>
      <td><button class="danger" data-action="close-connection" data-name="${esc(c.name)}">Close</button></td></tr>`);
    return {
      html: `<h1>Connections</h1>
      <div class="panel">${table(["Connection", "Protocol", "User", "Vhost", "Connected", ""], rows, "No connections.")}</div>`,
    };
  },
};

// ---- actions --------------------------------------------------------------------------------

const actions = {
  "toggle-internal": () => { showInternal = !showInternal; },
  "purge-queue": (d) => api(`/api/queues/${enc(d.vhost)}/${enc(d.name)}/contents`, { method: "DELETE" }).then(() => `Purged ${d.name}.`),
  "delete-queue": (d) => confirm(`Delete queue ${d.name} and its messages?`)
    && api(`/api/queues/${enc(d.vhost)}/${enc(d.name)}`, { method: "DELETE" }).then(() => `Deleted ${d.name}.`),
  "close-connection": (d) => api(`/api/connections/${enc(d.name)}`, { method: "DELETE", headers: { "X-Reason": "Closed from the yard console" } })
    .then(() => "Connection closed."),
  "reset-group": (d) => confirm(`Reset every offset of ${d.group} to ${d.to}?`)
    && api(`/api/kafka/groups/${enc(d.group)}/reset-offsets`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ to: d.to }),
    }).then(() => `Offsets of ${d.group} reset to ${d.to}.`),
};

function toast(msg, error) {
  const el = document.getElementById("toast");
  el.textContent = msg;
  el.className = "toast" + (error ? " error" : "");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b) return;
  b.disabled = true;
  try {
    const msg = await actions[b.dataset.action](b.dataset);
    if (msg) toast(msg);
    await refresh();
  } catch (err) {
    toast(err.message, true);
  } finally {
    b.disabled = false;
  }
});

// ---- routing and the loop -------------------------------------------------------------------

function route() {
  const [, page = "", arg] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) || [];
  if (page === "groups" && arg) return { name: "groups", render: () => pages.group(decodeURIComponent(arg)) };
  const name = pages[page] ? page : "overview";
  return { name, render: pages[name] };
}

function render() {
  const r = route();
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === r.name);
  const p = r.render();
  const main = document.getElementById("main");
  // Charts keep their elements across polls: only the HTML around them is replaced.
  const keep = new Map([...charts].map(([id, c]) => [id, c.plot.root]));
  main.innerHTML = p.html;
  for (const [id, root] of keep) {
    const el = document.getElementById(id);
    if (el) { el.innerHTML = ""; el.appendChild(root); } else { charts.get(id).plot.destroy(); charts.delete(id); }
  }
  p.charts?.();
  // For tests and curious readers: how many polls this page has drawn.
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    await poll();
    status.textContent = "live · " + new Date().toLocaleTimeString();
    status.className = "status";
  } catch (err) {
    status.textContent = err.message;
    status.className = "status error";
  }
  render();
}

let timer;
async function loop() {
  await refresh();
  timer = setTimeout(loop, POLL_MS);
}

async function start() {
  try {
    session = await api("/console/session");
  } catch (err) {
    document.getElementById("status").textContent = err.message;
    return;
  }
  document.getElementById("user").textContent = session.name;
  // Tags decide what the user may do (as RabbitMQ's management tags): actions need
  // administrator; the server checks it too.
  document.body.classList.toggle("readonly", !session.tags.includes("administrator"));
  const out = document.getElementById("logout");
  out.hidden = !session.csrf_token; // basic auth has no session to end
  out.addEventListener("click", async () => {
    await fetch("/console/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": session.csrf_token } });
    location.href = "/console/login";
  });
  window.addEventListener("hashchange", () => { clearTimeout(timer); loop(); });
  loop();
}
start();
