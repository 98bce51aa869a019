#!/usr/bin/env python3
"""Seeded random EvaluateRequests over the default bundle's whole input space,
weighted towards the thresholds the spec names: every instrument, as items or
as a total, with items missing (within and beyond what may be prorated), a
total beside the items (agreeing or not), one to three administrations sent
in any order, C-SSRS screens around the one-day window of SAFETY-02 (with the
skip after a "no" to q2), remission courses for the step-down rule, flags,
every step and the week thresholds. Some requests are bad input on purpose.

Usage: generate.py SEED COUNT > requests.json   ([{"name", "request"}])"""
import json, random, sys
from datetime import datetime, timedelta, timezone

ITEMS = {"phq9": (9, 3), "gad7": (7, 3), "phq15": (15, 2), "sss8": (8, 4),
         "ssd12": (12, 4), "wi7": (7, 1), "wsas": (5, 8)}
# totals the rules and bands look at, and one either side
EDGES = {"phq9": [0, 4, 5, 9, 10, 14, 15, 16, 19, 20, 27],
         "gad7": [0, 4, 5, 7, 8, 9, 10, 14, 15, 21],
         "phq15": [0, 9, 10, 14, 15, 30], "sss8": [0, 11, 12, 15, 16, 32],
         "ssd12": [0, 22, 23, 48], "wi7": [0, 2, 3, 7], "wsas": [0, 20, 21, 40]}
FLAGS = ["clinician_risk_concern", "red_flag", "new_or_changed_physical_symptoms"]
AS_OF = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)

def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")

def near(r, v, lo, hi):
    return max(lo, min(hi, v + r.choice([-1, 0, 0, 1])))

def items_for(r, inst, target):
    n, mx = ITEMS[inst]
    vals = [0] * n
    # spread `target` over the items at random
    left = min(target, n * mx)
    for _ in range(2000):
        if left == 0: break
        i = r.randrange(n)
        if vals[i] < mx:
            vals[i] += 1; left -= 1
    return {f"item{i+1}": v for i, v in enumerate(vals)}

def administration(r, inst, when):
    a = {"instrument": inst, "administered_at": ts(when)}
    n, mx = ITEMS[inst]
    total = near(r, r.choice(EDGES[inst]), 0, n * mx) if r.random() < 0.8 else r.randint(0, n * mx)
    mode = r.random()
    if mode < 0.45:
        a["total"] = total
    else:
        items = items_for(r, inst, total)
        if inst == "phq9" and r.random() < 0.5:
            items["item9"] = r.choice([0, 0, 1, 2, 3])
        if r.random() < 0.25:  # some items missing
            for k in r.sample(sorted(items), r.choice([1, 1, 2, 3, 4])):
                del items[k]
        a["items"] = items
        if r.random() < 0.15:  # a total beside the items: right, or not
            s = sum(items.values())
            missing = n - len(items)
            if missing == 0:
                a["total"] = s + r.choice([0, 0, 0, 1])
            else:  # consistent with the missing items, or (last) beyond them
                a["total"] = s + r.randint(0, missing * mx + 1)
    return a

def cssrs(r, when):
    q = {"q1": r.randint(0, 1), "q2": r.randint(0, 1)}
    for k in ("q3", "q4", "q5"):
        q[k] = int(r.random() < 0.3)
    q["q6"] = r.choice([0, 0, 1, 2])
    if q["q2"] == 0 and r.random() < 0.5:  # skipped after a "no" to q2
        for k in ("q3", "q4", "q5"):
            del q[k]
    return {"instrument": "cssrs", "items": q, "administered_at": ts(when)}

def request(r, k):
    req = {"subject_id": f"s{k}", "as_of": ts(AS_OF),
           "current_step": r.randint(1, 4),
           "weeks_at_step": r.choice([0.0, 3.9, 4.0, 5.5, 6.0, 7.9, 8.0, 11.9, 12.0, 20.0, r.uniform(0, 30)])}
    if r.random() < 0.2:
        req["flags"] = r.sample(FLAGS, r.randint(1, 2))
    assessments = []
    phq9_last = None
    for inst in ITEMS:
        if r.random() < (0.8 if inst in ("phq9", "gad7") else 0.4):
            count = r.choice([1, 1, 2, 2, 3])
            days = sorted(r.sample(range(1, 200), count), reverse=True)
            for d in days:
                when = AS_OF - timedelta(days=d, hours=r.choice([0, 3]))
                assessments.append(administration(r, inst, when))
                if inst == "phq9":
                    phq9_last = when if phq9_last is None or when > phq9_last else phq9_last
    if r.random() < 0.35:
        if phq9_last is not None and r.random() < 0.6:
            # around the "at most one day before the PHQ-9" edge
            when = phq9_last + timedelta(hours=r.choice([-48, -25, -24, -23, 0, 5]))
            when = min(when, AS_OF)
        else:
            when = AS_OF - timedelta(days=r.randint(0, 60))
        assessments.append(cssrs(r, when))
    if r.random() < 0.12:
        # a remission course: the rules that step down need two low PHQ-9s
        # after a high baseline, all items answered, item 9 included
        assessments = [a for a in assessments if a["instrument"] not in ("phq9", "cssrs")]
        for d, target in ((r.randint(120, 200), r.randint(9, 20)),
                          (r.randint(40, 100), near(r, 4, 0, 27)),
                          (r.randint(1, 30), near(r, 4, 0, 27))):
            items = items_for(r, "phq9", target)
            if items["item9"] and r.random() < 0.8:
                items["item9"] = 0
            assessments.append({"instrument": "phq9", "items": items,
                                "administered_at": ts(AS_OF - timedelta(days=d))})
    r.shuffle(assessments)
    req["assessments"] = assessments
    if r.random() < 0.06:
        spoil(r, req)
    return req


def spoil(r, req):
    """Makes `req` bad input in one of the ways the spec names."""
    assessments = req["assessments"]
    kind = r.choice(["instrument", "item", "total", "flag", "future", "same_instant",
                     "cssrs_item"])
    if kind == "instrument":
        assessments.append({"instrument": "phq2", "total": 1,
                            "administered_at": ts(AS_OF - timedelta(days=3))})
    elif kind == "item":
        inst = r.choice(sorted(ITEMS))
        n, mx = ITEMS[inst]
        items = {f"item{i}": 0 for i in range(1, n + 1)}
        items[f"item{r.randint(1, n)}"] = r.choice([-1, mx + 1])
        assessments.append({"instrument": inst, "items": items,
                            "administered_at": ts(AS_OF - timedelta(days=250))})
    elif kind == "total":
        inst = r.choice(sorted(ITEMS))
        n, mx = ITEMS[inst]
        assessments.append({"instrument": inst, "total": r.choice([-1, n * mx + 1]),
                            "administered_at": ts(AS_OF - timedelta(days=250))})
    elif kind == "flag":
        req["flags"] = req.get("flags", []) + ["suicidal"]
    elif kind == "future":
        assessments.append({"instrument": "gad7", "total": 3,
                            "administered_at": ts(AS_OF + timedelta(days=1))})
    elif kind == "same_instant":
        when = ts(AS_OF - timedelta(days=300))
        assessments.append({"instrument": "gad7", "total": 3, "administered_at": when})
        assessments.append({"instrument": "gad7", "total": 4, "administered_at": when})
    else:
        q = {"q1": 1, "q2": 1, "q3": 0, "q4": 0, "q5": 0, "q6": 0}
        del q[r.choice(["q3", "q4", "q5", "q6"])]
        assessments.append({"instrument": "cssrs", "items": q,
                            "administered_at": ts(AS_OF - timedelta(days=2))})

def requests(seed, count):
    r = random.Random(seed)
    return [{"name": f"r{seed}-{k}", "request": request(r, k)} for k in range(count)]


def main():
    json.dump(requests(int(sys.argv[1]), int(sys.argv[2])), sys.stdout)


if __name__ == "__main__":
    main()
