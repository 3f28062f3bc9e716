// The filter builder: AND/OR groups of conditions, nested, producing the API's
// FilterGroup (spec §5): {"operator": "and"|"or", "conditions": [...]}.

import { keyType } from "./schema.js";
import { el, fillSelect } from "./ui.js";

const MAX_DEPTH = 3; // the API allows 5; three levels are plenty on a page

const OPERATORS = {
  eq: "is", neq: "is not", contains: "contains", not_contains: "does not contain",
  starts_with: "starts with", ends_with: "ends with", in: "is one of", not_in: "is none of",
  gt: "greater than", gte: "at least", lt: "less than", lte: "at most",
  date_before: "before", date_after: "after", is_null: "is empty", is_not_null: "is not empty",
};
const EMPTY = ["is_null", "is_not_null"];
const TEXT = ["eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "in", "not_in", ...EMPTY];
const NUMBER = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", ...EMPTY];
const DATE = ["date_after", "date_before", "eq", "neq", "gte", "lte", ...EMPTY];
const BY_TYPE = {
  NUMBER, INTEGER: NUMBER, FLOAT: NUMBER, CURRENCY: NUMBER, PERCENTAGE: NUMBER,
  DATE, DATETIME: DATE,
  BOOLEAN: ["eq", "neq", ...EMPTY],
  MULTI_SELECT: ["contains", "not_contains", ...EMPTY], ADDRESS: ["contains", "not_contains", ...EMPTY],
};
const ID_OPS = ["eq", "neq", "in", "not_in", ...EMPTY];
const operatorsFor = (type) => (type === null ? ID_OPS : BY_TYPE[type] || TEXT);

let nextId = 1;
const group = (operator = "and") => ({ id: nextId++, kind: "group", operator, items: [] });

export class FilterBuilder {
  constructor(container) {
    this.container = container;
    this.def = null;
    this.root = group();
  }

  /** Start again for an object (its keys are the fields to filter on). */
  reset(def, keys) {
    this.def = def;
    this.keys = keys;
    this.root = group();
    this.render();
  }

  /** The FilterGroup to send, or null when there is no condition. */
  value() {
    const walk = (node) => {
      if (node.kind === "condition") {
        const out = { field: node.field, operator: node.operator };
        if (!EMPTY.includes(node.operator)) out.value = node.value;
        return out;
      }
      const conditions = node.items.map(walk).filter(Boolean);
      return conditions.length ? { operator: node.operator, conditions } : null;
    };
    return walk(this.root);
  }

  condition(parent) {
    const field = this.keys.find((k) => k !== "id") || this.keys[0];
    const node = { id: nextId++, kind: "condition", field, operator: operatorsFor(keyType(this.def, field))[0], value: "" };
    parent.items.push(node);
    this.render(node, "field");
  }

  /** Re-draw everything, then put the focus back where the user was. */
  render(focusNode, part) {
    this.container.replaceChildren(this.groupEl(this.root, null, 1));
    if (focusNode) this.container.querySelector(`[data-node="${focusNode.id}"] [data-part="${part}"]`)?.focus();
  }

  groupEl(node, parent, depth) {
    const operator = el("select", {
      "data-part": "operator",
      "aria-label": depth === 1 ? "Match all or any of the conditions" : "Match all or any in this group",
      onchange: (e) => (node.operator = e.target.value),
    });
    fillSelect(operator, [["and", "all (AND)"], ["or", "any (OR)"]], node.operator);
    const button = (label, onclick, cls = "secondary", aria) =>
      el("button", { type: "button", class: cls, onclick, "aria-label": aria }, label);
    const actions = el("div", { class: "group-actions" },
      button("+ Condition", () => this.condition(node), "secondary",
        depth === 1 ? "Add a condition" : "Add a condition to this group"),
      depth < MAX_DEPTH &&
        button("+ Group", () => {
          const child = group(node.operator === "and" ? "or" : "and");
          node.items.push(child);
          this.condition(child); // a group starts with one condition
        }, "secondary", depth === 1 ? "Add a group" : "Add a group inside this group"),
      parent && button("Remove group", () => this.remove(parent, node), "danger"),
    );
    return el("div", { class: `filter-group depth-${depth}`, "data-node": node.id, role: "group",
      "aria-label": depth === 1 ? "Filters" : "Filter group" },
      el("div", { class: "group-head" },
        node.items.length
          ? [depth === 1 ? "Records matching " : "", operator, " of:"]
          : depth === 1 ? "No filter: every record." : "An empty group (ignored)."),
      node.items.length
        ? el("ul", {}, node.items.map((item) =>
            el("li", {}, item.kind === "group" ? this.groupEl(item, node, depth + 1) : this.conditionEl(item, node))))
        : null,
      actions);
  }

  conditionEl(node, parent) {
    const type = keyType(this.def, node.field);
    const ops = operatorsFor(type);
    const field = el("select", {
      "data-part": "field",
      "aria-label": "Field",
      onchange: (e) => {
        node.field = e.target.value;
        const allowed = operatorsFor(keyType(this.def, node.field));
        if (!allowed.includes(node.operator)) node.operator = allowed[0];
        this.render(node, "field");
      },
    });
    fillSelect(field, this.keys, node.field);
    const operator = el("select", {
      "data-part": "op",
      "aria-label": "Operator",
      onchange: (e) => {
        node.operator = e.target.value;
        this.render(node, "op");
      },
    });
    fillSelect(operator, ops.map((op) => [op, OPERATORS[op]]), node.operator);
    const list = ["in", "not_in"].includes(node.operator);
    const value = !EMPTY.includes(node.operator) && el("input", {
      "data-part": "value",
      "aria-label": "Value",
      type: !list && (type === "DATE" || type === "DATETIME") ? "date" : "text",
      value: node.value,
      placeholder: list ? "a, b, c" : placeholder(this.def, node.field, type),
      oninput: (e) => (node.value = e.target.value),
    });
    return el("div", { class: "condition", "data-node": node.id },
      field, operator, value,
      el("button", { type: "button", class: "icon danger", "aria-label": "Remove condition",
        onclick: () => this.remove(parent, node) }, "×"));
  }

  remove(parent, node) {
    parent.items.splice(parent.items.indexOf(node), 1);
    this.render();
    // The focus was on the removed button: move it to the parent's first control.
    this.container.querySelector(`[data-node="${parent.id}"] button`)?.focus();
  }
}

function placeholder(def, key, type) {
  const field = def.fields.find((f) => f.name === key);
  if (field?.options?.length) return field.options.join(", ");
  if (type === "BOOLEAN") return "true or false";
  return "value";
}
