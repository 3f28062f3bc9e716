// The workspace's objects and the keys of their fields, as the API names them
// (spec §3: a RELATION `company` reads and writes as `company_id` and
// `company_name`; a PIPELINE `pipeline` as four keys).

import { api } from "./api.js";

let objects = [];
const definitions = new Map();

export async function loadObjects() {
  objects = (await api("/api/v1/schema")).objects;
  definitions.clear();
  return objects;
}

export const objectNames = () => objects.map((o) => [o.name, `${o.label} (${o.name})`]);

export async function objectDef(name) {
  if (!definitions.has(name)) definitions.set(name, await api(`/api/v1/schema/${encodeURIComponent(name)}`));
  return definitions.get(name);
}

function fieldKeys(field) {
  if (field.type === "RELATION") return [`${field.name}_id`, `${field.name}_name`];
  if (field.type === "PIPELINE") {
    const n = field.name;
    return [`${n}_id`, `${n}_step_id`, n, `${n}_step`];
  }
  return [field.name];
}

/** Every key of an object: id, its fields' keys, created_at, updated_at. */
export function allKeys(def) {
  return ["id", ...def.fields.flatMap(fieldKeys), "created_at", "updated_at"];
}

/** The keys an import may write (the timestamps are read-only). */
export const writableKeys = (def) => allKeys(def).filter((k) => k !== "created_at" && k !== "updated_at");

/** The keys a default export shows: names rather than ids. */
export function defaultExportKeys(def) {
  const keys = def.fields.flatMap((f) => {
    if (f.type === "RELATION") return [`${f.name}_name`];
    if (f.type === "PIPELINE") return [f.name, `${f.name}_step`];
    return [f.name];
  });
  return ["id", ...keys, "created_at", "updated_at"];
}

/** The field type behind a key, for the filter builder (null: a system key). */
export function keyType(def, key) {
  if (key === "created_at" || key === "updated_at") return "DATETIME";
  if (key === "id") return null;
  const field = def.fields.find((f) => fieldKeys(f).includes(key));
  if (!field) return null;
  if (key === field.name && field.type !== "PIPELINE") return field.type;
  return key.endsWith("_id") ? null : "TEXT"; // an id, or a related record's or step's name
}

/** A record's display name, as the API picks it: first + last name, or name. */
export function displayName(record) {
  const full = [record.first_name, record.last_name].filter(Boolean).join(" ");
  return full || record.name || record.id;
}
