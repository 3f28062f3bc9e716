// The import section. Choosing a file starts a dry-run import job: the server reads
// the file, matches its columns to fields (its own normalisation) and reports what
// would happen to each row. The page shows that matching (editable) and the first
// rows' outcomes; the import then runs as a job with live progress, and the
// history lists past jobs with their report and an Undo button.

import { api, download } from "./api.js";
import { follow, isFinal } from "./jobs.js";
import { sampleRows } from "./sample.js";
import { displayName, objectDef, objectNames, writableKeys } from "./schema.js";
import { $, el, fillSelect, fmt, guarded, showError, when } from "./ui.js";

const JOBS = "/api/v1/import-jobs";
const PREVIEW_ROWS = 20;

const state = { user: null, file: null, columns: null, mapping: {}, cursor: null };
const ui = {};

/** Wire the section's controls (once, at start-up). */
export function setupImport() {
  for (const id of ["form", "fields", "object", "on-duplicate", "file", "drop", "file-name",
    "dry-run", "run", "error", "job", "mapping", "mapping-rows", "stale", "preview",
    "preview-summary", "preview-rows", "result", "history-rows", "history-more",
    "history-status", "history-error", "history-refresh"]) {
    ui[id] = $(`#import-${id}`);
  }
  ui.file.addEventListener("change", () => {
    chooseFile(ui.file.files[0]);
    ui.file.value = ""; // so that choosing the same file again (edited, say) is a change
  });
  ui.drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    ui.drop.classList.add("dragging");
  });
  ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("dragging"));
  ui.drop.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.drop.classList.remove("dragging");
    if (event.dataTransfer.files.length) chooseFile(event.dataTransfer.files[0]);
  });
  // Another object has other fields: match the columns again.
  ui.object.addEventListener("change", () => state.file && resetAndCheck());
  ui["on-duplicate"].addEventListener("change", markStale);
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    runJob(event.submitter !== ui.run); // Enter in a field means the dry run
  });
  ui["history-refresh"].addEventListener("click", () => loadHistory());
  ui["history-more"].addEventListener("click", () => loadHistory(true));
}

/** Show the section for a signed-in user. */
export async function showImport(user) {
  state.user = user;
  const keep = ui.object.value;
  fillSelect(ui.object, objectNames(), keep || "contacts");
  await loadHistory();
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  ui["file-name"].textContent = `Chosen: ${file.name} (${fmt(file.size)} bytes)`;
  ui["dry-run"].disabled = ui.run.disabled = false;
  resetAndCheck();
}

function resetAndCheck() {
  state.columns = null;
  state.mapping = {};
  ui.mapping.hidden = ui.preview.hidden = ui.result.hidden = true;
  runJob(true);
}

function markStale() {
  ui.stale.hidden = ui.preview.hidden;
}

/** Upload the file as an import job (a dry run or the real thing) and follow it. */
async function runJob(dryRun) {
  if (!state.file) {
    showError(ui.error, { message: "Choose a file to import first." });
    return;
  }
  const options = { object: ui.object.value, on_duplicate: ui["on-duplicate"].value, dry_run: dryRun };
  if (state.columns) {
    // The whole mapping, so that the server uses exactly what the page shows.
    options.mapping = Object.fromEntries(state.columns.map((c) => [c, state.mapping[c] || ""]));
  }
  const body = new FormData();
  body.append("file", state.file, state.file.name);
  body.append("options", JSON.stringify(options));
  ui.fields.disabled = true; // one job at a time; the job card keeps its Cancel button
  ui.result.hidden = ui.job.hidden = true;
  if (!dryRun) ui.mapping.hidden = ui.preview.hidden = true; // the dry run is over; a new one shows them
  await guarded(ui.error, null, async () => {
    const job = await api(JOBS, { method: "POST", body });
    const title = dryRun
      ? `Dry run: ${state.file.name} into ${options.object} (nothing is written)`
      : `Import: ${state.file.name} into ${options.object}`;
    const done = await follow(JOBS, job, ui.job, title);
    if (dryRun) await showDryRun(done);
    else showResult(done);
  });
  ui.fields.disabled = false;
  loadHistory();
}

async function showDryRun(job) {
  const found = job.options.columns;
  if (!found) return; // the job failed before reading the header: its card says why
  state.columns ??= [...Object.keys(found.mapping), ...found.unmatched];
  state.mapping = Object.fromEntries(state.columns.map((c) => [c, found.mapping[c] || ""]));
  const def = await objectDef(job.object);
  ui["mapping-rows"].replaceChildren(...state.columns.map((column) => mappingRow(column, def)));
  ui.mapping.hidden = false;
  const report = await api(`${JOBS}/${job.id}/report`, { query: { format: "json" } });
  await renderPreview(job, report.rows);
  ui.preview.hidden = false;
  ui.preview.dataset.job = job.id; // which dry run the preview shows
  ui.stale.hidden = true;
}

function mappingRow(column, def) {
  const select = el("select", {
    "aria-label": `Field for column ${column}`,
    onchange: (event) => {
      state.mapping[column] = event.target.value;
      row.classList.toggle("ignored", !event.target.value);
      markStale();
    },
  });
  fillSelect(select, [["", "(ignore)"], ...writableKeys(def)], state.mapping[column]);
  const row = el("tr", { class: state.mapping[column] ? "" : "ignored" },
    el("th", { scope: "row" }, column), el("td", {}, select));
  return row;
}

const OUTCOMES = {
  created: "Create",
  duplicate: "Skip: duplicate",
  updated: "Update existing",
  failed: "Reject",
};

async function renderPreview(job, reportRows) {
  const byRow = new Map(reportRows.map((r) => [r.row, r]));
  const sample = await sampleRows(state.file, PREVIEW_ROWS);
  // Rows as numbered in the file (the sample knows about blank lines; XLSX has no sample).
  let numbers = sample.size ? [...sample.keys()] : [];
  if (!numbers.length) {
    const last = Math.min(PREVIEW_ROWS, job.counters.rows_read);
    numbers = Array.from({ length: last }, (_, i) => i + 1);
  }
  const upTo = Math.max(0, ...numbers);
  numbers = [...new Set([...numbers, ...reportRows.filter((r) => r.row <= upTo).map((r) => r.row)])]
    .sort((a, b) => a - b)
    .slice(0, Math.min(PREVIEW_ROWS, job.counters.rows_read));
  const names = await recordNames(job.object, numbers.map((n) => byRow.get(n)?.duplicate_of));
  ui["preview-rows"].replaceChildren(
    ...numbers.map((n) => previewRow(n, sample.get(n), byRow.get(n), names)),
  );
  const c = job.counters;
  const unmatched = state.columns.filter((col) => !state.mapping[col]);
  const updates = c.updated ? `, ${fmt(c.updated)} of them updating their record` : "";
  ui["preview-summary"].replaceChildren(
    `${rows(c.rows_read)} read: ${fmt(c.created)} would be created, ${fmt(c.duplicates)} ` +
      `${c.duplicates === 1 ? "is a duplicate" : "are duplicates"}${updates}, ` +
      `${fmt(c.failed)} would be rejected. ` +
      `The first ${rows(numbers.length)}:`,
    unmatched.length ? el("span", { class: "hint block" }, `Ignored columns: ${unmatched.join(", ")}.`) : "",
  );
}

const rows = (n) => `${fmt(n)} ${n === 1 ? "row" : "rows"}`;

/** Display names of the records that rows duplicate (null: not stored, e.g. an
 * earlier row of the same file in a dry run). */
async function recordNames(object, ids) {
  const names = new Map();
  await Promise.all([...new Set(ids.filter(Boolean))].map(async (id) => {
    const path = `/api/v1/records/${encodeURIComponent(object)}/${encodeURIComponent(id)}`;
    names.set(id, await api(path).then(displayName, () => null));
  }));
  return names;
}

function previewRow(number, values, report, names) {
  const outcome = report?.outcome || "created";
  const shown = values
    ? state.columns.filter((c) => state.mapping[c] && values[c]).map((c) => values[c]).slice(0, 6).join(" · ")
    : "";
  let detail = "New record";
  if (outcome === "failed") {
    detail = report.message;
  } else if (report?.duplicate_of) {
    const name = names.get(report.duplicate_of);
    detail = [
      outcome === "updated" ? "Updates " : "Duplicate of ",
      name ? el("strong", { title: report.duplicate_of }, name) : "a record from an earlier row of this file",
      report.matched_on.length ? ` (matched on ${report.matched_on.join(", ")})` : "",
    ];
  }
  return el("tr", { "data-row": number, "data-outcome": outcome },
    el("td", { "data-label": "Row" }, String(number)),
    el("td", { "data-label": "Values" }, shown || "–"),
    el("td", { "data-label": "Outcome" }, el("span", { class: `badge badge-${outcome}` }, OUTCOMES[outcome])),
    el("td", { "data-label": "Details" }, detail));
}

function showResult(job) {
  const reportButton = (format) =>
    el("button", {
      type: "button",
      onclick: (event) => guarded(ui.error, event.target, () =>
        download(`${JOBS}/${job.id}/report`, `import-${job.id}-report.${format}`, { format })),
    }, `Download the report (${format.toUpperCase()})`);
  const c = job.counters;
  const verdict = {
    completed: `Imported ${rows(c.rows_read)}: ${fmt(c.created)} created, ${fmt(c.updated)} updated, ` +
      `${fmt(c.duplicates)} ${c.duplicates === 1 ? "duplicate" : "duplicates"}, ${fmt(c.failed)} failed.`,
    cancelled: "Cancelled. The rows imported before it stay; undo the job to remove them.",
    failed: "The import failed (see above). Undo the job to remove any rows it imported.",
  }[job.state];
  ui.result.replaceChildren(
    el("p", { role: "status" }, verdict),
    el("div", { class: "actions" }, reportButton("csv"), reportButton("json")),
  );
  ui.result.hidden = false;
}

async function loadHistory(more = false) {
  await guarded(ui["history-error"], null, async () => {
    const page = await api(JOBS, { query: { limit: 10, cursor: more ? state.cursor : undefined } });
    state.cursor = page.nextCursor;
    const lines = page.data.map(historyRow);
    if (more) ui["history-rows"].append(...lines);
    else ui["history-rows"].replaceChildren(...lines);
    ui["history-more"].hidden = !page.nextCursor;
  });
}

function historyRow(job) {
  const o = job.options;
  const c = job.counters;
  const file = o.filename || "(JSON records)";
  const canUndo = !o.dry_run && !job.undone_at && isFinal(job) && c.created + c.updated > 0;
  const by = job.created_by === state.user?.userId ? "you" : String(job.created_by).slice(0, 8);
  const report = el("button", {
    type: "button",
    class: "secondary",
    "aria-label": `Report of ${file}, ${when(job.created_at)}`,
    onclick: (event) => guarded(ui["history-error"], event.target, () =>
      download(`${JOBS}/${job.id}/report`, `import-${job.id}-report.csv`, { format: "csv" })),
  }, "Report");
  const undo = canUndo && el("button", {
    type: "button",
    class: "danger",
    "aria-label": `Undo the import of ${file}, ${when(job.created_at)}`,
    onclick: (event) => undoJob(job, file, event.target),
  }, "Undo");
  const cell = (label, value, cls) => el("td", { "data-label": label, class: cls }, value);
  return el("tr", { "data-job": job.id },
    cell("When", when(job.created_at)),
    cell("By", by),
    cell("Object", job.object),
    cell("File", file),
    cell("Mode", o.dry_run ? "dry run" : `import, ${o.on_duplicate}`),
    cell("State", job.undone_at ? "undone" : job.state),
    cell("Created", fmt(c.created), "num"),
    cell("Updated", fmt(c.updated), "num"),
    cell("Duplicates", fmt(c.duplicates), "num"),
    cell("Failed", fmt(c.failed), "num"),
    cell("Actions", el("div", { class: "actions" }, report, undo)));
}

async function undoJob(job, file, button) {
  const c = job.counters;
  const question = `Undo the import of ${file}? This deletes the ${c.created} records it created` +
    ` (and the companies it created for them), and restores the ${c.updated} records it updated` +
    " (records changed since are left alone).";
  if (!confirm(question)) return;
  await guarded(ui["history-error"], button, async () => {
    const result = await api(`${JOBS}/${job.id}/undo`, { method: "POST" });
    await loadHistory();
    const linked = Object.entries(result.deleted_linked || {})
      .map(([name, count]) => `; ${name} it created: ${fmt(count)} deleted`).join("");
    ui["history-status"].textContent =
      `Undone: ${fmt(result.deleted)} records deleted, ${fmt(result.restored)} restored` + linked +
      (result.skipped ? `, ${fmt(result.skipped)} left alone (changed since, or still linked).` : ".");
  });
}
