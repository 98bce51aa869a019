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


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    for case in generate.requests(seed, count):
        d = spec_oracle.decide(case["request"])
        if d["action"] == "BAD_INPUT":
            expect = {"bad_input": True, "why": d["why"]}
        else:
            expect = {k: d[k] for k in ("action", "step", "matched", "undecided", "missing",
                                        "refer_to")}
            # "STEP_UP at step 4 -> STAY": the step change capped at an end of
            # the ladder, which the Decision must warn about
            expect["capped"] = [w.split()[0] for w in d["warnings"] if w.endswith("-> STAY")]
            expect["why"] = d["why"]
        print(json.dumps({"name": case["name"], "request": case["request"], "expect": expect},
                         sort_keys=True, separators=(",", ":")))


if __name__ == "__main__":
    main()
