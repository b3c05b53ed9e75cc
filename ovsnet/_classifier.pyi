"""Type stubs of the private compiled module built from native/_classifier.pyx.

Use :class:`ovsnet.ofproto.classifier.Classifier`, :mod:`ovsnet.ofproto.of_flow` and
:mod:`ovsnet.datapath.megaflow` (the UFIDs): they document these functions and hold
the pure-Python reference of each.
"""

from typing import Any

from typing_extensions import Buffer

# Classifier lookup (Classifier.lookup with implementation="cython").
def lookup_wc(pvector: list[tuple[Any, ...]], priorities: list[int],
              tries: tuple[tuple[str, int, int | None, int, Any], ...],
              flow: dict[str, int], masks: dict[str, int]) -> Any: ...
def trie_lookup(trie: Any, value: int) -> tuple[int, int]: ...

# Flow-key conversions (OfFlow.from_flow_key, of_flow.key_mask_of).
def set_key_layout(members: tuple[tuple[str, int, int, str], ...],
                   zero: dict[str, int]) -> None: ...
def key_members(raw: bytes) -> dict[str, int]: ...
def key_mask(masks: dict[str, int]) -> bytes: ...

# Megaflow UFIDs (ovsnet.datapath.megaflow.derive_ufid / masked_ufid, whose
# pure-Python reference is megaflow.ufid_reference).
def derive_ufid(masked_key: Buffer, mask: Buffer) -> bytes: ...
def masked_ufid(key: Buffer, mask: Buffer) -> bytes: ...
