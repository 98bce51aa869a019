#!/usr/bin/env python3
"""Writes the golden audit logs under this folder from docs/audit-log.md alone.

This is a second, independent implementation of the record format: the C++
verifier must accept good/ and find the break in broken/ byte for byte.
Run it from this folder; it rewrites good/ and broken/.
"""
import hashlib
import json
import os
import shutil

ZERO = "0" * 64


def record_line(seq, kind, time, members, prev_hash):
    # Members in order, no whitespace; `members` is a list of (name, value).
    body = "".join("," + json.dumps(k) + ":" + json.dumps(v, separators=(",", ":"))
                   for k, v in members)
    preimage = ('{"seq":%d,"kind":%s,"time":"%s"%s,"prev_hash":"%s"}'
                % (seq, json.dumps(kind), time, body, prev_hash))
    digest = hashlib.sha256(preimage.encode("utf-8")).hexdigest()
    return preimage[:-1] + ',"hash":"%s"}\n' % digest, digest


RULESET = {"name": "stepped-care", "version": "2026.11.0",
           "sha256": "5d0b0c8e3f1a2b4c6d8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"}
SUBJECT = "2afb1ae9a339adf399fc3da33f0bade772d378239c9bcdebc9bad6425e7c3c69"


def decision(decision_id, action, step, rules):
    return {"decision_id": decision_id, "action": action,
            "recommended_step": step,
            "matched_rules": [{"rule_id": r, "action": action} for r in rules],
            "ruleset": RULESET, "evaluated_at": "2026-11-20T09:30:00.250Z",
            "as_of": "2026-11-20T09:30:00Z"}


REQUEST = {"current_step": 2, "weeks_at_step": 8.5,
           "assessments": [{"instrument": "phq9",
                            "items": {"item1": 2, "item9": 1},
                            "administered_at": "2026-11-18T11:06:40Z"}],
           "flags": ["red_flag"], "as_of": "2026-11-20T09:30:00Z"}

RECORDS = [
    ("activation", [("principal", "startup"), ("ruleset", RULESET),
                    ("previous_sha256", "")]),
    ("decision", [("decision_id", "01936f3e-7c2a-7000-8000-000000000001"),
                  ("principal", "ehr-north"), ("subject", SUBJECT),
                  ("request", REQUEST), ("ruleset", RULESET),
                  ("decision", decision("01936f3e-7c2a-7000-8000-000000000001",
                                        "URGENT_SAFETY", 2, ["SAFETY-02"]))]),
    ("decision", [("decision_id", "01936f3e-7c2a-7000-8000-000000000002"),
                  ("principal", "ehr-north \u00e9\u00e8"), ("subject", SUBJECT),
                  ("request", REQUEST), ("ruleset", RULESET),
                  ("decision", decision("01936f3e-7c2a-7000-8000-000000000002",
                                        "STEP_UP", 3, ["STEP-UP-01"]))]),
    ("shadow", [("decision_id", "01936f3e-7c2a-7000-8000-000000000002"),
                ("principal", "ehr-north"), ("subject", SUBJECT),
                ("request", REQUEST), ("ruleset", RULESET),
                ("decision", decision("", "STAY", 2, []))]),
]


def main():
    lines, prev = [], ZERO
    for seq, (kind, members) in enumerate(RECORDS, start=1):
        line, prev = record_line(seq, kind, "2026-11-20T09:30:0%d.000000Z" % seq,
                                 members, prev)
        lines.append(line)
    for d in ("good", "broken"):
        shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d)
    segments = {"000001.jsonl": lines[:2], "000002.jsonl": lines[2:]}
    for name, seg in segments.items():
        with open(os.path.join("good", name), "w", encoding="utf-8") as f:
            f.writelines(seg)
    # Not part of the chain: readers ignore quarantine files.
    with open(os.path.join("good", "000002.jsonl.torn-1"), "w") as f:
        f.write('{"seq":5,"kind":"deci')
    # broken/: seq 3's principal edited after the fact.
    shutil.copy(os.path.join("good", "000001.jsonl"), "broken")
    tampered = segments["000002.jsonl"][0].replace("ehr-north", "ehr-south", 1)
    with open(os.path.join("broken", "000002.jsonl"), "w", encoding="utf-8") as f:
        f.writelines([tampered] + segments["000002.jsonl"][1:])
    print("head", prev)


if __name__ == "__main__":
    main()
