// The service's HTTP API, as the page uses it. Every URL is relative, so
// the page works behind a proxy that mounts the service under a prefix.

const tokenKey = "eventfold.token";

// Listeners told when the server asks for a token (401) or refuses the one
// given (403).
const authListeners = new Set();
export function onAuthNeeded(fn) { authListeners.add(fn); }

export function token() { return sessionStorage.getItem(tokenKey) || ""; }
export function setToken(value) {
  if (value) sessionStorage.setItem(tokenKey, value);
  else sessionStorage.removeItem(tokenKey);
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

// ApiError carries the API's error body: {"error", "message", ...}.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || "HTTP " + status);
    this.status = status;
    this.code = body && body.error;
    this.body = body || {};
  }
}

// describe says what went wrong in words for the page.
export function describe(err) {
  if (err instanceof ApiError && err.status === 401) return "the server needs an access token";
  if (err instanceof ApiError && err.status === 403) return "the access token does not allow this";
  return err.message;
}

function noteAuth(status) {
  if (status === 401 || status === 403) authListeners.forEach((fn) => fn(status));
}

async function readBody(res) {
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { message: text.trim() }; }
}

// request returns {status, body, headers} for any status: the append form
// shows every outcome, not only successes.
export async function request(method, path, { body, headers: extra, signal } = {}) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? extra : { "Content-Type": "application/json", ...extra }),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    signal,
  });
  noteAuth(res.status);
  return { status: res.status, body: await readBody(res), headers: res.headers };
}

// getJSON returns the body of a 2xx answer and throws ApiError otherwise.
export async function getJSON(path, { signal } = {}) {
  const r = await request("GET", path, { signal });
  if (r.status < 200 || r.status > 299) throw new ApiError(r.status, r.body);
  return r.body;
}

export async function getText(path, { signal } = {}) {
  const res = await fetch(path, { headers: headers({ Accept: "text/plain" }), cache: "no-store", signal });
  noteAuth(res.status);
  if (!res.ok) throw new ApiError(res.status, await readBody(res));
  return res.text();
}

export const customerPath = (id) => "customers/" + encodeURIComponent(id);

// watch follows a Server-Sent Events stream and calls onState with each
// "state" event's JSON, and onRejected (if given) with each "rejected" one. It reads the stream with fetch rather than
// EventSource, which cannot send an Authorization header. It reconnects
// with backoff, as the server asks clients that fell behind to do, until
// the returned function is called.
export function watch(path, { onState, onRejected, onStatus }) {
  const ctrl = new AbortController();
  let stopped = false;
  (async () => {
    let backoff = 500;
    while (!stopped) {
      try {
        const res = await fetch(path, {
          headers: headers({ Accept: "text/event-stream" }), cache: "no-store", signal: ctrl.signal,
        });
        noteAuth(res.status);
        if (!res.ok) throw new ApiError(res.status, await readBody(res));
        onStatus("open");
        backoff = 500;
        await readEvents(res.body, (ev) => {
          const handler = ev.event === "state" ? onState : ev.event === "rejected" ? onRejected : null;
          if (handler) {
            try { handler(JSON.parse(ev.data), ev.id); } catch (err) { console.warn("bad " + ev.event + " event", err); }
          }
        });
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          onStatus("denied");
          return;
        }
      }
      if (stopped) return;
      onStatus("closed");
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  })();
  return () => { stopped = true; ctrl.abort(); };
}

// readEvents parses an SSE byte stream into {event, data, id} frames.
async function readEvents(stream, onEvent) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const ev = { event: "message", data: "", id: "" };
      const data = [];
      for (const line of frame.split("\n")) {
        if (line === "" || line.startsWith(":")) continue; // comments are heartbeats
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "data") data.push(val);
        else if (field === "event") ev.event = val;
        else if (field === "id") ev.id = val;
      }
      if (data.length) {
        ev.data = data.join("\n");
        onEvent(ev);
      }
    }
  }
}

// parseMetrics reads Prometheus' text format into a map from metric name
// to its samples: [{labels: {name: value}, value: number}].
export function parseMetrics(text) {
  const out = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2])) !== null) {
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      }
    }
    const value = Number(m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : m[3]);
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}

// sum adds the samples of a metric, or returns undefined if it is absent.
export function sum(metrics, name) {
  const samples = metrics.get(name);
  if (!samples) return undefined;
  return samples.reduce((acc, s) => acc + s.value, 0);
}

// byLabel returns [labelValue, value] pairs of a metric, largest first.
export function byLabel(metrics, name, label) {
  return (metrics.get(name) || [])
    .map((s) => [s.labels[label] ?? "", s.value])
    .sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
}
