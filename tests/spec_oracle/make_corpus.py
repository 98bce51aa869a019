#!/usr/bin/env python3
"""Writes the corpus tests/engine/spec_oracle_test.cc checks the engine
against: generated requests (generate.py) with the outcome spec_oracle.py
decides for each, one JSON object per line.

Usage (from the repository root):
  python3 tests/spec_oracle/make_corpus.py 2026 1500 \\
      > tests/engine/testdata/spec_oracle/cases.jsonl
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402
import spec_oracle  # noqa: E402


def warning_kind(warning):
    """What a warning of the oracle's is about, in corpus.h's terms."""
    if warning.endswith("-> STAY"):  # "STEP_UP at step 4 -> STAY"
        return "capped " + warning.split()[0]
    instrument = warning.split(":")[0]
    if warning.endswith(": prorated"):
        return "prorated " + instrument
    if warning.endswith("no total"):
        return "no_total " + instrument
    raise ValueError(f"unknown warning: {warning}")


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    for case in generate.requests(seed, count):
        d = spec_oracle.decide(case["request"])
        if d["action"] == "BAD_INPUT":
            expect = {"bad_input": True, "why": d["why"]}
        else:
            expect = {k: d[k] for k in ("action", "step", "matched", "undecided", "missing",
                                        "refer_to")}
            expect["warned"] = sorted(warning_kind(w) for w in d["warnings"])
            expect["why"] = d["why"]
        print(json.dumps({"name": case["name"], "request": case["request"], "expect": expect},
                         sort_keys=True, separators=(",", ":")))


if __name__ == "__main__":
    main()
