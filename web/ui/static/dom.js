// DOM helpers. Text always goes in as text, never as HTML: customer data
// and dead-letter values come from producers the page does not trust.

export const $ = (id) => document.getElementById(id);

// h builds an element: h("a", {href: "#", class: "x"}, "text", child).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// announce tells screen readers about a change they cannot see.
export function announce(text) {
  const el = $("announcer");
  el.textContent = "";
  // A fresh text node after a tick is announced even when it repeats.
  setTimeout(() => { el.textContent = text; }, 50);
}

const pad = (n) => String(n).padStart(2, "0");

// formatTime shows a time in UTC, like the API's own times.
export function formatTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1000) return "";
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

export function timeEl(value, cls) {
  const text = formatTime(value);
  if (!text) return null;
  return h("time", { datetime: value, class: cls, title: new Date(value).toLocaleString() }, text);
}

const numberFormat = new Intl.NumberFormat("en-US");
export const formatNumber = (n) => (n === undefined || Number.isNaN(n) ? "–" : numberFormat.format(Math.round(n)));

export function formatRate(n) {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return n >= 100 ? numberFormat.format(Math.round(n)) : n.toFixed(1);
}

// formatAddress writes an address on one line.
export function formatAddress(a) {
  if (!a || typeof a !== "object") return "";
  const city = [a.postal_code, a.city].filter(Boolean).join(" ");
  return [a.line1, a.line2, city, a.country].filter(Boolean).join(", ");
}

// formatValue shows one field of event data compactly.
export function formatValue(key, v) {
  if (v === null || v === undefined) return "null";
  if (key === "address" && typeof v === "object") return formatAddress(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function clear(el) { el.replaceChildren(); return el; }
