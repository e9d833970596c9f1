"""Hash rings: which shard owns a key.

Theory of operation. Data is spread over several Raft groups (*shards*). Every
client must send a key to the same shard without asking anyone, so the choice is
a pure function of the key and the set of shard names, computed with a hash that
is stable across processes and platforms (:func:`kvstore.client._hash.hash64`,
64-bit BLAKE2b). Two rings stand behind one :class:`Ring` protocol:

* :class:`ConsistentHashRing` (Karger et al., 1997). Each shard places
  ``vnodes_per_shard`` *virtual nodes* on a circle of ``2**64`` points, at
  ``hash64(b"<name>#<index>")``. A key belongs to the first virtual node at or
  clockwise after ``hash64(key)``, wrapping past the top. A lookup is one hash
  and one binary search: O(log(S·V)). Many virtual nodes per shard smooth out the
  arc lengths: the load of a shard deviates from the mean by about
  ``1/sqrt(V)``; with the default of 512 it stays within ±20 % (measured, see
  docs/ring.md).
* :class:`RendezvousRing` (highest random weight; Thaler and Ravishankar, 1998).
  Every shard scores the key with ``hash64(name || 0x00 || key)``; the highest
  score wins. No virtual nodes, perfectly even in expectation, but a lookup
  costs one hash per shard: O(S).

Both are *minimally disruptive*: adding a shard moves only the keys the new
shard wins (about 1/(S+1) of them) and removing one moves only the keys it
owned; no key ever moves between two shards that are present both before and
after. Both are *history-free*: the mapping depends on the set of names only,
never on the order they were given or the sequence of additions and removals.

Rings are immutable values. :meth:`Ring.with_shard` and
:meth:`Ring.without_shard` return new rings, so a client can swap its ring
atomically, a reader never sees a half-updated one, and one ring can be shared
by threads and asyncio tasks without a lock.

For the ``ring-routing`` lab a student writes :func:`place_virtual_nodes`,
:meth:`ConsistentHashRing.shard_for` and :meth:`RendezvousRing.shard_for`; the
hash, the byte encodings, validation and invariant checks are given.

The exact bytes hashed, with worked examples, are in docs/ring.md; the tests
check those examples, so code and document cannot drift apart.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol, runtime_checkable

from kvstore.client._hash import HASH_SPACE, hash64
from kvstore.errors import InvalidArgument
from kvstore.invariants import invariant, invariant_failed
from kvstore.limits import MAX_RING_SHARDS, MAX_SHARD_NAME_BYTES, MAX_VNODES_PER_SHARD, check_key

# Chosen by measurement (bench/ring_bench.py, docs/ring.md): over 4,500 random
# sets of 2..16 shard names, 512 virtual nodes kept the busiest shard at or below
# 1.19x the mean (p99 1.13x) and the idlest at or above 0.82x; 256 reached 1.28x,
# 128 reached 1.33x. Lookup cost barely changes (one more bisect step per
# doubling); build cost is one hash per virtual node, about 10 ms for 16 shards.
DEFAULT_VNODES_PER_SHARD = 512

RingKind = Literal["consistent", "rendezvous"]
RING_KINDS: tuple[RingKind, ...] = ("consistent", "rendezvous")


@runtime_checkable
class Ring(Protocol):
    """Maps every key to exactly one shard; an immutable value.

    Contract (every implementation, and every test double, keeps all of it):

    * ``shards`` is the non-empty tuple of shard names, sorted, without
      duplicates. A ring is never empty.
    * ``shard_for(key)`` returns one of ``shards``. It is a pure function of the
      key's bytes and the *set* of shard names (and the ring's own parameters,
      such as a virtual-node count): the same inputs give the same shard in
      every process, on every platform, whatever order the names were given in.
    * ``with_shard(name)`` / ``without_shard(name)`` return a *new* ring and
      leave this one unchanged. After ``r2 = r.with_shard(n)``, every key either
      keeps its shard or moves to ``n``; after ``r2 = r.without_shard(n)``,
      only the keys of ``n`` move. Ideally about ``1/len(r2.shards)`` or
      ``1/len(r.shards)`` of all keys move, respectively.
    * Bad input raises :class:`kvstore.errors.InvalidArgument` (or a subclass
      such as :class:`kvstore.errors.KeyTooLargeError`), never another
      exception: a key that is not bytes, empty or over
      ``limits.MAX_KEY_BYTES``; a shard name that is not a non-empty string of
      at most ``limits.MAX_SHARD_NAME_BYTES`` UTF-8 bytes; adding a name that
      is present; removing a name that is absent or the last one.
    * ``check_invariants()`` raises :class:`kvstore.invariants.InvariantViolation`
      if the ring's internal structure is broken; it never returns a value.
    """

    @property
    def shards(self) -> tuple[str, ...]:
        """The shard names, sorted, without duplicates, never empty."""
        ...

    def shard_for(self, key: bytes) -> str:
        """Return the name of the shard that owns ``key``.

        Raises:
            InvalidArgument: ``key`` is not bytes, or is empty.
            KeyTooLargeError: ``key`` is longer than ``limits.MAX_KEY_BYTES``.
        """
        ...

    def with_shard(self, name: str) -> Ring:
        """Return a new ring that also holds shard ``name``.

        Raises:
            InvalidArgument: ``name`` is already present, invalid, or the ring is full.
        """
        ...

    def without_shard(self, name: str) -> Ring:
        """Return a new ring without shard ``name``.

        Raises:
            InvalidArgument: ``name`` is not present, or is the last shard.
        """
        ...

    def check_invariants(self) -> None:
        """Raise InvariantViolation if the internal structure is inconsistent."""
        ...


# --------------------------------------------------------------------------
# What is hashed. These three functions ARE the placement format: changing any
# byte of them re-routes every key of every deployed cluster. docs/ring.md.
# --------------------------------------------------------------------------


def key_point(key: bytes) -> int:
    """The point of ``key`` on the consistent ring: ``hash64(key)``, the key's bytes exactly.

    No prefix, no length, no encoding: a key is already bytes.
    """
    return hash64(key)


def vnode_label(shard: str, index: int) -> bytes:
    """The bytes hashed to place virtual node ``index`` of ``shard``.

    ``f"{shard}#{index}".encode("utf-8")`` with ``index`` in decimal without
    leading zeros, so ``vnode_label("shard-a", 0) == b"shard-a#0"``. The
    decimal suffix holds no ``#``, so the label is unambiguous even when a
    name contains ``#``: it splits at its last ``#``.
    """
    return f"{shard}#{index}".encode()


def vnode_point(shard: str, index: int) -> int:
    """The point of virtual node ``index`` of ``shard``: ``hash64(vnode_label(shard, index))``."""
    return hash64(vnode_label(shard, index))


def rendezvous_prefix(shard: str) -> bytes:
    """The bytes that precede the key in a rendezvous score: ``shard`` in UTF-8, then one 0x00 byte."""
    return shard.encode() + b"\x00"


def rendezvous_score(shard: str, key: bytes) -> int:
    """The rendezvous weight of ``shard`` for ``key``: ``hash64(shard_utf8 + b"\\x00" + key)``.

    For one key, two different names always hash different inputs (the key is a
    common suffix), so their scores are independent draws.
    """
    return hash64(rendezvous_prefix(shard) + bytes(key))


# --------------------------------------------------------------------------
# Validation: every bad input becomes an InvalidArgument at the boundary.
# --------------------------------------------------------------------------


def _validated_name(name: object) -> str:
    """Return ``name`` if it is a usable shard name, else raise InvalidArgument."""
    if not isinstance(name, str):
        raise InvalidArgument(f"shard name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidArgument("shard name must not be empty")
    try:
        size = len(name.encode())
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"shard name {name!r} is not valid Unicode: {exc.reason}") from None
    if size > MAX_SHARD_NAME_BYTES:
        raise InvalidArgument(f"shard name is {size} bytes of UTF-8, over the limit of {MAX_SHARD_NAME_BYTES}")
    return name


def _validated_shards(shards: Iterable[str]) -> tuple[str, ...]:
    """Return the names sorted, after refusing non-iterables, bad names, duplicates and empty sets."""
    if isinstance(shards, (str, bytes, bytearray)) or not isinstance(shards, Iterable):
        raise InvalidArgument(f"shards must be an iterable of names, not {type(shards).__name__}")
    names = [_validated_name(name) for name in shards]
    if not names:
        raise InvalidArgument("a ring needs at least one shard")
    if len(names) > MAX_RING_SHARDS:
        raise InvalidArgument(f"a ring holds at most {MAX_RING_SHARDS} shards, got {len(names)}")
    ordered = sorted(names)
    for a, b in itertools.pairwise(ordered):
        if a == b:
            raise InvalidArgument(f"duplicate shard name {a!r}")
    return tuple(ordered)


def _validated_key(key: bytes) -> bytes:
    """Return ``key`` as ``bytes`` after ``limits.check_key`` (bytes-like, non-empty, under the limit)."""
    check_key(key)
    return key if type(key) is bytes else bytes(key)


def _validated_vnodes(vnodes_per_shard: object) -> int:
    if isinstance(vnodes_per_shard, bool) or not isinstance(vnodes_per_shard, int):
        raise InvalidArgument(f"vnodes_per_shard must be an int, not {type(vnodes_per_shard).__name__}")
    if not 1 <= vnodes_per_shard <= MAX_VNODES_PER_SHARD:
        raise InvalidArgument(f"vnodes_per_shard must be in 1..{MAX_VNODES_PER_SHARD}, got {vnodes_per_shard}")
    return vnodes_per_shard


# --------------------------------------------------------------------------
# Consistent hashing with virtual nodes.
# --------------------------------------------------------------------------


def place_virtual_nodes(shards: Sequence[str], vnodes_per_shard: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Place every shard's virtual nodes on the ring; return ``(points, owners)``.

    Shard ``s`` has virtual nodes ``0 .. vnodes_per_shard - 1``; virtual node
    ``i`` sits at ``vnode_point(s, i)`` (that is ``hash64(f"{s}#{i}".encode())``).
    The result lists all ``len(shards) * vnodes_per_shard`` virtual nodes in
    ring order: ``points[j]`` is the position of the j-th one and ``owners[j]``
    the name of the shard it belongs to.

    Args:
        shards: distinct, valid shard names, in any order.
        vnodes_per_shard: virtual nodes per shard, at least 1.

    Returns:
        ``(points, owners)``, two tuples of equal length, sorted by
        ``(point, owner)``: ascending points, and where two virtual nodes land on
        the same point (a 64-bit collision) the smaller shard name first. That
        tie-break makes the result independent of the order of ``shards``.

    Complexity: O(S·V·log(S·V)) time, O(S·V) space.
    """
    # BEGIN SOLUTION ring-routing
    placed = sorted((vnode_point(shard, index), shard) for shard in shards for index in range(vnodes_per_shard))
    return tuple(point for point, _ in placed), tuple(owner for _, owner in placed)
    # END SOLUTION


class ConsistentHashRing:
    """Consistent hashing with virtual nodes; an immutable :class:`Ring`.

    Args:
        shards: the shard names (any iterable of distinct strings, any order).
        vnodes_per_shard: virtual nodes per shard (keyword-only); more means a
            more even spread and a slower build. Default
            :data:`DEFAULT_VNODES_PER_SHARD`.

    Raises:
        InvalidArgument: no shards, a duplicate or invalid name, too many
            shards, or ``vnodes_per_shard`` outside ``1..MAX_VNODES_PER_SHARD``.

    Invariants (:meth:`check_invariants`): ``shards`` sorted and distinct;
    ``points``/``owners`` are exactly ``place_virtual_nodes(shards, V)``'s shape:
    ``S·V`` entries sorted by ``(point, owner)``, every owner one of the shards,
    each shard owning exactly ``V`` points.

    Complexity: building O(S·V·log(S·V)); ``shard_for`` O(log(S·V)) (one hash,
    one bisect); ``with_shard``/``without_shard`` rebuild, O(S·V·log(S·V)).
    """

    __slots__ = ("_owners", "_points", "_shards", "_vnodes_per_shard")

    def __init__(self, shards: Iterable[str], *, vnodes_per_shard: int = DEFAULT_VNODES_PER_SHARD) -> None:
        self._shards = _validated_shards(shards)
        self._vnodes_per_shard = _validated_vnodes(vnodes_per_shard)
        points, owners = place_virtual_nodes(self._shards, self._vnodes_per_shard)
        self._points: tuple[int, ...] = tuple(points)
        self._owners: tuple[str, ...] = tuple(owners)
        self.check_invariants()

    @property
    def shards(self) -> tuple[str, ...]:
        """The shard names, sorted."""
        return self._shards

    @property
    def vnodes_per_shard(self) -> int:
        """How many virtual nodes each shard places on the ring."""
        return self._vnodes_per_shard

    def shard_for(self, key: bytes) -> str:
        """Return the shard owning ``key``: the owner of the first virtual node at or after ``key_point(key)``.

        Find the smallest ``j`` with ``points[j] >= key_point(key)`` by binary
        search (``bisect.bisect_left`` on the sorted ``self._points``); if there
        is none, wrap around to ``j = 0``. Return ``self._owners[j]``. A key
        hashing exactly onto a virtual node belongs to that node; where several
        virtual nodes share that point, to the first of them (smallest name).

        Raises:
            InvalidArgument: ``key`` is not bytes, or is empty.
            KeyTooLargeError: ``key`` is over ``limits.MAX_KEY_BYTES``.

        Complexity: O(log(S·V)).
        """
        key = _validated_key(key)
        # BEGIN SOLUTION ring-routing
        index = bisect.bisect_left(self._points, key_point(key))
        if index == len(self._points):
            index = 0
        return self._owners[index]
        # END SOLUTION

    def with_shard(self, name: str) -> ConsistentHashRing:
        """Return a new ring with ``name`` added (same ``vnodes_per_shard``); see :class:`Ring`."""
        name = _validated_name(name)
        if name in self._shards:
            raise InvalidArgument(f"shard {name!r} is already in the ring")
        return ConsistentHashRing((*self._shards, name), vnodes_per_shard=self._vnodes_per_shard)

    def without_shard(self, name: str) -> ConsistentHashRing:
        """Return a new ring with ``name`` removed; see :class:`Ring`."""
        remaining = _remaining_after_removal(self._shards, name)
        return ConsistentHashRing(remaining, vnodes_per_shard=self._vnodes_per_shard)

    def ownership(self) -> dict[str, float]:
        """The exact fraction of the hash space each shard owns (sums to 1.0).

        This is the load a shard receives from uniformly hashed keys, computed
        from arc lengths with no sampling: virtual node ``j`` owns the arc
        ``(points[j-1], points[j]]`` (the first one wraps around from the last).

        Complexity: O(S·V).
        """
        owned = dict.fromkeys(self._shards, 0)
        previous = self._points[-1] - HASH_SPACE
        for point, owner in zip(self._points, self._owners, strict=True):
            owned[owner] += point - previous
            previous = point
        return {name: arc / HASH_SPACE for name, arc in owned.items()}

    def check_invariants(self) -> None:
        """Raise InvariantViolation unless the structure matches the class invariants."""
        _check_shard_names(self._shards)
        total = len(self._shards) * self._vnodes_per_shard
        invariant(len(self._points) == total, "the ring holds exactly S*V virtual nodes")
        invariant(len(self._owners) == total, "every virtual node has exactly one owner")
        counts = dict.fromkeys(self._shards, 0)
        previous: tuple[int, str] | None = None
        for point, owner in zip(self._points, self._owners, strict=True):
            if owner not in counts:
                invariant_failed(f"virtual node owner {owner!r} is one of the ring's shards")
            if not 0 <= point < HASH_SPACE:
                invariant_failed(f"virtual node point {point} is inside [0, 2**64)")
            if previous is not None and previous > (point, owner):
                invariant_failed("virtual nodes are sorted by (point, owner)")
            counts[owner] += 1
            previous = (point, owner)
        invariant(
            all(count == self._vnodes_per_shard for count in counts.values()),
            "every shard owns exactly vnodes_per_shard virtual nodes",
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsistentHashRing):
            return NotImplemented
        return (self._shards, self._vnodes_per_shard) == (other._shards, other._vnodes_per_shard)

    def __hash__(self) -> int:
        return hash((ConsistentHashRing, self._shards, self._vnodes_per_shard))

    def __repr__(self) -> str:
        return f"ConsistentHashRing({list(self._shards)!r}, vnodes_per_shard={self._vnodes_per_shard})"


# --------------------------------------------------------------------------
# Rendezvous (highest-random-weight) hashing.
# --------------------------------------------------------------------------


class RendezvousRing:
    """Rendezvous (highest-random-weight) hashing; an immutable :class:`Ring`.

    Args:
        shards: the shard names (any iterable of distinct strings, any order).

    Raises:
        InvalidArgument: no shards, a duplicate or invalid name, or too many shards.

    Invariants (:meth:`check_invariants`): ``shards`` sorted and distinct;
    ``self._prefixes[i] == rendezvous_prefix(shards[i])`` for every ``i``.

    Complexity: building O(S); ``shard_for`` O(S) (one hash per shard);
    ``with_shard``/``without_shard`` O(S).
    """

    __slots__ = ("_prefixes", "_shards")

    def __init__(self, shards: Iterable[str]) -> None:
        self._shards = _validated_shards(shards)
        self._prefixes: tuple[bytes, ...] = tuple(rendezvous_prefix(name) for name in self._shards)
        self.check_invariants()

    @property
    def shards(self) -> tuple[str, ...]:
        """The shard names, sorted."""
        return self._shards

    def shard_for(self, key: bytes) -> str:
        """Return the shard with the highest ``rendezvous_score(shard, key)``.

        Score every shard: ``hash64(self._prefixes[i] + key)`` is
        ``rendezvous_score(self._shards[i], key)`` (the prefixes are the names'
        UTF-8 bytes plus one 0x00 byte, computed once in ``__init__``). Return
        the name with the largest score. If two scores are equal (a 64-bit
        collision), the smaller name wins, so the answer never depends on
        iteration order; ``self._shards`` is sorted, so keeping the first
        strict maximum does exactly that.

        Raises:
            InvalidArgument: ``key`` is not bytes, or is empty.
            KeyTooLargeError: ``key`` is over ``limits.MAX_KEY_BYTES``.

        Complexity: O(S) hashes.
        """
        key = _validated_key(key)
        # BEGIN SOLUTION ring-routing
        best_index = 0
        best_score = -1
        for index, prefix in enumerate(self._prefixes):
            score = hash64(prefix + key)
            if score > best_score:
                best_index, best_score = index, score
        return self._shards[best_index]
        # END SOLUTION

    def with_shard(self, name: str) -> RendezvousRing:
        """Return a new ring with ``name`` added; see :class:`Ring`."""
        name = _validated_name(name)
        if name in self._shards:
            raise InvalidArgument(f"shard {name!r} is already in the ring")
        return RendezvousRing((*self._shards, name))

    def without_shard(self, name: str) -> RendezvousRing:
        """Return a new ring with ``name`` removed; see :class:`Ring`."""
        return RendezvousRing(_remaining_after_removal(self._shards, name))

    def check_invariants(self) -> None:
        """Raise InvariantViolation unless the structure matches the class invariants."""
        _check_shard_names(self._shards)
        invariant(
            self._prefixes == tuple(rendezvous_prefix(name) for name in self._shards),
            "each shard's rendezvous prefix is its UTF-8 name plus one zero byte",
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RendezvousRing):
            return NotImplemented
        return self._shards == other._shards

    def __hash__(self) -> int:
        return hash((RendezvousRing, self._shards))

    def __repr__(self) -> str:
        return f"RendezvousRing({list(self._shards)!r})"


# --------------------------------------------------------------------------
# Shared plumbing.
# --------------------------------------------------------------------------


def _remaining_after_removal(shards: tuple[str, ...], name: str) -> tuple[str, ...]:
    """The names left after removing ``name``; refuse unknown names and removing the last shard."""
    name = _validated_name(name)
    if name not in shards:
        raise InvalidArgument(f"shard {name!r} is not in the ring (shards: {', '.join(shards)})")
    if len(shards) == 1:
        raise InvalidArgument(f"cannot remove {name!r}: it is the last shard, and a ring is never empty")
    return tuple(shard for shard in shards if shard != name)


def _check_shard_names(shards: tuple[str, ...]) -> None:
    invariant(len(shards) >= 1, "a ring holds at least one shard")
    invariant(all(a < b for a, b in itertools.pairwise(shards)), "shard names are sorted and distinct")


def make_ring(
    shards: Iterable[str],
    *,
    kind: RingKind = "consistent",
    vnodes_per_shard: int = DEFAULT_VNODES_PER_SHARD,
) -> Ring:
    """Build a ring of the named kind (for a cluster file's ``ring = "..."`` setting).

    Args:
        shards: the shard names.
        kind: ``"consistent"`` (:class:`ConsistentHashRing`) or
            ``"rendezvous"`` (:class:`RendezvousRing`).
        vnodes_per_shard: for the consistent ring only; ignored by rendezvous.

    Raises:
        InvalidArgument: an unknown ``kind``, or anything the ring's constructor refuses.
    """
    if kind == "consistent":
        return ConsistentHashRing(shards, vnodes_per_shard=vnodes_per_shard)
    if kind == "rendezvous":
        return RendezvousRing(shards)
    raise InvalidArgument(f"unknown ring kind {kind!r}; expected one of {', '.join(RING_KINDS)}")
