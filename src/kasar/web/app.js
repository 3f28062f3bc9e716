// The page's entry point: sign in with an API token, switch between Import and
// Export. Every call goes through api.js with the token; nothing here is cached
// beyond the browser tab (sessionStorage).

import { api, token, whenUnauthenticated } from "./api.js";
import { setupExport, showExport } from "./exporter.js";
import { setupImport, showImport } from "./importer.js";
import { loadObjects } from "./schema.js";
import { $, guarded, showError } from "./ui.js";

const signInForm = $("#sign-in-form");
const signInError = $("#sign-in-error");

async function signIn(value) {
  token.set(value);
  const user = await api("/api/v1/me"); // a bad token: 401, and whenUnauthenticated below
  if (user.isAdmin) {
    await loadObjects();
    // The export-job API may not exist on an older server: then exports are direct only.
    const openapi = await fetch("/openapi.json").then((r) => r.json()).catch(() => ({ paths: {} }));
    await Promise.all([showImport(user), showExport("/api/v1/export-jobs" in openapi.paths)]);
    showTab("import");
  }
  // Shown once the sections are ready, so that nothing can be used half-loaded.
  $("#who-name").textContent = `Signed in as ${user.profile.full_name || user.profile.email}` +
    (user.profile.full_name ? ` (${user.profile.email})` : "") + (user.isAdmin ? ", admin" : "");
  $("#who").hidden = false;
  $("#sign-in").hidden = true;
  $("#workspace").hidden = false;
  $("#not-admin").hidden = user.isAdmin;
  $("#tabs").hidden = !user.isAdmin;
  if (!user.isAdmin) $("#import").hidden = $("#export").hidden = true;
}

function signOut(reason) {
  token.clear();
  $("#who").hidden = true;
  $("#workspace").hidden = true;
  $("#sign-in").hidden = false;
  signInForm.reset();
  if (reason) showError(signInError, reason);
  $("#token").focus();
}

function showTab(name) {
  for (const tab of ["import", "export"]) {
    $(`#tab-${tab}`).setAttribute("aria-pressed", String(tab === name));
    $(`#${tab}`).hidden = tab !== name;
  }
}

whenUnauthenticated((error) => signOut(error));
signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("#token").value.trim();
  guarded(signInError, $("#sign-in-submit"), () => signIn(value));
});
$("#sign-out").addEventListener("click", () => signOut());
$("#tab-import").addEventListener("click", () => showTab("import"));
$("#tab-export").addEventListener("click", () => showTab("export"));
setupImport();
setupExport();

// A reload keeps the session's token.
if (token.get()) guarded(signInError, null, () => signIn(token.get()));
