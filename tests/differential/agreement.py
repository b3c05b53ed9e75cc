"""How often ovsnet's translation agrees with Open vSwitch 3.1 on random inputs.

``python -m tests.differential.agreement --seeds N [--start S] [--json]`` runs
the seeded random flow tables and the random NORMAL bridges of
tests/differential/test_xlate_real.py (the same generators, seeds S .. S+N-1)
against a private real ovs-vswitchd and prints the number of traces, the
share with identical datapath actions (after ``ovs-dpctl normalize-actions``)
and with identical megaflows, and every disagreement with its seed, flow and
both results. Traces using something ovsnet does not translate (a
recirculation after ``pop_mpls``) are counted apart and not compared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.differential.ofproto_oracle import OfprotoOracle
from tests.differential.ovs_sandbox import OvsSandbox, require_binaries
from tests.differential.test_xlate_real import (
    Outcome,
    normal_bridge_outcomes,
    random_table_outcomes,
)


def measure(oracle: OfprotoOracle, seeds: range) -> dict:
    """Run both generators for ``seeds``; the figures and disagreements as a dict."""
    traces = same_actions = same_megaflow = 0
    unsupported: dict[str, int] = {}
    disagreements = []
    for seed in seeds:
        for kind, (setup, outcomes) in (("table", random_table_outcomes(oracle, seed)),
                                        ("normal", normal_bridge_outcomes(oracle, seed))):
            for o in outcomes:
                if o.unsupported:
                    for what in o.unsupported:
                        unsupported[what] = unsupported.get(what, 0) + 1
                    continue
                traces += 1
                same_actions += "actions" not in o.differences
                same_megaflow += "megaflow" not in o.differences
                if o.differences:
                    disagreements.append(_disagreement(kind, seed, setup, o))
    return {
        "seeds": [seeds.start, seeds.stop - 1] if seeds else [],
        "traces": traces,
        "identical_actions_pct": _pct(same_actions, traces),
        "identical_megaflows_pct": _pct(same_megaflow, traces),
        "not_compared": unsupported,
        "disagreements": disagreements,
    }


def _pct(n: int, total: int) -> float:
    return round(100.0 * n / total, 2) if total else 100.0


def _disagreement(kind: str, seed: int, setup, o: Outcome) -> dict:
    return {"generator": kind, "seed": seed, "flow": o.packet,
            "setup": setup if isinstance(setup, str) else list(setup),
            "aspects": sorted(o.differences),
            "ours": {"actions": o.ours_actions, "megaflow": o.ours_megaflow},
            "ovs": {"actions": o.ovs_actions, "megaflow": o.ovs_megaflow}}


def _text(result: dict) -> str:
    lines = [f"seeds: {result['seeds'][0]}..{result['seeds'][1]}" if result["seeds"] else
             "seeds: none",
             f"traces: {result['traces']}",
             f"identical datapath actions: {result['identical_actions_pct']:.2f}%",
             f"identical megaflows: {result['identical_megaflows_pct']:.2f}%"]
    for what, n in sorted(result["not_compared"].items()):
        lines.append(f"not compared ({what}): {n}")
    lines.append(f"disagreements: {len(result['disagreements'])}")
    for d in result["disagreements"]:
        lines.append(f"- {d['generator']} seed {d['seed']} ({', '.join(d['aspects'])}): "
                     f"{d['flow']}")
        for side in ("ours", "ovs"):
            lines.append(f"    {side:4}: actions {d[side]['actions']}")
            lines.append(f"          megaflow {d[side]['megaflow']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.agreement",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, required=True, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.seeds < 0 or args.start < 0:
        parser.error("--seeds and --start must not be negative")
    require_binaries()
    with tempfile.TemporaryDirectory(prefix="ovsnet-agreement-") as tmp:
        sandbox = OvsSandbox(Path(tmp))
        try:
            sandbox.start()
            result = measure(OfprotoOracle(sandbox), range(args.start, args.start + args.seeds))
        finally:
            sandbox.stop()
    print(json.dumps(result, indent=2) if args.json else _text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
