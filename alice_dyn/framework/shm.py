"""Shared-memory transport of array payloads between the processes of the multi-process runner.

Layer: framework. ``"ndarray"`` and ``"columns"`` payloads travel as POSIX shared-memory
segments (``shm_open`` + ``mmap``, the primitives under :mod:`multiprocessing.shared_memory`);
only a small :class:`WireMessage` (header, segment names, offsets, dtypes, shapes) is pickled.

Producer side, :class:`ShmArena`: the ``arrays`` factory given to the processor's
:class:`~alice_dyn.framework.runtime.ProcessorRuntime`. ``pc.outputs.make(...)`` and
``make_columns`` therefore return views of shared memory (zero copy end to end);
``snapshot`` copies once into it. Allocations of one ``run`` call are packed into as few
segments ("slabs") as possible: 64-byte aligned, the first slab of a call holds at least
:data:`MIN_SLAB` bytes and each further slab doubles (up to :data:`MAX_GROW`), so all the
columns of a message usually share one segment. tmpfs only backs the pages that are written, so
the unused tail of a slab costs no memory. When ``run`` returns, :func:`encode_message` finds the
segment that holds each output array (a slab of this call, or an input segment the task forwards
with ``adopt``: no copy either); any other array (``adopt`` of heap memory) is copied into a slab.

Consumer side, :func:`decode_message`: NumPy views (read-only, as O2's const inputs: copy
before modifying, e.g. before ``torch.from_numpy``) onto the segments, attached by name; a mapping
is shared by all arrays of a segment and lives while any of them does, and a consumer keeps the
mappings it used last (:class:`SegmentCache`) so that a reused segment is read again without a
new mapping or page faults.

Lifetime: after a ``run`` call the producer hands the call's segments to the driver (the parent
process), which counts the pending deliveries of each segment. When every reader is done the
segment goes back to its producer (:meth:`ShmArena.release`): into a small pool, reused by later
calls, or unlinked when someone still holds a view of it (the producing task, a consumer that kept
its input: :meth:`SegmentCache.still_used`, the driver's kept sink). Linux keeps a mapping valid
after unlink, so no view ever dangles, and no live view ever points into a pooled segment.
All names of one run start with one prefix, which :func:`sweep` removes at the end of a run, so
even a killed worker leaves nothing in ``/dev/shm``.

The class :class:`multiprocessing.shared_memory.SharedMemory` is not used because on Python < 3.13
every attach registers the segment with the resource tracker (warnings and early unlinks), its
``close`` fails while NumPy views exist, and it keeps a file descriptor per segment open.
"""

from __future__ import annotations

import mmap
import os
import pickle
import secrets
import sys
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from alice_dyn.framework.message import (
    SERIALIZATION_COLUMNS,
    SERIALIZATION_NDARRAY,
    DataHeader,
    Message,
)

try:  # CPython's own binding of shm_open/shm_unlink (what multiprocessing.shared_memory uses)
    import _posixshmem
except ImportError:  # pragma: no cover - non-POSIX platforms
    _posixshmem = None

#: every segment name starts with this (tests change it to recognise their own segments)
NAME_PREFIX = "adyn_"
#: where Linux shows POSIX shared memory (used to sweep a run's leftovers and check free space)
SHM_DIR = "/dev/shm"
ALIGN = 64
MIN_SLAB = 1 << 20
MAX_GROW = 64 << 20
_PAGE = mmap.PAGESIZE


def new_run_prefix() -> str:
    """A fresh prefix for the segment names of one run (``adyn_<pid><random>_``)."""
    return f"{NAME_PREFIX}{os.getpid():x}{secrets.token_hex(3)}_"


def _path(name: str) -> str:
    return "/" + name


def create_segment(name: str, size: int) -> mmap.mmap:
    """Create segment ``name`` of ``size`` bytes and map it (the descriptor is closed)."""
    if _posixshmem is None:  # pragma: no cover
        raise OSError("POSIX shared memory is not available on this platform")
    fd = _posixshmem.shm_open(_path(name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    except BaseException:
        unlink_segment(name)
        raise
    finally:
        os.close(fd)


def attach_segment(name: str) -> mmap.mmap:
    """Map the existing segment ``name`` (``FileNotFoundError`` if it was unlinked)."""
    if _posixshmem is None:  # pragma: no cover
        raise OSError("POSIX shared memory is not available on this platform")
    fd = _posixshmem.shm_open(_path(name), os.O_RDWR, 0o600)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def unlink_segment(name: str) -> bool:
    """Remove the name of a segment (mappings stay valid); False if it was already gone."""
    try:
        _posixshmem.shm_unlink(_path(name))
    except FileNotFoundError:
        return False
    return True


def list_segments(prefix: str) -> list[str]:
    """Names of existing segments starting with ``prefix`` (empty where /dev/shm is absent)."""
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except OSError:
        return []


def sweep(prefix: str) -> list[str]:
    """Unlink every segment whose name starts with ``prefix``; returns the names removed."""
    return [n for n in list_segments(prefix) if unlink_segment(n)]


def shm_free_bytes() -> int | None:
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _address(mm: mmap.mmap) -> int:
    return int(np.frombuffer(mm, np.uint8, count=1).ctypes.data)


def _bounds(a: np.ndarray) -> tuple[int, int]:
    """First and one-past-last byte address of ``a``'s elements."""
    lo = hi = int(a.__array_interface__["data"][0])
    for n, s in zip(a.shape, a.strides, strict=True):
        ext = (n - 1) * s
        if ext < 0:
            lo += ext
        else:
            hi += ext
    return lo, hi + a.itemsize


@dataclass(frozen=True)
class ArrayRef:
    """Where one array lies: segment, byte offset of its first element, dtype, shape, strides."""

    segment: str
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]
    strides: tuple[int, ...]


@dataclass(frozen=True)
class WireMessage:
    """What crosses a process boundary for one message.

    ``body`` is an :class:`ArrayRef` (``"ndarray"``), a dict of them (``"columns"``) or the
    object pickled once by the producer (``"object"``: :class:`Pickled`, so that whoever only
    routes the message never unpickles it). Arrays that cannot live in shared memory (size 0,
    Python-object dtype) are carried in ``body`` as they are. ``segments`` lists the segment
    names the message uses (each once).
    """

    header: DataHeader
    body: Any
    segments: tuple[str, ...]


@dataclass(frozen=True)
class Pickled:
    """An ``"object"`` payload as its pickle."""

    data: bytes


class _Mapped:
    """A mapped segment: its name, the mapping and its address range."""

    __slots__ = ("base", "mm", "name", "size", "used")

    def __init__(self, name: str, mm: mmap.mmap, base: int | None = None) -> None:
        self.name = name
        self.mm = mm
        self.base = _address(mm) if base is None else base
        self.size = len(mm)
        self.used = 0

    def find(self, lo: int, hi: int) -> bool:
        return self.base <= lo and hi <= self.base + self.size


class SegmentCache:
    """Attaches segments by name. A mapping is reused while any of its arrays is alive, and the
    ``capacity`` most recently used mappings are kept anyway: recycled segments (same name, new
    content) are then read without mapping them, and without page faults, again."""

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self._maps: weakref.WeakValueDictionary[str, mmap.mmap] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[str, mmap.mmap] = OrderedDict()
        self._base: weakref.WeakKeyDictionary[mmap.mmap, int] = weakref.WeakKeyDictionary()

    def mapped(self, name: str) -> _Mapped:
        """The segment as a :class:`_Mapped` record (holding the mapping)."""
        mm = self.get(name)
        base = self._base.get(mm)
        if base is None:
            base = self._base[mm] = _address(mm)
        return _Mapped(name, mm, base)

    def get(self, name: str) -> mmap.mmap:
        mm = self._maps.get(name)
        if mm is None:
            mm = attach_segment(name)
            self._maps[name] = mm
        if self.capacity:
            self._recent[name] = mm
            self._recent.move_to_end(name)
            while len(self._recent) > self.capacity:
                self._recent.popitem(last=False)
        return mm

    def still_used(self, mapped: dict[str, _Mapped]) -> list[str]:
        """Names in ``mapped`` (the segments of a finished call) that something other than this
        cache and ``mapped`` still references: a task kept a view of its input."""
        held = []
        for name, m in mapped.items():
            baseline = 2 + (self._recent.get(name) is m.mm)  # m.mm, getrefcount's argument
            if sys.getrefcount(m.mm) > baseline:
                held.append(name)
        return held


class ShmArena:
    """Producer-side allocator (an ``ArrayFactory``) handing out views of shared memory.

    The segments used between :meth:`begin` and :meth:`seal` (one ``run`` call) are reported
    with the call's messages; :meth:`discard` unlinks them when the call failed. Once every
    reader is done, the driver hands a segment back (:meth:`release`): it goes to a pool of at
    most ``pool_slabs`` segments and ``pool_bytes`` bytes and is reused by later calls (its pages
    are already there: writing them costs no page faults, and no system call is needed), unless
    the task or a reader still holds a view of it; then it is unlinked.
    """

    def __init__(self, prefix: str, pool_slabs: int = 0, pool_bytes: int = 1 << 30) -> None:
        self.prefix = prefix
        self.pool_slabs = pool_slabs
        self.pool_bytes = pool_bytes
        self._counter = 0
        self._slabs: list[_Mapped] = []
        self._outstanding: dict[str, _Mapped] = {}
        self._pool: list[_Mapped] = []
        self.reused = 0

    def begin(self) -> None:
        self._slabs = []

    def names(self) -> list[str]:
        """Segments used in this call."""
        return [s.name for s in self._slabs]

    def seal(self) -> list[str]:
        """End the call: its segments now belong to whoever received their names."""
        names = self.names()
        if self.pool_slabs:
            self._outstanding.update((s.name, s) for s in self._slabs)
        self._slabs = []
        return names

    def discard(self) -> None:
        """End a failed call: unlink its segments (views the task kept remain valid)."""
        for s in self._slabs:
            unlink_segment(s.name)
        self._slabs = []

    def release(self, name: str, reusable: bool) -> None:
        """Segment ``name`` of an earlier call has no reader left: pool it or unlink it."""
        slab = self._outstanding.pop(name, None)
        if slab is None:
            return
        pooled = sum(p.size for p in self._pool)
        if (
            reusable
            and sys.getrefcount(slab.mm) <= 2  # slab.mm, getrefcount's argument: no view left
            and len(self._pool) < self.pool_slabs
            and pooled + slab.size <= self.pool_bytes
        ):
            slab.used = 0
            self._pool.append(slab)
        else:
            unlink_segment(name)

    def close(self) -> None:
        """Unlink the pooled segments (the driver unlinks those still in use)."""
        for slab in self._pool:
            unlink_segment(slab.name)
        self._pool = []
        self._outstanding = {}

    @property
    def slabs(self) -> list[_Mapped]:
        return self._slabs

    def _new_slab(self, nbytes: int) -> _Mapped:
        fits = [p for p in self._pool if p.size >= nbytes]
        if fits:
            slab = min(fits, key=lambda p: p.size)
            self._pool.remove(slab)
            self._slabs.append(slab)
            self.reused += 1
            return slab
        last = self._slabs[-1].size if self._slabs else 0
        cap = max(nbytes, min(max(MIN_SLAB, 2 * last), MAX_GROW))
        cap = -(-cap // _PAGE) * _PAGE
        free = shm_free_bytes()
        if free is not None and free < nbytes:
            raise MemoryError(f"shared memory ({SHM_DIR}): {nbytes} bytes needed, only {free} free")
        name = f"{self.prefix}{self._counter}"
        self._counter += 1
        slab = _Mapped(name, create_segment(name, cap))
        self._slabs.append(slab)
        return slab

    def allocate(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array in shared memory (on the heap if it cannot live there)."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if dtype.hasobject or nbytes <= 0:
            return np.empty(shape, dtype)
        slab = self._slabs[-1] if self._slabs else None
        if slab is None or slab.used + nbytes > slab.size:
            slab = self._new_slab(nbytes)
        off = slab.used
        slab.used = -(-(off + nbytes) // ALIGN) * ALIGN
        return np.ndarray(shape, dtype, buffer=slab.mm, offset=off)


def _encode_array(
    a: np.ndarray, arena: ShmArena, inputs: dict[str, _Mapped], used: dict[str, None]
) -> ArrayRef | np.ndarray:
    if a.dtype.hasobject or a.size == 0:
        return a  # nothing to share: pickled with the message
    lo, hi = _bounds(a)
    where = next((m for m in arena.slabs if m.find(lo, hi)), None) or next(
        (m for m in inputs.values() if m.find(lo, hi)), None
    )
    if where is None:  # heap memory (adopt): one copy into shared memory
        dst = arena.allocate(a.shape, a.dtype)
        np.copyto(dst, a, casting="no")
        a = dst
        lo, hi = _bounds(a)
        where = next(m for m in arena.slabs if m.find(lo, hi))
    used[where.name] = None
    ptr = int(a.__array_interface__["data"][0])
    return ArrayRef(where.name, ptr - where.base, a.dtype, tuple(a.shape), tuple(a.strides))


def encode_message(msg: Message, arena: ShmArena, inputs: dict[str, _Mapped]) -> WireMessage:
    """The wire form of an output of the current call (see the module docstring).

    ``inputs``: the segments of this call's inputs (an output that is one of them, or a view of
    one, is forwarded without a copy).
    """
    used: dict[str, None] = {}
    ser = msg.header.serialization
    if ser == SERIALIZATION_NDARRAY:
        body: Any = _encode_array(msg.payload, arena, inputs, used)
    elif ser == SERIALIZATION_COLUMNS:
        body = {k: _encode_array(v, arena, inputs, used) for k, v in msg.payload.items()}
    else:
        body = Pickled(pickle.dumps(msg.payload, pickle.HIGHEST_PROTOCOL))
    return WireMessage(msg.header, body, tuple(used))


def _decode_array(ref: Any, cache: SegmentCache, mapped: dict[str, _Mapped] | None) -> Any:
    if not isinstance(ref, ArrayRef):
        return ref
    if mapped is None:
        mm = cache.get(ref.segment)
    else:
        if ref.segment not in mapped:
            mapped[ref.segment] = cache.mapped(ref.segment)
        mm = mapped[ref.segment].mm
    a = np.ndarray(ref.shape, ref.dtype, buffer=mm, offset=ref.offset, strides=ref.strides)
    a.flags.writeable = False
    return a


def decode_message(
    wire: WireMessage, cache: SegmentCache, mapped: dict[str, _Mapped] | None = None
) -> Message:
    """The message with its payload as views of shared memory (no copy).

    ``mapped`` collects the segments attached, so that :func:`encode_message` can recognise an
    input forwarded as an output.
    """
    ser = wire.header.serialization
    if ser == SERIALIZATION_NDARRAY:
        payload = _decode_array(wire.body, cache, mapped)
    elif ser == SERIALIZATION_COLUMNS:
        payload = {k: _decode_array(v, cache, mapped) for k, v in wire.body.items()}
    else:
        payload = pickle.loads(wire.body.data) if isinstance(wire.body, Pickled) else wire.body
    return Message(wire.header, payload)


__all__ = [
    "NAME_PREFIX",
    "ArrayRef",
    "Pickled",
    "SegmentCache",
    "ShmArena",
    "WireMessage",
    "attach_segment",
    "create_segment",
    "decode_message",
    "encode_message",
    "list_segments",
    "new_run_prefix",
    "sweep",
    "unlink_segment",
]
