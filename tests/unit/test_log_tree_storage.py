"""The checkpointer's way of keeping the tree (ksmart_checkpointer.
tree_storage): nodes stored once as the log grows, in batches of any size,
answer every root and proof exactly as merkle.MemoryTree does, and the
peaks read back from storage resume the compact range where it stopped."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ksmart_checkpointer import tree_storage
from ksmart_common import merkle


def leaves(count: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(count)]


def stored(batches: list[int]) -> tuple[dict, merkle.CompactRange, list[bytes]]:
    """The nodes of a log appended batch by batch, each batch resuming from
    the peaks read back out of the store (as a restarted checkpointer does)."""
    nodes: dict = {}
    hashed = leaves(sum(batches))
    size = 0
    edge = merkle.CompactRange()
    for batch in batches:
        peaks = [nodes[key] for key in tree_storage.peak_keys(size)]
        edge = merkle.CompactRange(size, peaks)
        for level, index, value in tree_storage.new_nodes(edge, hashed[size : size + batch]):
            assert (level, index) not in nodes  # written once, never changed
            nodes[level, index] = value
        size += batch
    return nodes, edge, hashed


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6), st.data())
def test_stored_nodes_answer_as_the_whole_tree_does(batches, data):
    nodes, edge, hashed = stored(batches)
    size = len(hashed)
    tree = merkle.MemoryTree(hashed)
    subtree = tree_storage.subtree_from(nodes)
    assert edge.root() == tree.root()
    assert tree_storage.range_hash(0, size, nodes.__getitem__) == tree.root()
    # Exactly the perfect subtrees: 2n - popcount(n) nodes.
    assert len(nodes) == 2 * size - bin(size).count("1")

    tree_size = data.draw(st.integers(min_value=1, max_value=size))
    index = data.draw(st.integers(min_value=0, max_value=tree_size - 1))
    assert merkle.inclusion_proof(index, tree_size, subtree) == tree.inclusion_proof(
        index, tree_size
    )
    old_size = data.draw(st.integers(min_value=1, max_value=tree_size))
    assert merkle.consistency_proof(old_size, tree_size, subtree) == tree.consistency_proof(
        old_size, tree_size
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_a_proof_names_in_advance_every_node_it_reads(size, data):
    nodes, _, _ = stored([size])
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old_size = data.draw(st.integers(min_value=1, max_value=size))
    for build in (
        lambda subtree: merkle.inclusion_proof(index, size, subtree),
        lambda subtree: merkle.consistency_proof(old_size, size, subtree),
    ):
        wanted = tree_storage.proof_keys(build)
        only_those = {key: nodes[key] for key in wanted}
        # Built from the named nodes alone (a missing one is a KeyError).
        assert build(tree_storage.subtree_from(only_those)) == build(
            tree_storage.subtree_from(nodes)
        )
        # Few: at most (log2 n)² of them.
        assert len(wanted) <= max(1, size.bit_length()) ** 2


def test_peaks_of_a_size_are_its_perfect_subtrees_largest_first():
    assert tree_storage.peak_keys(0) == []
    assert tree_storage.peak_keys(1) == [(0, 0)]
    assert tree_storage.peak_keys(6) == [(2, 0), (1, 2)]
    assert tree_storage.peak_keys(13) == [(3, 0), (2, 2), (0, 12)]
