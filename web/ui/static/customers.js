// The customer view: lookup and list, the state beside its timeline, time
// travel by version, live updates from the watch stream, and the append
// form.

import { ApiError, customerPath, describe, getJSON, request, watch } from "./api.js";
import { $, announce, clear, formatAddress, formatTime, formatValue, h, timeEl } from "./dom.js";

const idPattern = /^[A-Za-z0-9._:-]{1,128}$/;
const idRule = "an id has 1 to 128 letters, digits or . _ - : characters.";
const eventsPage = 100;
const listPage = 50;

// The selected customer. seq increases on every selection, so an answer
// that arrives for an earlier one is dropped.
const sel = {
  id: null,
  current: null, // latest state, from a read or the watch stream
  events: [], // accepted events loaded, by version ascending
  firstLoaded: 1, // version of events[0]
  firstVersion: 1, // oldest version the history still has
  asOf: null, // version shown in the state panel, or null for current
  shown: null, // the state shown
  fresh: new Set(), // versions that arrived live, to highlight once
  attempts: new Map(), // event id -> what a rejected event attempted, once read
  openAttempts: new Set(), // event ids whose attempted data is shown
  stopWatch: null,
  seq: 0,
};

let listNext = "";
let ifMatchEdited = false;
let dataEdited = false; // the data field differs from the template
let stopListWatch = null;

const defaultType = "customer.renamed";

export function init() {
  $("lookup-form").addEventListener("submit", onLookup);
  $("lookup-id").addEventListener("input", () => setLookupError(""));
  $("list-more").addEventListener("click", () => loadList(false));
  $("list-refresh").addEventListener("click", () => loadList(true));
  let searchTimer = null;
  const search = () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => loadList(true), 250); };
  $("list-q").addEventListener("input", search);
  $("list-filter").addEventListener("change", () => loadList(true));
  $("list-search").addEventListener("submit", (e) => { e.preventDefault(); loadList(true); });
  $("timeline-earlier").addEventListener("click", loadEarlier);
  $("asof-back").addEventListener("click", () => go(sel.id));
  $("at-form").addEventListener("submit", showAt);
  $("diff-from").addEventListener("change", () => { if (sel.shown) renderDiff(sel.shown); });
  $("append-form").addEventListener("submit", onAppend);
  $("append-type").addEventListener("change", () => fillTemplate());
  $("append-ifmatch").addEventListener("input", () => { ifMatchEdited = true; setIfMatchError(""); });
  $("append-data").addEventListener("input", () => { dataEdited = true; setDataError(""); });
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "");
    if (e.key === "/" && !typing && !$("view-customers").hidden) {
      e.preventDefault();
      $("lookup-id").focus();
      $("lookup-id").select();
    } else if (e.key === "Escape" && sel.asOf !== null && !typing) {
      go(sel.id);
    }
  });
  loadList(true);
}

// onReady is called when the service becomes ready: reads made while the
// view was recovering failed, so the list is read again.
export function onReady() {
  if (!$("customer-list").children.length) loadList(true);
}

// followList keeps the list current from GET /watch while the customer
// view is shown; stopList ends it.
function followList() {
  if (stopListWatch) return;
  stopListWatch = watch("watch", { onState: onListState, onStatus: () => {} });
}

export function stopList() {
  if (stopListWatch) stopListWatch();
  stopListWatch = null;
}

// onListState puts a changed customer in the list: in place when it is
// shown, else at its place in id order when that place is within the
// loaded pages (past them, "Load more" will bring it).
function onListState(c) {
  const list = $("customer-list");
  const item = listItem(c);
  if (!matches(c)) {
    for (const li of list.children) if (li.dataset.id === c.id) li.remove();
    return;
  }
  for (const li of list.children) {
    if (li.dataset.id === c.id) {
      li.replaceWith(item);
      markSelected();
      return;
    }
    if (li.dataset.id > c.id) {
      li.before(item);
      markSelected();
      $("list-status").textContent = "";
      return;
    }
  }
  if (listNext && c.id > listNext) return;
  list.append(item);
  markSelected();
  $("list-status").textContent = "";
}

// route shows the customer view for #/customers[/{id}[/versions/{n}]].
export async function route(parts) {
  followList();
  const id = parts[0] ? decodeURIComponent(parts[0]) : null;
  const version = parts[1] === "versions" && /^\d+$/.test(parts[2] || "") ? Number(parts[2]) : null;
  if (!id) {
    if (!sel.id) showEmpty();
    return;
  }
  if (id !== sel.id) {
    const ok = await select(id);
    if (!ok) return;
  }
  await showVersion(version);
}

function go(id, version) {
  location.hash = "#/customers/" + encodeURIComponent(id) + (version ? "/versions/" + version : "");
}

// ---------------------------------------------------------------- lookup and list

function onLookup(e) {
  e.preventDefault();
  const input = $("lookup-id");
  const id = input.value.trim();
  if (!idPattern.test(id)) {
    setLookupError(id ? idRule : "Type a customer id.");
    input.focus();
    return;
  }
  if (id === sel.id) {
    go(id);
    refresh();
  } else {
    go(id);
  }
}

function setLookupError(text) {
  $("lookup-error").textContent = text;
  $("lookup-id").setAttribute("aria-invalid", text ? "true" : "false");
}

// The list's search, as GET /customers?q=&status= reads it.
function listFilter() {
  return { q: $("list-q").value.trim(), status: $("list-filter").value };
}

// matches is the server's filter, for customers that arrive live.
function matches(c) {
  const { q, status } = listFilter();
  const lq = q.toLowerCase();
  if (status && c.status !== status) return false;
  return !lq || c.id.toLowerCase().startsWith(lq) ||
    (c.name || "").toLowerCase().includes(lq) || (c.email || "").toLowerCase().includes(lq);
}

// A search scans the table a bounded step per request: a page can come
// back with few matches and more to scan, so the list reads on, a few
// steps at most, before it offers "Load more".
const maxListSteps = 5;
let listSeq = 0;

async function loadList(reset) {
  const list = $("customer-list");
  const status = $("list-status");
  const seq = ++listSeq;
  if (reset) listNext = "";
  const { q, status: wanted } = listFilter();
  const filtered = Boolean(q || wanted);
  status.textContent = filtered ? "Searching…" : "Loading…";
  try {
    let found = [];
    for (let step = 0; step < maxListSteps; step++) {
      const params = new URLSearchParams({ limit: String(listPage) });
      if (listNext) params.set("after", listNext);
      if (q) params.set("q", q);
      if (wanted) params.set("status", wanted);
      const page = await getJSON("customers?" + params);
      if (seq !== listSeq) return;
      found = found.concat(page.customers);
      listNext = page.next || "";
      if (found.length >= listPage || !listNext) break;
    }
    if (reset) clear(list);
    for (const c of found) list.append(listItem(c));
    $("list-more").hidden = !listNext;
    if (list.children.length) status.textContent = "";
    else if (filtered) status.textContent = listNext ? "No match so far; Load more searches further." : "No customer matches.";
    else showNoCustomers();
    markSelected();
  } catch (err) {
    if (seq === listSeq) status.textContent = "Could not load customers: " + describe(err) + ".";
  }
}

// showNoCustomers leads a first run somewhere: the command that loads
// the samples, which then appear here live.
function showNoCustomers() {
  $("list-status").replaceChildren("No customers yet. Load the samples, from the repository: ",
    h("code", { class: "mono" }, samplesCommand), ", or register one with the form on the right.");
}

const samplesCommand = "go run . produce --file samples/customer-events.jsonl";

function listItem(c) {
  return h("li", { dataset: { id: c.id } },
    h("a", { href: "#/customers/" + encodeURIComponent(c.id) },
      h("span", { class: "cid" }, c.id),
      h("span", { class: "cmeta" }, "v" + c.version, h("span", { class: "dot dot-" + c.status, title: c.status })),
      h("span", { class: "cname" }, c.name || (c.status === "erased" ? "erased" : "–"))));
}

function markSelected() {
  for (const li of $("customer-list").children) {
    const a = li.firstElementChild;
    if (li.dataset.id === sel.id) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  }
}

function updateListItem(c) {
  for (const li of $("customer-list").children) {
    if (li.dataset.id === c.id) {
      const item = listItem(c);
      li.replaceWith(item);
      markSelected();
      return;
    }
  }
}

// ---------------------------------------------------------------- selection

function showEmpty() {
  $("customer").hidden = true;
  $("customer-empty").hidden = false;
}

// select loads a customer and follows its watch stream. It reports false
// when there is no such customer.
async function select(id) {
  const seq = ++sel.seq;
  let c = null;
  let err = null;
  try {
    c = await getJSON(customerPath(id));
  } catch (e) {
    err = e;
    // An id that is not a customer may still have rejected events.
    if (e instanceof ApiError && e.status === 404) ({ c, err } = await unregistered(id));
  }
  if (seq !== sel.seq) return false;
  if (c && c.version === 0) {
    const n = c.recent_decisions.filter((d) => d.outcome === "rejected").length;
    setLookupError(`No customer with id “${id}” yet: ` + (n
      ? `${n} of its events were rejected, shown below. Register it to start its history.`
      : "register it with the form below."));
  }
  if (!c) {
    const denied = err instanceof ApiError && (err.status === 401 || err.status === 403);
    setLookupError(err instanceof ApiError && err.status === 404
      ? `No customer with id “${id}”.`
      : err instanceof ApiError && err.code === "invalid_id"
        ? `“${id}” is not a customer id: ${idRule}`
        : `Could not look up “${id}”: ${describe(err)}.`);
    if (denied) return false; // the token form opens; the page reloads here with the token
    // Stay on the customer shown before, if any.
    history.replaceState(null, "", sel.id ? "#/customers/" + encodeURIComponent(sel.id) : "#/customers");
    $("lookup-id").focus();
    return false;
  }
  if (sel.stopWatch) sel.stopWatch();
  Object.assign(sel, { id, current: c, events: [], firstLoaded: c.version + 1, firstVersion: 1, asOf: null, shown: null, fresh: new Set(), attempts: new Map(), openAttempts: new Set(), stopWatch: null });
  if (c.version > 0) setLookupError("");
  $("lookup-id").value = id;
  $("customer-empty").hidden = true;
  $("customer").hidden = false;
  $("append-result").hidden = true;
  setIfMatchError("");
  ifMatchEdited = false;
  $("append-type").value = defaultType;
  fillTemplate();
  markSelected();
  renderHead();
  renderState(c, false);
  await loadEvents(seq, Math.max(0, c.version - eventsPage), c.version);
  if (seq !== sel.seq) return false;
  renderTimeline();
  document.querySelector(".timeline-scroll").scrollTop = 0;
  sel.stopWatch = watch(customerPath(id) + "/watch", {
    onState: (s) => { if (seq === sel.seq) onLiveState(s); },
    onRejected: (s) => { if (seq === sel.seq) onLiveRejection(s); },
    onStatus: (s) => {
      if (seq !== sel.seq) return;
      setLive($("live"), s);
      // The stream starts with the state of a customer, which holds its
      // decisions; an id with none gets no such event, so read its
      // decisions again for the rejections between the lookup and now.
      if (s === "open" && sel.current.version === 0) catchUpDecisions(seq);
    },
  });
  // On one column the customer is below the lookup and the list: bring
  // it to the top of the screen.
  const top = $("customer").getBoundingClientRect().top;
  if (top < 0 || top > innerHeight / 3) $("customer").scrollIntoView({ block: "start" });
  announce(`${id}: version ${c.version}, ${c.status}.`);
  return true;
}

async function catchUpDecisions(seq) {
  const { c } = await unregistered(sel.id);
  if (seq !== sel.seq || !c || sel.current.version > 0) return;
  const last = (ds) => ((ds || []).at(-1) || {}).event_id;
  if (last(c.recent_decisions) !== last(sel.current.recent_decisions)) onLiveRejection(c);
}

// unregistered returns, as c, the entry of an id that is not a customer:
// the decisions on its rejected events, if any, at version 0; or, as
// err, why that could not be read.
async function unregistered(id) {
  const entry = (decisions) => ({ c: { id, version: 0, status: "unregistered", recent_decisions: decisions }, err: null });
  try {
    return entry((await getJSON(customerPath(id) + "/decisions")).recent_decisions);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return entry([]);
    return { c: null, err };
  }
}

// loadEvents adds the accepted events after version after, up to version
// until, to the loaded ones.
async function loadEvents(seq, after, until) {
  const got = [];
  let next = after;
  while (next < until) {
    const page = await getJSON(`${customerPath(sel.id)}/events?after_version=${next}&limit=${Math.min(1000, until - next)}`);
    if (seq !== sel.seq) return;
    sel.firstVersion = page.first_version || 1;
    got.push(...page.events);
    if (!page.events.length || !page.next_after_version) break;
    next = page.next_after_version;
  }
  const known = new Set(sel.events.map((e) => e.version));
  sel.events = sel.events.concat(got.filter((e) => !known.has(e.version))).sort((a, b) => a.version - b.version);
  if (sel.events.length) sel.firstLoaded = Math.min(sel.firstLoaded, sel.events[0].version);
}

async function loadEarlier() {
  const seq = sel.seq;
  const until = sel.firstLoaded - 1;
  const after = Math.max(sel.firstVersion - 1, until - eventsPage);
  try {
    await loadEvents(seq, after, until);
    if (seq === sel.seq) renderTimeline();
  } catch (err) {
    announce("Could not load earlier events: " + err.message);
  }
}

// refresh reads the state again: after a rejection, which the watch
// stream does not carry, it holds the new decision.
async function refresh() {
  const seq = sel.seq;
  try {
    const c = await getJSON(customerPath(sel.id));
    if (seq === sel.seq) await applyState(c);
  } catch (err) {
    announce("Could not refresh: " + err.message);
  }
}

// onLiveRejection takes an entry whose last decision is a rejection: the
// state is unchanged, its decisions are new.
function onLiveRejection(c) {
  if (!sel.current || c.version < sel.current.version) return;
  if (c.version > sel.current.version) {
    applyState(c); // a state change this stream has not shown yet
    return;
  }
  sel.current = { ...sel.current, recent_decisions: c.recent_decisions };
  renderTimeline();
  const d = (c.recent_decisions || []).at(-1);
  if (d) announce(`Event ${d.event_id} rejected: ${d.reason}.`);
}

function onLiveState(c) {
  if (!sel.current || c.version > sel.current.version) {
    for (let v = (sel.current ? sel.current.version : 0) + 1; v <= c.version; v++) sel.fresh.add(v);
  }
  applyState(c);
}

// applyState takes a state newer than (or as new as) the one known, and
// loads the events that led to it.
async function applyState(c) {
  const seq = sel.seq;
  const prev = sel.current;
  if (prev && c.version < prev.version) return;
  sel.current = c;
  const lastLoaded = sel.events.length ? sel.events[sel.events.length - 1].version : sel.firstLoaded - 1;
  if (c.version > lastLoaded) {
    try {
      await loadEvents(seq, lastLoaded, c.version);
    } catch (err) {
      announce("Could not load new events: " + err.message);
    }
    if (seq !== sel.seq) return;
  }
  renderHead();
  if (sel.asOf === null) renderState(sel.current, true);
  renderTimeline();
  updateListItem(c);
  if (!ifMatchEdited) $("append-ifmatch").value = String(c.version);
  const born = prev && prev.version === 0 && c.version > 0;
  if (born) setLookupError("");
  if (!dataEdited || c.status === "erased" || born) fillTemplate();
  else updateAppendTypes();
  if (prev && c.version > prev.version) {
    // Newest first: bring the new events into view, unless the reader
    // is looking at an older version.
    if (sel.asOf === null) document.querySelector(".timeline-scroll").scrollTop = 0;
    const ev = sel.events.find((e) => e.version === c.version);
    announce(`Version ${c.version} folded${ev ? ": " + ev.event.type : ""}.`);
  }
}

async function showVersion(version) {
  const seq = sel.seq;
  if (version === null) {
    sel.asOf = null;
    $("asof").hidden = true;
    $("diff").hidden = true;
    $("state-title").textContent = "Current state";
    renderState(sel.current, false);
    renderTimeline();
    return;
  }
  try {
    const past = await getJSON(`${customerPath(sel.id)}?version=${version}`);
    if (seq !== sel.seq) return;
    sel.asOf = version;
    const ev = sel.events.find((e) => e.version === version);
    $("asof-label").textContent = `version ${version}` + (ev ? ` · ${ev.event.type} · ${formatTime(ev.time)}` : "");
    $("asof").hidden = false;
    $("state-title").textContent = "State as of version " + version;
    renderState(past, false);
    $("diff-from").value = String(Math.max(1, version - 1));
    $("diff-from").max = String(sel.current.version);
    if (version > 1) renderDiff(past);
    else $("diff").hidden = true;
    renderTimeline();
    // On one column the state is above the timeline, out of view.
    $("asof").scrollIntoView({ block: "nearest" });
    announce(`Showing the state as of version ${version}.`);
  } catch (err) {
    if (seq !== sel.seq) return;
    // Show no state rather than the one shown before: the URL names
    // this version.
    sel.asOf = version;
    sel.shown = null;
    $("state-title").textContent = `Version ${version} cannot be shown`;
    clear($("state"));
    $("state-raw").textContent = "";
    $("asof-label").textContent = err instanceof ApiError && err.status === 404
      ? `There is no version ${version}: ${sel.id} is at version ${sel.current.version}.`
      : err instanceof ApiError && err.status === 410
        ? `Version ${version} is older than the history kept (it starts at version ${sel.firstVersion}).`
        : `Version ${version} could not be read: ${describe(err)}.`;
    $("asof").hidden = false;
    renderTimeline();
    announce($("asof-label").textContent);
  }
}

// ---------------------------------------------------------------- rendering

function setLive(el, status) {
  el.className = "live " + (status === "open" ? "on" : "off");
  el.textContent = { open: "Live", closed: "Reconnecting…", denied: "Not allowed" }[status] || status;
  el.title = status === "open" ? "Following the watch stream: new events appear as they fold" : "";
}

function renderHead() {
  const c = sel.current;
  $("customer-id").textContent = c.id;
  const badge = $("customer-status");
  badge.className = "badge badge-" + (c.status || "muted");
  badge.textContent = c.status || "unknown";
  $("customer-version").textContent = String(c.version);
}

// stateRows are a state's fields as the page shows them.
function stateRows(c) {
  return [
    ["Name", c.name],
    ["Email", c.email],
    ["Address", formatAddress(c.address)],
    ["Status", c.status + (c.suspended_reason ? ` (${c.suspended_reason})` : "")],
    ["Version", String(c.version)],
    ["Created", formatTime(c.created_at)],
    ["Updated", formatTime(c.updated_at)],
    ["Last event", c.last_event_id],
  ];
}

// renderDiff lists the fields that differ between the state at version
// from and the state shown, past.
async function renderDiff(past) {
  const seq = sel.seq;
  const box = $("diff");
  const from = Number($("diff-from").value);
  const list = clear($("diff-list"));
  box.hidden = false;
  if (!Number.isInteger(from) || from < 1 || from === past.version) {
    list.append(h("p", { class: "hint" }, "Choose another version to compare with."));
    return;
  }
  let base;
  try {
    base = await getJSON(`${customerPath(sel.id)}?version=${from}`);
  } catch (err) {
    if (seq === sel.seq) list.append(h("p", { class: "hint" }, `Version ${from} cannot be read: ${describe(err)}.`));
    return;
  }
  if (seq !== sel.seq || sel.shown !== past) return;
  const was = new Map(stateRows(base));
  const changed = stateRows(past).filter(([label, value]) => was.get(label) !== value);
  if (!changed.length) list.append(h("p", { class: "hint" }, "No field differs."));
  for (const [label, value] of changed) {
    list.append(h("div", { class: "diff-row", dataset: { field: label.toLowerCase().replace(" ", "-") } },
      h("span", { class: "diff-label" }, label),
      h("del", {}, was.get(label) || "–"), " → ", h("ins", {}, value || "–")));
  }
}

// showAt shows the state as of a time, from the at picker (UTC).
async function showAt(e) {
  e.preventDefault();
  const seq = sel.seq;
  const raw = $("at-input").value;
  if (!raw) return;
  const at = new Date(raw + (raw.length === 16 ? ":00Z" : "Z"));
  if (Number.isNaN(at.getTime())) return;
  const label = formatTime(at.toISOString()) + " UTC";
  try {
    const past = await getJSON(`${customerPath(sel.id)}?at=${encodeURIComponent(at.toISOString())}`);
    if (seq !== sel.seq) return;
    sel.asOf = past.version;
    $("state-title").textContent = "State as of " + label;
    $("asof-label").textContent = `${label} · version ${past.version}`;
    renderState(past, false);
    $("diff").hidden = true;
  } catch (err) {
    if (seq !== sel.seq) return;
    sel.asOf = 0;
    sel.shown = null;
    $("state-title").textContent = "No state as of " + label;
    clear($("state"));
    $("state-raw").textContent = "";
    $("asof-label").textContent = err instanceof ApiError && err.status === 404
      ? `${sel.id} did not exist at ${label}.` : `The state at ${label} could not be read: ${describe(err)}.`;
    $("diff").hidden = true;
  }
  $("asof").hidden = false;
  renderTimeline();
  announce($("asof-label").textContent);
}

// renderState fills the state panel; with highlight, fields that changed
// since the last rendering flash.
function renderState(c, highlight) {
  const before = sel.shown;
  sel.shown = c;
  const rows = stateRows(c);
  const prevRows = before ? new Map(stateRows(before)) : new Map();
  const dl = clear($("state"));
  for (const [label, value] of rows) {
    const changed = highlight && before && prevRows.get(label) !== value;
    dl.append(h("dt", {}, label), h("dd", { class: changed ? "changed" : null, dataset: { field: label.toLowerCase().replace(" ", "-") } }, value || "–"));
  }
  $("state-raw").textContent = JSON.stringify(c, null, 2);
}

// renderTimeline shows the accepted events and the rejected decisions,
// newest first. A rejection keeps the version the customer had, so it
// sits right after the event of that version.
function renderTimeline() {
  const rejections = new Map();
  for (const d of sel.current.recent_decisions || []) {
    if (d.outcome !== "rejected") continue;
    if (!rejections.has(d.version)) rejections.set(d.version, []);
    rejections.get(d.version).push(d);
  }
  const items = [];
  const lastEvent = sel.events.length ? sel.events[sel.events.length - 1].version : 0;
  if (sel.firstLoaded <= 1) items.push(...(rejections.get(0) || []).map(rejectedItem));
  for (const e of sel.events) {
    items.push(acceptedItem(e));
    items.push(...(rejections.get(e.version) || []).map(rejectedItem));
  }
  for (const [v, ds] of rejections) if (v > lastEvent && v > 0) items.push(...ds.map(rejectedItem));
  items.reverse();
  const ol = clear($("timeline"));
  ol.append(...items);
  sel.fresh.clear();
  const rejected = [...rejections.values()].reduce((n, ds) => n + ds.length, 0);
  $("timeline-count").textContent = `${sel.current.version} accepted · ${rejected} rejected`;
  $("timeline-earlier").hidden = sel.firstLoaded <= sel.firstVersion;
}

function acceptedItem(e) {
  const ev = e.event || {};
  const selected = sel.asOf === e.version;
  const data = ev.data && typeof ev.data === "object" ? Object.entries(ev.data) : [];
  const cls = ["tl-item", "accepted"];
  if (sel.asOf !== null && e.version > sel.asOf) cls.push("after-selection");
  if (sel.fresh.has(e.version)) cls.push("new");
  return h("li", { class: cls.join(" "), dataset: { version: e.version, type: ev.type } },
    h("button", {
      type: "button", class: "tl-body", "aria-pressed": String(selected),
      title: selected ? "Back to the current state" : `Show the state right after version ${e.version}`,
      onclick: () => (selected ? go(sel.id) : go(sel.id, e.version)),
    },
    h("span", { class: "tl-top" },
      h("span", { class: "tl-version" }, "v" + e.version),
      h("span", { class: "tl-type" }, ev.type || "event")),
    data.length ? h("span", { class: "tl-data" },
      data.map(([k, v]) => h("span", {}, k + ": ", h("b", {}, formatValue(k, v))))) : null,
    h("span", { class: "tl-meta" },
      timeEl(e.time || ev.time, "tl-time"),
      [ev.id, `partition ${e.partition}, offset ${e.offset}`].filter(Boolean).map((x) => h("span", {}, x)))));
}

function rejectedItem(d) {
  return h("li", { class: "tl-item rejected", dataset: { reason: d.reason || "", eventId: d.event_id, type: d.type || "" } },
    h("div", { class: "tl-body" },
      h("span", { class: "tl-top" },
        h("span", { class: "badge badge-bad" }, "rejected"),
        d.type ? h("span", { class: "tl-type" }, d.type) : null,
        h("span", { class: "tl-reason" }, d.reason || "rejected")),
      d.message ? h("span", { class: "tl-msg" }, d.message) : null,
      h("span", { class: "tl-meta" }, h("span", {}, "at version " + d.version), h("span", {}, d.event_id),
        d.offset >= 0 ? h("span", {}, "offset " + d.offset) : null),
      attemptDetails(d)));
}

// attemptDetails shows, once opened, what a rejected event attempted: the
// decision keeps its type, and its data is read back from the log
// (GET /customers/{id}/decisions/{event_id}/event), opened as history is.
function attemptDetails(d) {
  const id = sel.id;
  const body = h("div", { class: "tl-attempt-body" });
  const open = sel.openAttempts.has(d.event_id);
  const details = h("details", {
    class: "tl-attempt", open,
    ontoggle: () => {
      if (!details.open) {
        sel.openAttempts.delete(d.event_id);
        return;
      }
      sel.openAttempts.add(d.event_id);
      loadAttempt(id, d.event_id, body);
    },
  }, h("summary", {}, "Attempted data"), body);
  if (open) fillAttempt(body, sel.attempts.get(d.event_id));
  return details;
}

async function loadAttempt(id, eventID, body) {
  if (sel.attempts.has(eventID)) {
    fillAttempt(body, sel.attempts.get(eventID));
    return;
  }
  fillAttempt(body, { loading: true });
  let got;
  try {
    got = { event: (await getJSON(`${customerPath(id)}/decisions/${encodeURIComponent(eventID)}/event`)).event };
  } catch (err) {
    got = { error: err };
  }
  if (id !== sel.id) return;
  if (!got.error) sel.attempts.set(eventID, got); // a failed read is tried again on the next opening
  fillAttempt(body, got);
}

function fillAttempt(body, got) {
  clear(body);
  body.dataset.state = !got || got.loading ? "loading" : got.error ? "error" : "done";
  if (!got || got.loading) {
    body.append(h("span", { class: "hint" }, "Reading the event from the log…"));
    return;
  }
  if (got.error) {
    body.append(h("span", { class: "hint" }, got.error instanceof ApiError && got.error.status === 410
      ? "The event is no longer in the log." : `The event could not be read: ${describe(got.error)}.`));
    return;
  }
  const ev = got.event || {};
  const data = ev.data && typeof ev.data === "object" ? Object.entries(ev.data) : [];
  if (ev.personaldata === "erased") body.append(h("span", { class: "hint" }, "The customer was erased: its personal data is gone."));
  else if (ev.personaldata === "unreadable") body.append(h("span", { class: "hint" }, "Some personal data cannot be read: its key is missing."));
  if (data.length) {
    body.append(h("span", { class: "tl-data" }, data.map(([k, v]) => h("span", {}, k + ": ", h("b", {}, formatValue(k, v))))));
  } else if (ev.personaldata !== "erased") {
    body.append(h("span", { class: "hint" }, "No data."));
  }
}

// ---------------------------------------------------------------- append

// templates prefill the data of each type from the current state.
function fillTemplate() {
  const c = sel.current || {};
  updateAppendTypes();
  const type = $("append-type").value;
  const data = {
    "customer.renamed": { name: c.name || "" },
    "customer.email_changed": { email: c.email || "" },
    "customer.address_changed": { address: c.address || { line1: "", city: "", postal_code: "", country: "" } },
    "customer.suspended": { reason: "" },
    "customer.reactivated": {},
    "customer.erased": {},
    "customer.registered": { name: "", email: "" },
  }[type] || {};
  $("append-data").value = JSON.stringify(data, null, 2);
  dataEdited = false;
  setDataError("");
  if (!ifMatchEdited && sel.current) $("append-ifmatch").value = String(sel.current.version);
}

// updateAppendTypes offers what the customer can take: an erased one
// rejects every event, so the form closes.
function updateAppendTypes() {
  const erased = sel.current && sel.current.status === "erased";
  // An id with no state takes only its registration; a registered one
  // everything else.
  const fresh = sel.current && sel.current.version === 0;
  const type = $("append-type");
  if (fresh) type.value = "customer.registered";
  else if (type.value === "customer.registered" && type.dataset.fresh === "true") type.value = defaultType;
  type.dataset.fresh = String(Boolean(fresh));
  for (const o of type.options) o.disabled = erased || (fresh && o.value !== "customer.registered");
  $("append-form").querySelector("button[type=submit]").disabled = erased;
  $("append-data").disabled = erased;
  $("append-closed").hidden = !erased;
}

function setIfMatchError(text) {
  $("append-ifmatch-error").textContent = text;
  $("append-ifmatch").setAttribute("aria-invalid", text ? "true" : "false");
}

function setDataError(text) {
  $("append-data-error").textContent = text;
  $("append-data").setAttribute("aria-invalid", text ? "true" : "false");
}

const statusText = {
  200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
  405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 422: "Unprocessable Content",
  503: "Service Unavailable", 504: "Gateway Timeout",
};

async function onAppend(e) {
  e.preventDefault();
  const id = sel.id;
  const seq = sel.seq;
  let data;
  try {
    data = JSON.parse($("append-data").value || "{}");
  } catch (err) {
    setDataError("Data is not valid JSON: " + err.message);
    $("append-data").focus();
    return;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    setDataError("Data must be a JSON object, such as {\"name\": \"Ada\"}.");
    $("append-data").focus();
    return;
  }
  const field = $("append-ifmatch");
  const ifMatch = field.value.trim();
  // A number field reads "" for text it cannot parse: badInput tells.
  if (field.validity.badInput || (ifMatch && !/^\d+$/.test(ifMatch))) {
    $("append-result").hidden = true;
    setIfMatchError("If-Match must be a whole number: the version you expect the customer to be at, such as " +
      (sel.current ? sel.current.version : 3) + ". Leave it empty to append unconditionally.");
    field.focus();
    return;
  }
  setIfMatchError("");
  $("append-result").hidden = true;
  const button = e.submitter || $("append-form").querySelector("button[type=submit]");
  button.disabled = true;
  button.textContent = "Appending…";
  let r;
  try {
    r = await request("POST", customerPath(id) + "/events", {
      body: { type: $("append-type").value, data },
      headers: ifMatch ? { "If-Match": `"${ifMatch}"` } : {},
    });
  } catch (err) {
    r = { status: 0, body: { message: err.message } };
  } finally {
    button.disabled = false;
    button.textContent = "Append";
  }
  if (seq !== sel.seq) return;
  showResult(r, ifMatch);
  if (r.status === 201) {
    ifMatchEdited = false;
    await applyState(r.body);
  } else if (r.status === 409 || r.status === 422 || r.status === 200) {
    await refresh();
  }
}

function showResult(r, ifMatch) {
  const box = $("append-result");
  const b = r.body || {};
  const title = r.status ? `${r.status} ${statusText[r.status] || ""}`.trim() : "Network error";
  let kind = "bad";
  const lines = [];
  let action = null;
  switch (r.status) {
    case 201:
      kind = "ok";
      lines.push(`Accepted: the customer is now at version ${b.version}.`);
      break;
    case 409:
      kind = "conflict";
      lines.push(`${b.error || "version_conflict"}: ${b.message || `If-Match ${ifMatch} is not the current version.`}`);
      if (b.version !== undefined) {
        action = h("button", {
          type: "button", class: "btn btn-small",
          onclick: () => { $("append-ifmatch").value = String(b.version); ifMatchEdited = false; $("append-ifmatch").focus(); },
        }, `Use version ${b.version}`);
      }
      break;
    case 422:
      lines.push(`Rejected as ${b.error}: ${b.message || ""}`);
      break;
    case 200:
      kind = b.outcome === "accepted" ? "ok" : "conflict";
      lines.push(`This event id was already decided: ${b.outcome}${b.reason ? " (" + b.reason + ")" : ""} at version ${b.version}.`);
      break;
    case 202:
      kind = "conflict";
      lines.push(`Produced, but the decision is not visible yet (event ${b.event_id}, partition ${b.partition}, offset ${b.offset}). It will show in the timeline.`);
      break;
    case 400:
      // The message says what is wrong with the event; the prefix the
      // fold's decoder gives it is for the dead-letter topic.
      lines.push((b.message || "The event was refused.").replace(/^malformed event: /, ""));
      break;
    default:
      lines.push(b.message || b.error || "The request failed.");
  }
  box.className = "result " + kind;
  box.dataset.status = String(r.status);
  box.replaceChildren(
    h("p", { class: "status" }, h("span", { class: "code-num" }, title)),
    ...lines.map((l) => h("p", {}, l)),
    ...(action ? [action] : []));
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}
