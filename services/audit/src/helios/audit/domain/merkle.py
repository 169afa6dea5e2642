"""RFC 6962 / RFC 9162 Merkle tree hashing, proof plans over stored nodes, proof verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeRef",
    "StreamingRoot",
    "appended_nodes",
    "border",
    "complement_plan",
    "consistency_plan",
    "inclusion_plan",
    "leaf_hash",
    "node_hash",
    "range_hash",
    "range_nodes",
    "root_from_leaves",
    "root_from_slice",
    "verify_consistency",
    "verify_inclusion",
]

# A perfect aligned subtree: (level, index) covers leaves [index << level, (index + 1) << level).
NodeRef = tuple[int, int]

HASH_SIZE = 32
"""Bytes in every hash: leaf, node and root."""
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 9162 2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), an interior node (RFC 9162 2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n >= 2), where RFC 9162 2.1.1 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


class StreamingRoot:
    """MTH of leaf hashes fed one at a time, holding only the O(log n) stack of perfect
    subtrees (RFC 9162 2.1.1), so a verifier can hash a million leaves without keeping them."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
        self._size = 0

    @property
    def size(self) -> int:
        """How many leaves have been added."""
        return self._size

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash (not the entry: pass `leaf_hash(entry)`)."""
        level, value = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            value = node_hash(self._stack.pop()[1], value)
            level += 1
        self._stack.append((level, value))
        self._size += 1

    def add_subtree(self, level: int, value: bytes) -> None:
        """Append the MTH `value` of a perfect subtree of 2**level leaves (a range purged by
        policy, a complement node) in place of its leaves; ValueError unless the size so far is
        a multiple of 2**level, the only place such a subtree can start (RFC 9162 2.1.1)."""
        if level < 0 or self._size % (1 << level):
            raise ValueError(f"a subtree of 2**{level} leaves cannot start at {self._size}")
        added = 1 << level
        while self._stack and self._stack[-1][0] == level:
            value = node_hash(self._stack.pop()[1], value)
            level += 1
        self._stack.append((level, value))
        self._size += added

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaf hashes in order."""
        for leaf in leaves:
            self.add(leaf)

    def root(self) -> bytes:
        """MTH of the leaves added so far; EMPTY_ROOT when there are none."""
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def root_from_leaves(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes in O(n) time and O(log n) memory (RFC 9162 2.1.1)."""
    stream = StreamingRoot()
    stream.extend(leaves)
    return stream.root()


def range_nodes(lo: int, hi: int) -> list[NodeRef]:
    """The perfect aligned subtrees, left to right, that RFC 9162 2.1.1's recursion combines into
    MTH(D[lo:hi]) for a range it produces; raises ValueError for any other range (empty, negative,
    or `lo` not a multiple of the smallest power of two >= hi - lo)."""
    n = hi - lo
    if lo < 0 or n <= 0 or lo % (1 << (n - 1).bit_length()):
        raise ValueError(f"[{lo}, {hi}) is not a range of the RFC 9162 recursion")
    refs: list[NodeRef] = []
    start = lo
    for level in reversed(range(n.bit_length())):
        if n >> level & 1:
            refs.append((level, start >> level))
            start += 1 << level
    return refs


def range_hash(lo: int, hi: int, nodes: Mapping[NodeRef, bytes]) -> bytes:
    """MTH(D[lo:hi]) from the hashes of `range_nodes(lo, hi)`; raises KeyError naming a missing
    node, ValueError as range_nodes does."""
    refs = range_nodes(lo, hi)
    value = nodes[refs[-1]]
    for ref in reversed(refs[:-1]):
        value = node_hash(nodes[ref], value)
    return value


def border(size: int) -> list[NodeRef]:
    """The perfect aligned subtrees whose concatenation is [0, size), left to right (the compact
    range of a tree of `size` leaves); [] for an empty tree, ValueError for a negative size."""
    if size < 0:
        raise ValueError("size must not be negative")
    return range_nodes(0, size) if size else []


def appended_nodes(
    size: int, new_leaves: Sequence[bytes], border_hashes: Mapping[NodeRef, bytes]
) -> list[tuple[NodeRef, bytes]]:
    """Every perfect node completed by appending the leaf hashes `new_leaves` to a tree of `size`
    leaves (each new leaf at level 0 included), each after its children, given the hashes of
    `border(size)`; raises KeyError naming a missing border node (RFC 9162 2.1.1 hashing)."""
    stack = [(ref, border_hashes[ref]) for ref in border(size)]
    completed: list[tuple[NodeRef, bytes]] = []
    for offset, leaf in enumerate(new_leaves):
        top: tuple[NodeRef, bytes] = ((0, size + offset), leaf)
        completed.append(top)
        while stack and stack[-1][0][0] == top[0][0]:
            (level, index), left = stack.pop()
            top = ((level + 1, index >> 1), node_hash(left, top[1]))
            completed.append(top)
        stack.append(top)
    return completed


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not a leaf of a tree of size {size}")


def inclusion_plan(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges [lo, hi) whose MTHs are PATH(index, D[size]), in proof order (deepest sibling
    first; RFC 9162 2.1.3.1); ValueError unless 0 <= index < size."""
    _check_index(index, size)
    plan: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            plan.append((mid, hi))
            hi = mid
        else:
            plan.append((lo, mid))
            lo = mid
    plan.reverse()
    return plan


def consistency_plan(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges [lo, hi) whose MTHs are PROOF(first, D[second]) = SUBPROOF(first, D[second],
    true), in proof order (RFC 9162 2.1.4.1); [] when first is 0 or equal to second, ValueError
    unless 0 <= first <= second."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    plan: list[tuple[int, int]] = []
    lo, hi, whole = 0, second, True  # `whole`: the b flag, D[lo:first] is the old tree itself
    while first != hi:
        mid = lo + _split(hi - lo)
        if first <= mid:
            plan.append((mid, hi))
            hi = mid
        else:
            plan.append((lo, mid))
            lo, whole = mid, False
    if not whole:
        plan.append((lo, hi))
    plan.reverse()
    return plan


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether `path` proves the leaf hash `leaf` is leaf `index` of the tree of `size` leaves
    whose MTH is `root` (RFC 9162 2.1.3.2). Never raises: any malformed input is False."""
    if not (0 <= index < size and _is_hash(leaf) and _is_hash(root)):
        return False
    if not all(_is_hash(sibling) for sibling in path):
        return False
    fn, sn, value = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            value = node_hash(value, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and value == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `second` leaves with MTH `second_root` extends the tree of
    `first` leaves with MTH `first_root` (RFC 9162 2.1.4.2). Trivial cases: first == second needs
    an empty proof and equal roots; first == 0 needs an empty proof and first_root == EMPTY_ROOT.
    Never raises: any malformed input is False."""
    if not (0 <= first <= second and _is_hash(first_root) and _is_hash(second_root)):
        return False
    if not all(_is_hash(node) for node in proof):
        return False
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if first == second:
        return not proof and first_root == second_root
    return _verify_subproof(first, second, first_root, second_root, proof)


def _verify_subproof(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2 steps 1-7 for 0 < first < second."""
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def _check_slice(lo: int, hi: int, size: int) -> None:
    if not 0 <= lo < hi <= size:
        raise ValueError(f"[{lo}, {hi}) is not a non-empty slice of a tree of size {size}")


def complement_plan(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """The maximal ranges of RFC 9162 2.1.1's recursion over [0, size) lying wholly outside
    [lo, hi), left to right: with the slice's leaves they give MTH(D[size]) (see root_from_slice).
    ValueError unless 0 <= lo < hi <= size."""
    _check_slice(lo, hi, size)
    plan: list[tuple[int, int]] = []
    pending = [(0, size)]
    while pending:
        start, end = pending.pop()
        if end <= lo or start >= hi:
            plan.append((start, end))
        elif start < lo or end > hi:
            mid = start + _split(end - start)
            pending += [(mid, end), (start, mid)]
    return plan


def root_from_slice(
    lo: int,
    hi: int,
    size: int,
    slice_leaves: Sequence[bytes],
    complement: Mapping[tuple[int, int], bytes],
) -> bytes:
    """MTH(D[size]) recomputed from the leaf hashes of leaves lo..hi-1 and the MTHs of
    `complement_plan(lo, hi, size)` (RFC 9162 2.1.1), so an offline verifier can compare it with a
    signed root. ValueError on bad bounds or a slice of the wrong length; KeyError naming a
    missing complement range."""
    _check_slice(lo, hi, size)
    if len(slice_leaves) != hi - lo:
        raise ValueError(f"the slice [{lo}, {hi}) needs {hi - lo} leaves, got {len(slice_leaves)}")

    def subtree(start: int, end: int) -> bytes:
        if end <= lo or start >= hi:
            return complement[(start, end)]
        if lo <= start and end <= hi:
            return root_from_leaves(slice_leaves[start - lo : end - lo])
        mid = start + _split(end - start)
        return node_hash(subtree(start, mid), subtree(mid, end))

    return subtree(0, size)
