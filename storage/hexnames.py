"""Object names that keep key order: ``prefix + key.hex()`` (shared by the GCS and S3 engines).

Lowercase hex preserves unsigned byte order and prefix relations between keys, so a key
range is a range of object names. Names under the prefix that are not an even number of
lowercase hex digits (other tools' objects, "folders") are not keys and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.base import KeyRange

HEX = frozenset("0123456789abcdef")
_PRED = dict(zip("123456789abcdef", "0123456789abcde", strict=True))


def common_prefix(a: str, b: str) -> str:
    """The longest common prefix of two strings."""
    n = min(len(a), len(b))
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), n)
    return a[:n]


def split_location(location: str, scheme: str) -> tuple[str, str]:
    """``"[scheme://]bucket[/some/prefix]"`` -> ``("bucket", "some/prefix/")`` (or ``""``).

    Raises ValueError when the bucket name is empty.
    """
    loc = location.removeprefix(scheme).strip("/")
    bucket, _, path = loc.partition("/")
    if not bucket:
        raise ValueError(f"location needs a bucket name: {location!r}")
    path = path.strip("/")
    return bucket, (path + "/" if path else "")


@dataclass(frozen=True)
class HexNames:
    """Maps keys to object names under ``prefix``; ``max_name`` bounds a name's length."""

    prefix: str
    max_name: int = 1024
    max_key: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_key", (self.max_name - len(self.prefix.encode())) // 2)

    def name(self, key: bytes) -> str:
        """The object name of ``key``; ValueError for an empty or too long key."""
        if not key:
            raise ValueError("object store engines cannot store the empty key")
        if len(key) > self.max_key:
            raise ValueError(f"key of {len(key)} bytes is too long (max {self.max_key})")
        return self.prefix + key.hex()

    def key(self, name: str) -> bytes | None:
        """The key of an object name under the prefix, or None if it is not one of ours."""
        if not name.startswith(self.prefix):
            return None
        rest = name[len(self.prefix):]
        if not rest or len(rest) % 2 or not HEX.issuperset(rest):
            return None
        return bytes.fromhex(rest)

    def bounds(self, rng: KeyRange) -> tuple[str, str | None, str]:
        """``(start name, end name or None, listing prefix)`` of a key range: every key
        name in the range starts with the listing prefix."""
        start = self.prefix + rng.start.hex()
        end = None if rng.end is None else self.prefix + rng.end.hex()
        return start, end, (self.prefix if end is None else common_prefix(start, end))

    def start_after(self, start: str) -> str | None:
        """A name strictly before ``start`` with no key name in between, for listings
        whose lower bound is exclusive (S3's ``StartAfter``); None when unbounded."""
        if len(start) <= len(self.prefix):
            return None
        head, c = start[:-1], start[-1]
        return head if c == "0" else head + _PRED[c] + "g"
