"""The embedded ovsdb-server's wire protocol, checked with raw sockets.

Expected bytes and error objects are what Debian's ovsdb-server 3.1 sends
for the same input (captured with the same requests against the C server).
No test sleeps: a "nothing was sent" check sends an echo and requires the
echo's reply to be the very next message.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid

import pytest

from ovsnet.ovsdb.backends import EmbeddedServer
from ovsnet.ovsdb.server import protocol
from ovsnet.ovsdb.server.protocol import Framer, Message, ProtocolError

ZERO = "00000000-0000-0000-0000-000000000000"

# The server keeps time in whole milliseconds (as C's time_msec): its deadlines
# can fall up to 1 ms before ours.
CLOCK_SLACK = 0.002


# ----------------------------------------------------------------------------
# Framing and message validity, without a server.

def frame_all(data: bytes) -> list:
    f = Framer()
    f.feed(data)
    out = []
    while (v := f.next()) is not None:
        out.append(v)
    return out


def test_concatenated_values_with_whitespace_and_brackets_inside_strings():
    data = b' {"a":[1,"]}\\"{"]}\n\t[2]{"b":{}}  '
    assert frame_all(data) == [{"a": [1, ']}"{']}, [2], {"b": {}}]


def test_a_value_split_at_every_byte_boundary_is_reassembled():
    data = b'{"method":"echo","params":["\\"x\\\\",{"k":[1,2.5]}],"id":"\xc3\xa9"}'
    for cut in range(1, len(data)):
        f = Framer()
        f.feed(data[:cut])
        assert f.next() is None
        f.feed(data[cut:])
        assert f.next() == {"method": "echo", "params": ['"x\\', {"k": [1, 2.5]}], "id": "é"}


@pytest.mark.parametrize("text,expected", [
    ("1.0", 1), ("1e2", 100), ("1.5E+3", 1500), ("-0", 0), ("0.1", 0.1),
    ("0.30000000000000004", 0.3), ("12345678901234567890", 1.23456789012346e19),
    ("-9223372036854775808", -9223372036854775808), ("9223372036854775807", 9223372036854775807),
    ("1e-400", 0.0), ("123456789.123456789", 123456789.123457),
])
def test_numbers_are_classified_as_lib_json_does(text, expected):
    (value,) = frame_all(f"[{text}]".encode())
    assert value == [expected]
    assert type(value[0]) is type(expected)


@pytest.mark.parametrize("data", [
    b'"top-level string"', b"17", b"x", b"\x00", b"[1,]", b"[01]", b"[1e400]", b"[NaN]",
    b'["\\u0000"]', b'["\\ud800"]', b'["\\ud83d\\u0041"]', b'["a\x01"]', b"[-]", b"[1.]",
    b"[" * 1001 + b"]" * 1001,
])
def test_what_lib_json_rejects_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        frame_all(data)


def test_depth_1000_is_accepted():
    assert frame_all(b"[" * 1000 + b"]" * 1000)


def test_bytes_that_are_not_utf8_and_lone_low_surrogates_go_out_as_c_writes_them():
    (value,) = frame_all(b'["\xff", "\\udc00", "\\u001f\\u007f/\xc3\xa9"]')
    assert protocol.encode_value(value) == b'["\xff","\xed\xb0\x80","\\u001f\x7f/\xc3\xa9"]'


def test_a_huge_string_is_framed_in_one_pass():
    f = Framer()
    chunk = b"x" * (1 << 20)
    f.feed(b'{"method":"echo","params":["')
    start = time.monotonic()
    for _ in range(100):
        f.feed(chunk)
        assert f.next() is None
    f.feed(b'"],"id":1}')
    value = f.next()
    assert len(value["params"][0]) == 100 << 20
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("value,problem", [
    ([1], "message is not a JSON object"),
    ({"method": 1, "params": [], "id": 1}, "method is not a JSON string"),
    ({"method": "echo", "params": {}, "id": 1}, '"params" must be JSON array'),
    ({"method": "echo", "id": 1}, 'request must have "params"'),
    ({"method": "echo", "params": [], "id": 1, "extra": 2}, 'unexpected member "extra"'),
    ({"params": [], "id": 1}, 'request must have "method"'),
    ({"result": None, "error": None, "id": "echo"}, 'request must have "method"'),
])
def test_invalid_json_rpc_messages(value, problem):
    with pytest.raises(ProtocolError, match=problem):
        Message.from_json(value)


@pytest.mark.parametrize("value,kind", [
    ({"method": "echo", "params": [], "id": 1}, "request"),
    ({"method": "cancel", "params": [1], "id": None}, "notification"),
    ({"method": "update", "params": []}, "notification"),
    ({"result": 1, "error": None, "id": 1}, "reply"),
    ({"error": "x", "id": 1}, "error"),
])
def test_message_types_follow_which_members_are_non_null(value, kind):
    assert Message.from_json(value).type == kind


# The compiled fast paths (native/_ovsdb_json.pyx) must give exactly what the
# pure-Python paths give, and decline whatever they do not handle.

STREAMS = [
    b'{"id":1,"method":"transact","params":["Open_vSwitch",{"op":"insert","table":"QoS",'
    b'"row":{"type":"linux-htb","external_ids":["map",[["n","1"]]]}}]}',
    b' [1, -2 ,{"a" : "b", "a": "c"}, true,false,null,-0, 123456789012345678]\n\t{}[]',
    b'[1234567890123456789, -9223372036854775808, 1.0, 1e2, 0.1]',
    b'{"k":"\\u00e9\\n\\"", "\xc3\xa9": "\xff"}',
    b'[' * 101 + b']' * 101 + b'[' * 100 + b']' * 100,
    b'{"a":[[],{}],"b":{"c":[{"d":null}]}}   {"x":1}',
]


@pytest.mark.parametrize("data", STREAMS)
def test_compiled_framing_gives_what_the_python_framing_gives(data, monkeypatch):
    assert protocol._native is not None, "native/_ovsdb_json.pyx is not built"
    compiled = frame_all(data)
    monkeypatch.setattr(protocol, "_native", None)
    assert frame_all(data) == compiled
    assert json.dumps(frame_all(data)) == json.dumps(compiled)  # same member order


@pytest.mark.parametrize("data", [
    b'{"a":1', b'{"a":1.5}', b'{"a":"\\n"}', b"[01]", b"[1e5]", b'"x"', b"17", b"[1,]",
    b'{"a":tru}', b'{"a":"\xc3\xa9"}', b'{"a":"\x01"}', b"[1234567890123456789]",
    b"[" * 101 + b"]" * 101, b"", b"   ", b"[-]", b'{"a" 1}', b"{1:2}",
])
def test_compiled_parser_declines_what_it_does_not_handle(data):
    assert protocol._native.decode_prefix(bytearray(data)) is None


def test_compiled_parser_reports_where_the_value_ends():
    value, end = protocol._native.decode_prefix(bytearray(b' \n[1,{"a":[]}]  {"b":2}'))
    assert value == [1, {"a": []}] and end == 14


ENCODED = [
    1, -5, 0, (1 << 63) - 1, -(1 << 63), 1 << 70, -(1 << 80), 1.5, 1e300, -0.0, 1e-7,
    "a\u00e9\x01\"\\\n\t\r\b\f\x7f\udc80\ud800x/", "", [], {}, (1, "t"),
    [1, [2, [3, {"a": None, "b": True, "c": False}]]], {"z": 1, "a": [1.25, "\u20ac"]},
]


@pytest.mark.parametrize("value", ENCODED)
@pytest.mark.parametrize("errors", ["ovsnet-ovsdb", "surrogatepass"])
def test_compiled_encoder_writes_what_json_dumps_writes(value, errors):
    want = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors)
    assert protocol._native.encode(value, errors) == want
    assert protocol.encode_value(value, errors) == want
    assert protocol.encode_reply(value, 7) == protocol.reply(value, 7).encode() == (
        b'{"id":7,"result":' + protocol.encode_value(value) + b',"error":null}')


def test_compiled_encoder_leaves_the_unusual_to_the_standard_library():
    deep: list = []
    inner = deep
    for _ in range(600):
        inner.append([])
        inner = inner[0]
    for value in (float("nan"), float("inf"), {1: 2}, object(), deep):
        with pytest.raises(protocol._native.Unsupported):
            protocol._native.encode(value)
    assert protocol.encode_value({1: 2}) == b'{"1":2}'
    assert protocol.encode_value(deep) == b"[" * 601 + b"]" * 601
    with pytest.raises(ValueError):
        protocol.encode_value(float("nan"))


def test_wire_form_of_replies_errors_and_notifications_is_c_s():
    assert protocol.reply([1], 7).encode() == b'{"id":7,"result":[1],"error":null}'
    assert protocol.error_reply("unknown method", 7).encode() == (
        b'{"id":7,"error":"unknown method"}')
    assert protocol.notify("locked", ["L"]).encode() == (
        b'{"id":null,"method":"locked","params":["L"]}')


# ----------------------------------------------------------------------------
# A raw JSON-RPC client.

class Closed(Exception):
    pass


class RawClient:
    def __init__(self, path: str, timeout: float = 20):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.framer = Framer()
        self.raw = bytearray()
        self.next_id = 0

    def send(self, data) -> None:
        if not isinstance(data, (bytes, bytearray)):
            data = json.dumps(data).encode()
        self.sock.sendall(data)

    def request(self, method: str, params: list, id=None):
        if id is None:
            self.next_id += 1
            id = self.next_id
        self.send({"method": method, "params": params, "id": id})
        return id

    def recv(self) -> dict:
        while True:
            value = self.framer.next()
            if value is not None:
                return value
            data = self.sock.recv(1 << 20)
            if not data:
                raise Closed()
            self.raw += data
            self.framer.feed(data)

    def call(self, method: str, params: list):
        """(notifications received first, the reply)."""
        id = self.request(method, params)
        notes = []
        while True:
            msg = self.recv()
            if msg.get("id") == id:
                return notes, msg
            notes.append(msg)

    def result(self, method: str, params: list):
        notes, reply = self.call(method, params)
        assert "error" not in reply or reply["error"] is None, reply
        return reply["result"]

    def expect_nothing_pending(self) -> None:
        """The next message is the reply to a fresh echo: nothing else was queued."""
        id = self.request("echo", ["sync"])
        assert self.recv() == {"id": id, "result": ["sync"], "error": None}

    def expect_closed(self) -> None:
        with pytest.raises((Closed, ConnectionResetError)):
            while True:
                self.recv()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    with EmbeddedServer("proto") as s:
        yield s


@pytest.fixture
def client(server):
    c = RawClient(str(server.sock))
    yield c
    c.close()


def connect(server) -> RawClient:
    return RawClient(str(server.sock))


def transact(c: RawClient, *ops, db="Open_vSwitch"):
    return c.result("transact", [db, *ops])


def init_db(c: RawClient) -> str:
    (r,) = transact(c, {"op": "insert", "table": "Open_vSwitch", "row": {}})
    return r["uuid"][1]


def add_bridge(name: str, **columns) -> list:
    """Operations inserting a bridge referenced by the root row (else it is garbage)."""
    tag = f"b{abs(hash(name))}"
    return [{"op": "insert", "table": "Bridge", "row": {"name": name, **columns},
             "uuid-name": tag},
            {"op": "mutate", "table": "Open_vSwitch", "where": [],
             "mutations": [["bridges", "insert", ["named-uuid", tag]]]}]


# ----------------------------------------------------------------------------
# Methods.

def test_list_dbs_echo_unknown_method_bytes(client):
    client.request("list_dbs", [], 1)
    client.request("echo", [1, "a"], "x")
    client.request("foo", [], 2)
    for _ in range(3):
        client.recv()
    assert bytes(client.raw) == (b'{"id":1,"result":["Open_vSwitch","_Server"],"error":null}'
                                 b'{"id":"x","result":[1,"a"],"error":null}'
                                 b'{"id":2,"error":"unknown method"}')


def test_numbers_and_text_are_echoed_as_c_writes_them(client):
    client.send(b'{"method":"echo","params":[1.0, 0.1, -0, 1e2, 12345678901234567890,'
                b' 0.30000000000000004, "\xc3\xa9\\u00e9\\ud83d\\ude00\\u007f\\u001f/"],"id":1}')
    client.recv()
    assert bytes(client.raw) == (b'{"id":1,"result":[1,0.1,0,100,1.23456789012346e+19,0.3,'
                                 b'"\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80\x7f\\u001f/"],"error":null}')


def test_get_server_id_is_a_stable_uuid(client):
    a = client.result("get_server_id", [])
    assert uuid.UUID(a) and client.result("get_server_id", []) == a


def test_get_schema(client):
    schema = client.result("get_schema", ["Open_vSwitch"])
    assert schema["name"] == "Open_vSwitch" and "Bridge" in schema["tables"]
    server_schema = client.result("get_schema", ["_Server"])
    assert server_schema["name"] == "_Server"
    assert set(server_schema["tables"]["Database"]["columns"]) == {
        "name", "model", "connected", "leader", "schema", "cid", "sid", "index"}


@pytest.mark.parametrize("method,params,error", [
    ("get_schema", ["nope"], {"syntax": '["nope"]', "details":
                              "get_schema request specifies unknown database nope",
                              "error": "unknown database"}),
    ("get_schema", [], {"syntax": "[]", "details":
                        "get_schema request params must begin with <db-name>",
                        "error": "syntax error"}),
    ("transact", [5], {"syntax": "[5]", "details":
                       "transact request params must begin with <db-name>",
                       "error": "syntax error"}),
    ("monitor_cancel", [], "invalid parameters"),
    ("monitor_cancel", ["m1"], "unknown monitor"),
    ("set_db_change_aware", [1], {"syntax": "[1]", "details":
                                  "set_db_change_aware: true or false parameter expected",
                                  "error": "syntax error"}),
    ("lock", ["1bad"], {"syntax": '["1bad"]', "details": "lock request params must be <id>",
                        "error": "syntax error"}),
    ("unlock", ["L1"], {"syntax": '["L1"]', "details":
                        'unlock: "unlock" without "lock" or "steal"', "error": "syntax error"}),
    ("monitor_cond", ["Open_vSwitch", "m"], {"syntax": '["Open_vSwitch","m"]',
                                             "details": "invalid parameters",
                                             "error": "syntax error"}),
    ("monitor_cond", ["Open_vSwitch", "m", {"Nope": {}}], {"details": "no table named Nope",
                                                           "error": "syntax error"}),
    ("monitor", ["Open_vSwitch", "m", {"Bridge": {"where": []}}],
     {"syntax": '{"where":[]}', "details": "Parsing table Bridge failed: Member 'where' is "
      "present but not allowed here.", "error": "syntax error"}),
    ("monitor_cond", ["Open_vSwitch", "m", {"Bridge": [{"columns": ["name", "name"]}]}],
     {"syntax": '["name","name"]', "details": "column name mentioned more than once",
      "error": "syntax error"}),
    ("monitor_cond_since", ["Open_vSwitch", "m", {}, "nope"],
     {"syntax": '"nope"', "details": "last-txn-id must be UUID format.",
      "error": "syntax error"}),
])
def test_error_replies_are_c_s(client, method, params, error):
    _, reply = client.call(method, params)
    assert reply == {"id": reply["id"], "error": error}


def test_server_database_describes_each_database_as_a_standalone_server_does(client):
    rows = client.result("monitor_cond", ["_Server", "s", {"Database": [{}]}])["Database"]
    by_name = {r["initial"]["name"]: r["initial"] for r in rows.values()}
    assert set(by_name) == {"Open_vSwitch", "_Server"}
    ovs = by_name["Open_vSwitch"]
    assert (ovs["model"], ovs["connected"], ovs["leader"]) == ("standalone", True, True)
    assert "cid" not in ovs and "sid" not in ovs and "index" not in ovs  # empty sets
    schema = client.result("get_schema", ["Open_vSwitch"])
    assert json.loads(ovs["schema"]) == schema
    assert ovs["schema"] == json.dumps(schema, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False)


def test_server_database_is_read_only(client):
    (r,) = transact(client, {"op": "insert", "table": "Database",
                             "row": {"name": "foo", "model": "standalone"}}, db="_Server")
    assert r == {"details": "insert operation not allowed on table in reserved database "
                 "_Server", "error": "not allowed"}


# ----------------------------------------------------------------------------
# Monitors.

def test_monitor_v1_update_precedes_the_transaction_reply(client):
    assert client.result("monitor", ["Open_vSwitch", "m1",
                                     {"Open_vSwitch": {"columns": ["next_cfg"]}}]) == {}
    notes, reply = client.call("transact", ["Open_vSwitch", {
        "op": "insert", "table": "Open_vSwitch", "row": {"next_cfg": 5}}])
    row = reply["result"][0]["uuid"][1]
    assert notes == [{"id": None, "method": "update",
                      "params": ["m1", {"Open_vSwitch": {row: {"new": {"next_cfg": 5}}}}]}]
    notes, _ = client.call("transact", ["Open_vSwitch", {
        "op": "mutate", "table": "Open_vSwitch", "where": [],
        "mutations": [["next_cfg", "+=", 1]]}])
    assert notes[0]["params"][1] == {"Open_vSwitch": {row: {
        "old": {"next_cfg": 5}, "new": {"next_cfg": 6}}}}
    notes, _ = client.call("transact", ["Open_vSwitch", {
        "op": "delete", "table": "Open_vSwitch", "where": []}])
    assert notes[0]["params"][1] == {"Open_vSwitch": {row: {"old": {"next_cfg": 6}}}}


def test_monitor_v1_default_columns_include_version_not_uuid(client):
    row = init_db(client)
    update = client.result("monitor", ["Open_vSwitch", "m", {"Open_vSwitch": {}}])
    new = update["Open_vSwitch"][row]["new"]
    assert "_version" in new and "_uuid" not in new
    assert new["bridges"] == ["set", []] and new["next_cfg"] == 0


def test_monitor_cond_sends_diffs_and_omits_defaults(client):
    row = init_db(client)
    assert client.result("monitor_cond", ["Open_vSwitch", "m2", {"Open_vSwitch": [{
        "columns": ["next_cfg", "external_ids", "ovs_version"]}]}]) == {
        "Open_vSwitch": {row: {"initial": {}}}}
    notes, _ = client.call("transact", ["Open_vSwitch", {
        "op": "update", "table": "Open_vSwitch", "where": [],
        "row": {"external_ids": ["map", [["a", "b"], ["c", "d"]]], "ovs_version": "x"}}])
    assert notes[0]["method"] == "update2"
    assert notes[0]["params"][1]["Open_vSwitch"][row] == {"modify": {
        "external_ids": ["map", [["a", "b"], ["c", "d"]]], "ovs_version": "x"}}
    notes, _ = client.call("transact", ["Open_vSwitch", {
        "op": "update", "table": "Open_vSwitch", "where": [],
        "row": {"external_ids": ["map", [["a", "c"], ["e", "f"]]], "ovs_version": ["set", []]}}])
    # map diff: changed and added pairs with their new value, removed ones with the old
    assert notes[0]["params"][1]["Open_vSwitch"][row] == {"modify": {
        "external_ids": ["map", [["a", "c"], ["c", "d"], ["e", "f"]]],
        "ovs_version": ["set", []]}}


def test_monitor_cond_conditions_and_cond_change(client):
    init_db(client)
    a, _, b, _ = transact(client, *add_bridge("a", datapath_type="x"),
                          *add_bridge("b", datapath_type="y"))
    a, b = a["uuid"][1], b["uuid"][1]
    update = client.result("monitor_cond", ["Open_vSwitch", "m", {"Bridge": [{
        "columns": ["name"], "where": [["datapath_type", "==", "x"]]}]}])
    assert update == {"Bridge": {a: {"initial": {"name": "a"}}}}

    def set_type(name, value):
        return {"op": "update", "table": "Bridge", "where": [["name", "==", name]],
                "row": {"datapath_type": value}}

    # A row that starts matching is an insert, one that stops a delete.
    notes, _ = client.call("transact", ["Open_vSwitch", set_type("a", "z"), set_type("b", "x")])
    assert notes[0]["params"][1] == {"Bridge": {a: {"delete": None},
                                                b: {"insert": {"name": "b"}}}}
    notes, reply = client.call("monitor_cond_change", ["m", "m-2", {"Bridge": [
        {"where": [["datapath_type", "==", "z"], ["datapath_type", "==", "x"]]}]}])
    assert reply["result"] == {}
    assert notes == [{"id": None, "method": "update2",
                      "params": ["m-2", {"Bridge": {a: {"insert": {"name": "a"}}}}]}]
    notes, _ = client.call("monitor_cond_change", ["m-2", "m-2", {"Bridge": [{"where": [False]}]}])
    assert notes[0]["params"][1] == {"Bridge": {a: {"delete": None}, b: {"delete": None}}}
    # a change to a column only the old condition read: nothing to say any more
    notes, _ = client.call("transact", ["Open_vSwitch", set_type("a", "x")])
    assert notes == []
    assert client.result("monitor_cancel", ["m-2"]) == {}


def test_monitor_cond_since_sends_only_what_changed_after_the_last_transaction(server, client):
    row = init_db(client)
    # History keeps no more atoms than the database holds (as C does): give it some.
    transact(client, *add_bridge("b", external_ids=["map", [[str(i), "x"] for i in range(100)]]))
    found, last, update = client.result("monitor_cond_since", [
        "Open_vSwitch", "m", {"Open_vSwitch": [{"columns": ["next_cfg"]}]}, ZERO])
    assert found is False and update == {"Open_vSwitch": {row: {"initial": {}}}}
    assert last != ZERO
    notes, _ = client.call("transact", ["Open_vSwitch", {
        "op": "mutate", "table": "Open_vSwitch", "where": [],
        "mutations": [["next_cfg", "+=", 1]]}])
    method, (mid, last2, upd) = notes[0]["method"], notes[0]["params"]
    assert (method, mid, upd) == ("update3", "m", {"Open_vSwitch": {row: {"modify": {
        "next_cfg": 1}}}})
    other = connect(server)
    transact(other, {"op": "mutate", "table": "Open_vSwitch", "where": [],
                     "mutations": [["next_cfg", "+=", 1]]})
    # A reconnecting client that saw last2 gets only the second increment.
    again = connect(server)
    found, last3, update = again.result("monitor_cond_since", [
        "Open_vSwitch", "m", {"Open_vSwitch": [{"columns": ["next_cfg"]}]}, last2])
    assert found is True and last3 != last2
    assert update == {"Open_vSwitch": {row: {"modify": {"next_cfg": 2}}}}
    found, _, update = again.result("monitor_cond_since", [
        "Open_vSwitch", "m2", {"Open_vSwitch": [{"columns": ["next_cfg"]}]}, last3])
    assert (found, update) == (True, {})
    found, _, update = again.result("monitor_cond_since", [
        "Open_vSwitch", "m3", {"Open_vSwitch": [{"columns": ["next_cfg"]}]},
        str(uuid.uuid4())])
    assert found is False and update == {"Open_vSwitch": {row: {"initial": {"next_cfg": 2}}}}


def test_duplicate_monitor_id(client):
    client.result("monitor_cond", ["Open_vSwitch", "m", {"Bridge": [{}]}])
    _, reply = client.call("monitor_cond", ["Open_vSwitch", "m", {"Bridge": [{}]}])
    assert reply["error"] == {"syntax": '"m"', "details": "duplicate monitor ID",
                              "error": "syntax error"}


# ----------------------------------------------------------------------------
# Locks, triggers.

def test_lock_steal_unlock_notifications(server):
    a, b = connect(server), connect(server)
    assert a.result("lock", ["L1"]) == {"locked": True}
    assert b.result("lock", ["L1"]) == {"locked": False}
    _, reply = a.call("lock", ["L1"])
    assert reply["error"]["details"] == 'must issue "unlock" before new "lock"'
    assert a.result("unlock", ["L1"]) == {}
    assert b.recv() == {"id": None, "method": "locked", "params": ["L1"]}
    assert a.result("steal", ["L1"]) == {"locked": True}
    assert b.recv() == {"id": None, "method": "stolen", "params": ["L1"]}
    assert b.result("unlock", ["L1"]) == {}
    # C tells the head of the queue it is "locked" again when a waiter behind it leaves.
    assert a.recv() == {"id": None, "method": "locked", "params": ["L1"]}
    assert b.result("lock", ["L1"]) == {"locked": False}
    a.close()
    assert b.recv() == {"id": None, "method": "locked", "params": ["L1"]}


WAIT_99 = {"op": "wait", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"],
           "until": "==", "rows": [{"next_cfg": 99}]}


def test_wait_is_answered_when_another_client_commits(server, client):
    init_db(client)
    client.request("transact", ["Open_vSwitch", WAIT_99], "w")
    client.expect_nothing_pending()
    other = connect(server)
    transact(other, {"op": "update", "table": "Open_vSwitch", "where": [],
                     "row": {"next_cfg": 99}})
    assert client.recv() == {"id": "w", "result": [{}], "error": None}


def test_wait_times_out(client):
    init_db(client)
    start = time.monotonic()
    (r,) = transact(client, dict(WAIT_99, timeout=200))
    assert r["error"] == "timed out"
    elapsed = int(re.fullmatch(r'"wait" timed out after (\d+) ms', r["details"]).group(1))
    assert 200 <= elapsed < 1000   # C says 200 unless its poll loop wakes up late
    assert time.monotonic() - start >= 0.2 - CLOCK_SLACK


def test_cancel_and_duplicate_request_id(client):
    init_db(client)
    client.request("transact", ["Open_vSwitch", WAIT_99], "w1")
    client.request("transact", ["Open_vSwitch"], "w1")
    assert client.recv() == {"id": "w1", "error": {
        "syntax": '["Open_vSwitch"]', "details": "transact: duplicate request ID",
        "error": "syntax error"}}
    client.send({"method": "cancel", "params": ["w1"], "id": None})
    client.expect_nothing_pending()       # C does not answer a canceled request...
    assert client.result("set_db_change_aware", [True]) == {}
    client.request("transact", ["Open_vSwitch", WAIT_99], "w2")
    client.send({"method": "cancel", "params": ["w2"], "id": None})
    assert client.recv() == {"id": "w2", "error": "canceled"}  # ...unless db-change-aware


# ----------------------------------------------------------------------------
# Robustness.

@pytest.mark.parametrize("data,replies", [
    (b'{"method":"echo","params":[],"id":1} {bad json}', 1),
    (b'{"method":"echo","params":[],"id":1}"str"', 1),
    (b'{"method":"echo","params":[],"id":1}[1,2]', 1),
    (b'{"method":"echo","params":[],"id":1}\x00', 1),
    (b'{"method":"echo","params":{},"id":1}', 0),
    (b'{"method":"echo","id":1}', 0),
    (b'{"method":1,"params":[],"id":1}', 0),
    (b'{"method":"echo","params":[],"id":1,"extra":2}', 0),
    (b'{"method":"echo","params":["a\\u0000b"],"id":1}', 0),
    (b'{"method":"echo","params":[1.5e400],"id":1}', 0),
    (b'{"error":"x","id":5}', 0),
    (b'{"result":1,"error":null,"id":7}', 0),
    (b'[' * 1001 + b']' * 1001, 0),
])
def test_malformed_input_closes_the_connection_after_what_came_before(server, data, replies):
    c = connect(server)
    c.send(data)
    for _ in range(replies):
        assert c.recv()["id"] == 1
    c.expect_closed()
    connect(server).expect_nothing_pending()


def test_notifications_and_probe_replies_are_ignored(client):
    client.send(b'{"method":"echo","params":[],"id":null}{"method":"foo","params":[]}'
                b'{"method":"cancel","params":[]}{"result":[],"error":null,"id":"echo"}')
    client.expect_nothing_pending()


def test_truncated_message_waits_for_the_rest_then_eof_discards_it(server, client):
    init_db(client)
    data = json.dumps({"method": "transact", "params": ["Open_vSwitch", *add_bridge("half")],
                       "id": 1}).encode()
    client.send(data[:40])
    connect(server).expect_nothing_pending()
    client.send(data[40:])
    assert client.recv()["id"] == 1
    quitter = connect(server)
    quitter.send(data.replace(b"half", b"never")[:60])
    quitter.sock.shutdown(socket.SHUT_WR)
    quitter.expect_closed()
    names = [r["name"] for r in transact(client, {"op": "select", "table": "Bridge",
                                                  "where": [], "columns": ["name"]})[0]["rows"]]
    assert names == ["half"]


def test_a_complete_transaction_from_a_client_that_hung_up_still_commits(server, client):
    init_db(client)
    quitter = connect(server)
    quitter.send({"method": "transact", "params": ["Open_vSwitch", *add_bridge("orphan")],
                  "id": 1})
    quitter.close()
    client.result("monitor_cond", ["Open_vSwitch", "m", {"Bridge": [{"columns": ["name"]}]}])
    rows = transact(client, {"op": "select", "table": "Bridge", "where": [],
                             "columns": ["name"]})[0]["rows"]
    if not rows:  # the server had not read it yet: the commit arrives as an update
        msg = client.recv()
        rows = [r["insert"] for r in msg["params"][1]["Bridge"].values()]
    assert rows == [{"name": "orphan"}]


def test_a_100mb_string_is_echoed_while_other_clients_are_served(server):
    big = connect(server)
    payload = b"y" * (100 << 20)
    received = bytearray()

    def reader():
        while len(received) < len(payload) + 30:
            data = big.sock.recv(1 << 22)
            if not data:
                break
            received.extend(data)

    t = threading.Thread(target=reader)
    t.start()
    big.send(b'{"method":"echo","params":["' + payload + b'"],"id":1}')
    other = connect(server)
    assert other.result("list_dbs", []) == ["Open_vSwitch", "_Server"]
    t.join(timeout=120)
    assert bytes(received[:28]) == b'{"id":1,"result":["yyyyyyyyy'
    assert bytes(received).endswith(b'"],"error":null}')
    assert len(received) == len(payload) + 35


def test_a_client_that_never_reads_is_throttled_and_others_are_unaffected(server, client):
    row = init_db(client)
    lazy = connect(server)
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.request("monitor_cond", ["Open_vSwitch", "lazy", {"Open_vSwitch": [{
        "columns": ["external_ids"]}]}])
    blob = "z" * 100_000
    start = time.monotonic()
    for i in range(200):
        transact(client, {"op": "update", "table": "Open_vSwitch", "where": [],
                          "row": {"external_ids": ["map", [["blob", f"{i}{blob}"]]]}})
    assert time.monotonic() - start < 60
    session = next(s for s in server.server.sessions
                   if "lazy" in {m.id for m in s.monitors.values()})
    assert session.backlog < 1 << 20  # at most the message being written, not 200 of them
    # When it finally reads, it catches up on the latest state.
    last = None
    while True:
        msg = lazy.recv()
        if msg.get("method") == "update2":
            last = msg["params"][1]["Open_vSwitch"][row]["modify"]["external_ids"]
            if last[1][0][1].startswith("199"):
                break
    lazy.expect_nothing_pending()


# ----------------------------------------------------------------------------
# TCP remotes: inactivity probes (punix connections have none, as in C).

@pytest.fixture
def tcp_server():
    from ovsnet.ovsdb.server import Database, load_schema
    from ovsnet.ovsdb.server.server import OvsdbServer

    srv = OvsdbServer()
    srv.add_database(Database(load_schema()))
    remote = srv.add_remote("ptcp:0:127.0.0.1")
    remote.probe_interval_ms = 300   # C's default is 5000
    thread = threading.Thread(target=srv.run)
    thread.start()
    yield remote
    srv.stop()
    thread.join()


def tcp_client(remote) -> RawClient:
    c = RawClient.__new__(RawClient)
    host, port = remote.sock.getsockname()
    c.sock = socket.create_connection((host, port), timeout=20)
    c.framer, c.raw, c.next_id = Framer(), bytearray(), 0
    return c


def test_tcp_connections_are_probed_and_dropped_when_silent(tcp_server):
    assert tcp_server.address.startswith("tcp:127.0.0.1:")
    c = tcp_client(tcp_server)
    start = time.monotonic()   # the server cannot have seen activity before this
    assert c.result("list_dbs", []) == ["Open_vSwitch", "_Server"]
    assert c.recv() == {"id": "echo", "method": "echo", "params": []}
    assert time.monotonic() - start >= 0.3 - CLOCK_SLACK
    c.send({"id": "echo", "result": [], "error": None})   # answering keeps it alive
    assert c.recv() == {"id": "echo", "method": "echo", "params": []}
    c.expect_closed()                                      # silence drops it
    assert time.monotonic() - start >= 0.9 - CLOCK_SLACK


# ----------------------------------------------------------------------------
# Without transaction history: what C's standalone server answers.

def test_without_history_update3_carries_the_zero_txn_id_as_c_standalone_does(tmp_path):
    from ovsnet.ovsdb.server import Database, load_schema
    from ovsnet.ovsdb.server.server import OvsdbServer

    srv = OvsdbServer(txn_history=False)
    srv.add_database(Database(load_schema()))
    sock = str(tmp_path / "db.sock")
    srv.add_remote(f"punix:{sock}")
    thread = threading.Thread(target=srv.run)
    thread.start()
    try:
        a, b = RawClient(sock), RawClient(sock)
        row = init_db(a)
        request = ["Open_vSwitch", "m", {"Open_vSwitch": [{"columns": ["next_cfg"]}]}, ZERO]
        for c in (a, b):
            assert c.result("monitor_cond_since", request) == [
                False, ZERO, {"Open_vSwitch": {row: {"initial": {}}}}]
        for n in (1, 2):   # identical monitors, distinct commits, distinct updates
            transact(a, {"op": "update", "table": "Open_vSwitch", "where": [],
                         "row": {"next_cfg": n}})
            expected = {"id": None, "method": "update3", "params": [
                "m", ZERO, {"Open_vSwitch": {row: {"modify": {"next_cfg": n}}}}]}
            assert b.recv() == expected
        a.expect_nothing_pending()
    finally:
        srv.stop()
        thread.join()
