// The mcpi dashboard: one event stream of whole snapshots, drawn as they come.
"use strict";


function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function number(x, digits = 6) {
  return x === null || x === undefined ? "–" : Number(x).toPrecision(digits);
}

function count(x) {
  return x >= 1e6 ? Number(x).toExponential(2) : String(x);
}

function params(p) {
  return Object.entries(p || {}).map(([k, v]) => `${k}=${v}`).join(" ");
}

function resultOf(job) {
  const outputs = job.result && job.result.outputs;
  if (!outputs) return job.error || "";
  const [name, o] = Object.entries(outputs)[0] || [];
  return name ? `${name} = ${number(o.mean, 8)} (95 % CI ${number(o.ci95[0], 8)} … ${number(o.ci95[1], 8)})` : "";
}

// A finished job's notes, folded under its result; unfolded, they stay so as the
// table is drawn again each second.
const unfolded = new Set();

function notesOf(job) {
  const notes = job.notes || [];
  if (job.status === "running" || notes.length === 0) return "";
  const details = el("details", {class: "notes"}, el("summary", {}, `${notes.length} note(s)`),
    el("ul", {}, ...notes.map(n => el("li", {}, n))));
  details.open = unfolded.has(job.id);
  details.addEventListener("toggle", () => {
    if (details.open) unfolded.add(job.id); else unfolded.delete(job.id);
  });
  return details;
}

// Each running job's card is built once and then updated in place: its chart keeps its
// state (and the page its scroll), and a second's update redraws only what changed.
const cards = new Map();  // job id -> {node, figures, bar, chunks, notes, hosts, chart, plot, exact, ratesChart, rates, rateHosts}

function card(job) {
  let c = cards.get(job.id);
  if (!c) {
    const figure = cls => el("b", {class: cls}, "–");
    const figures = {estimate: figure("estimate"), interval: figure("interval"),
      exact: figure("exact"), samples: figure("samples"), params: figure("params")};
    const bar = el("div");
    const chunks = el("div", {class: "chunks quiet"});
    const notes = el("ul", {class: "notes"});
    const hosts = el("tbody");
    const chart = el("div", {class: "chart"});
    const ratesChart = el("div", {class: "chart rates"});
    const node = el("div", {class: "job", id: `job-${job.id}`},
      el("h3", {}, `${job.kind} `, el("span", {class: "quiet"}, `job ${job.id} · seed ${job.seed} · ${job.where}`)),
      el("div", {class: "figures"},
        el("span", {}, "estimate ", figures.estimate), el("span", {}, "95 % interval ", figures.interval),
        el("span", {}, "exact ", figures.exact), el("span", {}, "samples ", figures.samples),
        el("span", {}, "params ", figures.params)),
      el("div", {class: "progress"}, bar), chunks, notes,
      el("div", {class: "panels"}, chart, ratesChart, el("table", {class: "hosts"},
        el("thead", {}, el("tr", {}, el("th", {}, "host"), el("th", {}, "chunks"),
          el("th", {}, "rate per slot"), el("th", {}, "last chunk"))), hosts)));
    c = {node, figures, bar, chunks, notes, hosts, chart, ratesChart, plot: null, rates: null};
    cards.set(job.id, c);
  }
  const estimate = job.estimate;
  const f = c.figures;
  f.estimate.textContent = estimate ? number(estimate[0], 8) : "–";
  f.estimate.dataset.value = estimate ? estimate[0] : "";
  f.interval.textContent = estimate ? `[${number(estimate[1], 8)}, ${number(estimate[2], 8)}]` : "–";
  f.exact.textContent = job.exact === null || job.exact === undefined ? "–" : number(job.exact, 8);
  f.samples.textContent = `${count(job.samples)} of ${count(job.total)}`;
  f.params.textContent = params(job.params) || "–";
  const fraction = job.total ? Math.min(1, job.samples / job.total) : 0;
  c.bar.style.width = `${(100 * fraction).toFixed(1)}%`;  // CSSOM: the policy forbids inline styles
  c.node.dataset.samples = job.samples;
  c.hosts.replaceChildren(...hostRows(job.hosts || []));
  showChunks(job, c);
  draw(job, c);
  drawRates(job, c);
  return c.node;
}

// What the job's hub last said is out: the stage's chunks counted, out (queued or
// running) and running, those not sent yet, and the backups sent.
function showChunks(job, c) {
  const k = job.chunks;
  if (!k) {
    c.chunks.textContent = "";
    return;
  }
  const unsent = Math.max(0, k.chunks - k.counted - k.out);
  const queued = Math.max(0, k.out - k.running);
  c.chunks.textContent = `stage ${k.stage + 1} · chunks: ${k.counted} of ${k.chunks} counted · ` +
    `${k.running} running · ${queued} queued · ${unsent} not sent yet · ${k.backups} backup(s)` +
    (job.live_age > 10 ? ` · hub last heard ${Math.round(job.live_age)} s ago` : "");
  for (const key of ["chunks", "counted", "out", "running", "backups"]) c.chunks.dataset[key] = k[key];
  const notes = job.notes || [];
  if (notes.join("\n") !== c.notes.dataset.text) {
    c.notes.replaceChildren(...notes.map(n => el("li", {}, n)));
    c.notes.dataset.text = notes.join("\n");
  }
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];

// Each host's samples a second (all its slots, over 5 s) against the job's time.
function drawRates(job, c) {
  const rates = job.rates;
  if (!rates || rates.t.length === 0 || typeof uPlot === "undefined") return;
  const hosts = Object.keys(rates.hosts);
  const data = [rates.t, ...hosts.map(h => rates.hosts[h])];
  const key = hosts.join("\n");
  if (c.rates && c.rateHosts === key) {
    c.rates.setData(data);
    return;
  }
  if (c.rates) c.rates.destroy();
  c.rateHosts = key;
  c.ratesChart.dataset.hosts = hosts.length;
  c.rates = new uPlot({
    width: 420, height: 260, title: "samples/s per host",
    series: [{}, ...hosts.map((h, i) => ({label: h, stroke: PALETTE[i % PALETTE.length], spanGaps: false}))],
    scales: {x: {time: false}},
    axes: [
      {label: "seconds", values: (u, ticks) => ticks.map(t => t.toFixed(ticks.at(-1) - ticks[0] < 10 ? 1 : 0))},
      {size: 70, values: (u, ticks) => ticks.map(t => t.toExponential(1))},
    ],
  }, data, c.ratesChart);
}

function digitsFor(values) {
  const finite = values.filter(v => v !== null && Number.isFinite(v));
  const span = Math.max(...finite) - Math.min(...finite);
  return span > 0 ? Math.min(12, Math.max(0, 2 - Math.floor(Math.log10(span)))) : 6;
}

function hostRows(hosts) {
  return hosts.map(h => el("tr", {class: h.gone ? "host gone" : "host", "data-host": h.host},
    el("td", {}, h.host), el("td", {}, String(h.chunks)),
    el("td", {}, `${count(Math.round(h.rate))}/s`),
    el("td", {}, h.gone ? `gone (${Math.round(h.last_seen)} s)` : `${Math.round(h.last_seen)} s ago`)));
}

function draw(job, c) {
  const series = job.series || [];
  if (series.length === 0 || typeof uPlot === "undefined") return;
  const xs = series.map(p => p[1]);
  const exact = job.exact !== null && job.exact !== undefined;
  const data = [xs, series.map(p => p[2]), series.map(p => p[3]), series.map(p => p[4])];
  if (exact) data.push(xs.map(() => job.exact));
  if (c.plot && c.exact === exact) {
    c.plot.setData(data);
    return;
  }
  if (c.plot) c.plot.destroy();
  const lines = [{}, {label: "estimate", stroke: "#2563eb"},
    {label: "95 % low", stroke: "rgba(37,99,235,0.3)"}, {label: "95 % high", stroke: "rgba(37,99,235,0.3)"}];
  if (exact) lines.push({label: "exact", stroke: "#111", dash: [4, 4]});
  c.exact = exact;
  c.plot = new uPlot({
    width: 560, height: 260, series: lines,
    scales: {x: {time: false}},
    axes: [
      {label: "samples", values: (u, ticks) => ticks.map(t => t.toExponential(1))},
      {size: 90, values: (u, ticks) => ticks.map(t => t.toFixed(digitsFor(ticks)))},
    ],
    bands: [{series: [3, 2], fill: "rgba(37,99,235,0.15)"}],
  }, data, c.chart);
}

function service(s) {
  if (!s.reachable) return `${s.where} unreachable: ${s.error || "?"}`;
  return `${s.where} (${s.product} ${s.version}${s.tls ? ", " + s.tls : ", no TLS"})`;
}

function renderCluster(cluster) {
  const summary = document.getElementById("cluster-summary");
  const table = document.getElementById("hosts");
  if (!cluster) {
    table.hidden = true;
    return;
  }
  const q = cluster.queue;
  summary.textContent = `broker ${service(cluster.broker)} · backend ${service(cluster.backend)}` +
    (q ? ` · queue ${q.ready} waiting, ${q.unacknowledged} unacknowledged, ${q.consumers} consumers` : "") +
    ` · asked ${Math.round(cluster.age)} s ago`;
  const workers = new Map();
  for (const w of cluster.workers) {
    if (!workers.has(w.host)) workers.set(w.host, []);
    workers.get(w.host).push(w);
  }
  const rows = cluster.hosts.map(h => {
    const ws = workers.get(h.host) || [];
    const sum = key => ws.reduce((a, w) => a + (w[key] || 0), 0);
    const versions = [...new Set(ws.map(w => (w.versions || {}).mcpi))].join(", ");
    const kernels = [...new Set(ws.map(w => w.kernel))].join(", ");
    return el("tr", {class: h.up ? "cluster-host" : "cluster-host gone", "data-host": h.host},
      el("td", {}, h.host), el("td", {class: "state"}, h.up ? "up" : "gone"),
      el("td", {}, String(ws.length)), el("td", {}, String(sum("slots"))),
      el("td", {}, String(sum("running"))), el("td", {}, versions || "–"),
      el("td", {}, kernels || "–"),
      el("td", {}, h.up ? "now" : `${Math.round(h.last_seen)} s ago`));
  });
  table.querySelector("tbody").replaceChildren(...rows);
  table.hidden = false;
}

function render(snapshot) {
  renderCluster(snapshot.cluster);
  const running = snapshot.jobs.filter(j => j.status === "running");
  for (const [id, c] of cards) {
    if (!running.some(j => j.id === id)) {
      if (c.plot) c.plot.destroy();
      if (c.rates) c.rates.destroy();
      cards.delete(id);
    }
  }
  const box = document.getElementById("running-jobs");
  box.replaceChildren(...running.map(card));
  document.getElementById("none-running").hidden = running.length > 0;
  const rows = snapshot.jobs.map(job => el("tr", {id: `row-${job.id}`, class: "row"},
    el("td", {}, job.id), el("td", {}, job.kind), el("td", {}, params(job.params)),
    el("td", {}, String(job.seed)), el("td", {}, job.where),
    el("td", {class: `status-${job.status}`}, job.status),
    el("td", {}, count(job.samples)), el("td", {class: "result"}, resultOf(job), notesOf(job)),
    el("td", {}, job.created)));
  document.querySelector("#jobs tbody").replaceChildren(...rows);
  document.getElementById("updated").textContent = snapshot.error
    ? `cannot read the jobs: ${snapshot.error}`
    : `updated ${new Date().toLocaleTimeString()}`;
}

function connect() {
  const status = document.getElementById("connection");
  const stream = new EventSource("api/stream");
  stream.addEventListener("snapshot", event => {
    status.textContent = "live";
    status.className = "live";
    render(JSON.parse(event.data));
  });
  stream.onerror = () => {
    status.textContent = "reconnecting…";
    status.className = "stale";
  };
}

connect();
