"""Open vSwitch 3.1's ``ofproto/trace`` as an oracle for the OpenFlow pipeline.

:class:`OfprotoOracle` drives a private ovs-vswitchd (see ovs_sandbox.py) the
way OVS's own testsuite sets a switch up (tests/ofproto-macros.at:
``OVS_VSWITCHD_START``, ``add_of_br``, ``add_of_ports``): bridges with
``datapath_type=dummy`` and ``fail_mode=secure``, dummy ports ``pN`` with
``ofport_request=N`` (dpif-netdev's ``choose_port`` gives a dummy port the
number in its name, so ``pN`` is datapath port N too, and a bridge's internal
port ``brK`` is datapath port 100+K), optional patch ports between two
bridges, OpenFlow flows loaded with ``ovs-ofctl add-flows`` and
``other_config`` / ``Flow_Table`` settings. It then runs
``ovs-appctl ofproto/trace`` and parses what it prints into a
:class:`TraceResult`.

One sandbox serves many cases: :meth:`OfprotoOracle.configure` keeps the
bridges when the next case wants the same ports and only deletes the flows,
flushes the MAC tables (``fdb/flush``) and rewrites the settings; it rebuilds
the bridges otherwise. Every step is synchronous (ovs-vsctl waits for
ovs-vswitchd to apply the change, ovs-ofctl ends with a barrier), so nothing
sleeps.

Datapath actions are compared after the normalisation ``ovs-dpctl
normalize-actions`` does (lib/dpctl.c ``dpctl_normalize_actions``): the actions
are split by the VLAN stack in force when they run (``push_vlan``/``pop_vlan``
change it and are dropped), runs of ``output`` actions are sorted by port,
and the groups are ordered by that VLAN stack. That makes the order in which
NORMAL floods, which follows ports' hash-map order, irrelevant.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field

import pytest

from ovsnet.ovsdb.backends import find_binary
from tests.differential.ovs_sandbox import DEADLINE, OvsSandbox, require_binaries

#: ``ovs-vsctl add-br`` defaults of tests/ofproto-macros.at ``add_of_br``
_PROTOCOLS = "[OpenFlow10,OpenFlow11,OpenFlow12,OpenFlow13,OpenFlow14,OpenFlow15]"
#: the dpif ofproto/trace is given for ODP flows (``dummy@ovs-dummy`` in dpctl/show)
DPIF_NAME = "ovs-dummy"

_ODP_FLOW_RE = re.compile(r"^\s*(?:[a-z_0-9]+)\(")
_TABLE_RE = re.compile(r"^(\s*)(\d+)\. (.*)$")
_RULE_TAIL_RE = re.compile(r"^(.*?)(?:, )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$")
_BRIDGE_RE = re.compile(r'^bridge\("([^"]+)"\)$')
_DP_PORT_RE = re.compile(r"^\s*port (\d+): (\S+)", re.MULTILINE)
_NORM_GROUP_RE = re.compile(
    r"((?:no vlan: |vlan\((?:tpid=0x[0-9a-f]+,)?vid=\d+,pcp=\d+\): )+"
    r"(?:no mpls: |mpls\(label=\d+,tc=\d+,ttl=\d+\): ))")


@dataclass
class TableStep:
    """One table lookup as ofproto/trace prints it (ofproto-dpif-trace.c, ``xlate_report_table``)."""

    bridge: str
    table: int
    #: the rule's match as printed (``in_port=1,ip``), ``""`` for a catch-all, None for no match
    rule: str | None
    priority: int | None
    cookie: str | None
    #: indentation of the table line: grows with resubmit nesting that is not a tail call
    depth: int
    #: action lines printed under the table line, stripped (nested lookups are their own steps)
    actions: list[str] = field(default_factory=list)


@dataclass
class TraceResult:
    """A parsed ``ofproto/trace`` output; every field keeps OVS's text as printed."""

    raw: str
    flow: str | None = None
    bridges: list[str] = field(default_factory=list)
    tables: list[TableStep] = field(default_factory=list)
    final_flow: str | None = None
    megaflow: str | None = None
    datapath_actions: str | None = None
    #: every Megaflow / Datapath actions line, in order (recirculation prints several passes)
    megaflows: list[str] = field(default_factory=list)
    all_datapath_actions: list[str] = field(default_factory=list)
    #: ``>>>> ... <<<<`` markers (limits exceeded, unknown ports), "Translation failed" and
    #: slow-path explanations, and any other line the structure above does not cover
    messages: list[str] = field(default_factory=list)
    #: ovs-appctl's error text when ofproto/trace refused the flow (then nothing else is set)
    error: str | None = None
    #: :func:`normalize_actions` of ``datapath_actions`` (filled in by the oracle)
    normalized_actions: str | None = None


def is_odp_flow(flow: str) -> bool:
    """Whether ``flow`` is a datapath flow (``in_port(1),eth(...)``) rather than OpenFlow syntax."""
    return bool(_ODP_FLOW_RE.match(flow))


def parse_trace(text: str) -> TraceResult:
    """Parse the output of ``ovs-appctl ofproto/trace`` (OVS 3.1, ofproto-dpif-trace.c)."""
    result = TraceResult(raw=text)
    bridge = None
    step: TableStep | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or set(stripped) == {"-"}:
            continue
        if line.startswith("Flow: "):
            result.flow = line[len("Flow: "):]
            continue
        if line.startswith("Final flow: "):
            result.final_flow = line[len("Final flow: "):]
            step = None
            continue
        if line.startswith("Megaflow: "):
            result.megaflow = line[len("Megaflow: "):]
            result.megaflows.append(result.megaflow)
            continue
        if line.startswith("Datapath actions: "):
            result.datapath_actions = line[len("Datapath actions: "):]
            result.all_datapath_actions.append(result.datapath_actions)
            continue
        m = _BRIDGE_RE.match(stripped)
        if m:
            bridge = m.group(1)
            result.bridges.append(bridge)
            step = None
            continue
        m = _TABLE_RE.match(line)
        if m and bridge is not None:
            step = _table_step(bridge, m)
            result.tables.append(step)
            continue
        if stripped.startswith(">>>>"):
            result.messages.append(stripped)
            if step is not None:
                step.actions.append(stripped)
            continue
        if step is not None and line.startswith(" ") and result.final_flow is None:
            step.actions.append(stripped)
            continue
        result.messages.append(stripped)
    return result


def _table_step(bridge: str, m: re.Match) -> TableStep:
    depth, table, text = len(m.group(1)), int(m.group(2)), m.group(3)
    if text == "No match.":
        return TableStep(bridge, table, None, None, None, depth)
    tail = _RULE_TAIL_RE.match(text)
    if tail is None:
        return TableStep(bridge, table, text, None, None, depth)
    return TableStep(bridge, table, tail.group(1), int(tail.group(2)), tail.group(3), depth)


def vlan_context(flow: str | None) -> str:
    """A minimal ODP flow with the VLAN stack of an ofproto/trace ``Flow:`` line.

    ``ovs-dpctl normalize-actions`` only follows the VLAN headers, but it
    needs a key ``odp_flow_key_to_flow`` accepts: Ethernet with a non-IP
    ethertype inside the tags needs no further attributes.
    """
    fields = dict(kv.split("=", 1) for kv in (flow or "").split(",") if "=" in kv)
    tags = []
    if fields.get("dl_vlan") is not None:
        tags.append((int(fields["dl_vlan"]), int(fields.get("dl_vlan_pcp", "0"))))
    elif int(fields.get("vlan_tci", "0"), 16) & 0x1000:
        tci = int(fields["vlan_tci"], 16)
        tags.append((tci & 0xfff, tci >> 13))
    if tags and int(fields.get("vlan_tci1", "0"), 16) & 0x1000:
        tci = int(fields["vlan_tci1"], 16)
        tags.append((tci & 0xfff, tci >> 13))
    inner = "eth_type(0x1234)"
    for vid, pcp in reversed(tags):
        inner = f"eth_type(0x8100),vlan(vid={vid},pcp={pcp}),encap({inner})"
    return f"eth(src=00:00:00:00:00:00,dst=00:00:00:00:00:00),{inner}"


def normalize_actions(odp_flow: str, actions: str) -> str:
    """``ovs-dpctl normalize-actions ODP_FLOW ACTIONS``, one ``;``-joined group per VLAN stack.

    OVS 3.1 prints the groups without a separator (``dpctl_puts`` with no
    newline), so they are split again on their ``no vlan: no mpls: ``-style
    prefixes. The command runs in userspace only: it needs no datapath.
    """
    binary = find_binary("ovs-dpctl")
    if binary is None:
        raise AssertionError("ovs-dpctl not found (apt-get install openvswitch-switch)")
    proc = subprocess.run([binary, "normalize-actions", odp_flow, actions], capture_output=True,
                          text=True, timeout=DEADLINE)
    if proc.returncode != 0:
        raise AssertionError(f"ovs-dpctl normalize-actions {odp_flow!r} {actions!r}: "
                             f"{proc.stderr.strip()}")
    out = proc.stdout.split("\n", 1)[1] if proc.stdout.startswith("input flow:") else proc.stdout
    parts = _NORM_GROUP_RE.split(out.strip())
    groups = [parts[k] + parts[k + 1] for k in range(1, len(parts) - 1, 2)]
    return "; ".join(g.strip() for g in groups)


@dataclass
class PatchSpec:
    """A second bridge joined to the first by patch ports (OVS tests name them after their peers)."""

    bridge: str = "br1"
    ports: tuple[int, ...] = ()
    #: name of the patch port on the first bridge and on the second one, with their ofports
    local: str = "patch-br1"
    remote: str = "patch-br0"
    local_ofport: int | None = None
    remote_ofport: int | None = None
    flows: tuple[str, ...] = ()


class OfprotoOracle:
    """Sets up bridges in an :class:`OvsSandbox` and traces flows through real ovs-vswitchd."""

    def __init__(self, sandbox: OvsSandbox, bridge: str = "br0"):
        self.sb = sandbox
        self.bridge = bridge
        self._layout: object = None
        self._bridges: list[str] = []

    # -- set-up ----------------------------------------------------------------

    def configure(self, ports=(1, 2, 3), *, flows=(), protocol: str | None = None,
                  other_config: dict | None = None, port_config: dict | None = None,
                  flow_tables: dict | None = None, patch: PatchSpec | None = None,
                  extra_ports: dict | None = None, fail_mode: str = "secure",
                  ovs_config: dict | None = None, mod_port: dict | None = None) -> None:
        """Make the switch look like ``add_of_br 0`` + ``add_of_ports br0 PORTS`` + these flows.

        ``port_config`` maps a port number to ovs-vsctl Port/Interface column
        settings (``{"tag": 10, "vlan_mode": "access", "trunks": "[10,20]"}``);
        ``extra_ports`` maps a port name to its Interface settings (``{"type":
        "gre", "options:remote_ip": "1.1.1.1", "ofport_request": 5}``) for
        tunnel ports; ``flow_tables`` maps a table number to Flow_Table
        columns (``{0: {"prefixes": "[ip_dst]"}}``); ``other_config`` is the
        bridge's other_config (``mac-aging-time`` ...), ``ovs_config`` the
        Open_vSwitch table's (``vlan-limit``); ``mod_port`` maps a port
        number to an ``ovs-ofctl mod-port`` flag (``noflood``), applied when
        the bridges are built.
        """
        layout = (tuple(ports), repr(sorted((port_config or {}).items())),
                  repr(sorted((extra_ports or {}).items())), repr(patch and (
                      patch.bridge, patch.ports, patch.local, patch.remote,
                      patch.local_ofport, patch.remote_ofport)), repr(sorted((mod_port or {}).items())))
        if layout != self._layout:
            self._rebuild(tuple(ports), port_config or {}, extra_ports or {}, patch)
            for port, flag in (mod_port or {}).items():
                self.sb.ofctl("mod-port", self.bridge, str(port), flag)
            self._layout = layout
        self._settings(other_config or {}, flow_tables or {}, fail_mode, ovs_config or {})
        for br in self._bridges:
            self.sb.ofctl("del-flows", br)
            self.sb.appctl("fdb/flush", br)
        if fail_mode == "standalone" and not flows:
            # bridge.c (bridge_configure_remotes): a standalone bridge without
            # controllers gets a priority-0 NORMAL flow, which del-flows removed
            flows = ["priority=0,actions=NORMAL"]
        self.add_flows(self.bridge, list(flows), protocol)
        if patch is not None:
            self.add_flows(patch.bridge, list(patch.flows), protocol)

    def _rebuild(self, ports, port_config, extra_ports, patch) -> None:
        if self._bridges:
            args: list[str] = []
            for br in self._bridges:
                args += ["--", "--if-exists", "del-br", br]
            self.sb.vsctl(*args)
            self._bridges = []
        args = self._add_br_args(self.bridge, 0)
        args += self._port_args(self.bridge, ports, port_config)
        for name, settings in extra_ports.items():
            args += ["--", "add-port", self.bridge, name, "--", "set", "Interface", name,
                     *(f"{k}={v}" for k, v in settings.items())]
        bridges = [self.bridge]
        if patch is not None:
            args += self._add_br_args(patch.bridge, 1)
            args += self._port_args(patch.bridge, patch.ports, port_config)
            for br, name, peer, ofport in ((self.bridge, patch.local, patch.remote, patch.local_ofport),
                                           (patch.bridge, patch.remote, patch.local, patch.remote_ofport)):
                args += ["--", "add-port", br, name, "--", "set", "Interface", name, "type=patch",
                         f"options:peer={peer}"]
                if ofport is not None:
                    args.append(f"ofport_request={ofport}")
            bridges.append(patch.bridge)
        self.sb.vsctl(*args)
        self._bridges = bridges

    @staticmethod
    def _add_br_args(bridge: str, num: int) -> list[str]:
        return ["--", "add-br", bridge, "--", "set", "bridge", bridge, "datapath-type=dummy",
                "fail-mode=secure", f"other-config:datapath-id=fedcba987654321{num}",
                f"other-config:hwaddr=aa:55:aa:55:00:0{num}", f"protocols={_PROTOCOLS}"]

    @staticmethod
    def _port_args(bridge: str, ports, port_config) -> list[str]:
        args: list[str] = []
        for n in ports:
            args += ["--", "add-port", bridge, f"p{n}", "--", "set", "Interface", f"p{n}",
                     "type=dummy", f"ofport_request={n}"]
            if port_config.get(n):
                args += ["--", "set", "Port", f"p{n}",
                         *(f"{k}={v}" for k, v in port_config[n].items())]
        return args

    def _settings(self, other_config: dict, flow_tables: dict, fail_mode: str,
                  ovs_config: dict) -> None:
        body = ",".join(f'"{k}"="{v}"' for k, v in ovs_config.items())
        args = ["--", "set", "Open_vSwitch", ".", f"other_config={{{body}}}",
                "--", "set", "Bridge", self.bridge, f"fail_mode={fail_mode}"]
        for br in self._bridges:
            args += ["--", "clear", "Bridge", br, "flow_tables"]
        # the datapath-id/hwaddr keys of add_of_br stay; everything else is this case's
        for num, br in enumerate(self._bridges):
            keep = {"datapath-id": f"fedcba987654321{num}", "hwaddr": f"aa:55:aa:55:00:0{num}"}
            conf = {**keep, **(other_config if br == self.bridge else {})}
            body = ",".join(f'"{k}"="{v}"' for k, v in conf.items())
            args += ["--", "set", "Bridge", br, f"other_config={{{body}}}"]
        for k, (table, columns) in enumerate(sorted(flow_tables.items())):
            ref = f"@ft{k}"
            args += ["--", f"--id={ref}", "create", "Flow_Table",
                     *(f"{c}={v}" for c, v in columns.items()),
                     "--", "set", "Bridge", self.bridge, f"flow_tables:{table}={ref}"]
        self.sb.vsctl(*args)

    def add_flows(self, bridge: str, flows: list[str], protocol: str | None = None) -> None:
        """``ovs-ofctl [-O PROTOCOL] add-flows BRIDGE FILE`` with ``flows`` one per line."""
        if not flows:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=self.sb.root,
                                         delete=False) as f:
            f.write("\n".join(flows) + "\n")
        try:
            self.sb.ofctl(*(("-O", protocol) if protocol else ()), "add-flows", bridge, f.name)
        finally:
            os.unlink(f.name)

    # -- tracing ---------------------------------------------------------------

    def trace(self, flow: str, *, generate: bool = False, bridge: str | None = None,
              normalize: bool = True) -> TraceResult:
        """``ovs-appctl ofproto/trace BRIDGE FLOW [-generate]``, parsed.

        An ODP flow goes to the datapath (``ofproto/trace ovs-dummy FLOW``):
        given a bridge name, ofproto/trace parses the flow as OpenFlow syntax
        and rejects it ("Cannot find the datapath").
        """
        target = DPIF_NAME if is_odp_flow(flow) else (bridge or self.bridge)
        args = ["ofproto/trace", target, flow] + (["-generate"] if generate else [])
        proc = self.sb.run("ovs-appctl", *args, check=False)
        if proc.returncode != 0:
            return TraceResult(raw=proc.stdout, error=proc.stderr.strip())
        result = parse_trace(proc.stdout)
        if normalize and result.datapath_actions is not None:
            try:
                result.normalized_actions = normalize_actions(vlan_context(result.flow),
                                                              result.datapath_actions)
            except AssertionError as e:
                # e.g. the 64 kB of actions of "too many output actions" exceed what
                # odp_actions_from_string parses; the raw actions are still there
                result.messages.append(f"normalize-actions failed: {e}")
        return result

    def dp_port_names(self) -> dict[int, str]:
        """Datapath port number -> name (``dpctl/show``), the internal ports (LOCAL) included."""
        return {int(n): name for n, name in _DP_PORT_RE.findall(self.sb.appctl("dpctl/show"))}


def oracle_fixture(name: str):
    """A module-scoped pytest fixture giving an :class:`OfprotoOracle` over a private
    ovs-vswitchd in its own directory (``name`` names it), stopped after the module.

    Use as ``oracle = oracle_fixture("xlate-oracle")`` in a test module.
    """

    @pytest.fixture(scope="module")
    def oracle(tmp_path_factory):
        require_binaries()
        sandbox = OvsSandbox(tmp_path_factory.mktemp(name))
        try:
            sandbox.start()
            yield OfprotoOracle(sandbox)
        finally:
            sandbox.stop()

    return oracle
