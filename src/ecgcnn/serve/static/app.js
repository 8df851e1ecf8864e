// The page at "/": paste or upload beats (CSV), POST them to /v1/predict, plot each beat (inline SVG) with its
// predicted class and probabilities. Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const COLORS = ["#0b62a4", "#c2410c", "#7c3aed", "#15803d", "#b91c1c", "#0e7490", "#a16207"];
const SVG_NS = "http://www.w3.org/2000/svg";
let card = null;

function $(id) { return document.getElementById(id); }

function isNumber(text) {
  const t = text.trim();
  return t !== "" && Number.isFinite(Number(t));
}

// The rows the server reads: blank lines skipped, a first row with no number is a header; tab for TSV text.
function parseRows(text) {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== "");
  const rows = [];
  lines.forEach((line, i) => {
    const delimiter = line.includes(",") ? "," : (line.includes("\t") ? "\t" : ",");
    const cells = line.split(delimiter);
    if (i === 0 && !cells.some(isNumber)) return;
    rows.push(cells.map((c) => Number(c.trim())));
  });
  return rows;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function plot(values, color) {
  const width = 280, height = 90, pad = 4;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(...finite), hi = Math.max(...finite);
  const span = hi > lo ? hi - lo : 1;
  const points = values.map((v, i) => {
    const x = pad + (i / Math.max(1, values.length - 1)) * (width - 2 * pad);
    const y = height - pad - ((v - lo) / span) * (height - 2 * pad);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("stroke", color);
  svg.appendChild(line);
  return svg;
}

function render(rows, result) {
  const results = $("results");
  results.replaceChildren();
  const labels = result.probability_labels;
  const names = card ? card.class_names : labels.map(String);
  const warnings = new Set((result.warnings || []).map((w) => Number(w.match(/^beat (\d+)/)[1]) - 1));
  result.probabilities.forEach((probs, i) => {
    const k = labels.indexOf(result.labels[i]);
    const p = probs[k];
    const figure = document.createElement("figure");
    figure.className = "beat";
    figure.dataset.index = String(i + 1);
    figure.dataset.label = String(result.labels[i]);
    figure.dataset.probability = String(p);
    figure.appendChild(plot(rows[i] || [], COLORS[k % COLORS.length]));
    const caption = document.createElement("figcaption");
    const title = document.createElement("div");
    title.innerHTML = `Beat ${i + 1}: <span class="label"></span> <span class="p"></span>`;
    title.querySelector(".label").textContent = `${result.class_names[i]} (label ${result.labels[i]})`;
    title.querySelector(".p").textContent = `p = ${p.toFixed(3)}`;
    caption.appendChild(title);
    if (warnings.has(i)) {
      const w = document.createElement("div");
      w.className = "warning";
      w.textContent = "flat beat: prediction meaningless";
      caption.appendChild(w);
    }
    const table = document.createElement("table");
    table.className = "probs";
    probs.forEach((q, j) => {
      const tr = table.insertRow();
      if (j === k) tr.className = "top";
      tr.insertCell().textContent = `${labels[j]} ${names[j] || ""}`;
      const bar = tr.insertCell();
      bar.className = "bar";
      const span = document.createElement("span");
      span.style.width = `${(100 * q).toFixed(1)}%`;
      bar.appendChild(span);
      tr.insertCell().textContent = q.toFixed(3);
    });
    caption.appendChild(table);
    figure.appendChild(caption);
    results.appendChild(figure);
  });
}

async function classify() {
  const text = $("csv").value;
  showError("");
  $("results").replaceChildren();
  if (!text.trim()) { showError("Paste beats or upload a CSV file first."); return; }
  const button = $("classify");
  button.disabled = true;
  $("status").textContent = "Classifying…";
  const started = performance.now();
  try {
    const url = "/v1/predict" + ($("resample").checked ? "?resample=true" : "");
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "text/csv" }, body: text });
    const result = await response.json();
    if (!response.ok) throw new Error(result.error || `HTTP ${response.status}`);
    render(parseRows(text), result);
    const n = result.labels.length;
    $("status").textContent = `${n} beat${n === 1 ? "" : "s"} classified in ${Math.round(performance.now() - started)} ms.`;
  } catch (err) {
    $("status").textContent = "";
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

async function loadFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  $("csv").value = await file.text();
  await classify();
}

async function loadExample() {
  const response = await fetch("/static/example.csv");
  $("csv").value = await response.text();
  await classify();
}

async function loadCard() {
  try {
    const response = await fetch("/v1/model");
    card = await response.json();
    const recall = card.per_class_recall ? `; test recall per class ${card.per_class_recall.map((r) => r.toFixed(2)).join(" ")}` : "";
    $("model-info").textContent = `Model ${card.model} (${card.architecture}, ${card.format}): beats of ` +
      `${card.input_length} samples → ${card.class_names.map((n, i) => `${card.labels[i]} ${n}`).join(", ")}${recall}.`;
  } catch (err) {
    $("model-info").textContent = "The model card could not be loaded.";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("classify").addEventListener("click", classify);
  $("file").addEventListener("change", loadFile);
  $("example").addEventListener("click", loadExample);
  loadCard();
});
