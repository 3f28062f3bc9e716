// The first rows of the chosen file, read in the browser only to show their values
// beside the dry run's outcomes. The server reads the file itself (and decides the
// columns and the matching); rows here are numbered as the server numbers them, so
// that a report line "row 3" finds its values. XLSX is not read here.

const SAMPLE_BYTES = 256 * 1024;
const WHOLE_JSON_BYTES = 5 * 1024 * 1024;

/** Map of row number -> {column: value} for up to `count` rows (empty if unknown). */
export async function sampleRows(file, count) {
  const rows = new Map();
  const head = await file.slice(0, SAMPLE_BYTES).text();
  const truncated = file.size > SAMPLE_BYTES;
  const start = head.replace(/^\ufeff/, "").trimStart();
  try {
    if (start.startsWith("[") || (start.startsWith("{") && !isNdjson(start))) {
      if (file.size > WHOLE_JSON_BYTES) return rows;
      const doc = JSON.parse(await file.text());
      (Array.isArray(doc) ? doc : doc.records || []).slice(0, count).forEach((r, i) => rows.set(i + 1, r));
    } else if (start.startsWith("{")) {
      let n = 0;
      for (const line of start.split(/\r?\n/).slice(0, truncated ? -1 : undefined)) {
        if (!line.trim()) continue;
        rows.set(++n, JSON.parse(line));
        if (n >= count) break;
      }
    } else if (!/\.xlsx$/i.test(file.name) && !start.startsWith("PK")) {
      csvRows(start, truncated, count, rows);
    }
  } catch {
    rows.clear(); // the server will say what is wrong with the file
  }
  return rows;
}

function isNdjson(text) {
  const [first, rest = ""] = text.split(/\n(.*)/s);
  try {
    const value = JSON.parse(first);
    return !("records" in value) || rest.trimStart().startsWith("{");
  } catch {
    return false; // one object spread over several lines: {"records": [...]}
  }
}

function csvRows(text, truncated, count, rows) {
  const firstLine = text.split(/\r?\n/, 1)[0];
  const delimiter = [",", ";", "\t", "|"].reduce((best, d) =>
    firstLine.split(d).length > firstLine.split(best).length ? d : best,
  );
  const records = parseCsv(text, delimiter);
  if (truncated) records.pop(); // the sample may end inside the last record
  const headerAt = records.findIndex((cells) => cells.some((c) => c.trim()));
  if (headerAt < 0) return;
  const columns = records[headerAt].map((c) => c.trim());
  // Blank records count in the numbering, as on the server; they are not rows.
  records.slice(headerAt + 1, headerAt + 1 + count).forEach((cells, i) => {
    if (!cells.some((c) => c)) return;
    rows.set(i + 1, Object.fromEntries(columns.map((c, j) => [c, cells[j] ?? ""])));
  });
}

/** RFC 4180: quoted cells may hold the delimiter, quotes ("") and line breaks. */
function parseCsv(text, delimiter) {
  const records = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') cell += text[i++];
      else quoted = false;
    } else if (c === '"' && cell === "") {
      quoted = true;
    } else if (c === delimiter) {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      records.push(row);
      row = [];
      cell = "";
    } else {
      cell += c;
    }
  }
  if (cell || row.length) records.push([...row, cell]);
  return records;
}
