// Talking to the Kasar API: the token, JSON calls, errors in the API's one shape
// ({code, message, details?}) and file downloads.

const TOKEN_KEY = "kasar.token";

export const token = {
  // sessionStorage only: the token is gone when the tab is closed.
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An error answered by the API, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// Called on every 401, so that the page can go back to the sign-in form.
let onUnauthenticated = () => {};
export function whenUnauthenticated(handler) {
  onUnauthenticated = handler;
}

/** fetch() with the Bearer token; resolves to the Response when it is 2xx. */
export async function request(path, { method = "GET", json, body, headers = {}, query } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const init = { method, headers: { ...headers, Authorization: `Bearer ${token.get() || ""}` } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body; // FormData: the browser writes the multipart boundary itself
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, "NETWORK_ERROR", "The server could not be reached. Is `kasar serve` running?");
  }
  if (response.ok) return response;
  const error = await errorFrom(response);
  if (response.status === 401) onUnauthenticated(error);
  throw error;
}

/** A JSON call: resolves to the parsed body. */
export async function api(path, options) {
  return (await request(path, options)).json();
}

async function errorFrom(response) {
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // not JSON (a proxy's error page, say): fall through to a generic message
  }
  if (payload && typeof payload.message === "string") {
    return new ApiError(response.status, payload.code, payload.message, payload.details);
  }
  return new ApiError(response.status, "HTTP_" + response.status, `The server answered ${response.status} ${response.statusText}`);
}

/** Download an API file: fetched with the token, then saved from a Blob. */
export async function download(path, fallbackName, query) {
  const response = await request(path, { query });
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] || fallbackName;
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoke later: revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return { name, size: blob.size };
}
