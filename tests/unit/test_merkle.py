"""The transparency log's Merkle tree against the reference vectors of
RFC 6962's authors (certificate-transparency and transparency-dev/merkle
test data), and proofs checked both ways for every pair of sizes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksmart_common import merkle

LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
TREE = merkle.MemoryTree(merkle.leaf_hash(leaf) for leaf in LEAVES)


def _hex(hashes):
    return [h.hex() for h in hashes]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_the_root_of_each_size_is_the_reference_one(size):
    assert TREE.root(size).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_are_the_reference_ones_and_verify(index, size):
    proof = TREE.inclusion_proof(index, size)
    assert _hex(proof) == INCLUSION[(index, size)]
    merkle.verify_inclusion(index, size, TREE.leaves[index], proof, TREE.root(size))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_are_the_reference_ones_and_verify(old, new):
    proof = TREE.consistency_proof(old, new)
    assert _hex(proof) == CONSISTENCY[(old, new)]
    merkle.verify_consistency(old, new, proof, TREE.root(old), TREE.root(new))


def test_every_proof_between_every_size_verifies_and_a_wrong_root_does_not():
    for new in range(1, 9):
        for index in range(new):
            proof = TREE.inclusion_proof(index, new)
            merkle.verify_inclusion(index, new, TREE.leaves[index], proof, TREE.root(new))
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(index, new, TREE.leaves[index], proof, TREE.root(new - 1))
        for old in range(1, new + 1):
            proof = TREE.consistency_proof(old, new)
            merkle.verify_consistency(old, new, proof, TREE.root(old), TREE.root(new))
            if old < new:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(old, new, proof, TREE.root(old - 1), TREE.root(new))


def test_a_truncated_or_padded_proof_is_refused():
    proof = TREE.inclusion_proof(5, 8)
    for wrong in (proof[:-1], [*proof, proof[0]]):
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(5, 8, TREE.leaves[5], wrong, TREE.root(8))
    consistency = TREE.consistency_proof(6, 8)
    for wrong in (consistency[:-1], [*consistency, consistency[0]], []):
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(6, 8, wrong, TREE.root(6), TREE.root(8))


def test_a_rewritten_history_is_not_consistent():
    """An old leaf changed, however the rest is kept: no proof links the trees."""
    rewritten = merkle.MemoryTree(TREE.leaves)
    rewritten.leaves[2] = merkle.leaf_hash(b"forged")
    proof = rewritten.consistency_proof(4, 8)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(4, 8, proof, TREE.root(4), rewritten.root(8))


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_the_compact_range_follows_the_tree_as_it_grows(leaves, data):
    hashed = [merkle.leaf_hash(leaf) for leaf in leaves]
    edge = merkle.CompactRange()
    tree = merkle.MemoryTree(hashed)
    for size, leaf in enumerate(hashed, start=1):
        edge.append(leaf)
        assert edge.root() == tree.root(size)
    resumed = merkle.CompactRange(edge.size, edge.peaks)
    assert resumed.root() == tree.root()
    index = data.draw(st.integers(0, len(hashed) - 1))
    merkle.verify_inclusion(
        index, len(hashed), hashed[index], tree.inclusion_proof(index), edge.root()
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(0, 9_000), st.data())
def test_extending_by_aligned_subtrees_is_appending_leaf_by_leaf(start, count, data):
    """CompactRange.extend hashes whole subtrees at a time, across chunk
    boundaries and from any size: the same peaks as one append a leaf."""
    hashed = [merkle.leaf_hash(index.to_bytes(4, "big")) for index in range(start + count)]
    one_by_one = merkle.CompactRange()
    for leaf in hashed:
        one_by_one.append(leaf)
    resumed_at = data.draw(st.integers(0, start))
    batched = merkle.CompactRange()
    batched.extend(hashed[:resumed_at])
    batched.extend(iter(hashed[resumed_at:]))
    assert (batched.size, batched.peaks) == (one_by_one.size, one_by_one.peaks)
    assert batched.root() == merkle.root(hashed)
