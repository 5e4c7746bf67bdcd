// The trace viewer: GET /v1/jobs/{id} and /v1/jobs/{id}/graph with the caller's API key, drawn with
// vis-network (hierarchical layout by depth) and plotly.js (the complete paths on S/U/C with the Pareto front).
// The key: a header the browser already sends (a proxy, a header extension), or one given in the URL fragment
// (#key=eco_...: a fragment is never sent to a server), kept in sessionStorage; a 401 asks for it.
"use strict";

(function () {
  const jobId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const KEY = "ecoalign.api_key";
  const viewer = { ready: false, error: null, nodeCount: 0, selected: null };
  window.ecoViewer = viewer;

  function takeKeyFromFragment() {
    const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);  // out of the address bar and history
    }
  }

  async function api(path) {
    const key = sessionStorage.getItem(KEY);
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch(path, { headers, credentials: "omit" });
    if (response.status === 401) throw Object.assign(new Error("the API key was refused (401)"), { status: 401 });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  // Safety 0 red, tau yellow, 1 green (a diverging ColorBrewer scale, interpolated).
  function safetyColour(s, tau) {
    if (s === null || s === undefined) return "#cccccc";
    const stops = [[0, [215, 48, 39]], [tau, [254, 224, 139]], [1, [26, 152, 80]]];
    for (let i = 1; i < stops.length; i++) {
      const [x0, c0] = stops[i - 1], [x1, c1] = stops[i];
      if (s <= x1) {
        const t = x1 === x0 ? 0 : (s - x0) / (x1 - x0);
        const c = c0.map((v, k) => Math.round(v + t * (c1[k] - v)));
        return "rgb(" + c.join(",") + ")";
      }
    }
    return "rgb(26,152,80)";
  }

  function fmt(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }

  function label(node) {
    let text = node.kind + "  s=" + fmt(node.safety) + "  u=" + fmt(node.utility);
    if (node.status === "pruned") text += "\n✂ pruned: " + (node.prune_reason || "").split(/[;(]/)[0].trim();
    else if (node.status !== "done") text += "\n[" + node.status + "]";
    return text;
  }

  function showDetails(node, chosen) {
    const panel = document.getElementById("details");
    panel.replaceChildren();
    const title = document.createElement("h2");
    title.textContent = node.kind + " " + node.id.slice(0, 12) + (chosen.has(node.id) ? " (chosen path)" : "");
    const text = document.createElement("pre");
    text.id = "node-text";
    text.textContent = node.text;
    const table = document.createElement("table");
    const rows = [
      ["status", node.status], ["safety", fmt(node.safety)], ["utility", fmt(node.utility)],
      ["tokens", node.tokens], ["model", node.model], ["evaluator", node.evaluator],
      ["prune reason", node.prune_reason], ["failure", node.failure_reason], ["reason", node.reason],
      ["categories", JSON.stringify(node.categories || {})],
    ];
    for (const [k, v] of Object.entries(node.gen_ai || {})) rows.push([k, typeof v === "object" ? JSON.stringify(v) : v]);
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      const tr = table.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = String(v);
    }
    panel.append(title, text, table);
    viewer.selected = node.id;
  }

  function drawGraph(job, graph) {
    const tau = (job.policy && job.policy.tau) || 0.5;
    const chosen = new Set(job.path || []);
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const nodes = new vis.DataSet(graph.nodes.map((n) => {
      const background = safetyColour(n.kind === "root" ? null : n.safety, tau);
      const border = chosen.has(n.id) ? "#1f4fd8" : n.status === "pruned" ? "#8b0000" : "#555555";
      return {
        id: n.id,
        label: label(n),
        level: n.depth,
        shape: "box",
        // selecting or hovering a node keeps its safety colour; only the border darkens
        color: { background, border, highlight: { background, border: "#000000" }, hover: { background, border } },
        borderWidth: chosen.has(n.id) ? 4 : n.status === "pruned" ? 2 : 1,
        borderWidthSelected: 5,
        shapeProperties: { borderDashes: n.status === "pruned" ? [6, 4] : false },
        widthConstraint: { maximum: 210 },
        font: { size: 13, face: "monospace" },
      };
    }));
    const edges = new vis.DataSet(graph.edges.map((e) => {
      const onPath = chosen.has(e.parent) && chosen.has(e.child);
      return {
        from: e.parent, to: e.child, arrows: "to",
        color: { color: onPath ? "#1f4fd8" : "#999999" }, width: onPath ? 4 : 1,
      };
    }));
    const network = new vis.Network(document.getElementById("graph"), { nodes, edges }, {
      layout: { hierarchical: { direction: "UD", sortMethod: "directed", levelSeparation: 110, nodeSpacing: 230 } },
      physics: false,
      interaction: { hover: true },
    });
    network.on("click", (params) => {
      if (params.nodes.length) showDetails(byId.get(params.nodes[0]), chosen);
    });
    viewer.network = network;
    viewer.nodeCount = nodes.length;
    // Where a node is on the page (for a click in a test or by a script).
    viewer.nodeCenter = (id) => {
      const p = network.canvasToDOM(network.getPosition(id));
      const box = document.getElementById("graph").getBoundingClientRect();
      return { x: box.left + p.x, y: box.top + p.y };
    };
  }

  function drawScatter(job, graph) {
    const paths = graph.paths || [];
    const chosenEnd = (job.path || [])[job.path.length - 1];
    const front = paths.filter((p) => p.pareto).sort((a, b) => a.utility - b.utility);
    const point = (p) => p.kind + " " + p.node_id.slice(0, 8) + " (" + p.status + ")<br>S=" + fmt(p.safety) +
      " U=" + fmt(p.utility) + " C=" + p.cost;
    const traces = [
      {
        name: "complete paths", type: "scatter", mode: "markers",
        x: paths.map((p) => p.utility), y: paths.map((p) => p.safety), text: paths.map(point), hoverinfo: "text",
        marker: {
          size: 12, color: paths.map((p) => p.cost), colorscale: "Viridis", showscale: true,
          colorbar: { title: { text: "cost C (tokens)" } },
          symbol: paths.map((p) => (p.status === "pruned" ? "x" : "circle")),
        },
      },
      {
        name: "Pareto front (S↑ U↑ C↓)", type: "scatter", mode: "lines+markers",
        x: front.map((p) => p.utility), y: front.map((p) => p.safety), text: front.map(point), hoverinfo: "text",
        line: { dash: "dot", color: "#d62728" },
        marker: { size: 18, symbol: "circle-open", color: "#d62728", line: { width: 2 } },
      },
    ];
    const chosen = paths.filter((p) => p.node_id === chosenEnd);
    if (chosen.length) {
      traces.push({
        name: "chosen", type: "scatter", mode: "markers", x: chosen.map((p) => p.utility),
        y: chosen.map((p) => p.safety), hoverinfo: "skip", marker: { size: 22, symbol: "star", color: "#1f4fd8" },
      });
    }
    const tau = (job.policy && job.policy.tau) || 0.5;
    Plotly.newPlot("scatter", traces, {
      margin: { l: 60, r: 20, t: 30, b: 50 },
      title: { text: "Complete paths: safety, utility, cost" },
      xaxis: { title: { text: "utility U(P)" }, range: [-0.05, 1.05] },
      yaxis: { title: { text: "safety S(P) (weakest step)" }, range: [-0.05, 1.05] },
      shapes: [{ type: "line", x0: -0.05, x1: 1.05, y0: tau, y1: tau, line: { dash: "dash", color: "#888" } }],
      legend: { orientation: "h", y: -0.2 },
    }, { displaylogo: false, responsive: true });
    viewer.pathCount = paths.length;
  }

  function summarise(job) {
    document.getElementById("job-id").textContent = jobId;
    document.getElementById("summary").textContent =
      job.status + " · " + (job.decision || "no decision") + " · strategy " + job.strategy + " · S=" +
      fmt(job.path_safety) + " U=" + fmt(job.utility) + " C=" + job.cost.total_tokens + " tokens" +
      (job.reason ? " · " + job.reason : "");
  }

  function askForKey(message) {
    const form = document.getElementById("key-form");
    form.hidden = false;
    document.getElementById("key-error").textContent = message;
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById("key-input").value.trim());
      load();
    };
  }

  async function load() {
    try {
      const [job, graph] = await Promise.all([api("/v1/jobs/" + jobId), api("/v1/jobs/" + jobId + "/graph")]);
      job.policy = job.policy || {};
      document.getElementById("key-form").hidden = true;
      summarise(job);
      drawGraph(job, graph);
      drawScatter(job, graph);
      viewer.ready = true;
    } catch (error) {
      viewer.error = error.message;
      if (error.status === 401) askForKey(error.message);
      else document.getElementById("summary").textContent = error.message;
    }
  }

  takeKeyFromFragment();
  load();
})();
