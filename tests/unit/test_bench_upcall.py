"""``ovsnet bench upcall`` at --quick: the JSON's structure and the workload's own checks.

No timing is asserted: speed goals are checked by running the benchmark.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ovsnet.bench import upcall as U
from ovsnet.datapath.datapath import Datapath
from ovsnet.ofproto import classifier as C
from ovsnet.ofproto import fastpath
from ovsnet.ofproto.upcall import XlateHandler


@pytest.fixture(scope="module")
def result() -> dict:
    lines: list[str] = []
    out = U.run(quick=True, echo=lines.append)
    out["_echo"] = lines
    return out


def test_json_structure(result: dict) -> None:
    echo = result.pop("_echo")
    json.dumps(result)  # JSON-ready
    assert isinstance(result["upcalls_per_s"], int) and result["upcalls_per_s"] > 0
    assert isinstance(result["trace_ms"], float) and result["trace_ms"] > 0
    assert isinstance(result["cpu_upcalls_per_s"], int) and result["cpu_upcalls_per_s"] > 0
    assert result["quick"] is True
    assert {"cpu", "cores", "python"} <= set(result["machine"])
    assert result["goal_upcalls_per_s"] == 50_000
    assert result["goal_met"] == (result["upcalls_per_s"] >= 50_000)
    pipe = result["detail"]["pipeline"]
    assert pipe["rules"] == 1000 == sum(pipe["rules_per_table"].values())
    assert sorted(pipe["rules_per_table"]) == [0, 1, 2, 3]
    assert pipe["subtables_per_table"][1] >= 5  # the ACL has several masks
    assert any("upcalls:" in line for line in echo)
    assert any("trace:" in line for line in echo)


def test_every_packet_was_a_miss_and_installed(result: dict) -> None:
    main = result["detail"]["compiled"]
    assert main["upcalls"] == main["packets"] == main["installed_flows"]
    assert main["datapath_hits"] == 0
    assert main["outputs"] > 0
    python = result["detail"]["python_translation"]
    assert python["upcalls"] == python["installed_flows"] == python["packets"]
    assert python["translated_by_python"] == python["packets"]
    assert result["python_translation_upcalls_per_s"] == python["upcalls_per_s"]
    if fastpath.AVAILABLE:
        # the pipeline is all within the compiled core's vocabulary
        assert main["translated_by_core"] == main["packets"] == result["translated_by_core"]
    if "cython" in C.IMPLEMENTATIONS:
        assert main["classifier"] == "cython"
        ref = result["detail"]["reference"]
        assert ref["classifier"] == "python"
        assert ref["upcalls"] == ref["installed_flows"] == ref["packets"]
        assert result["reference_upcalls_per_s"] == ref["upcalls_per_s"]


def test_revalidation_figures(result: dict) -> None:
    reval = result["detail"]["revalidation"]
    compiled, python = reval["compiled"], reval["python"]
    # both translations revalidate the same megaflows the same way
    assert {k: v for k, v in compiled.items() if k != "us_per_flow"} == \
        {k: v for k, v in python.items() if k != "us_per_flow"}
    assert compiled["modified"] > 0 and compiled["checked"] == 1_000
    assert result["revalidation_us_per_flow"] == compiled["us_per_flow"] > 0
    assert result["python_revalidation_us_per_flow"] == python["us_per_flow"] > 0


def test_trace_text_has_the_tables(result: dict) -> None:
    text = result["detail"]["trace"]["example"]
    for table in (" 0. ", " 1. ", " 2. ", " 3. "):
        assert table in text
    assert "Megaflow: " in text and "dl_src=" in text


def test_workload_check_catches_megaflow_hits() -> None:
    # the same packet twice: the second one hits the first one's megaflow, and
    # the benchmark refuses to report a rate
    flows, hosts = U.pipeline()
    data, lengths, in_ports = U.traffic(hosts, 4)
    data = np.concatenate([data, data[:1]])
    lengths = np.concatenate([lengths, lengths[:1]])
    in_ports = np.concatenate([in_ports, in_ports[:1]])
    with pytest.raises(RuntimeError, match="workload broken"):
        U._upcall_run(flows, data, lengths, in_ports, 1, fast=fastpath.AVAILABLE)


def test_both_classifiers_and_the_compiled_core_install_the_same_megaflows() -> None:
    flows, hosts = U.pipeline()
    data, lengths, in_ports = U.traffic(hosts, 300, seed=5)
    tables = {}
    ways = [(impl, False) for impl in C.IMPLEMENTATIONS]
    if fastpath.AVAILABLE:
        ways.append((C.DEFAULT_IMPLEMENTATION, True))
    for impl, fast in ways:
        with U.classifier_implementation(impl):
            bridge = U.make_bridge(flows)
        assert bridge.tables[0].implementation == impl
        handler = XlateHandler(bridge, clock=lambda: 0, fast=fast)
        dp = Datapath("system", handler=handler)
        for port in range(1, U.N_PORTS + 1):
            dp.add_port(f"vm{port}", port_no=port)
        dp.run_bursts(data, lengths, in_ports, np.arange(len(lengths), dtype=np.uint32))
        assert (handler.n_fast, handler.n_python) == ((300, 0) if fast else (0, 300))
        tables[impl, fast] = sorted((bytes(f.key), bytes(f.mask), bytes(f.actions))
                                    for f in dp.flows())
        assert len(tables[impl, fast]) == 300
    assert len({tuple(t) for t in tables.values()}) == 1


def test_traffic_refuses_more_packets_than_pairs() -> None:
    _flows, hosts = U.pipeline()
    with pytest.raises(ValueError, match="distinct packets"):
        U.traffic(hosts, U.N_VMS * len(hosts) + 1)
