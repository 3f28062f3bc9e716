// Small DOM helpers shared by the page's sections.

export const $ = (selector, root = document) => root.querySelector(selector);

/** el("button", {type: "button", onclick}, "Text", child, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** <option>s for a <select>: items are strings or [value, label] pairs. */
export function fillSelect(select, items, selected) {
  select.replaceChildren(
    ...items.map((item) => {
      const [value, label] = Array.isArray(item) ? item : [item, item];
      return el("option", { value, selected: value === selected }, label);
    }),
  );
}

/** Show an API error (message, code, and each of its details) in an alert box. */
export function showError(box, error) {
  const details = error.details;
  let list = null;
  if (Array.isArray(details) && details.length) {
    list = el("ul", {}, details.map((d) => el("li", {}, describe(d))));
  } else if (details && typeof details === "object") {
    list = el("ul", {}, Object.entries(details).map(([k, v]) => el("li", {}, `${k}: ${describe(v)}`)));
  }
  const code = error.code ? el("span", { class: "code" }, error.code) : null;
  box.replaceChildren(el("p", {}, code, " ", error.message || String(error)), list || "");
  box.hidden = false;
}

function describe(detail) {
  if (detail && typeof detail === "object" && "msg" in detail) {
    return `${(detail.loc || []).join(".")}: ${detail.msg}`;
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

export function clearError(box) {
  box.hidden = true;
  box.replaceChildren();
}

/** Run an async action with its button disabled, showing any error in `box`. */
export async function guarded(box, button, action) {
  clearError(box);
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    showError(box, error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

const numbers = new Intl.NumberFormat("en");
export const fmt = (n) => (n === null || n === undefined ? "–" : numbers.format(n));

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
