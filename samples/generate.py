#!/usr/bin/env python3
"""Generate samples/customer-events.jsonl, eventfold's sample event log.

Regenerate (from anywhere; Python 3 standard library only):

    python3 samples/generate.py            # rewrite the .jsonl, print the report
    python3 samples/generate.py --check    # exit 1 if the committed file is stale
    python3 samples/generate.py --stdout   # write the events to stdout instead

The output is deterministic (fixed SEED, no clock, no environment): the same
script always writes byte-identical output. If you change this script, run it
and update the rejection table in samples/README.md from the printed report.

Each line is a CloudEvents 1.0 event in JSON structured mode; `subject` is the
customer id (and the Kafka record key). A reference fold below (`fold`)
computes the expected outcome of every line and the script asserts that every
deliberate rejection is rejected for exactly one reason, and that every other
event is accepted, so the file and the README cannot drift apart silently.

Fold rules assumed by the sample (the reasons are the ones the tests use):
  duplicate           an event whose `id` was already seen is ignored
  not_registered      an event for a customer with no accepted registration
  erased              any event for a customer after its customer.erased
  already_registered  customer.registered for an existing customer
  version_conflict    `expectedversion` != number of accepted events so far
  invalid             bad data: empty name, email without '@', country not
                      two uppercase letters, missing address fields
Accepted (non-rejected) events never depend on suspension rules: the sample
only renames / changes email / address of active customers, suspends active
ones, reactivates suspended ones and erases active ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import unicodedata
from datetime import datetime, timedelta, timezone

SEED = 20260101
N_EVENTS = 400
N_CUSTOMERS = 60
SOURCE = "/eventfold/samples"
START = datetime(2026, 1, 1, 0, 0, 0, tzinfo=timezone.utc)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "customer-events.jsonl")

REGISTERED = "customer.registered"
RENAMED = "customer.renamed"
EMAIL_CHANGED = "customer.email_changed"
ADDRESS_CHANGED = "customer.address_changed"
SUSPENDED = "customer.suspended"
REACTIVATED = "customer.reactivated"
ERASED = "customer.erased"

FIRST_NAMES = [
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken",
    "Margaret", "Niklaus", "Radia", "Tim", "Hedy", "John", "Sophie", "Linus",
    "Karen", "Dennis", "Joan", "Claude", "Annie", "Bjarne", "Mary", "Guido",
]
LAST_NAMES = [
    "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen",
    "Thompson", "Hamilton", "Wirth", "Perlman", "Berners-Lee", "Lamarr",
    "McCarthy", "Wilson", "Torvalds", "Jones", "Ritchie", "Clarke", "Shannon",
    "Easley", "Stroustrup", "Keller", "van Rossum",
]
# Names that exercise UTF-8 (Latin diacritics, CJK); used for some customers.
UNICODE_NAMES = [
    "Zoë Müller", "José Álvarez", "李雷", "Søren Kjærgaard", "Łukasz Wójcik",
    "Chloé Dubois", "Björn Ström", "Ana Conceição", "佐藤 花子", "Ingrid Ångström",
    "Çağla Öztürk", "Nguyễn Thị Minh",
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]

# country -> list of (line1, city, postal_code)
ADDRESSES = {
    "GB": [("12 St James Sq", "London", "SW1Y 4JH"), ("4 Princes St", "Edinburgh", "EH2 2AN"),
           ("221B Baker St", "London", "NW1 6XE")],
    "DE": [("Hauptstraße 12", "Berlin", "10115"), ("Marienplatz 8", "München", "80331"),
           ("Königsallee 27", "Düsseldorf", "40212")],
    "FR": [("12 Rue de Rivoli", "Paris", "75001"), ("5 Place Bellecour", "Lyon", "69002")],
    "US": [("350 5th Ave", "New York", "10118"), ("1 Infinite Loop", "Cupertino", "95014"),
           ("77 Massachusetts Ave", "Cambridge", "02139")],
    "NL": [("Damrak 1", "Amsterdam", "1012 JS"), ("Coolsingel 40", "Rotterdam", "3011 AD")],
    "SE": [("Drottninggatan 5", "Stockholm", "111 51"), ("Avenyn 10", "Göteborg", "411 36")],
    "JP": [("1-1 Chiyoda", "東京", "100-0001"), ("2-4-1 Umeda", "Osaka", "530-0001")],
    "BR": [("Av. Paulista 1578", "São Paulo", "01310-200"), ("Rua das Laranjeiras 30", "Rio de Janeiro", "22240-000")],
}
LINE2 = ["Apt 4B", "Flat 2", "Suite 300", "c/o Reception", "3rd floor"]
# Letters that NFKD does not reduce to ASCII, for e-mail local parts.
TRANSLIT = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Æ": "Ae", "æ": "ae", "ß": "ss", "Đ": "D", "đ": "d"})
SUSPEND_REASONS = ["payment_overdue", "fraud_review", "customer_request", "chargeback"]

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Deliberate events, by the position (0-based event index) where the
# generator first tries to place them; a plan that cannot be carried out at
# its position (no suitable customer yet) moves to the next position.
PLAN = {
    12: "not_registered_future",   # a customer that registers later in the file
    41: "version_conflict_stale",
    70: "invalid_name",
    95: "already_registered",
    118: "erase",
    131: "version_conflict_ahead",
    150: "erase",
    163: "not_registered_unknown",
    176: "invalid_email",
    205: "after_erase",
    224: "version_conflict_stale",
    238: "duplicate_rename",
    262: "erase",
    275: "already_registered",
    290: "invalid_country",
    304: "not_registered_unknown",
    318: "after_erase",
    333: "version_conflict_ahead",
    349: "duplicate_expected",
    362: "after_erase",
    377: "version_conflict_stale",
}


# --------------------------------------------------------------------------
# Reference fold


def _valid_address(a) -> bool:
    if not isinstance(a, dict):
        return False
    for f in ("line1", "city", "postal_code"):
        if not isinstance(a.get(f), str) or not a[f].strip():
            return False
    return isinstance(a.get("country"), str) and bool(COUNTRY_RE.match(a["country"]))


def _valid_email(e) -> bool:
    if not isinstance(e, str):
        return False
    local, at, domain = e.partition("@")
    return bool(at) and bool(local) and bool(domain) and "@" not in domain


def _valid_name(n) -> bool:
    return isinstance(n, str) and bool(n.strip())


def _data_valid(ev) -> bool:
    t, d = ev["type"], ev.get("data", {})
    if t == REGISTERED:
        return (_valid_name(d.get("name")) and _valid_email(d.get("email"))
                and ("address" not in d or _valid_address(d["address"])))
    if t == RENAMED:
        return _valid_name(d.get("name"))
    if t == EMAIL_CHANGED:
        return _valid_email(d.get("email"))
    if t == ADDRESS_CHANGED:
        return _valid_address(d.get("address"))
    return True


def rejection_reasons(state: dict, seen_ids: set, ev: dict) -> list[str]:
    """Every reason the fold could reject ev for (empty = accepted)."""
    if ev["id"] in seen_ids:
        return ["duplicate"]
    c = state.get(ev["subject"])
    reasons = []
    if ev["type"] == REGISTERED:
        if c is not None:
            reasons.append("erased" if c["status"] == "erased" else "already_registered")
    elif c is None:
        reasons.append("not_registered")
    elif c["status"] == "erased":
        reasons.append("erased")
    version = 0 if c is None else c["version"]
    if "expectedversion" in ev and ev["expectedversion"] != version:
        reasons.append("version_conflict")
    if not _data_valid(ev):
        reasons.append("invalid")
    return reasons


def apply(state: dict, ev: dict) -> None:
    """Apply an accepted event; asserts the sample avoids suspension edge cases."""
    t, d, key = ev["type"], ev.get("data", {}), ev["subject"]
    if t == REGISTERED:
        state[key] = {"status": "active", "version": 1, "name": d["name"],
                      "email": d["email"], "address": d.get("address")}
        return
    c = state[key]
    if t in (RENAMED, EMAIL_CHANGED, ADDRESS_CHANGED, SUSPENDED, ERASED):
        assert c["status"] == "active", (ev["id"], c["status"])
    if t == REACTIVATED:
        assert c["status"] == "suspended", (ev["id"], c["status"])
    if t == RENAMED:
        c["name"] = d["name"]
    elif t == EMAIL_CHANGED:
        c["email"] = d["email"]
    elif t == ADDRESS_CHANGED:
        c["address"] = d["address"]
    elif t == SUSPENDED:
        c["status"] = "suspended"
    elif t == REACTIVATED:
        c["status"] = "active"
    elif t == ERASED:
        c.update(status="erased", name=None, email=None, address=None)
    c["version"] += 1


def fold(events: list[dict]):
    """Outcome of each event ('accepted' or a reason) and the final state."""
    state, seen, outcomes = {}, set(), []
    for ev in events:
        reasons = rejection_reasons(state, seen, ev)
        assert len(reasons) <= 1, (ev["id"], reasons)  # never ambiguous
        seen.add(ev["id"])
        if reasons:
            outcomes.append(reasons[0])
        else:
            apply(state, ev)
            outcomes.append("accepted")
    return outcomes, state


# --------------------------------------------------------------------------
# Generator


def ascii_slug(name: str) -> str:
    s = unicodedata.normalize("NFKD", name.translate(TRANSLIT)).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", ".", s.lower()).strip(".")
    return s


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.events: list[dict] = []     # what goes in the file, in order
        self.expected: list[str] = []    # intended outcome per event
        self.notes: list[str] = []       # why a deliberate event is there
        self.state: dict = {}            # reference state, accepted events only
        self.seen: set = set()
        self.clock = START
        self.customers = [f"cust-{i:04d}" for i in range(1, N_CUSTOMERS + 1)]
        self.pending = list(self.customers)   # not yet registered, in order
        unicode_for = self.rng.sample(self.customers, len(UNICODE_NAMES))
        self.unicode_name = dict(zip(unicode_for, UNICODE_NAMES))
        self.erased_with_followup: list[str] = []
        self.renames: list[int] = []     # indexes of accepted renames
        self.with_expected: list[int] = []  # indexes of accepted events with expectedversion

    # -- building blocks
    def next_time(self) -> str:
        self.clock += timedelta(seconds=self.rng.randint(45, 420))
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def make(self, etype: str, key: str, data: dict, expectedversion=None) -> dict:
        # A new event's id is its 1-based line number (evt-000042 is on line
        # 42); the line of a duplicate repeats an earlier id, so its own
        # number is never used as an id.
        ev = {"specversion": "1.0", "id": f"evt-{len(self.events) + 1:06d}", "source": SOURCE, "type": etype}
        if expectedversion is not None:
            ev["expectedversion"] = expectedversion
        ev["time"] = self.next_time()
        ev["subject"] = key
        ev["data"] = data
        return ev

    def emit(self, ev: dict, expected: str, note: str = "") -> None:
        reasons = rejection_reasons(self.state, self.seen, ev)
        got = reasons[0] if reasons else "accepted"
        assert len(reasons) <= 1 and got == expected, (ev, reasons, expected)
        self.seen.add(ev["id"])
        if got == "accepted":
            apply(self.state, ev)
            if ev["type"] == RENAMED:
                self.renames.append(len(self.events))
            if "expectedversion" in ev:
                self.with_expected.append(len(self.events))
        self.events.append(ev)
        self.expected.append(expected)
        self.notes.append(note)

    def random_name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def random_email(self, name: str, key: str) -> str:
        slug = ascii_slug(name) or key.replace("-", "")
        if self.rng.random() < 0.3:
            slug += str(self.rng.randint(1, 99))
        return f"{slug}@{self.rng.choice(EMAIL_DOMAINS)}"

    def random_address(self, exclude=None) -> dict:
        while True:
            country = self.rng.choice(sorted(ADDRESSES))
            line1, city, postal = self.rng.choice(ADDRESSES[country])
            addr = {"line1": line1}
            if self.rng.random() < 0.3:
                addr["line2"] = self.rng.choice(LINE2)
            addr.update(city=city, postal_code=postal, country=country)
            if addr != exclude:
                return addr

    def maybe_expected(self, key: str, p: float = 0.15):
        if self.rng.random() < p:
            return self.state[key]["version"] if key in self.state else 0
        return None

    def active(self) -> list[str]:
        return sorted(k for k, c in self.state.items() if c["status"] == "active")

    def suspended(self) -> list[str]:
        return sorted(k for k, c in self.state.items() if c["status"] == "suspended")

    # -- ordinary (accepted) events
    def register(self, key: str) -> None:
        self.pending.remove(key)
        name = self.unicode_name.get(key) or self.random_name()
        data = {"name": name, "email": self.random_email(name, key)}
        if self.rng.random() < 0.75:
            data["address"] = self.random_address()
        ev = self.make(REGISTERED, key, data, 0 if self.rng.random() < 0.15 else None)
        self.emit(ev, "accepted")

    def change(self, key: str, etype: str, expectedversion="auto", expected="accepted", note="", data=None) -> None:
        c = self.state[key]
        if data is None:
            if etype == RENAMED:
                # Mostly a new family name (marriage, correction), else a new name.
                first = c["name"].split(" ")[0]
                name = c["name"]
                while name == c["name"]:
                    keep_first = " " in c["name"] and all(ord(ch) < 0x2E80 for ch in c["name"])
                    name = (f"{first} {self.rng.choice(LAST_NAMES)}" if keep_first and self.rng.random() < 0.7
                            else self.random_name())
                data = {"name": name}
            elif etype == EMAIL_CHANGED:
                email = c["email"]
                while email == c["email"]:
                    email = self.random_email(c["name"] if self.rng.random() < 0.7 else self.random_name(), key)
                data = {"email": email}
            elif etype == ADDRESS_CHANGED:
                data = {"address": self.random_address(exclude=c["address"])}
            elif etype == SUSPENDED:
                data = {"reason": self.rng.choice(SUSPEND_REASONS)} if self.rng.random() < 0.7 else {}
            else:
                data = {}
        if expectedversion == "auto":
            expectedversion = self.maybe_expected(key)
        self.emit(self.make(etype, key, data, expectedversion), expected, note)

    def ordinary(self) -> None:
        """One accepted event: a registration or a change to a known customer."""
        registered = len(self.customers) - len(self.pending)
        remaining = N_EVENTS - len(self.events)
        # Register everyone within the first ~65% of the file.
        want_reg = len(self.pending) / max(1, int(N_EVENTS * 0.65) - len(self.events))
        if self.pending and (registered < 4 or self.rng.random() < want_reg or remaining <= len(self.pending)):
            self.register(self.pending[0])
            return
        active, suspended = self.active(), self.suspended()
        choices = []
        for key in active:
            choices += [(key, RENAMED, 2), (key, EMAIL_CHANGED, 4), (key, ADDRESS_CHANGED, 4), (key, SUSPENDED, 1)]
        for key in suspended:
            choices.append((key, REACTIVATED, 6))
        key, etype, _ = self.rng.choices(choices, weights=[w for _, _, w in choices])[0]
        self.change(key, etype)

    # -- deliberate events; each returns False when it cannot happen yet
    def special(self, kind: str) -> bool:
        active = self.active()
        if kind == "not_registered_future":
            if len(self.pending) < 2:
                return False
            key = self.pending[-1]
            self.emit(self.make(EMAIL_CHANGED, key, {"email": f"{key.replace('-', '')}@example.com"}),
                      "not_registered", f"{key} is not registered yet (it registers later in the file)")
            return True
        if kind == "not_registered_unknown":
            key = f"cust-{9900 + self.rng.randint(1, 99):04d}"
            if key in self.state:
                return False
            etype = self.rng.choice([RENAMED, ADDRESS_CHANGED])
            data = {"name": "Nobody Known"} if etype == RENAMED else {"address": self.random_address()}
            self.emit(self.make(etype, key, data), "not_registered", f"{key} is never registered")
            return True
        if kind == "already_registered":
            if not active:
                return False
            key = self.rng.choice(active)
            name = self.random_name()
            ev = self.make(REGISTERED, key, {"name": name, "email": self.random_email(name, key)})
            self.emit(ev, "already_registered", f"second customer.registered for {key}")
            return True
        if kind.startswith("version_conflict"):
            cands = [k for k in active if self.state[k]["version"] >= 2]
            if not cands:
                return False
            key = self.rng.choice(cands)
            v = self.state[key]["version"]
            ev_v = v - 1 if kind.endswith("stale") else v + 1
            etype = self.rng.choice([RENAMED, EMAIL_CHANGED, ADDRESS_CHANGED])
            self.change(key, etype, ev_v, "version_conflict",
                        f"expectedversion {ev_v}, but {key} has {v} accepted events")
            return True
        if kind.startswith("invalid"):
            if not active:
                return False
            key = self.rng.choice(active)
            if kind == "invalid_name":
                self.change(key, RENAMED, None, "invalid", "empty name", {"name": ""})
            elif kind == "invalid_email":
                email = self.state[key]["email"].replace("@", ".at.")
                self.change(key, EMAIL_CHANGED, None, "invalid", f"email without '@': {email}", {"email": email})
            else:
                addr = self.random_address(exclude=self.state[key]["address"])
                addr["country"] = "XX1"
                self.change(key, ADDRESS_CHANGED, None, "invalid", 'country "XX1"', {"address": addr})
            return True
        if kind == "erase":
            if len(active) < 10:
                return False
            key = self.rng.choice(active)
            self.change(key, ERASED, self.maybe_expected(key, 0.5), "accepted", f"{key} erased")
            # Two of the three erased customers get a later event.
            if len(self.erased_with_followup) < 2:
                self.erased_with_followup.append(key)
            return True
        if kind == "after_erase":
            if not self.erased_with_followup:
                return False
            key = self.erased_with_followup.pop(0)
            self.erased_with_followup.append(key)   # round-robin
            etype = self.rng.choice([RENAMED, REACTIVATED, EMAIL_CHANGED])
            data = ({"name": self.random_name()} if etype == RENAMED else
                    {"email": f"{key.replace('-', '')}@example.org"} if etype == EMAIL_CHANGED else {})
            self.emit(self.make(etype, key, data), "erased", f"{key} was erased earlier")
            return True
        if kind == "duplicate_rename":
            # Replay of an accepted rename (without expectedversion) whose
            # customer has been renamed since: applying it again would be
            # accepted and change the name back.
            for i in self.renames:
                ev = self.events[i]
                c = self.state[ev["subject"]]
                if ("expectedversion" not in ev and c["status"] == "active"
                        and c["name"] != ev["data"]["name"]):
                    self.emit(ev, "duplicate", f"byte-identical replay of line {i + 1} ({ev['id']})")
                    return True
            return False
        if kind == "duplicate_expected":
            # Replay of an accepted event with expectedversion: if it were not
            # recognised as a duplicate it would be a version_conflict.
            for i in reversed(self.with_expected):
                ev = self.events[i]
                if ev["type"] != ERASED and i < len(self.events) - 20:
                    self.emit(ev, "duplicate", f"byte-identical replay of line {i + 1} ({ev['id']})")
                    return True
            return False
        raise ValueError(kind)

    def run(self) -> None:
        deferred: list[str] = []
        while len(self.events) < N_EVENTS:
            pos = len(self.events)
            if pos in PLAN:
                deferred.append(PLAN[pos])
            if deferred and self.special(deferred[0]):
                deferred.pop(0)
                continue
            self.ordinary()
        assert not deferred, deferred
        assert not self.pending, self.pending


def serialize(ev: dict) -> str:
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":"))


def generate():
    g = Generator(SEED)
    g.run()
    lines = [serialize(ev) for ev in g.events]
    # Independent re-check: fold the serialized file from scratch.
    parsed = [json.loads(line) for line in lines]
    outcomes, state = fold(parsed)
    assert outcomes == g.expected
    ids = [ev["id"] for ev in parsed]
    times = [ev["time"] for ev in parsed]
    for i, ev in enumerate(parsed):
        assert KEY_RE.match(ev["subject"]), ev
        if g.expected[i] != "duplicate":
            assert ids[i] not in ids[:i]
            assert all(t < times[i] for j, t in enumerate(times[:i]) if g.expected[j] != "duplicate")
    return "".join(line + "\n" for line in lines), g, outcomes, state


def report(g: Generator, outcomes: list[str], state: dict) -> str:
    from collections import Counter
    out = []
    n_dup = outcomes.count("duplicate")
    out.append(f"{len(g.events)} events, {len(state)} customers registered, "
               f"{outcomes.count('accepted')} accepted, "
               f"{len(outcomes) - outcomes.count('accepted') - n_dup} rejected, {n_dup} duplicates ignored")
    out.append("outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(outcomes).items())))
    out.append("event types: " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(e["type"] for e in g.events).items())))
    n_ev = sum(1 for e in g.events if "expectedversion" in e)
    n_ev_ok = sum(1 for e, o in zip(g.events, outcomes) if "expectedversion" in e and o == "accepted")
    out.append(f"expectedversion: on {n_ev} events, {n_ev_ok} of them accepted")
    status = Counter(c["status"] for c in state.values())
    out.append("final status: " + ", ".join(f"{k}={v}" for k, v in sorted(status.items())))
    out.append("erased: " + ", ".join(sorted(k for k, c in state.items() if c["status"] == "erased")))
    out.append("suspended at end: " + ", ".join(sorted(k for k, c in state.items() if c["status"] == "suspended")))
    out.append("")
    out.append("| line | id | subject | type | expected | why |")
    out.append("| ---: | --- | --- | --- | --- | --- |")
    for i, (ev, o) in enumerate(zip(g.events, outcomes)):
        if o != "accepted" or g.notes[i]:
            out.append(f"| {i + 1} | `{ev['id']}` | `{ev['subject']}` | `{ev['type']}` | "
                       f"{'**' + o + '**' if o != 'accepted' else o} | {g.notes[i]} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the .jsonl differs from what would be generated")
    ap.add_argument("--stdout", action="store_true", help="write the events to stdout, not the file")
    args = ap.parse_args()
    text, g, outcomes, state = generate()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        try:
            with open(OUT, encoding="utf-8", newline="") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{os.path.relpath(OUT)} is stale: run python3 samples/generate.py", file=sys.stderr)
            return 1
        print(f"{os.path.relpath(OUT)} is up to date")
        return 0
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUT)}")
    print(report(g, outcomes, state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
