// The page's entry point: hash routes, the readiness pill and the token
// form. The views live in customers.js and operations.js.

import { onAuthNeeded, request, setToken, token } from "./api.js";
import * as customers from "./customers.js";
import { $ } from "./dom.js";
import * as operations from "./operations.js";

const readinessEvery = 5000;

// route shows the view of the hash: #/customers[/{id}[/versions/{n}]] or
// #/operations.
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const view = parts[0] === "operations" ? "operations" : "customers";
  $("view-customers").hidden = view !== "customers";
  $("view-operations").hidden = view !== "operations";
  for (const name of ["customers", "operations"]) {
    const link = $("nav-" + name);
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = view === "operations" ? "Operations · eventfold"
    : parts[1] ? decodeURIComponent(parts[1]) + " · eventfold" : "Customers · eventfold";
  if (view === "operations") {
    customers.stopList();
    operations.start();
  } else {
    operations.stop();
    customers.route(parts.slice(1));
  }
}

let wasReady = null;

async function checkReadiness() {
  let text, title, ready = false;
  try {
    const r = await request("GET", "readyz");
    ready = Boolean(r.status === 200 && r.body && r.body.ready);
    text = ready ? "Ready" : "Not ready";
    title = ready ? "GET /readyz answers 200" : "Missing: " + ((r.body && r.body.missing) || []).join(", ");
  } catch {
    text = "Unreachable";
    title = "GET /readyz failed";
  }
  const pill = $("readiness");
  // The pill is a live region: rewrite it only when it changes, so that
  // screen readers do not repeat it every few seconds.
  if (pill.textContent !== text) {
    pill.className = "pill " + (ready ? "pill-ok" : "pill-bad");
    pill.textContent = text;
  }
  pill.title = title;
  if (ready && wasReady === false) customers.onReady();
  wasReady = ready;
}

function initToken() {
  const panel = $("token-panel");
  const toggle = $("token-toggle");
  const show = (open, reason) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (reason) $("token-reason").textContent = reason;
    if (open) $("token-input").focus();
  };
  toggle.addEventListener("click", () => show(panel.hidden));
  panel.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token-input").value.trim());
    $("token-input").value = "";
    show(false);
    location.reload();
  });
  $("token-forget").addEventListener("click", () => {
    setToken("");
    show(false);
    location.reload();
  });
  // The token button shows only where tokens matter: once the server
  // asked for one, or when one is kept.
  toggle.hidden = !token();
  let asked = false;
  onAuthNeeded((status) => {
    toggle.hidden = false;
    if (asked) return;
    asked = true;
    show(true, status === 401
      ? "The server asks for a bearer token. It is kept in this tab only."
      : "The token given does not grant this access. Use another one.");
  });
  toggle.textContent = token() ? "Token ✓" : "Token";
}

function start() {
  initToken();
  customers.init();
  operations.init();
  window.addEventListener("hashchange", route);
  route();
  checkReadiness();
  setInterval(checkReadiness, readinessEvery);
}

start();
