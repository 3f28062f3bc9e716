// A job's live progress (spec §11): poll GET .../{id} until the job ends, and show
// its state, counters, rows per second and ETA in a card.

import { api, request } from "./api.js";
import { duration, el, fmt } from "./ui.js";

const POLL_MS = 500;
const FINAL = ["completed", "failed", "cancelled"];
export const isFinal = (job) => FINAL.includes(job.state);

/**
 * Follow a job until it ends; `card` shows it as it goes. `base` is
 * "/api/v1/import-jobs" or "/api/v1/export-jobs". Resolves to the final job.
 */
export async function follow(base, job, card, title) {
  for (;;) {
    renderJob(card, job, title, base);
    if (isFinal(job)) return job;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    job = await api(`${base}/${job.id}`);
  }
}

const COUNTERS = [
  ["rows_read", "Read"],
  ["created", "Created"],
  ["updated", "Updated"],
  ["duplicates", "Duplicates"],
  ["failed", "Failed"],
];

export function renderJob(card, job, title, base) {
  const c = job.counters || {};
  const total = job.total_rows;
  const running = !isFinal(job);
  const progress = [
    total === null || total === undefined ? `${fmt(c.rows_read)} rows` : `${fmt(c.rows_read)} of ${fmt(total)} rows`,
  ];
  if (job.rows_per_second) progress.push(`${fmt(Math.round(job.rows_per_second))} rows/s`);
  if (running && job.eta_seconds !== null && job.eta_seconds !== undefined) {
    progress.push(`about ${duration(job.eta_seconds)} left`);
  }
  const cancel =
    running &&
    el("button", {
      type: "button",
      class: "secondary",
      disabled: Boolean(job.cancel_requested),
      onclick: async (event) => {
        event.target.disabled = true;
        await request(`${base}/${job.id}/cancel`, { method: "POST" }).catch((error) =>
          event.target.replaceWith(el("span", { class: "error", role: "alert" }, error.message)));
      },
    }, job.cancel_requested ? "Cancelling…" : "Cancel");
  const children = [
    el("div", { class: "job-head" },
      el("h3", {}, title),
      el("span", { class: `state state-${job.state}` }, job.state)), // not live: redrawn every poll
    el("progress", {
      max: total || 1,
      value: total ? c.rows_read : isFinal(job) ? 1 : undefined, // no value: indeterminate
      "aria-label": "Progress",
    }),
    el("p", { class: "progress-text" }, progress.join(" · ")),
    job.kind === "export"
      ? null
      : el("dl", { class: "counters" }, COUNTERS.map(([key, label]) =>
          el("div", { "data-counter": key }, el("dt", {}, label), el("dd", {}, fmt(c[key]))))),
    job.state === "failed" && job.error ? el("p", { class: "error", role: "alert" }, job.error) : null,
    cancel,
  ];
  card.replaceChildren(...children.filter(Boolean));
  card.hidden = false;
}
