// The operations view: the cluster's instances, readiness, fold rate, lag,
// rejections and dead letters, read from /cluster, /readyz, /metrics and
// the page's dead-letter endpoint, and the live change feed of GET /watch.

import { byLabel, describe, getJSON, getText, parseMetrics, request, sum, watch } from "./api.js";
import { $, clear, formatNumber, formatRate, formatTime, h, svg, timeEl } from "./dom.js";

const pollEvery = 2000;
const deadLettersEvery = 10000;
const keepSamples = 60;
const keepActivity = 25;

let pollTimer = null;
let dlqTimer = null;
let stopWatch = null;
let samples = []; // {t: ms, folded: total}

export function init() {
  $("dlq-refresh").addEventListener("click", loadDeadLetters);
  $("dlq-filter").addEventListener("submit", (e) => { e.preventDefault(); loadDeadLetters(); });
  $("dlq-reason").addEventListener("change", loadDeadLetters);
  let typing = null;
  $("dlq-key").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(loadDeadLetters, 250); });
}

export function start() {
  if (pollTimer) return;
  samples = [];
  poll();
  pollTimer = setInterval(poll, pollEvery);
  loadDeadLetters();
  dlqTimer = setInterval(loadDeadLetters, deadLettersEvery);
  stopWatch = watch("watch", {
    onState: addActivity,
    onStatus: (s) => {
      const el = $("activity-live");
      el.className = "live " + (s === "open" ? "on" : "off");
      el.textContent = { open: "Live", closed: "Reconnecting…", denied: "Not allowed" }[s] || s;
    },
  });
}

export function stop() {
  clearInterval(pollTimer);
  clearInterval(dlqTimer);
  pollTimer = dlqTimer = null;
  if (stopWatch) stopWatch();
  stopWatch = null;
}

async function poll() {
  const [ready, metrics, cluster] = await Promise.allSettled([request("GET", "readyz"), getText("metrics"), getJSON("cluster")]);
  if (!pollTimer) return;
  renderReadiness(ready);
  renderCluster(cluster);
  if (metrics.status === "fulfilled") {
    renderMetrics(parseMetrics(metrics.value));
    $("ops-updated").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  } else {
    $("ops-updated").textContent = "Metrics unavailable: " + metrics.reason.message;
  }
}

// ---------------------------------------------------------------- readiness

export function readinessText(r) {
  if (r.status !== "fulfilled") return { ok: false, text: "Unreachable", detail: r.reason.message };
  const b = r.value.body || {};
  if (r.value.status === 200 && b.ready) return { ok: true, text: "Ready", detail: "View recovered, processor running." };
  const missing = (b.missing || []).join(", ");
  return { ok: false, text: "Not ready", detail: missing ? "Missing: " + missing : "HTTP " + r.value.status };
}

function renderReadiness(r) {
  const { ok, text, detail } = readinessText(r);
  const el = $("ops-ready");
  el.textContent = text;
  el.className = "stat-value " + (ok ? "ok" : "bad");
  $("ops-ready-detail").textContent = detail;
}

// ---------------------------------------------------------------- cluster

// renderCluster draws GET /cluster: one row per instance with the
// partitions the membership gives it, each with the lag its copy reported.
function renderCluster(r) {
  const body = clear($("ops-cluster"));
  const summary = $("cluster-summary");
  if (r.status !== "fulfilled") {
    summary.textContent = "Unavailable: " + describe(r.reason) + ".";
    return;
  }
  const c = r.value;
  const lags = new Map(); // "<role> <partition> <url>" -> lag
  for (const p of c.partitions) {
    lags.set(`owner ${p.partition} ${p.owner}`, p.owner_lag);
    for (const s of p.standbys) lags.set(`standby ${p.partition} ${s.url}`, s.lag);
  }
  const orphans = c.partitions.filter((p) => !p.owner).map((p) => p.partition);
  const down = c.instances.filter((i) => !i.reachable).length;
  summary.textContent = `${c.instances.length} instance${c.instances.length === 1 ? "" : "s"}, ` +
    `${c.partitions.length} partition${c.partitions.length === 1 ? "" : "s"}, ${c.mode}` +
    (down ? `; ${down} not answering` : "") +
    (orphans.length ? `; no owner for ${orphans.length > 12 ? orphans.length + " partitions" : orphans.join(", ")} (a rebalance)` : "") +
    (c.membership_read_at ? `; membership read ${formatTime(c.membership_read_at)}` : "") + ".";
  for (const i of c.instances) {
    const badges = [
      i.self ? h("span", { class: "badge badge-ok" }, "this instance") : null,
      i.reachable ? null : h("span", { class: "badge badge-bad" }, "unreachable"),
      i.reachable && !i.ready ? h("span", { class: "badge badge-warn" }, "not ready") : null,
    ];
    body.append(h("tr", { dataset: { url: i.url, self: String(i.self), reachable: String(i.reachable) } },
      h("th", { scope: "row" }, h("span", { class: "mono" }, i.url), h("br"), ...badges,
        i.keys === undefined ? null : h("span", { class: "hint" }, formatNumber(i.keys) + " keys"),
        i.error ? h("span", { class: "cluster-error" }, i.error) : null),
      h("td", { dataset: { label: "Owns (lag)" } }, copies(i.owned, "owner", i.url, lags)),
      h("td", { dataset: { label: "Stands by for (lag)" } }, copies(i.standby, "standby", i.url, lags))));
  }
}

function copies(partitions, role, url, lags) {
  if (!partitions.length) return h("span", { class: "hint" }, "none");
  return h("div", { class: "copies" }, partitions.map((p) => {
    const lag = lags.get(`${role} ${p} ${url}`);
    return h("span", { class: `copy ${role}${lag > 0 ? " lagging" : ""}`, dataset: { partition: p, role, lag: lag ?? "" },
      title: `partition ${p}, ${role === "owner" ? "owned" : "standby copy"}: ` + (lag === undefined ? "lag not reported" : `${lag} records behind`) },
    h("b", {}, String(p)), h("small", {}, "lag " + (lag === undefined ? "?" : formatNumber(lag))));
  }));
}

// ---------------------------------------------------------------- metrics

function renderMetrics(m) {
  const folded = sum(m, "eventfold_events_folded_total");
  const now = performance.now();
  if (folded !== undefined) {
    samples.push({ t: now, folded });
    if (samples.length > keepSamples) samples.shift();
  }
  // The rate is the difference of the last two samples: a counter that
  // went down means the process restarted, and its new value is the rate.
  let rate;
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const d = samples[i].folded - samples[i - 1].folded;
    rates.push(Math.max(0, d >= 0 ? d : samples[i].folded) / ((samples[i].t - samples[i - 1].t) / 1000));
  }
  if (rates.length) rate = rates[rates.length - 1];
  $("ops-rate").textContent = rates.length ? formatRate(rate) : "–";
  renderSpark(rates);

  // The totals come from Kafka and the table, which a restart does not
  // reset: the process counters above only give the rate.
  const accepted = sum(m, "eventfold_view_accepted_events");
  const decided = sum(m, "eventfold_processor_committed_offset");
  $("ops-folded-total").textContent = formatNumber(accepted);
  $("ops-decided-total").textContent = formatNumber(decided);
  const rejected = sum(m, "eventfold_events_rejected_total");
  $("ops-rejected-detail").textContent = decided === undefined || accepted === undefined ? ""
    : `all time, from the committed offsets: ${formatNumber(Math.max(0, decided - accepted))} not accepted ` +
      `(rejected, duplicate or dead-lettered); ${formatNumber(rejected)} rejected since this process started`;

  renderLag(m);
  renderShares($("ops-types"), byLabel(m, "eventfold_events_folded_total", "type"), "", "No event folded yet.");
  renderShares($("ops-reasons"), byLabel(m, "eventfold_events_rejected_total", "reason"), "bad", "No event rejected.");
  renderService(m);
}

function renderSpark(rates) {
  const el = clear($("ops-spark"));
  if (rates.length < 2) return;
  const max = Math.max(1, ...rates);
  const step = 120 / (keepSamples - 2);
  const x0 = 120 - (rates.length - 1) * step;
  const pts = rates.map((r, i) => `${(x0 + i * step).toFixed(1)},${(27 - (r / max) * 25).toFixed(1)}`);
  el.append(svg("polygon", { points: `${x0.toFixed(1)},28 ${pts.join(" ")} 120,28` }), svg("polyline", { points: pts.join(" ") }));
}

function renderLag(m) {
  const proc = new Map(byLabel(m, "eventfold_processor_lag_records", "partition"));
  const view = new Map(byLabel(m, "eventfold_view_lag_records", "partition"));
  const partitions = [...new Set([...proc.keys(), ...view.keys()])].sort((a, b) => Number(a) - Number(b));
  const body = clear($("ops-lag"));
  if (!partitions.length) {
    body.append(h("tr", { class: "empty-row" }, h("td", { colspan: 4 }, "This server exports no lag.")));
    return;
  }
  const max = Math.max(1, ...proc.values());
  for (const p of partitions) {
    const lag = proc.get(p);
    body.append(h("tr", { dataset: { partition: p } },
      h("th", { scope: "row" }, p),
      h("td", { class: "num" }, formatNumber(lag)),
      h("td", { class: "num" }, formatNumber(view.get(p))),
      h("td", { class: "bar-cell" }, bar(lag === undefined ? 0 : lag / max, lag > 0 ? "warn" : ""))));
  }
}

function renderShares(body, rows, tone, empty) {
  clear(body);
  const visible = rows.filter(([, v]) => v > 0);
  if (!visible.length) {
    body.append(h("tr", { class: "empty-row" }, h("td", { colspan: 3 }, empty)));
    return;
  }
  const max = Math.max(...visible.map(([, v]) => v));
  for (const [label, value] of visible) {
    body.append(h("tr", { dataset: { label } },
      h("th", { scope: "row", class: "mono" }, label),
      h("td", { class: "num" }, formatNumber(value)),
      h("td", { class: "bar-cell" }, bar(value / max, tone))));
  }
}

function bar(fraction, tone) {
  const b = h("div", { class: "bar " + (tone || "") }, h("i"));
  b.firstChild.style.width = Math.round(Math.min(1, Math.max(0, fraction)) * 100) + "%";
  return b;
}

function renderService(m) {
  const val = (name) => sum(m, name);
  const info = (m.get("eventfold_build_info") || [])[0];
  const rows = [
    ["Version", info ? info.labels.version : undefined, true],
    ["View recovered", val("eventfold_view_recovered") === undefined ? undefined : val("eventfold_view_recovered") === 1 ? "yes" : "no", true],
    ["Table entries in the view", val("eventfold_view_keys")],
    ["Open watch streams", val("eventfold_watchers")],
    ["Dead letters written", val("eventfold_dlq_records_total")],
    ["Processor restarts", val("eventfold_processor_restarts_total")],
    ["Rebalances", val("eventfold_processor_rebalances_total")],
    ["View restarts", val("eventfold_view_restarts_total")],
  ];
  const dl = clear($("ops-service"));
  for (const [label, value, text] of rows) {
    if (value === undefined) continue;
    dl.append(h("dt", {}, label), h("dd", {}, text ? value : formatNumber(value)));
  }
}

// ---------------------------------------------------------------- dead letters

// dlqSeq orders the reads: a slow answer to an older filter is dropped.
let dlqSeq = 0;

async function loadDeadLetters() {
  const seq = ++dlqSeq;
  const status = $("dlq-status");
  const reason = $("dlq-reason").value;
  const key = $("dlq-key").value.trim();
  const query = new URLSearchParams({ limit: "20" });
  if (reason) query.set("reason", reason);
  if (key) query.set("key", key);
  try {
    const page = await getJSON("ui/api/dead-letters?" + query);
    if (seq !== dlqSeq) return;
    const list = $("ops-dlq");
    // Keep what the reader opened (headers, value, a replay's answer)
    // across the refresh.
    const open = new Set([...list.querySelectorAll("li[data-id]")].filter((li) => li.querySelector("details[open], .dlq-replayed"))
      .map((li) => li.dataset.id));
    const n = page.total;
    const filtered = reason || key;
    status.textContent = !n ? `No dead letters in ${page.topic}.`
      : filtered ? `${page.records.length} of the latest records in ${page.topic} match, newest first (a filter looks at the latest 1,000 of each partition).`
        : n === page.records.length ? `${formatNumber(n)} record${n === 1 ? "" : "s"} in ${page.topic}, newest first.`
          : `${formatNumber(n)} records in ${page.topic}; the latest ${page.records.length}, newest first.`;
    const kept = new Map([...list.children].filter((li) => open.has(li.dataset.id)).map((li) => [li.dataset.id, li]));
    clear(list);
    for (const r of page.records) list.append(kept.get(`${r.partition}@${r.offset}`) || deadLetterItem(r, page));
  } catch (err) {
    if (seq === dlqSeq) status.textContent = "Could not read the dead letters: " + describe(err) + ".";
  }
}

// shellQuote quotes s for a POSIX shell.
const shellQuote = (s) => "'" + String(s).replace(/'/g, `'\\''`) + "'";

// kcatCommand produces the dead letter's key, value and original headers
// to the events topic again with kcat. The broker is the reader's.
function kcatCommand(r, page) {
  const headers = Object.entries(r.headers || {}).filter(([k]) => !k.startsWith("eventfold."))
    .map(([k, v]) => "-H " + shellQuote(`${k}=${v}`));
  return [`printf '%s' ${shellQuote(r.value)} |`, "kcat -P -b \"$BROKERS\"", "-t " + shellQuote(page.events_topic),
    "-k " + shellQuote(r.key), ...headers].join(" ");
}

function deadLetterItem(r, page) {
  const size = r.truncated_from ? `${formatNumber(Number(r.truncated_from))} bytes, truncated` : `${formatNumber(r.value_bytes)} bytes`;
  // The value shown is the first KiB: only a whole UTF-8 value can be
  // copied as a command.
  const whole = r.replayable && !r.binary && r.value_bytes <= new TextEncoder().encode(r.value).length;
  const headers = Object.entries(r.headers || {});
  const result = h("p", { class: "dlq-result", role: "status" });
  const replay = h("button", { type: "button", class: "btn btn-small dlq-replay", disabled: !r.replayable,
    title: r.replayable ? "Produce this record again to " + page.events_topic : "This dead letter was cut to fit: it cannot be produced again" }, "Replay");
  replay.addEventListener("click", () => replayDeadLetter(r, replay, result));
  return h("li", { dataset: { reason: r.reason, id: `${r.partition}@${r.offset}`, key: r.key } },
    h("div", { class: "dlq-top" },
      h("span", { class: "badge badge-bad" }, r.reason || "unknown"),
      r.key ? h("a", { class: "mono dlq-key", href: "#/customers/" + encodeURIComponent(r.key), title: "Open this customer" }, r.key)
        : h("span", { class: "mono" }, "(no key)"),
      timeEl(r.time, "hint"),
      h("span", { class: "hint mono" }, r.source ? "from " + r.source : `${r.partition}@${r.offset}`)),
    h("p", { class: "dlq-error" }, r.error || "no error recorded"),
    h("details", { class: "dlq-headers" },
      h("summary", { class: "hint" }, `Headers (${headers.length})`),
      headers.length ? h("dl", { class: "kv" }, headers.flatMap(([k, v]) => [h("dt", { class: "mono" }, k), h("dd", { class: "mono" }, v)]))
        : h("p", { class: "hint" }, "The record had no headers of its own.")),
    h("details", {},
      h("summary", { class: "hint" }, `Value (${size}${r.binary ? ", not UTF-8" : ""})`),
      h("pre", { class: "code" }, r.value || "(empty)")),
    whole ? h("details", { class: "dlq-kcat" },
      h("summary", { class: "hint" }, "As a kcat command"),
      h("pre", { class: "code" }, kcatCommand(r, page)),
      copyButton(() => kcatCommand(r, page))) : null,
    h("div", { class: "dlq-actions" }, replay, result));
}

function copyButton(text) {
  const b = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      b.textContent = "Copied";
    } catch {
      // No clipboard (an insecure origin): select the command instead.
      getSelection().selectAllChildren(b.previousElementSibling);
      b.textContent = "Selected: copy it";
    }
  });
  return b;
}

// replayDeadLetter produces the dead letter again, once the reader has
// fixed its cause; the answer names where it landed, and the server logs
// and counts it.
async function replayDeadLetter(r, button, result) {
  button.disabled = true;
  button.textContent = "Replaying…";
  let res;
  try {
    res = await request("POST", "ui/api/dead-letters/replay", { body: { partition: r.partition, offset: r.offset } });
  } catch (err) {
    res = { status: 0, body: { message: err.message } };
  }
  button.textContent = "Replay";
  button.disabled = false;
  const b = res.body || {};
  if (res.status === 201) {
    result.className = "dlq-result dlq-replayed ok";
    result.replaceChildren(`Replayed to ${b.topic} partition ${b.partition}, offset ${b.offset}, at ${formatTime(b.replayed_at)}: `,
      h("a", { href: "#/customers/" + encodeURIComponent(b.key) }, "see its decision"), ".");
  } else {
    result.className = "dlq-result bad";
    result.textContent = `Not replayed (${res.status || "network error"}): ${b.message || b.error || "the request failed"}.`;
  }
  result.dataset.status = String(res.status);
}

// ---------------------------------------------------------------- activity

function addActivity(c) {
  const list = $("ops-activity");
  const last = (c.recent_decisions || []).at(-1);
  list.prepend(h("li", {},
    h("time", { datetime: new Date().toISOString() }, new Date().toLocaleTimeString()),
    h("a", { href: "#/customers/" + encodeURIComponent(c.id), class: "mono" }, c.id),
    h("span", {}, "version " + c.version),
    h("span", { class: "hint mono" }, last ? last.event_id : ""),
    h("span", { class: "hint" }, "updated " + formatTime(c.updated_at))));
  while (list.children.length > keepActivity) list.lastElementChild.remove();
}
