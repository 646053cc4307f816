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

// Each running job's card is built once and then updated in place: its chart keeps its
// state (and the page its scroll), and a second's update redraws only what changed.
const cards = new Map();  // job id -> {node, figures, bar, hosts, chart, plot, exact}

function card(job) {
  let c = cards.get(job.id);
  if (!c) {
    const figure = cls => el("b", {class: cls}, "–");
    const figures = {estimate: figure("estimate"), interval: figure("interval"),
      exact: figure("exact"), samples: figure("samples"), params: figure("params")};
    const bar = el("div");
    const hosts = el("tbody");
    const chart = el("div", {class: "chart"});
    const node = el("div", {class: "job", id: `job-${job.id}`},
      el("h3", {}, `${job.kind} `, el("span", {class: "quiet"}, `job ${job.id} · seed ${job.seed} · ${job.where}`)),
      el("div", {class: "figures"},
        el("span", {}, "estimate ", figures.estimate), el("span", {}, "95 % interval ", figures.interval),
        el("span", {}, "exact ", figures.exact), el("span", {}, "samples ", figures.samples),
        el("span", {}, "params ", figures.params)),
      el("div", {class: "progress"}, bar),
      el("div", {class: "panels"}, chart, el("table", {class: "hosts"},
        el("thead", {}, el("tr", {}, el("th", {}, "host"), el("th", {}, "chunks"),
          el("th", {}, "rate per slot"), el("th", {}, "last chunk"))), hosts)));
    c = {node, figures, bar, hosts, chart, plot: null};
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
  draw(job, c);
  return c.node;
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
    el("td", {}, count(job.samples)), el("td", {class: "result"}, resultOf(job)),
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
