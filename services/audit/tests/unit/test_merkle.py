"""RFC 6962 / RFC 9162 Merkle hashing, proof plans and verification against published vectors and a
naive reference (L1 tamper evidence, L2 verifiable exports)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.audit.domain.merkle import (
    EMPTY_ROOT,
    NodeRef,
    StreamingRoot,
    appended_nodes,
    border,
    complement_plan,
    consistency_plan,
    inclusion_plan,
    leaf_hash,
    node_hash,
    range_hash,
    range_nodes,
    root_from_leaves,
    root_from_slice,
    verify_consistency,
    verify_inclusion,
)

pytestmark = pytest.mark.unit

FAST = settings(max_examples=60, deadline=None)
SLOW = settings(max_examples=15, deadline=None)
MAX_SIZE = 300

# --- Published vectors --------------------------------------------------------------------------
# Leaves, node hashes and roots: transparency-dev/merkle, testonly/constants.go (LeafInputs,
# NodeHashes, RootHashes). Inclusion and consistency proofs: transparency-dev/merkle,
# proof/verify_test.go (inclusionProofs, consistencyProofs; its leaf numbers are 1-based, the
# indices below are 0-based).

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

NODE_HASHES_HEX = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
PUBLISHED_NODES: dict[NodeRef, bytes] = {
    (level, index): bytes.fromhex(h)
    for level, row in enumerate(NODE_HASHES_HEX)
    for index, h in enumerate(row)
}

ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# (index, size, proof)
INCLUSION_VECTORS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]

# (first, second, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
PUBLISHED_LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]


# --- Naive reference: the RFC 9162 2.1.1 / 2.1.3.1 / 2.1.4.1 definitions, literally ------------


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = ref_split(n)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = ref_split(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, leaves, True) if 0 < m < len(leaves) else []


def ref_nodes(leaves: Sequence[bytes]) -> dict[NodeRef, bytes]:
    """Every perfect aligned subtree of the tree, each hashed from scratch."""
    nodes: dict[NodeRef, bytes] = {}
    level = 0
    while 1 << level <= len(leaves):
        width = 1 << level
        for index in range(len(leaves) // width):
            nodes[(level, index)] = ref_mth(leaves[index * width : (index + 1) * width])
        level += 1
    return nodes


Range = tuple[int, int]


def ref_ranges(
    lo: int, hi: int, parent: Range | None = None
) -> Iterator[tuple[Range, Range | None]]:
    """Every range of the RFC recursion over [lo, hi) with its parent range."""
    yield (lo, hi), parent
    if hi - lo > 1:
        mid = lo + ref_split(hi - lo)
        yield from ref_ranges(lo, mid, (lo, hi))
        yield from ref_ranges(mid, hi, (lo, hi))


def make_leaves(size: int, seed: bytes = b"") -> list[bytes]:
    return [ref_leaf(seed + index.to_bytes(4, "big")) for index in range(size)]


def flip(value: bytes, bit: int = 3) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


def build(plan: list[tuple[int, int]], nodes: dict[NodeRef, bytes]) -> list[bytes]:
    """A proof as the store builds it: the plan's ranges hashed from stored perfect nodes only."""
    return [range_hash(lo, hi, nodes) for lo, hi in plan]


def needed(plan: list[tuple[int, int]]) -> set[NodeRef]:
    return {ref for lo, hi in plan for ref in range_nodes(lo, hi)}


sizes = st.integers(1, MAX_SIZE)
seeds = st.binary(max_size=4)


# --- Published vectors --------------------------------------------------------------------------


def test_l1_published_leaf_and_node_hashes() -> None:
    assert ROOTS[0] == EMPTY_ROOT
    for index, leaf in enumerate(PUBLISHED_LEAVES):
        assert leaf == PUBLISHED_NODES[(0, index)]
    for (level, index), value in PUBLISHED_NODES.items():
        if level:
            left = PUBLISHED_NODES[(level - 1, 2 * index)]
            right = PUBLISHED_NODES[(level - 1, 2 * index + 1)]
            assert node_hash(left, right) == value
    assert dict(appended_nodes(0, PUBLISHED_LEAVES, {})) == PUBLISHED_NODES


@pytest.mark.parametrize("size", range(9))
def test_l1_published_roots(size: int) -> None:
    leaves = PUBLISHED_LEAVES[:size]
    assert root_from_leaves(leaves) == ROOTS[size]
    stream = StreamingRoot()
    stream.extend(leaves)
    assert (stream.size, stream.root()) == (size, ROOTS[size])
    if size:
        assert range_hash(0, size, PUBLISHED_NODES) == ROOTS[size]
        assert set(border(size)) <= PUBLISHED_NODES.keys()


@pytest.mark.parametrize(("index", "size", "proof_hex"), INCLUSION_VECTORS)
def test_l1_published_inclusion_proofs(index: int, size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    plan = inclusion_plan(index, size)
    assert build(plan, PUBLISHED_NODES) == proof
    leaf, root = PUBLISHED_LEAVES[index], ROOTS[size]
    assert verify_inclusion(leaf, index, size, proof, root)
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], root),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root),
        (leaf, index, size, [root, *proof], root),
        (flip(leaf), index, size, proof, root),
        (leaf, index, size, proof, flip(root)),
    ]
    probes += [
        (leaf, index, size, [*proof[:i], flip(sibling), *proof[i + 1 :]], root)
        for i, sibling in enumerate(proof)
    ]
    if proof:
        probes.append((leaf, index, size, proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    for probe in probes:
        assert not verify_inclusion(*probe), probe


@pytest.mark.parametrize(("first", "second", "proof_hex"), CONSISTENCY_VECTORS)
def test_l1_published_consistency_proofs(first: int, second: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert build(consistency_plan(first, second), PUBLISHED_NODES) == proof
    root1, root2 = ROOTS[first], ROOTS[second]
    assert verify_consistency(first, second, root1, root2, proof)
    if not proof:
        return
    probes = [
        (first - 1, second, root1, root2, proof),
        (first + 1, second, root1, root2, proof),
        (first ^ 2, second, root1, root2, proof),
        (first, second * 2, root1, root2, proof),
        (first, second // 2, root1, root2, proof),
        (first, second, SOME_HASH, root2, proof),
        (first, second, root1, SOME_HASH, proof),
        (first, second, root2, root1, proof),
        (first, second, root1, root2, []),
        (first, second, root1, root2, [*proof, b""]),
        (first, second, root1, root2, [*proof, root1]),
        (first, second, root1, root2, [*proof, root2]),
        (first, second, root1, root2, [b"", *proof]),
        (first, second, root1, root2, [root1, *proof]),
        (first, second, root1, root2, [root2, *proof]),
        (first, second, root1, root2, [proof[0], *proof]),
        (first, second, root1, root2, proof[:-1]),
        (first, second, flip(root1), root2, proof),
        (first, second, root1, flip(root2), proof),
    ]
    probes += [
        (first, second, root1, root2, [*proof[:i], flip(node, 4), *proof[i + 1 :]])
        for i, node in enumerate(proof)
    ]
    for probe in probes:
        assert not verify_consistency(*probe), probe


def test_l1_rfc_6962_example_tree_of_seven() -> None:
    """The audit paths and consistency proofs of RFC 6962 section 2.1.3, by node name."""
    names = {
        (1, 2): "b",
        (2, 3): "c",
        (3, 4): "d",
        (5, 6): "f",
        (0, 2): "g",
        (2, 4): "h",
        (4, 6): "i",
        (6, 7): "j",
        (0, 4): "k",
        (4, 7): "l",
    }

    def named(plan: list[tuple[int, int]]) -> list[str]:
        return [names[r] for r in plan]

    assert named(inclusion_plan(0, 7)) == ["b", "h", "l"]
    assert named(inclusion_plan(3, 7)) == ["c", "g", "l"]
    assert named(inclusion_plan(4, 7)) == ["f", "j", "k"]
    assert named(inclusion_plan(6, 7)) == ["i", "k"]
    assert named(consistency_plan(3, 7)) == ["c", "d", "g", "l"]
    assert named(consistency_plan(4, 7)) == ["l"]
    assert named(consistency_plan(6, 7)) == ["i", "j", "k"]


def test_l1_trivial_consistency() -> None:
    root = ROOTS[5]
    assert consistency_plan(0, 5) == consistency_plan(5, 5) == []
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, ROOTS[4], [])
    assert not verify_consistency(5, 5, root, root, [EMPTY_ROOT])
    assert not verify_consistency(0, 5, root, root, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root, [EMPTY_ROOT])
    assert not verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])
    assert not verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])


@pytest.mark.parametrize(
    "args",
    [
        (PUBLISHED_LEAVES[0], -1, 8, [], ROOTS[8]),
        (PUBLISHED_LEAVES[0], 0, -1, [], ROOTS[8]),
        (PUBLISHED_LEAVES[0], 0, 0, [], EMPTY_ROOT),
        (PUBLISHED_LEAVES[0], 8, 8, [], ROOTS[8]),
        (PUBLISHED_LEAVES[0][:31], 0, 1, [], ROOTS[1][:31]),
        (b"", 0, 1, [], b""),
        (PUBLISHED_LEAVES[0], 0, 2, [b"short"], ROOTS[2]),
    ],
)
def test_l1_malformed_inclusion_input_is_false_not_an_error(
    args: tuple[bytes, int, int, list[bytes], bytes],
) -> None:
    assert verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (-1, 8, EMPTY_ROOT, ROOTS[8], []),
        (8, 4, ROOTS[8], ROOTS[4], []),
        (3, 8, ROOTS[3][:16], ROOTS[8], [SOME_HASH]),
        (3, 8, ROOTS[3], ROOTS[8], [b"x" * 33]),
        (0, 0, b"", b"", []),
    ],
)
def test_l1_malformed_consistency_input_is_false_not_an_error(
    args: tuple[int, int, bytes, bytes, list[bytes]],
) -> None:
    assert verify_consistency(*args) is False


@given(
    index=st.integers(-(2**70), 2**70),
    size=st.integers(-(2**70), 2**70),
    path=st.lists(st.binary(min_size=31, max_size=33), max_size=80),
    root=st.binary(min_size=31, max_size=33),
)
@FAST
def test_l1_verifiers_never_raise(index: int, size: int, path: list[bytes], root: bytes) -> None:
    assert verify_inclusion(SOME_HASH, index, size, path, root) in (True, False)
    assert verify_consistency(index, size, SOME_HASH, root, path) in (True, False)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (inclusion_plan, (0, 0)),
        (inclusion_plan, (5, 5)),
        (inclusion_plan, (-1, 5)),
        (consistency_plan, (6, 5)),
        (consistency_plan, (-1, 5)),
        (border, (-1,)),
        (range_nodes, (3, 3)),
        (range_nodes, (2, 5)),
        (range_nodes, (4, 2)),
        (range_nodes, (-4, 0)),
        (complement_plan, (2, 2, 5)),
        (complement_plan, (2, 6, 5)),
        (complement_plan, (-1, 2, 5)),
    ],
)
def test_l1_plans_refuse_impossible_bounds(
    call: Callable[..., object], args: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        call(*args)


# --- Properties against the naive reference -----------------------------------------------------


@given(size=st.integers(0, MAX_SIZE), seed=seeds)
@FAST
def test_l1_root_matches_reference(size: int, seed: bytes) -> None:
    leaves = make_leaves(size, seed)
    expected = ref_mth(leaves)
    assert root_from_leaves(leaves) == expected
    assert root_from_leaves(iter(leaves)) == expected
    if size:
        assert range_hash(0, size, ref_nodes(leaves)) == expected


@given(size=sizes, seed=seeds)
@FAST
def test_l1_streaming_root_matches_reference_at_every_prefix(size: int, seed: bytes) -> None:
    leaves = make_leaves(size, seed)
    nodes = ref_nodes(leaves)
    stream = StreamingRoot()
    assert stream.root() == EMPTY_ROOT
    for count, leaf in enumerate(leaves, start=1):
        stream.add(leaf)
        assert stream.root() == range_hash(0, count, nodes)
    assert stream.size == size


def test_l1_streaming_root_consumes_a_generator() -> None:
    size = (1 << 14) + 3
    stream = StreamingRoot()
    stream.extend(ref_leaf(index.to_bytes(4, "big")) for index in range(size))
    assert stream.size == size
    assert stream.root() == root_from_leaves(make_leaves(size))


@given(size=st.integers(0, 5000))
@FAST
def test_l1_border_is_the_compact_range(size: int) -> None:
    refs = border(size)
    assert len(refs) == size.bit_count()
    start = 0
    for level, index in refs:
        assert index << level == start
        start += 1 << level
    assert start == size
    assert [level for level, _ in refs] == sorted({level for level, _ in refs}, reverse=True)


@given(size=sizes, seed=seeds)
@SLOW
def test_l1_every_recursion_range_hashes_from_stored_nodes(size: int, seed: bytes) -> None:
    leaves = make_leaves(size, seed)
    nodes = ref_nodes(leaves)
    for (lo, hi), _ in ref_ranges(0, size):
        refs = range_nodes(lo, hi)
        assert len(refs) == (hi - lo).bit_count()
        assert range_hash(lo, hi, nodes) == ref_mth(leaves[lo:hi])


@pytest.mark.parametrize("size", [*range(1, 18), 31, 32, 33, 64, 100, 255, 256, 257, 300])
def test_l1_every_inclusion_proof_of_a_tree(size: int) -> None:
    leaves = make_leaves(size, b"incl")
    nodes = ref_nodes(leaves)
    root = ref_mth(leaves)
    for index in range(size):
        plan = inclusion_plan(index, size)
        assert needed(plan) <= nodes.keys()
        proof = build(plan, nodes)
        assert proof == ref_path(index, leaves)
        assert verify_inclusion(leaves[index], index, size, proof, root)


@given(data=st.data(), size=sizes, seed=seeds)
@FAST
def test_l1_inclusion_proof_matches_reference_and_resists_tampering(
    data: st.DataObject, size: int, seed: bytes
) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    leaves = make_leaves(size, seed)
    root = ref_mth(leaves)
    proof = build(inclusion_plan(index, size), ref_nodes(leaves))
    assert proof == ref_path(index, leaves)
    leaf = leaves[index]
    assert verify_inclusion(leaf, index, size, proof, root)
    assert not verify_inclusion(flip(leaf), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, flip(root, 0))
    assert not verify_inclusion(leaf, index, size + (1 << size.bit_length()), proof, root)
    for other in {index - 1, index + 1, index ^ 1} & set(range(size)) - {index}:
        assert not verify_inclusion(leaf, other, size, proof, root)
        assert not verify_inclusion(leaves[other], index, size, proof, root)
    for i, sibling in enumerate(proof):
        tampered = [*proof[:i], flip(sibling, 7), *proof[i + 1 :]]
        assert not verify_inclusion(leaf, index, size, tampered, root)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
        assert not verify_inclusion(leaf, index, size, [*proof, SOME_HASH], root)


@given(data=st.data(), second=sizes, seed=seeds)
@FAST
def test_l1_consistency_proof_matches_reference_and_resists_tampering(
    data: st.DataObject, second: int, seed: bytes
) -> None:
    first = data.draw(st.integers(0, second), label="first")
    leaves = make_leaves(second, seed)
    plan = consistency_plan(first, second)
    nodes = ref_nodes(leaves)
    assert needed(plan) <= nodes.keys()
    proof = build(plan, nodes)
    assert proof == ref_proof(first, leaves)
    root1, root2 = ref_mth(leaves[:first]), ref_mth(leaves)
    assert verify_consistency(first, second, root1, root2, proof)
    if not 0 < first < second:
        return
    assert not verify_consistency(first, second, flip(root1), root2, proof)
    assert not verify_consistency(first, second, root1, flip(root2), proof)
    assert not verify_consistency(first, second, root2, root1, proof)
    assert not verify_consistency(first, second, root1, root2, proof[:-1])
    assert not verify_consistency(first, second, root1, root2, [*proof, SOME_HASH])
    forked = [*leaves[: first - 1], SOME_HASH, *leaves[first:]]
    assert not verify_consistency(first, second, root1, ref_mth(forked), proof)
    for i, node in enumerate(proof):
        tampered = [*proof[:i], flip(node, 5), *proof[i + 1 :]]
        assert not verify_consistency(first, second, root1, root2, tampered)


@given(data=st.data(), size=st.integers(0, MAX_SIZE), seed=seeds)
@FAST
def test_l1_appended_nodes_equal_full_recomputation(
    data: st.DataObject, size: int, seed: bytes
) -> None:
    batch = data.draw(st.integers(0, 70), label="batch")
    leaves = make_leaves(size + batch, seed)
    before, after = ref_nodes(leaves[:size]), ref_nodes(leaves)
    border_hashes = {ref: before[ref] for ref in border(size)}
    completed = appended_nodes(size, leaves[size:], border_hashes)
    assert dict(completed) == {ref: h for ref, h in after.items() if ref not in before}
    assert len(completed) == len(dict(completed))
    seen = set(before)
    for (level, index), _ in completed:
        if level:
            assert {(level - 1, 2 * index), (level - 1, 2 * index + 1)} <= seen
        seen.add((level, index))


@given(
    batches=st.lists(st.integers(0, 40), max_size=12),
    seed=seeds,
)
@FAST
def test_l1_batched_appends_store_every_perfect_node(batches: list[int], seed: bytes) -> None:
    leaves = make_leaves(sum(batches), seed)
    store: dict[NodeRef, bytes] = {}
    size = 0
    for count in batches:
        store.update(appended_nodes(size, leaves[size : size + count], store))
        size += count
        if size:
            assert range_hash(0, size, store) == ref_mth(leaves[:size])
    assert store == ref_nodes(leaves)


def test_l1_appending_without_the_border_fails_loudly() -> None:
    with pytest.raises(KeyError):
        appended_nodes(3, [SOME_HASH], {(1, 0): SOME_HASH})
    with pytest.raises(KeyError):
        range_hash(0, 3, {(1, 0): SOME_HASH})


# --- Slices for exports (L2) --------------------------------------------------------------------


def outside(r: tuple[int, int], lo: int, hi: int) -> bool:
    return r[1] <= lo or r[0] >= hi


@given(data=st.data(), size=sizes, seed=seeds)
@FAST
def test_l2_complement_plan_is_the_maximal_outside_ranges(
    data: st.DataObject, size: int, seed: bytes
) -> None:
    lo = data.draw(st.integers(0, size - 1), label="lo")
    hi = data.draw(st.integers(lo + 1, size), label="hi")
    plan = complement_plan(lo, hi, size)
    expected = [
        r
        for r, parent in ref_ranges(0, size)
        if outside(r, lo, hi) and (parent is None or not outside(parent, lo, hi))
    ]
    assert plan == sorted(expected)
    covered = sorted([*plan, (lo, hi)])
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert (covered[0][0], covered[-1][1]) == (0, size)
    assert len(plan) <= 2 * size.bit_length()


@given(data=st.data(), size=sizes, seed=seeds)
@FAST
def test_l2_slice_recomputes_the_signed_root(data: st.DataObject, size: int, seed: bytes) -> None:
    lo = data.draw(st.integers(0, size - 1), label="lo")
    hi = data.draw(st.integers(lo + 1, size), label="hi")
    leaves = make_leaves(size, seed)
    nodes = ref_nodes(leaves)
    root = ref_mth(leaves)
    plan = complement_plan(lo, hi, size)
    assert needed(plan) <= nodes.keys()
    complement = {(a, b): range_hash(a, b, nodes) for a, b in plan}
    exported = leaves[lo:hi]
    assert root_from_slice(lo, hi, size, exported, complement) == root

    at = data.draw(st.integers(0, hi - lo - 1), label="tampered leaf")
    edited = [*exported[:at], flip(exported[at]), *exported[at + 1 :]]
    assert root_from_slice(lo, hi, size, edited, complement) != root
    if hi - lo > 1:
        swapped = [exported[-1], *exported[1:-1], exported[0]]
        assert root_from_slice(lo, hi, size, swapped, complement) != root
    if hi < size:
        shifted = leaves[lo + 1 : hi + 1]
        assert root_from_slice(lo, hi, size, shifted, complement) != root
    if plan:
        first = plan[0]
        wrong = {**complement, first: flip(complement[first])}
        assert root_from_slice(lo, hi, size, exported, wrong) != root


def test_l2_slice_of_the_whole_tree_needs_no_complement() -> None:
    assert complement_plan(0, 8, 8) == []
    assert root_from_slice(0, 8, 8, PUBLISHED_LEAVES, {}) == ROOTS[8]
    complement = {(0, 4): PUBLISHED_NODES[(2, 0)], (6, 8): PUBLISHED_NODES[(1, 3)]}
    assert complement_plan(4, 6, 8) == [(0, 4), (6, 8)]
    assert root_from_slice(4, 6, 8, PUBLISHED_LEAVES[4:6], complement) == ROOTS[8]


def test_l2_slice_of_the_wrong_length_or_missing_complement_refused() -> None:
    with pytest.raises(ValueError, match="needs 2 leaves"):
        root_from_slice(4, 6, 8, PUBLISHED_LEAVES[4:7], {})
    with pytest.raises(KeyError):
        root_from_slice(4, 6, 8, PUBLISHED_LEAVES[4:6], {(0, 4): PUBLISHED_NODES[(2, 0)]})
