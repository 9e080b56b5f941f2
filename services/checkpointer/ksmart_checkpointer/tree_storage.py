"""How the log's tree is kept: every perfect subtree's hash, once.

A node is (level, index): the hash of leaves [index·2^level,
(index+1)·2^level), level 0 being the leaf hashes themselves. Nodes never
change once their leaves exist (leaf indices never move: the checkpointer
appends an event only behind the event store's ordering barrier), so they
are written once and read for ever; the tree of any size is made of them.

- Appending: a CompactRange follows the right edge; each append completes
  the nodes whose last leaf it is (new_nodes), and the range itself is the
  peaks of the stored tree (peak_keys), so a restart resumes from storage.
- Answering: every range a proof asks for (merkle.inclusion_proof and
  consistency_proof) is a perfect node or a right edge made of perfect
  nodes (range_hash), so a proof needs O(log² n) stored hashes at most,
  which proof_keys names in advance for one read.

Pure: the checkpointer's store (store.py) keeps the nodes in PostgreSQL;
tests keep them in a dict and compare every answer with merkle.MemoryTree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from ksmart_common import merkle

NodeKey = tuple[int, int]  # (level, index)
# The stored hash of a node.
NodeLookup = Callable[[NodeKey], bytes]


def peak_keys(size: int) -> list[NodeKey]:
    """The perfect subtrees a tree of `size` leaves is made of, largest
    first: the nodes a CompactRange of that size holds."""
    keys = []
    start = 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def new_nodes(
    edge: merkle.CompactRange, hashed_leaves: Iterable[bytes]
) -> Iterator[tuple[int, int, bytes]]:
    """Append the leaves to `edge` and yield each node they complete,
    (level, index, hash), leaves included, in the order they complete."""
    for hashed in hashed_leaves:
        index = edge.size
        yield 0, index, hashed
        # As CompactRange.append, keeping each merged node on the way up:
        # a node that is a right child completes its parent.
        edge.peaks.append(hashed)
        edge.size += 1
        level = 0
        while index >> level & 1:
            right = edge.peaks.pop()
            left = edge.peaks.pop()
            edge.peaks.append(merkle.node_hash(left, right))
            level += 1
            yield level, index >> level, edge.peaks[-1]


def range_hash(start: int, end: int, node: NodeLookup) -> bytes:
    """The Merkle tree hash of leaves [start, end), from perfect nodes: the
    whole range if it is one, else its RFC 6962 split, recursively."""
    size = end - start
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return node((level, start >> level))
    k = merkle.split(size)
    return merkle.node_hash(range_hash(start, start + k, node), range_hash(start + k, end, node))


def range_keys(start: int, end: int) -> list[NodeKey]:
    """The nodes range_hash(start, end) reads."""
    wanted: list[NodeKey] = []

    def record(key: NodeKey) -> bytes:
        wanted.append(key)
        return bytes(merkle.HASH_SIZE)

    range_hash(start, end, record)
    return wanted


def subtree_from(nodes: Mapping[NodeKey, bytes]) -> merkle.Subtree:
    """A merkle.Subtree over stored nodes (KeyError for one not stored)."""
    return lambda start, end: range_hash(start, end, nodes.__getitem__)


def proof_keys(build: Callable[[merkle.Subtree], list[bytes]]) -> set[NodeKey]:
    """The nodes a proof reads: `build` (a proof made from a subtree
    function) is run once over placeholders to learn them, so the store
    fetches them in one query before the proof is made for real."""
    wanted: set[NodeKey] = set()

    def record(start: int, end: int) -> bytes:
        wanted.update(range_keys(start, end))
        return bytes(merkle.HASH_SIZE)

    build(record)
    return wanted
