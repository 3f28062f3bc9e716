// The export section: object, fields, filters, sort and format. The page first
// counts the matching records; up to 10,000 (in CSV or JSON) download at once from
// GET /export/{object}, larger exports (or NDJSON, XLSX) run as an export job with
// progress, when the server has the export-job API.

import { api, download } from "./api.js";
import { FilterBuilder } from "./filters.js";
import { follow } from "./jobs.js";
import { allKeys, defaultExportKeys, objectDef, objectNames } from "./schema.js";
import { $, el, fillSelect, fmt, guarded } from "./ui.js";

const DIRECT_MAX = 10_000;
const JOBS = "/api/v1/export-jobs";

const ui = {};
let builder;
let def = null;
let hasJobs = false;

export function setupExport() {
  for (const id of ["form", "object", "fields", "field-list", "filters", "sort-by", "sort-dir",
    "format", "submit", "error", "status", "job"]) {
    ui[id] = $(`#export-${id}`);
  }
  builder = new FilterBuilder(ui.filters);
  ui.object.addEventListener("change", () => guarded(ui.error, null, () => chooseObject(ui.object.value)));
  ui.fields.addEventListener("click", (event) => {
    const which = event.target.dataset.select;
    if (!which) return;
    const chosen = which === "all" ? allKeys(def) : which === "default" ? defaultExportKeys(def) : [];
    for (const box of ui["field-list"].querySelectorAll("input")) box.checked = chosen.includes(box.value);
  });
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(ui.error, ui.submit, runExport).then((done) => {
      if (!done) ui.status.textContent = ""; // the error box says why
    });
  });
}

/** Show the section for a signed-in user; `exportJobs`: the server has the job API. */
export async function showExport(exportJobs) {
  hasJobs = exportJobs;
  const formats = hasJobs ? ["csv", "json", "ndjson", "xlsx"] : ["csv", "json"];
  fillSelect(ui.format, formats, ui.format.value || "csv");
  fillSelect(ui.object, objectNames(), ui.object.value || "contacts");
  await chooseObject(ui.object.value);
}

async function chooseObject(name) {
  def = await objectDef(name);
  const chosen = defaultExportKeys(def);
  ui["field-list"].replaceChildren(...allKeys(def).map((key) =>
    el("label", { class: "check" },
      el("input", { type: "checkbox", name: "field", value: key, checked: chosen.includes(key) }), ` ${key}`)));
  builder.reset(def, allKeys(def));
  fillSelect(ui["sort-by"], allKeys(def), "created_at");
}

async function runExport() {
  ui.job.hidden = true;
  const object = ui.object.value;
  const fields = [...ui["field-list"].querySelectorAll("input:checked")].map((box) => box.value);
  if (!fields.length) throw { message: "Choose at least one field to export." };
  const filters = builder.value();
  const format = ui.format.value;
  const params = {
    fields: fields.join(","),
    filters: filters ? JSON.stringify(filters) : undefined,
    sort_by: ui["sort-by"].value,
    sort_dir: ui["sort-dir"].value,
  };
  ui.status.textContent = "Counting the matching records…";
  const { total } = await api(`/api/v1/records/${encodeURIComponent(object)}`, {
    query: { limit: 1, fields: "id", filters: params.filters },
  });
  const direct = total <= DIRECT_MAX && (format === "csv" || format === "json");
  if (!direct && !hasJobs) {
    throw { message: `${fmt(total)} records match, more than the ${fmt(DIRECT_MAX)} of one ` +
      "download, and this server has no export jobs. Narrow the filters." };
  }
  let saved;
  if (direct) {
    ui.status.textContent = `${fmt(total)} records match. Downloading…`;
    saved = await download(`/api/v1/export/${encodeURIComponent(object)}`, `${object}_export.${format}`,
      { ...params, format, limit: Math.max(total, 1) });
  } else {
    ui.status.textContent = `${fmt(total)} records match. Exporting as a job…`;
    const body = { object, format, ...params, fields, filters: filters || undefined };
    const job = await follow(JOBS, await api(JOBS, { method: "POST", json: body }), ui.job,
      `Export of ${object} (${format.toUpperCase()})`);
    if (job.state !== "completed") {
      throw { message: `The export job ${job.state}${job.error ? `: ${job.error}` : "."}` };
    }
    saved = await download(`${JOBS}/${job.id}/download`, `${object}_export.${format}`);
  }
  ui.status.textContent = `${fmt(total)} records exported: ${saved.name} (${fmt(saved.size)} bytes) downloaded.`;
  return true;
}
