// The console's little JavaScript: send a file with a progress bar, and keep statuses
// current while uploads are Processing. Pages work without it, except sending a file.
"use strict";

const POLL_MS = 700;
const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function fetchUpload(reference) {
  const response = await fetch(`/v1/uploads/${encodeURIComponent(reference)}`,
    { headers: { Accept: "application/json" }, credentials: "same-origin" });
  return response.ok ? response.json() : null;
}

function showStatus(element, status) {
  element.textContent = status;
  element.className = `status status-${status.toLowerCase()}`;
}

function watchUpload(reference, update, done) {
  const tick = async () => {
    const upload = await fetchUpload(reference);
    if (upload) update(upload);
    if (!upload || upload.status === "Processing") setTimeout(tick, POLL_MS);
    else if (done) done(upload);
  };
  tick();
}

function setUpUploadForm(form) {
  const progress = document.getElementById("upload-progress");
  const result = document.getElementById("upload-result");
  const problem = document.getElementById("result-problem");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/uploads");
    request.setRequestHeader("X-CSRF-Token", csrf());
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    request.addEventListener("load", () => {
      const body = JSON.parse(request.responseText || "{}");
      result.hidden = false;
      if (request.status !== 200 && request.status !== 202) {
        problem.hidden = false;
        problem.textContent = body.detail || body.title || `HTTP ${request.status}`;
        return;
      }
      problem.hidden = true;
      const link = document.getElementById("result-link");
      link.textContent = body.reference;
      link.href = `/uploads/${encodeURIComponent(body.reference)}`;
      const update = (upload) => {
        showStatus(document.getElementById("result-status"), upload.status);
        document.getElementById("result-records").textContent = upload.records;
      };
      update(body);
      watchUpload(body.reference, update);
    });
    progress.hidden = false;
    progress.value = 0;
    request.send(new FormData(form));
  });
}

function setUpFilesTable(table) {
  if (table.dataset.refresh !== "on") return;
  const tick = async () => {
    const response = await fetch("/v1/uploads?limit=200", { credentials: "same-origin" });
    if (!response.ok) return;
    const page = await response.json();
    let processing = false;
    for (const upload of page.items) {
      const row = table.querySelector(`tr[data-reference="${CSS.escape(upload.reference)}"]`);
      if (!row) continue;
      showStatus(row.querySelector('[data-field="status"]'), upload.status);
      row.querySelector('[data-field="records"]').textContent = upload.records;
      processing ||= upload.status === "Processing";
    }
    if (processing) setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

function setUpUploadPage(element) {
  if (element.dataset.status !== "Processing") return;
  watchUpload(element.dataset.reference, (upload) => {
    for (const field of element.querySelectorAll("[data-field]")) {
      const key = field.dataset.field;
      if (key === "status") showStatus(field, upload.status);
      else if (key in upload) field.textContent = upload[key];
    }
  }, () => window.location.reload());  // final: show its errors
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload-form");
  if (form) setUpUploadForm(form);
  const table = document.getElementById("uploads");
  if (table) setUpFilesTable(table);
  const upload = document.getElementById("upload");
  if (upload) setUpUploadPage(upload);
});
