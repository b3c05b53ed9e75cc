"""The ``ovsnet`` command line.

Exit codes: 0 success, 1 a check or operation failed, 2 bad input (an invalid
topology file, bad arguments, an object ovsnet must not touch). Errors go to
stderr as one readable message; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback

import click

from . import __version__
from .errors import OvsnetError, UsageError

DEFAULT_OVSDB = "embedded"


class _Context:
    debug = False


def _load(path: str):
    from .topology import load_topology

    return load_topology(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="ovsnet")
def cli(debug: bool) -> None:
    """ovsnet: Open vSwitch integration and datapath simulator."""
    _Context.debug = debug


@cli.command()
@click.argument("topologies", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(topologies) -> None:
    """Check topology files; print every problem with file:line:column."""
    from .topology import validate_file

    failed = False
    for path in topologies:
        diagnostics = validate_file(path)
        if diagnostics:
            failed = True
            n = len(diagnostics)
            click.echo(f"{path}: {n} error{'s' if n != 1 else ''}", err=True)
            for d in diagnostics:
                click.echo(str(d), err=True)
        else:
            topo = _load(path)
            click.echo(f"{path}: ok ({_summary(topo)})")
    if failed:
        raise SystemExit(2)


def _summary(topo) -> str:
    hosts = topo.hosts.values()
    bridges = sum(len(h.bridges) for h in hosts)
    ports = sum(len(b.ports) for h in hosts for b in h.bridges.values())
    vms = sum(len(h.vms) for h in hosts)
    parts = [f"{len(topo.hosts)} host{'s' * (len(topo.hosts) != 1)}",
             f"{bridges} bridge{'s' * (bridges != 1)}",
             f"{ports} port{'s' * (ports != 1)}",
             f"{vms} VM{'s' * (vms != 1)}",
             f"{len(topo.links)} link{'s' * (len(topo.links) != 1)}"]
    return ", ".join(parts)


_ovsdb_option = click.option(
    "--ovsdb", default=DEFAULT_OVSDB, show_default=True, metavar="BACKEND",
    help="embedded | real (a private ovsdb-server per host) | unix:PATH | tcp:IP:PORT",
)


@cli.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@_ovsdb_option
@click.option("--host", "hosts", multiple=True, help="Only these hosts (repeatable).")
@click.option("--keep", is_flag=True,
              help="Leave the private ovsdb-servers running and print their addresses.")
def up(topology, ovsdb, hosts, keep) -> None:
    """Configure every host's OVSDB from TOPOLOGY and print the result.

    Each host's simulated ovs-vswitchd then reads its database, as the real
    daemon would, and writes back what the daemon owns (cur_cfg, ofport,
    datapath_id, link state, errors), so `show` and later clients see it.
    """
    from .ovsdb import bring_up
    from .vswitchd import Vswitchd

    topo = _load(topology)
    _check_hosts(topo, hosts)
    deployment = bring_up(topo, ovsdb, hosts=hosts or None)
    try:
        for name, db in deployment.hosts.items():
            n = len(db.changes)
            click.echo(f"Host {name}: {n} change{'s' * (n != 1)} applied in one transaction "
                       f"({db.server.remote})")
            vswitchd = Vswitchd.from_hostdb(db, strict_flows=False)
            for warning in vswitchd.warnings:
                click.echo(f"ovsnet: {name}: {warning}", err=True)
            click.echo(db.show(), nl=False)
    finally:
        for name, db in deployment.hosts.items():
            if keep:
                db.api.close()
                how = db.server.detach()
                click.echo(f"{name}: {db.server.remote}" + (f" ({how})" if how else ""))
            else:
                db.close()


@cli.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@_ovsdb_option
@click.option("--host", "hosts", multiple=True, help="Only these hosts (repeatable).")
def show(topology, ovsdb, hosts) -> None:
    """Print `ovs-vsctl show` for each host of TOPOLOGY.

    With --ovsdb unix:PATH or tcp:... the live database is shown as it is;
    with embedded/real the topology is first brought up in fresh servers.
    """
    from .ovsdb import OvsdbApi, bring_up
    from .ovsdb import show as show_db

    topo = _load(topology)
    _check_hosts(topo, hosts)
    if ovsdb.startswith(("unix:", "tcp:", "ssl:")):
        with OvsdbApi.connect(ovsdb) as api:
            click.echo(show_db(api.idl), nl=False)
        return
    with bring_up(topo, ovsdb, hosts=hosts or None) as deployment:
        click.echo(deployment.show(), nl=False)


@cli.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("--host", required=True, help="The host of TOPOLOGY this database belongs to.")
@click.option("--db", required=True, metavar="REMOTE",
              help="The Open vSwitch database, e.g. unix:/var/run/openvswitch/db.sock")
@click.option("--dry-run", is_flag=True,
              help="Print the difference as ovs-vsctl commands; change nothing.")
def apply(topology, host, db, dry_run) -> None:
    """Write one host of TOPOLOGY into a real Open vSwitch database.

    Everything created is tagged external_ids:ovsnet-owner=<topology name>;
    bridges, ports and interfaces without that tag are never modified or
    deleted. Applying the same file twice changes nothing.
    """
    from .ovsdb import OvsdbApi, apply_host, vsctl_args

    topo = _load(topology)
    _check_hosts(topo, (host,))
    with OvsdbApi.connect(db) as api:
        changes = apply_host(api, topo, host, dry_run=dry_run)
        if dry_run:
            if not changes:
                click.echo(f"# host {host}: nothing to change")
                return
            click.echo(format_vsctl(vsctl_args(api.idl, changes), db))
            return
    n = len(changes)
    click.echo(f"host {host}: {n} change{'s' * (n != 1)} applied" if n
               else f"host {host}: already up to date")


def format_vsctl(commands: list[list[str]], db: str) -> str:
    """One ``ovs-vsctl`` invocation (a single transaction), one command per line."""
    lines = [f"ovs-vsctl --db={shlex.quote(db)}"]
    lines += ["  -- " + " ".join(shlex.quote(w) for w in words) for words in commands]
    return " \\\n".join(lines)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of topology files (for editors)."""
    from .topology import SCHEMA

    click.echo(json.dumps(SCHEMA, indent=2))


@cli.command("parse-pcap")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def parse_pcap(files) -> None:
    """Print the flow of every packet in FILES, as `ovs-ofctl parse-pcap` does.

    Each packet gets one line: the flow key ovsnet extracts, printed in OVS's
    flow syntax, with in_port=ANY as OVS uses.
    """
    from .datapath.flow_format import format_flow
    from .datapath.flow_key import extract
    from .datapath.pcap import iter_pcap

    for path in files:
        for record in iter_pcap(path):
            click.echo(format_flow(extract(record.data, 0xFFFF)))  # OFPP_ANY


@cli.command("dump-flows")
@click.argument("topology", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", "host_name", help="The host whose datapath to show (default: the first).")
@click.option("--pcap", "pcaps", multiple=True, metavar="PORT=FILE",
              help="Run the packets of FILE into datapath port PORT (name or number) first; "
                   "repeatable, run in order.")
@click.option("--handler", default="xlate", show_default=True, metavar="xlate|drop|output:PORT",
              help="Upcall handler for misses: xlate runs them through the host's bridges "
                   "(the simulated ovs-vswitchd); drop and output:PORT are trivial handlers.")
@click.option("-m", "--more", "verbose", is_flag=True, help="Show UFIDs and wildcarded fields.")
@click.option("--names", is_flag=True, help="Show port names instead of numbers.")
@click.option("--show", is_flag=True, help="Print dpctl/show (counters, ports) first.")
def dump_flows(topology, host_name, pcaps, handler, verbose, names, show) -> None:
    """Show a host's datapath flows, as `ovs-appctl dpctl/dump-flows` does.

    The host's datapath is built from TOPOLOGY (one per host, all bridges
    share it; ports numbered as OVS numbers them). Packets from --pcap files
    go through it: misses are upcalls that the --handler answers, and the
    megaflows it installs are dumped. With --handler xlate (the default) the
    host is brought up in an embedded OVSDB and a simulated ovs-vswitchd
    reads it: misses are translated by the bridges' OpenFlow tables.
    """
    from .datapath.datapath import DropHandler, OutputHandler
    from .datapath.host import dpctl_show, host_datapath
    from .datapath.host import dump_flows as dump
    from .datapath.packet import NETDEV_MAX_BURST
    from .datapath.pcap import read_pcap

    topo = _load(topology)
    if host_name is None:
        host_name = next(iter(topo.hosts))
    if host_name not in topo.hosts:
        raise UsageError(f"no host {host_name!r} in {topology}; hosts: {', '.join(topo.hosts)}")
    vswitchd = None
    if handler == "xlate":
        vswitchd = _vswitchd(topo, host_name)
        dp = vswitchd.datapath
    elif handler == "drop":
        dp = host_datapath(topo.hosts[host_name], handler=DropHandler())
    elif handler.startswith("output:"):
        dp = host_datapath(topo.hosts[host_name])
        dp.handler = OutputHandler(_dp_port(dp, handler[len("output:"):], "--handler"))
    else:
        raise UsageError(f"--handler {handler!r}: valid are xlate, drop and output:PORT")
    for spec in pcaps:
        port, sep, path = spec.partition("=")
        if not sep:
            raise UsageError(f"--pcap {spec!r}: expected PORT=FILE")
        in_port = _dp_port(dp, port, "--pcap")
        frames = read_pcap(path)
        for k in range(0, len(frames), NETDEV_MAX_BURST):  # rx bursts, as a NIC delivers
            dp.receive_frames(in_port, frames[k : k + NETDEV_MAX_BURST])
            if vswitchd is not None:
                vswitchd.run()  # MAC table changes revalidate the installed megaflows
    if show:
        click.echo(dpctl_show(dp), nl=False)
    click.echo(dump(dp, verbose=verbose, names=names), nl=False)


def _vswitchd(topo, host_name: str):
    """The simulated ovs-vswitchd of one host: brought up in an embedded OVSDB, read back.

    Flows ovsnet cannot load are skipped with a warning on stderr."""
    from .ovsdb import bring_up
    from .vswitchd import Vswitchd

    with bring_up(topo, hosts=[host_name]) as deployment:
        vswitchd = Vswitchd.from_hostdb(deployment[host_name], strict_flows=False)
    for warning in vswitchd.warnings:
        click.echo(f"ovsnet: warning: {warning}", err=True)
    return vswitchd


@cli.command()
@click.argument("topology", type=click.Path(exists=True, dir_okay=False))
@click.argument("flows", nargs=-1, required=True)
@click.option("--bridge", "bridge_name", required=True, help="The bridge a flow enters.")
@click.option("--host", "host_name", help="The host of the bridge (needed when several hosts "
                                          "have a bridge of that name).")
@click.option("--generate", is_flag=True,
              help="Translate with side effects: MAC learning persists to the next FLOW.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def trace(topology, flows, bridge_name, host_name, generate, fmt) -> None:
    """Trace each FLOW through one simulated switch, as `ovs-appctl ofproto/trace`.

    FLOW is OpenFlow-style (in_port=p1,tcp,nw_dst=10.0.0.1; ports by name or
    number; fields not given are zero) or an ODP flow
    (in_port(1),eth(...),eth_type(0x0800),...), which enters the bridge that
    owns its datapath input port. Flows are traced in order on the same
    switch. Text output has ofproto/trace's blocks; JSON is a list with one
    object per FLOW (flow, bridge, tables, final_flow, megaflow,
    datapath_actions, ports, errors, slow).
    """
    from .ofproto.trace import trace_json, trace_text
    from .ofproto.xlate import xlate

    topo = _load(topology)
    host_name = _trace_host(topo, topology, bridge_name, host_name)
    vswitchd = _vswitchd(topo, host_name)
    bridge = vswitchd.bridge(bridge_name)
    ports = vswitchd.port_names()
    port_maps = {name: br.port_map for name, br in vswitchd.bridges.items()}
    dp_type = vswitchd.datapath.type
    texts, objects = [], []
    for k, text in enumerate(flows, 1):
        entry, flow = _trace_flow(vswitchd, bridge, text, k)
        result = xlate(entry, flow, generate=generate, now=vswitchd.clock(),
                       datapath_type=dp_type)
        if fmt == "json":
            objects.append(trace_json(entry.name, result, ports))
        else:
            texts.append(trace_text(entry.name, result, port_maps))
    if fmt == "json":
        click.echo(json.dumps(objects, indent=2))
    else:
        click.echo("\n".join(texts), nl=False)


def _trace_host(topo, path: str, bridge: str, host: str | None) -> str:
    if host is not None:
        _check_hosts(topo, (host,))
        if bridge not in topo.hosts[host].bridges:
            known = ", ".join(topo.hosts[host].bridges) or "none"
            raise UsageError(f"--bridge {bridge!r}: host {host} has no such bridge "
                             f"(bridges: {known})")
        return host
    owners = [name for name, h in topo.hosts.items() if bridge in h.bridges]
    if not owners:
        known = ", ".join(sorted({b for h in topo.hosts.values() for b in h.bridges})) or "none"
        raise UsageError(f"--bridge {bridge!r}: no host of {path} has it (bridges: {known})")
    if len(owners) > 1:
        raise UsageError(f"--bridge {bridge!r} is on hosts {', '.join(owners)}: "
                         "choose one with --host")
    return owners[0]


def _trace_flow(vswitchd, bridge, text: str, k: int):
    """The bridge a FLOW argument enters and its flow; bad input is a usage error."""
    from .errors import DatapathError, OfprotoError
    from .ofproto.ofp_fields import FlowSyntaxError
    from .vswitchd.vswitchd import is_odp_flow

    syntax = "ODP" if is_odp_flow(text) else "OpenFlow"
    try:
        return vswitchd.trace_flow(bridge.name, text)
    except FlowSyntaxError as e:
        if e.offset is not None and e.offset < len(text):  # show the FLOW as given
            e = FlowSyntaxError(e.message, text, e.offset, e.length)
        raise UsageError(f"FLOW {k} (OpenFlow syntax): {e}") from None
    except DatapathError as e:
        raise UsageError(f"FLOW {k} (ODP syntax): {e}") from None
    except OfprotoError as e:
        where = f"FLOW {k}" if syntax == "ODP" else f"FLOW {k} (OpenFlow syntax)"
        raise UsageError(f"{where}: {e}") from None


def _dp_port(dp, text: str, option: str) -> int:
    from .errors import DatapathError

    try:
        return dp.port(int(text) if text.isdigit() else text).port_no
    except DatapathError as e:
        raise UsageError(f"{option}: {e}") from None


@cli.group()
def bench() -> None:
    """Benchmarks; each prints figures and can write JSON."""


@bench.command("ovsdb")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON here.")
@click.option("--quick", is_flag=True, help="Smaller sizes, for a smoke run.")
def bench_ovsdb(as_json, out, quick) -> None:
    """OVSDB client: 1000 ports in one transaction; a 100-host x 10-VM bring-up."""
    from .bench.ovsdb import run

    _bench_output(run(quick=quick, echo=None if as_json else click.echo), as_json, out)


def _bench_output(result: dict, as_json: bool, out: str | None) -> None:
    """Print a benchmark's JSON (with --json) and write it to --out."""
    text = json.dumps(result, indent=2)
    if as_json:
        click.echo(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


@bench.command("datapath")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON here.")
@click.option("--quick", is_flag=True, help="Smaller sizes, for a smoke run.")
@click.option("--workload", "workloads", multiple=True, type=click.Choice(["W1", "W2", "W3", "W4"]),
              help="Run only these workloads (repeatable; default all).")
def bench_datapath(as_json, out, quick, workloads) -> None:
    """Datapath fast path vs the pure-Python reference: W1/W2 forwarding (Mpps),
    W3 classifier lookups (M/s), W4 bytes per megaflow."""
    # One core runs the datapath: keep numpy's idle BLAS threads (spinning
    # after array operations) off the other cores. Only takes effect before
    # numpy is first imported, which is the case here.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .bench.datapath import run

    result = run(quick=quick, echo=None if as_json else click.echo,
                 workloads=tuple(workloads) or ("W1", "W2", "W3", "W4"))
    _bench_output(result, as_json, out)


@bench.command("upcall")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON here.")
@click.option("--quick", is_flag=True, help="Smaller sizes, for a smoke run.")
def bench_upcall(as_json, out, quick) -> None:
    """Upcalls translated and installed per second (a 1000-rule, 4-table pipeline,
    every packet a miss) and the latency of one trace."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .bench.upcall import run

    _bench_output(run(quick=quick, echo=None if as_json else click.echo), as_json, out)


@cli.command("ovsdb-server")
@click.argument("dbfile", required=False, type=click.Path(dir_okay=False))
@click.option("--remote", "remotes", multiple=True, metavar="punix:SOCK|ptcp:PORT[:IP]",
              help="Listen here (repeatable); ptcp listens on 127.0.0.1 unless given an IP.")
@click.option("--pidfile", is_flag=False, flag_value="ovsdb-server.pid", default=None,
              help="Write the process id to this file.")
@click.option("--unixctl", hidden=True, help="Accepted for compatibility; ignored.")
@click.option("--log-file", hidden=True, is_flag=False, flag_value="", default=None,
              help="Accepted for compatibility; ignored.")
@click.option("--no-chdir", is_flag=True, hidden=True, help="Accepted; ignored.")
def ovsdb_server(dbfile, remotes, pidfile, unixctl, log_file, no_chdir) -> None:
    """ovsnet's pure-Python ovsdb-server, in the foreground until SIGTERM/SIGINT.

    DBFILE is created with the Open_vSwitch schema if absent; without it the
    database lives in memory. Real OVS clients (ovs-vsctl, ovsdb-client, the
    Python IDL) work against it unchanged.
    """
    from .ovsdb.server.main import serve

    if not remotes:
        raise UsageError("ovsdb-server: no --remote given (e.g. --remote=punix:db.sock)")
    raise SystemExit(serve(dbfile, list(remotes), pidfile=pidfile))


def _check_hosts(topo, hosts) -> None:
    for h in hosts:
        if h not in topo.hosts:
            known = ", ".join(topo.hosts) or "none"
            raise UsageError(f"no host {h!r} in topology {topo.name!r} (hosts: {known})")


def main(argv=None) -> int:
    try:
        cli.main(args=argv, prog_name="ovsnet", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ovsnet: aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return 2
    except OvsnetError as e:
        if _Context.debug:
            traceback.print_exc()
        click.echo(f"ovsnet: error: {e}", err=True)
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: say so, keep the traceback for --debug
        if _Context.debug:
            traceback.print_exc()
        click.echo(f"ovsnet: internal error: {type(e).__name__}: {e} (rerun with --debug)",
                   err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
