// genforge studio pages: plain JavaScript, no library, no build step. Every action calls the
// REST API (/api/...); the pages themselves are rendered by the server.
"use strict";

const FINAL = ["done", "failed", "stopped"];
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

async function api(url, options = {}) {
  const response = await fetch(url, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = (body && body.error) || `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

// -- forms: the fields a person filled in, as the request body --------------------------------
function parseValue(type, text) {
  if (type === "integer") return Number.parseInt(text, 10);
  if (type === "number") return Number(text);
  if (type === "boolean") return text === "true";
  if (type === "ref") return /^\d+$/.test(text) ? Number(text) : text;
  if (type.startsWith("list-")) {
    const inner = type.slice(5);
    if (text.trim() === "none") return [];
    return text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => parseValue(inner, s));
  }
  return text;
}

function setPath(target, path, value) {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] = node[part] || {};
  node[parts[parts.length - 1]] = value;
}

function collect(form) {
  const body = JSON.parse(form.dataset.fixed || "{}");
  for (const el of $$("[data-path]", form)) {
    if (el.disabled || el.value === "") continue;
    setPath(body, el.dataset.path, parseValue(el.dataset.type || "string", el.value));
  }
  return body;
}

function clearErrors(form) {
  for (const el of $$(".error", form)) { el.hidden = true; el.textContent = ""; }
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

// An error goes next to the field it names ("options.lr: ...", "train.lr must be ..."), else
// next to the form's main field (data-error-field: an upload's files), else under the form.
function showError(form, message) {
  let field = null;
  for (const candidate of $$("[data-field]", form)) {
    const name = candidate.dataset.field.replace(/[-_]/g, "[-_]");
    if (new RegExp(`^(?:[\\w]+\\.)*${name}(?![\\w.])`).test(message)) { field = candidate; break; }
  }
  if (!field && form.dataset.errorField) field = $(`[data-field="${form.dataset.errorField}"]`, form);
  const slot = field ? $(".error", field) : $(".form-error", form);
  if (field) {
    const control = $("input, select, textarea", field);
    if (control) control.setAttribute("aria-invalid", "true");
  }
  slot.textContent = message;
  slot.hidden = false;
  const folded = slot.closest("details");
  if (folded) folded.open = true;
}

function busy(form, on) {
  for (const b of $$("button", form)) b.disabled = on;
  const note = $(".busy", form);
  if (note) note.hidden = !on;
}

function fill(template, data) {
  return template.replace(/\{([\w.]+)\}/g, (_, key) => key.split(".").reduce((o, k) => o && o[k], data));
}

// A job's input file (a melody, a partial level) is uploaded first: POST /api/inputs.
async function uploadInput(form) {
  const file = $("[data-input-file]", form);
  const text = $("[data-input-text]", form);
  const data = new FormData();
  if (file && file.files.length) data.append("file", file.files[0]);
  else if (text && text.value.trim()) data.append("file", new Blob([text.value + "\n"]), text.dataset.inputText);
  else throw new Error("input: choose a file first");
  data.append("kind", form.dataset.input);
  try {
    return (await api("/api/inputs", { method: "POST", body: data })).id;
  } catch (err) {
    throw new Error(`input: ${err.message}`);
  }
}

async function submit(form) {
  clearErrors(form);
  busy(form, true);
  try {
    let options;
    if (form.hasAttribute("data-multipart")) {
      const data = new FormData();
      for (const el of $$("input[name], select[name], textarea[name]", form)) {
        if (el.type === "file") for (const f of el.files) data.append(el.name, f, f.name);
        else if (el.value) data.append(el.name, el.value);
      }
      options = { method: form.dataset.method, body: data };
    } else {
      const body = collect(form);
      if (form.dataset.input) body.input = await uploadInput(form);
      options = { method: form.dataset.method, headers: { "content-type": "application/json" },
                  body: JSON.stringify(body) };
    }
    const result = await api(form.dataset.api, options);
    await then(form, result);
  } catch (err) {
    showError(form, err.message);
  } finally {
    busy(form, false);
  }
}

async function then(form, result) {
  const action = form.dataset.then || "reload";
  if (action === "reload") return location.reload();
  if (action.startsWith("go:")) { location.href = fill(action.slice(3), result); return; }
  if (action.startsWith("outputs:")) return followOutputs($(action.slice(8)), result.id);
}

// Wait for a job, then show its outputs (rendered by the server: /jobs/ID/outputs).
async function followOutputs(target, jobId) {
  target.innerHTML = "";
  const note = document.createElement("p");
  note.innerHTML = `Job <a href="/jobs/${jobId}">${jobId}</a>: <span data-state>queued</span>…`;
  target.append(note);
  for (;;) {
    const job = await api(`/api/jobs/${jobId}`);
    $("[data-state]", note).textContent = job.state + (job.progress && job.progress.total
      ? ` (${job.progress.task} ${job.progress.done}/${job.progress.total})` : "");
    if (FINAL.includes(job.state)) {
      if (job.state !== "done") {
        note.className = "error";
        note.setAttribute("role", "alert");
        note.textContent = `Job ${jobId} ${job.state}: ${job.error || ""}`;
        return;
      }
      target.innerHTML = await api(`/jobs/${jobId}/outputs`);
      return;
    }
    await sleep(1000);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- drop zones ------------------------------------------------------------------------------
function dropZone(label) {
  const input = document.getElementById(label.htmlFor);
  const chosen = $("[data-chosen]", label);
  const show = () => {
    const n = input.files.length;
    chosen.textContent = n ? `${n} file${n > 1 ? "s" : ""} chosen: ${Array.from(input.files).slice(0, 3).map((f) => f.name).join(", ")}${n > 3 ? ", …" : ""}` : "";
  };
  input.addEventListener("change", show);
  label.addEventListener("dragover", (e) => { e.preventDefault(); label.classList.add("over"); });
  label.addEventListener("dragleave", () => label.classList.remove("over"));
  label.addEventListener("drop", (e) => {
    e.preventDefault();
    label.classList.remove("over");
    input.files = e.dataTransfer.files;
    show();
  });
}

// -- a job's page: progress, loss curve, preview, log, buttons; survives reloads ----------------
function formatDuration(s) {
  if (s == null) return "-";
  s = Math.round(s);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`
    : `${Math.floor(s / 3600)} h ${String(Math.floor(s % 3600 / 60)).padStart(2, "0")} min`;
}

function drawCurve(svg, points) {
  if (!points.length) return;
  const steps = points.map((p) => p[0]), losses = points.map((p) => p[1]);
  const last = Math.max(...steps) || 1, lo = Math.min(...losses), hi = Math.max(...losses);
  const span = hi - lo || 1;
  $("polyline", svg).setAttribute("points", points.map(([s, l]) =>
    `${(10 + 580 * s / last).toFixed(1)},${(190 - 180 * (l - lo) / span).toFixed(1)}`).join(" "));
  const range = $("[data-curve-range]");
  if (range) range.textContent = `(loss ${lo.toPrecision(4)} to ${hi.toPrecision(4)}, steps 0 to ${last})`;
}

function showProgress(root, event, state) {
  const bar = $("progress", root);
  if (event && event.total) {
    bar.value = Math.round(100 * Math.min(1, event.done / event.total));
    bar.textContent = `${bar.value}%`;
    const eta = event.eta_s != null && !FINAL.includes(state) ? ` · ETA ${formatDuration(event.eta_s)}` : "";
    $("[data-figures]", root).textContent = `${event.done} / ${event.total} ${event.unit || ""}${eta}`;
  }
}

function applyState(root, state) {
  root.dataset.jobState = state;
  for (const el of $$("[data-state]", root)) { el.textContent = state; el.className = `state state-${state}`; }
  for (const el of $$("[data-show-when]", root)) el.hidden = !el.dataset.showWhen.split(" ").includes(state);
}

async function followJob(root) {
  const id = root.dataset.jobId;
  const initial = root.dataset.jobState;
  const svg = $("[data-curve]", root);
  const points = [];
  let after = 0, state = initial;
  applyState(root, state);
  for (;;) {
    let page;
    try {
      page = await api(`/api/jobs/${id}/events?after=${after}&limit=5000`);
    } catch (err) {
      await sleep(2000);
      continue;
    }
    for (const event of page.events) {
      if (event.event === "state") state = event.state;
      if (event.event !== "progress") continue;
      const info = event.info || {};
      showProgress(root, event, page.job.state);
      $("[data-stat=task]", root).textContent = event.task;
      if (event.task === "train" && info.loss != null) {
        points.push([event.done, info.loss]);
        $("[data-stat=loss]", root).textContent = info.loss.toFixed(4);
      }
      if (info.images_per_s != null) $("[data-stat=rate]", root).textContent = info.images_per_s;
      $("[data-stat=elapsed]", root).textContent = formatDuration(event.elapsed_s);
      const img = $("[data-preview]", root);
      if (img && event.preview_url && !img.src.endsWith(event.preview_url)) {
        img.src = event.preview_url;
        img.hidden = false;
        $("[data-preview-name]", root).textContent = `(${info.preview.split("/").pop()})`;
      }
    }
    after = page.next;
    state = page.job.state;
    applyState(root, state);
    if (svg) drawCurve(svg, points);
    if (page.job.error) {
      const err = $("[data-job-error]", root);
      err.textContent = page.job.error;
      err.hidden = false;
    }
    const log = $("[data-log]", root);
    try { log.textContent = await api(`/api/jobs/${id}/log?tail=20000`); } catch (err) { /* keep */ }
    if (FINAL.includes(state) && page.events.length < 5000) {
      // a job that finished while watched: the server renders its results
      if (!FINAL.includes(initial) && $("[data-outputs]", root)) location.reload();
      return;
    }
    if (page.events.length < 5000) await sleep(1000);
  }
}

// Buttons that call the API: stop, resume, retry, delete.
async function call(button) {
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const root = button.closest("[data-actions]") || document.body;
  try {
    await api(button.dataset.call, { method: button.dataset.method || "POST" });
    if (button.dataset.after) location.href = button.dataset.after; else location.reload();
  } catch (err) {
    const slot = $(".error", root) || $("[data-job-error]");
    slot.textContent = err.message;
    slot.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// Home: progress of the runs in the list, while they run.
async function followList(rows) {
  for (;;) {
    const live = rows.filter((r) => !FINAL.includes(r.dataset.jobState));
    if (!live.length) return;
    await sleep(2000);
    for (const row of live) {
      try {
        const job = await api(`/api/jobs/${row.dataset.liveJob}`);
        row.dataset.jobState = job.state;
        const badge = $("[data-state]", row);
        badge.textContent = job.state;
        badge.className = `state state-${job.state}`;
        if ($("progress", row)) showProgress(row, job.progress, job.state);
      } catch (err) { /* a deleted job: leave the row */ }
    }
  }
}

// A page waiting for a job (the dataset page for its audit) reloads once it has finished.
async function waitThenReload(el) {
  for (;;) {
    await sleep(1000);
    try {
      const job = await api(`/api/jobs/${el.dataset.waitJob}`);
      if (FINAL.includes(job.state)) return location.reload();
    } catch (err) { /* retry */ }
  }
}

// -- provenance: verify and detect a dropped file ---------------------------------------------
const VERDICTS = {
  "trusted": "Trusted: intact, signed by a certificate this studio trusts",
  "valid": "Valid: intact and signed, by a signer this studio does not know",
  "invalid": "Changed: the file no longer matches its signed manifest",
  "no manifest": "None: the file carries no C2PA manifest",
};

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

async function checkProvenance(form) {
  clearErrors(form);
  busy(form, true);
  const out = $("[data-verdicts]");
  out.innerHTML = "";
  try {
    const files = $("input[type=file]", form).files;
    if (!files.length) throw new Error("files: choose a file first");
    const data = new FormData();
    for (const f of files) data.append("files", f, f.name);
    const verified = await api("/api/verify", { method: "POST", body: data });
    const images = Array.from(files).filter((f) => /\.(png|jpe?g|webp|bmp|gif|tiff?)$/i.test(f.name));
    let marks = [];
    if (images.length) {
      const d = new FormData();
      for (const f of images) d.append("files", f, f.name);
      const model = $("select[name=model]", form).value;
      if (model) d.append("model", model);
      marks = (await api("/api/detect", { method: "POST", body: d })).records;
    }
    verified.reports.forEach((report, i) => {
      const card = el("article", null, `verdict verdict-${report.state.replace(" ", "-")}`);
      card.append(el("h3", files[i].name));
      card.append(el("p", VERDICTS[report.state] || report.state, "verdict-state"));
      const facts = el("dl", null, "facts");
      const add = (k, v) => { if (v) { facts.append(el("dt", k)); facts.append(el("dd", v)); } };
      add("Signed by", report.signer && `${report.signer}${report.issuer ? ` (${report.issuer})` : ""}`);
      add("Made with", report.claim_generator);
      add("Source", report.digital_source_type && report.digital_source_type.split("/").pop());
      add("Actions", (report.actions || []).map((a) => a.action).join(", "));
      const gen = report.generation || {};
      add("Model", gen.model && (gen.model.name || gen.model.hash || JSON.stringify(gen.model)));
      add("Seed", gen.seed != null ? String(gen.seed) : null);
      add("Problems", (report.failures || []).map((f) => f.explanation || f.code).join("; "));
      const mark = marks.find((m) => m.file === files[i].name);
      if (mark) {
        add("Watermark", mark.found ? `genforge's watermark found (confidence ${(mark.confidence * 100).toFixed(1)}%, payload ${mark.payload})`
          : mark.too_small ? "too small to carry genforge's watermark" : "no genforge watermark found");
        if (mark.matches_model != null) add("Made by the chosen model", mark.matches_model ? "yes" : "no");
      }
      card.append(facts);
      out.append(card);
    });
  } catch (err) {
    showError(form, err.message);
  } finally {
    busy(form, false);
  }
}

// -- the resolved configuration (train --dry-run) ---------------------------------------------
async function preflight(form) {
  clearErrors(form);
  const section = $("#resolved");
  try {
    const result = await api(form.dataset.preflight, { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify(collect(form)) });
    $("[data-resolved]", section).textContent = JSON.stringify(result, null, 2);
    section.hidden = false;
    section.scrollIntoView({ block: "start" });
  } catch (err) {
    showError(form, err.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of $$("form[data-api]")) form.addEventListener("submit", (e) => { e.preventDefault(); submit(form); });
  for (const form of $$("form[data-provenance]")) form.addEventListener("submit", (e) => { e.preventDefault(); checkProvenance(form); });
  for (const b of $$("[data-preflight-button]")) b.addEventListener("click", () => preflight(b.form));
  for (const b of $$("button[data-call]")) b.addEventListener("click", () => call(b));
  for (const label of $$("[data-drop]")) dropZone(label);
  const job = $("#job");
  if (job) followJob(job);
  const rows = $$("[data-live-job]");
  if (rows.length) followList(rows);
  for (const waiting of $$("[data-wait-job]")) waitThenReload(waiting);
});
