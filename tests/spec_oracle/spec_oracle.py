#!/usr/bin/env python3
"""Independent oracle for the default stepped-care ruleset.

Written only from the clinical spec of the default ruleset
(clinical/default-ruleset.md), without the engine or rules/ in view.
Three-valued (CEL-style) logic: True, False, ABSENT.
  - any comparison / arithmetic involving ABSENT -> ABSENT
  - AND: any False -> False; else any ABSENT -> ABSENT; else True   (commutative)
  - OR : any True  -> True;  else any ABSENT -> ABSENT; else False  (commutative)
  - NOT ABSENT -> ABSENT
  - has(...) is always a plain bool
A rule fires only when its condition is True; ABSENT -> "undecided".

Usage: spec_oracle.py REQUESTS.json OUTCOMES.json
  (REQUESTS: [{"name", "request"}], as generate.py writes them)
"""
import json
import sys
from datetime import datetime
from fractions import Fraction
import math


class _Absent:
    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self):
        return "ABSENT"

    def __bool__(self):  # guard against accidental truthiness use
        raise TypeError("ABSENT used as a Python bool")


ABSENT = _Absent()


class Missing:
    """An absent value in a rule's evaluation, with the fact paths it came
    from: what a rule left undecided "lacked" (the Decision's missing_facts).
    (Added after the first version, which had only ABSENT: an absent result
    carries the union of the absent facts of the operands that left it
    absent; a deciding operand drops them.)"""

    def __init__(self, facts):
        self.facts = frozenset(facts)

    def __repr__(self):
        return f"ABSENT{sorted(self.facts)}"

    def __bool__(self):
        raise TypeError("ABSENT used as a Python bool")


def is_abs(x):
    return x is ABSENT or isinstance(x, Missing)


def _missing(xs):
    return Missing(frozenset().union(*(x.facts for x in xs if isinstance(x, Missing))))


def AND(*xs):
    if any((not is_abs(x)) and x is False for x in xs):
        return False
    if any(is_abs(x) for x in xs):
        return _missing(xs)
    for x in xs:
        assert x is True, x
    return True


def OR(*xs):
    if any((not is_abs(x)) and x is True for x in xs):
        return True
    if any(is_abs(x) for x in xs):
        return _missing(xs)
    for x in xs:
        assert x is False, x
    return False


def NOT(x):
    if is_abs(x):
        return _missing([x])
    assert isinstance(x, bool)
    return not x


def CMP(a, op, b):
    if is_abs(a) or is_abs(b):
        return _missing([a, b])
    return {
        ">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b,
        "==": a == b, "!=": a != b,
    }[op]


def ADD(a, b):
    if is_abs(a) or is_abs(b):
        return _missing([a, b])
    return a + b


# ---------------------------------------------------------------- instruments

INSTRUMENTS = {
    # id: (item names, item max, missing allowed for proration, total max, bands, caseness, reliable change)
    "phq9": dict(items=[f"item{i}" for i in range(1, 10)], imax=3, allow_missing=2, tmax=27,
                 bands=[("none", 0, 4), ("mild", 5, 9), ("moderate", 10, 14),
                        ("moderately_severe", 15, 19), ("severe", 20, 27)],
                 caseness=10, rc=6),
    "gad7": dict(items=[f"item{i}" for i in range(1, 8)], imax=3, allow_missing=0, tmax=21,
                 bands=[("none", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("severe", 15, 21)],
                 caseness=8, rc=4),
    "phq15": dict(items=[f"item{i}" for i in range(1, 16)], imax=2, allow_missing=3, tmax=30,
                  bands=[("minimal", 0, 4), ("low", 5, 9), ("medium", 10, 14), ("high", 15, 30)],
                  caseness=None, rc=None),
    "sss8": dict(items=[f"item{i}" for i in range(1, 9)], imax=4, allow_missing=0, tmax=32,
                 bands=[("none", 0, 3), ("low", 4, 7), ("medium", 8, 11), ("high", 12, 15),
                        ("very_high", 16, 32)],
                 caseness=None, rc=None),
    "ssd12": dict(items=[f"item{i}" for i in range(1, 13)], imax=4, allow_missing=0, tmax=48,
                  bands=[("below", 0, 22), ("likely", 23, 48)], caseness=None, rc=None),
    "wi7": dict(items=[f"item{i}" for i in range(1, 8)], imax=1, allow_missing=0, tmax=7,
                bands=[("below", 0, 2), ("elevated", 3, 7)], caseness=None, rc=None),
    "wsas": dict(items=[f"item{i}" for i in range(1, 6)], imax=8, allow_missing=0, tmax=40,
                 bands=[("subclinical", 0, 9), ("significant", 10, 20), ("severe", 21, 40)],
                 caseness=None, rc=None),
    "cssrs": dict(items=[f"q{i}" for i in range(1, 7)], imax=None, allow_missing=None, tmax=None,
                  bands=None, caseness=None, rc=None),
}
CSSRS_MAX = {"q1": 1, "q2": 1, "q3": 1, "q4": 1, "q5": 1, "q6": 2}
DECLARED_FLAGS = {"clinician_risk_concern", "red_flag", "new_or_changed_physical_symptoms"}


class BadInput(Exception):
    pass


def parse_time(s):
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # trim fractional seconds beyond microseconds
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i], rest[i:]
        s = head + "." + (frac[:6].ljust(6, "0")) + tz
    return datetime.fromisoformat(s)


def round_half_up(fr):
    return math.floor(fr + Fraction(1, 2))


def score(adm, errors):
    """Return dict: items (name->int, after cssrs skip-logic), total (int or ABSENT), warn list."""
    inst = adm["instrument"]
    spec = INSTRUMENTS[inst]
    items = dict(adm.get("items") or {})
    given_total = adm.get("total", None)
    warns = []
    for k, v in items.items():
        if k not in spec["items"]:
            errors.append(f"{inst}: unknown item {k}")
            continue
        mx = CSSRS_MAX[k] if inst == "cssrs" else spec["imax"]
        if not (isinstance(v, int) and 0 <= v <= mx):
            errors.append(f"{inst}.{k}={v} out of range 0..{mx}")
    if not items and given_total is None:
        errors.append(f"{inst}: neither items nor total")

    if inst == "cssrs":
        if given_total is not None:
            errors.append("cssrs: a total is bad input")
        out = dict(items)
        if out.get("q2") == 0:
            for q in ("q3", "q4", "q5"):
                out.setdefault(q, 0)  # skip logic: not asked -> count as 0
        for q in spec["items"]:
            if q not in out:
                errors.append(f"cssrs: missing {q} (incomplete suicide screen)")
        return dict(items=out, total=ABSENT, warns=warns)

    if given_total is not None and not (isinstance(given_total, int) and 0 <= given_total <= spec["tmax"]):
        errors.append(f"{inst}: total {given_total} out of range")

    total = ABSENT
    if items:
        n = len(spec["items"])
        answered = [k for k in spec["items"] if k in items]
        missing = n - len(answered)
        s = sum(items[k] for k in answered)
        computed = ABSENT
        if missing == 0:
            computed = s
        elif missing <= spec["allow_missing"]:
            computed = round_half_up(Fraction(s * n, len(answered)))
            # The Decision's warnings name prorated scores (architecture §2).
            warns.append(f"{inst}: prorated")
        if computed is not ABSENT:
            if given_total is not None and given_total != computed:
                errors.append(f"{inst}: total {given_total} disagrees with items ({computed})")
            total = computed
        else:
            if given_total is not None:
                hi = s + missing * spec["imax"]
                if given_total < s or given_total > hi:
                    errors.append(f"{inst}: total {given_total} outside [{s},{hi}]")
                # READING: "absent if too many items are missing" wins over a
                # consistent total sent beside the items. (First written as
                # "the sent total is kept"; changed to the product's
                # documented choice, docs/default-bundle.md choice 13.)
                total = ABSENT
            warns.append(f"{inst}: too many items missing, no total")
    else:
        total = given_total
    return dict(items=items, total=total, warns=warns)


def band(inst, total):
    if total is ABSENT:
        return ABSENT
    for lab, lo, hi in INSTRUMENTS[inst]["bands"]:
        if lo <= total <= hi:
            return lab
    return ABSENT


class Facts:
    """Fact lookup. get('phq9.total') etc. return value or ABSENT. has(path) -> bool."""

    def __init__(self, req):
        self.errors = []
        self.warns = []
        self.as_of = parse_time(req["as_of"])
        self.current_step = req["current_step"]
        self.weeks_at_step = float(req["weeks_at_step"])
        # READING: proto3 repeated 'flags' omitted == empty list, so `"x" in flags` is false
        self.flags = list(req.get("flags") or [])
        for f in self.flags:
            if f not in DECLARED_FLAGS:
                self.errors.append(f"unknown flag {f}")
        by_inst = {}
        for a in req.get("assessments") or []:
            inst = a.get("instrument")
            if inst not in INSTRUMENTS:
                self.errors.append(f"unknown instrument {inst}")
                continue
            if not a.get("administered_at"):
                self.errors.append(f"{inst}: administered_at missing")
                continue
            t = parse_time(a["administered_at"])
            if t > self.as_of:
                self.errors.append(f"{inst}: administered_at after as_of")
            sc = score(a, self.errors)
            self.warns += sc["warns"]
            by_inst.setdefault(inst, []).append(dict(t=t, **sc))
        self.f = {}
        self.present = set()
        for inst, lst in by_inst.items():
            lst.sort(key=lambda x: x["t"])
            ts = [x["t"] for x in lst]
            if len(set(ts)) != len(ts):
                self.errors.append(f"{inst}: two administrations at the same instant")
            cur = lst[-1]
            spec = INSTRUMENTS[inst]
            self.present.add(inst)
            P = inst + "."
            self.f[P + "total"] = cur["total"]
            for k in spec["items"]:
                self.f[P + k] = cur["items"].get(k, ABSENT)
            if spec["bands"]:
                self.f[P + "severity"] = band(inst, cur["total"])
            if spec["caseness"] is not None:
                self.f[P + "caseness"] = CMP(cur["total"], ">=", spec["caseness"])
            self.f[P + "days_since"] = (self.as_of - cur["t"]).total_seconds() / 86400.0
            self.f[P + "count"] = len(lst)
            if len(lst) >= 2:
                prev, base = lst[-2], lst[0]
                self.present.add("previous." + inst)
                self.present.add("baseline." + inst)
                self.f["previous." + P + "total"] = prev["total"]
                self.f["baseline." + P + "total"] = base["total"]
                bt, ct = base["total"], cur["total"]
                ch = ABSENT if (bt is ABSENT or ct is ABSENT) else ct - bt
                self.f[P + "change"] = ch
                if ch is ABSENT or bt == 0:
                    self.f[P + "pct_change"] = ABSENT
                else:
                    self.f[P + "pct_change"] = ch / bt
                if spec["rc"] is not None:
                    self.f[P + "reliable_improvement"] = ABSENT if ch is ABSENT else (-ch >= spec["rc"])
                    self.f[P + "reliable_deterioration"] = ABSENT if ch is ABSENT else (ch >= spec["rc"])
        self.by_inst = by_inst

    def get(self, path):
        v = self.f.get(path, ABSENT)
        return v

    def has(self, path):
        if path in INSTRUMENTS or path.startswith(("previous.", "baseline.")) and path.count(".") == 1:
            return path in self.present
        return self.get(path) is not ABSENT

    def in_flags(self, s):
        return s in self.flags


# ---------------------------------------------------------------- rules

def rules(F):
    def g(path):
        v = F.get(path)
        return Missing([path]) if v is ABSENT else v

    h = F.has
    cs, ws = F.current_step, F.weeks_at_step
    R = {}
    R["SAFETY-01"] = AND(h("cssrs"), OR(CMP(g("cssrs.q4"), "==", 1), CMP(g("cssrs.q5"), "==", 1),
                                        CMP(g("cssrs.q6"), "==", 2)))
    R["SAFETY-02"] = AND(CMP(g("phq9.item9"), ">=", 1),
                         NOT(AND(h("cssrs"), CMP(g("cssrs.days_since"), "<=", ADD(g("phq9.days_since"), 1.0)))))
    R["SAFETY-03"] = F.in_flags("clinician_risk_concern")
    R["SAFETY-04"] = AND(h("cssrs"), CMP(g("cssrs.q3"), "==", 1), CMP(g("cssrs.q4"), "==", 0),
                         CMP(g("cssrs.q5"), "==", 0), CMP(g("cssrs.q6"), "!=", 2))
    R["SAFETY-05"] = AND(h("cssrs"), OR(CMP(g("cssrs.q1"), "==", 1), CMP(g("cssrs.q2"), "==", 1)),
                         CMP(g("cssrs.q3"), "==", 0), CMP(g("cssrs.q4"), "==", 0),
                         CMP(g("cssrs.q5"), "==", 0), CMP(g("cssrs.q6"), "!=", 2))
    R["DATA-01"] = AND(h("phq9"), OR(NOT(h("phq9.total")), NOT(h("phq9.item9"))))
    R["MED-01"] = OR(F.in_flags("red_flag"), F.in_flags("new_or_changed_physical_symptoms"))
    R["DET-01"] = OR(g("phq9.reliable_deterioration"), g("gad7.reliable_deterioration"))
    R["SEV-01"] = AND(cs <= 2, CMP(g("phq9.total"), ">=", 16))
    R["NR-01"] = AND(ws >= 8.0, CMP(g("phq9.total"), ">=", 10), CMP(g("phq9.pct_change"), ">", -0.5))
    R["NR-02"] = AND(ws >= 4.0, ws < 8.0, CMP(g("phq9.total"), ">=", 10), CMP(g("phq9.change"), ">", -6))
    R["GAD-01"] = AND(cs == 2, ws >= 6.0, CMP(g("gad7.total"), ">=", 8), CMP(g("gad7.change"), ">", -4))
    R["FUNC-01"] = AND(cs <= 2, CMP(g("wsas.total"), ">", 20), CMP(g("gad7.total"), ">=", 10))
    R["REF-01"] = AND(cs == 3, ws >= 12.0,
                      OR(AND(h("phq9.total"), g("phq9.caseness")), AND(h("gad7.total"), g("gad7.caseness"))),
                      NOT(AND(h("baseline.phq9"), g("phq9.reliable_improvement"))),
                      NOT(AND(h("baseline.gad7"), g("gad7.reliable_improvement"))))
    R["REF-02"] = AND(CMP(g("phq9.total"), ">=", 20), CMP(g("wsas.total"), ">", 20))
    R["PSS-01"] = AND(cs == 1, ws >= 8.0,
                      OR(CMP(g("phq15.total"), ">=", 10), CMP(g("sss8.total"), ">=", 12)),
                      CMP(g("ssd12.total"), ">=", 23))
    R["PSS-02"] = AND(cs == 2, ws >= 8.0,
                      OR(CMP(g("phq15.total"), ">=", 10), CMP(g("sss8.total"), ">=", 12)),
                      CMP(g("sss8.change"), ">", -3))
    R["PSS-03"] = AND(cs >= 2, cs <= 3, ws >= 12.0,
                      OR(CMP(g("phq15.total"), ">=", 15), CMP(g("sss8.total"), ">=", 16)),
                      CMP(g("wsas.total"), ">", 20), CMP(g("sss8.change"), ">", -3))
    R["REM-01"] = AND(cs >= 2, CMP(g("phq9.total"), "<", 5), CMP(g("previous.phq9.total"), "<", 5),
                      g("phq9.reliable_improvement"),
                      OR(NOT(h("gad7")), CMP(g("gad7.total"), "<", 8)))
    return R


# action, target spec: int | "current+1" | "current" | None ; refer_to
META = {
    "SAFETY-01": ("URGENT_SAFETY", None, None),
    "SAFETY-02": ("URGENT_SAFETY", None, None),
    "SAFETY-03": ("URGENT_SAFETY", None, None),
    "SAFETY-04": ("REFER", 4, "mental_health_assessment_24h"),
    "SAFETY-05": ("STAY", None, None),
    "DATA-01": ("STAY", None, None),
    "MED-01": ("REFER", "current", "medical_reevaluation"),
    "DET-01": ("STEP_UP", "current+1", None),
    "SEV-01": ("STEP_UP", 3, None),
    "NR-01": ("STEP_UP", "current+1", None),
    "NR-02": ("STAY", None, None),
    "GAD-01": ("STEP_UP", 3, None),
    "FUNC-01": ("STEP_UP", 3, None),
    "REF-01": ("REFER", 4, "specialist_mental_health"),
    "REF-02": ("REFER", 4, "specialist_mental_health"),
    "PSS-01": ("STEP_UP", 2, None),
    "PSS-02": ("STEP_UP", 3, None),
    "PSS-03": ("REFER", 4, "psychosomatic_multidisciplinary"),
    "REM-01": ("STEP_DOWN", 1, None),
}
SEVERITY = ["URGENT_SAFETY", "REFER", "STEP_UP", "STAY", "STEP_DOWN"]

# facts each rule reads, for the "why" line
READS = {
    "SAFETY-01": ["cssrs.q4", "cssrs.q5", "cssrs.q6"],
    "SAFETY-02": ["phq9.item9", "cssrs.days_since", "phq9.days_since"],
    "SAFETY-03": [], "MED-01": [],
    "SAFETY-04": ["cssrs.q3", "cssrs.q4", "cssrs.q5", "cssrs.q6"],
    "SAFETY-05": ["cssrs.q1", "cssrs.q2", "cssrs.q3", "cssrs.q4", "cssrs.q5", "cssrs.q6"],
    "DATA-01": ["phq9.total", "phq9.item9"],
    "DET-01": ["phq9.change", "phq9.reliable_deterioration", "gad7.change", "gad7.reliable_deterioration"],
    "SEV-01": ["phq9.total"],
    "NR-01": ["phq9.total", "phq9.pct_change"],
    "NR-02": ["phq9.total", "phq9.change"],
    "GAD-01": ["gad7.total", "gad7.change"],
    "FUNC-01": ["wsas.total", "gad7.total"],
    "REF-01": ["phq9.total", "phq9.caseness", "phq9.reliable_improvement", "gad7.total", "gad7.caseness",
               "gad7.reliable_improvement"],
    "REF-02": ["phq9.total", "wsas.total"],
    "PSS-01": ["phq15.total", "sss8.total", "ssd12.total"],
    "PSS-02": ["phq15.total", "sss8.total", "sss8.change"],
    "PSS-03": ["phq15.total", "sss8.total", "wsas.total", "sss8.change"],
    "REM-01": ["phq9.total", "previous.phq9.total", "phq9.reliable_improvement", "gad7.total"],
}


def fmt(v):
    if v is ABSENT:
        return "absent"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def decide(req):
    F = Facts(req)
    if F.errors:
        return dict(action="BAD_INPUT", step=None, matched=[], undecided=[], why="; ".join(F.errors),
                    refer_to=[], warnings=[])
    R = rules(F)
    matched = sorted(k for k, v in R.items() if v is True)
    undecided = sorted(k for k, v in R.items() if is_abs(v))
    missing = {k: sorted(R[k].facts) for k in undecided}
    cs = F.current_step
    warnings = list(F.warns)
    refer_to = sorted({META[k][2] for k in matched if META[k][0] == "REFER"})
    if not matched:
        action, step = "STAY", cs
        why = "default: no rule matched"
    else:
        action = min((META[k][0] for k in matched), key=SEVERITY.index)
        winners = [k for k in matched if META[k][0] == action]

        def tgt(k):
            t = META[k][1]
            if t == "current+1":
                return cs + 1
            if t == "current":
                return cs
            return t

        if action == "STEP_UP":
            step = max((tgt(k) if META[k][1] is not None else cs + 1) for k in winners)
            if cs >= 4:
                warnings.append("STEP_UP at step 4 -> STAY")
                action, step = "STAY", cs
        elif action == "STEP_DOWN":
            step = max((tgt(k) if META[k][1] is not None else cs - 1) for k in winners)
            if cs <= 1:
                warnings.append("STEP_DOWN at step 1 -> STAY")
                action, step = "STAY", cs
        elif action == "REFER":
            step = max(tgt(k) for k in winners)
        else:
            step = cs
        parts = []
        for k in matched:
            vals = ", ".join(f"{p} {fmt(F.get(p))}" for p in READS[k] if F.get(p) is not ABSENT
                             or p in ("phq9.item9", "phq9.total"))
            if k == "SAFETY-02" and not F.has("cssrs"):
                vals += ", no cssrs"
            if k in ("SEV-01", "FUNC-01", "GAD-01", "REF-01", "PSS-01", "PSS-02", "PSS-03", "REM-01",
                     "NR-01", "NR-02"):
                vals = f"step {cs}, weeks {F.weeks_at_step:g}, " + vals
            parts.append(f"{k}: {vals}" if vals else k)
        why = "; ".join(parts)
    return dict(action=action, step=step, matched=matched, undecided=undecided, missing=missing, why=why,
                refer_to=refer_to, warnings=warnings)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    cases = json.load(open(src))
    out = []
    for c in cases:
        d = decide(c["request"])
        out.append(dict(name=c["name"], action=d["action"], step=d["step"], matched=d["matched"],
                        undecided=d["undecided"], why=d["why"]))
    json.dump(out, open(dst, "w"), indent=1)
    from collections import Counter
    print(len(out), dict(Counter(o["action"] for o in out)))


if __name__ == "__main__":
    main()
