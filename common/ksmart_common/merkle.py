"""The Merkle tree of a transparency log, as RFC 6962 and RFC 9162 define
it: the tree over a log's leaves in order, its root (the Merkle tree hash,
MTH), and the two proofs a verifier needs — that a leaf is in a tree
(inclusion) and that a tree is an append-only extension of an older one
(consistency). Hashing is SHA-256 with the RFC's domain separation:
a leaf is SHA-256(0x00 || leaf data), a node SHA-256(0x01 || left || right).

Pure: proofs are built from a `subtree` function that gives the hash of
any range of leaves [start, end), so a log may keep its nodes where it
likes (memory here; a table of tiles in the checkpointer). Every range the
proofs ask for is a whole aligned subtree or a right edge made of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
EXTEND_CHUNK = 4096  # leaves hashed at a time by CompactRange.extend: a power of two
_sha256 = hashlib.sha256

# The hash of leaves [start, end) of the tree: start < end.
Subtree = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not prove what it claims (or cannot be asked for)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(size: int) -> int:
    """The largest power of two smaller than size (size > 1): where the
    tree over `size` leaves splits into its left and right subtrees."""
    return 1 << ((size - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of the leaves (given as their leaf hashes)."""
    edge = CompactRange()
    edge.extend(leaf_hashes)
    return edge.root()


class CompactRange:
    """The right edge of a growing tree: the hashes of its perfect subtrees,
    largest first, enough to give the root after each append in O(log n)
    memory. A checkpointer keeps one to follow the log as it grows."""

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if len(peaks) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} peaks")
        self.size = size
        self.peaks = list(peaks)

    def append(self, hashed_leaf: bytes) -> None:
        self._push(hashed_leaf, 1)

    def _push(self, subtree_hash: bytes, leaves: int) -> None:
        """Append a perfect subtree of `leaves` (a power of two that divides
        the size): each further trailing zero bit of the new size is two
        equal subtrees to merge."""
        self.peaks.append(subtree_hash)
        self.size += leaves
        merges = (self.size & -self.size).bit_length() - leaves.bit_length()
        for _ in range(merges):
            right = self.peaks.pop()
            left = self.peaks.pop()
            self.peaks.append(node_hash(left, right))

    def extend(self, hashed_leaves: Iterable[bytes]) -> None:
        """As `append` for each leaf, but hashing whole aligned subtrees level
        by level: CPython spends most of a leaf-by-leaf append on the
        interpreter, not on SHA-256, and this is ~8 times faster (an auditor
        recomputes the root of millions of events; make bench, replay)."""
        leaves = iter(hashed_leaves)
        while chunk := list(islice(leaves, EXTEND_CHUNK)):
            start = 0
            while start < len(chunk):
                aligned = self.size & -self.size or EXTEND_CHUNK
                count = min(aligned, 1 << ((len(chunk) - start).bit_length() - 1))
                level = chunk[start : start + count]
                while len(level) > 1:
                    level = [
                        _sha256(NODE_PREFIX + left + right).digest()
                        for left, right in zip(level[0::2], level[1::2], strict=True)
                    ]
                self._push(level[0], count)
                start += count

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        folded = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            folded = node_hash(peak, folded)
        return folded


# -- building proofs (the log's side) --------------------------------------------


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 2.1.1: the sibling hashes from
    the leaf up to the root."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    return _path(index, 0, size, subtree)


def _path(index: int, start: int, end: int, subtree: Subtree) -> list[bytes]:
    if end - start == 1:
        return []
    k = split(end - start)
    if index < start + k:
        return [*_path(index, start, start + k, subtree), subtree(start + k, end)]
    return [*_path(index, start + k, end, subtree), subtree(start, start + k)]


def consistency_proof(old_size: int, new_size: int, subtree: Subtree) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 6962 2.1.2."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from {old_size} to {new_size}")
    if old_size == new_size:
        return []
    return _subproof(old_size, 0, new_size, True, subtree)


def _subproof(m: int, start: int, end: int, whole: bool, subtree: Subtree) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [subtree(start, end)]
    k = split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, whole, subtree), subtree(start + k, end)]
    return [*_subproof(m - k, start + k, end, False, subtree), subtree(start, start + k)]


class MemoryTree:
    """A whole tree in memory, for tests and small logs: leaf hashes kept,
    every subtree hash computed on demand."""

    def __init__(self, hashed_leaves: Iterable[bytes] = ()) -> None:
        self.leaves = list(hashed_leaves)

    def subtree(self, start: int, end: int) -> bytes:
        return root(self.leaves[start:end])

    def root(self, size: int | None = None) -> bytes:
        return root(self.leaves[: len(self.leaves) if size is None else size])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, len(self.leaves) if size is None else size, self.subtree)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new = len(self.leaves) if new_size is None else new_size
        return consistency_proof(old_size, new, self.subtree)


# -- checking proofs (the verifier's side: RFC 9162 2.1.3.2 and 2.1.4.2) ---------


def root_from_inclusion_proof(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn = index, size - 1
    result = hashed_leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    return result


def verify_inclusion(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes], tree_root: bytes
) -> None:
    """Nothing if the leaf is at `index` in the tree of `size` with this
    root; ProofError saying why not."""
    if root_from_inclusion_proof(index, size, hashed_leaf, proof) != tree_root:
        raise ProofError(f"leaf {index} is not in the tree of {size} with that root")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Nothing if the tree of new_size (new_root) extends the tree of
    old_size (old_root) by appending only; ProofError saying why not."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of {new_size} cannot extend one of {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of the same size need an empty proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for the tree of {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("the empty tree needs an empty proof")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the old root of the tree of {old_size}")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the new root of the tree of {new_size}")
