"""SharedMemory and SystemSemaphore: the QSharedMemory / QSystemSemaphore contract of the
compiled classes, plus the habits of the standard library's multiprocessing.shared_memory and
threading.Semaphore."""

from __future__ import annotations

from . import _shmring

_ERRORS_AS_EXCEPTIONS = {
    _shmring.SharedMemoryError.ALREADY_EXISTS: FileExistsError,
    _shmring.SharedMemoryError.NOT_FOUND: FileNotFoundError,
    _shmring.SharedMemoryError.PERMISSION_DENIED: PermissionError,
    _shmring.SharedMemoryError.INVALID_SIZE: ValueError,
    _shmring.SharedMemoryError.KEY_ERROR: ValueError,
}


class SharedMemory(_shmring.SharedMemory):
    """A named shared memory segment.

    The QSharedMemory contract: ``SharedMemory(key)`` attaches nothing; ``create(size)`` and
    ``attach()`` return True or False and ``error()`` / ``error_string()`` say why; ``data()`` is a
    memoryview of the segment; ``lock()`` / ``unlock()`` guard it (released if the holder dies).

    The standard library's habits as well: ``SharedMemory(key, create=True, size=4096)`` creates
    and ``SharedMemory(key, create=False)`` attaches at once, raising FileExistsError /
    FileNotFoundError / PermissionError as multiprocessing.shared_memory does; ``.buf`` is a
    memoryview of the segment, ``.name`` the key, ``close()`` detaches and ``unlink()`` removes
    the name. A ``with`` block detaches (and unlocks) at its end.
    """

    def __init__(self, key: str | None = None, create: bool | None = None, size: int = 0, *,
                 native_key: str | None = None,
                 mode: _shmring.AccessMode = _shmring.AccessMode.READ_WRITE) -> None:
        super().__init__(key, native_key=native_key)
        self._buf: memoryview | None = None
        if create is None:
            return  # the Qt contract: create() or attach() later
        if create:
            if size <= 0:
                raise ValueError("'size' must be a positive number when creating a segment")
            ok = super().create(size, mode)
        else:
            ok = super().attach(mode)
        if not ok:
            error = self.error()
            raise _ERRORS_AS_EXCEPTIONS.get(error, OSError)(f"{self.key!r}: {self.error_string()}")

    @property
    def name(self) -> str:
        """The segment's key."""
        return str(self.key)

    @property
    def buf(self) -> memoryview:
        """A memoryview of the segment (the same object each time, as the standard library's);
        ValueError when not attached."""
        if self._buf is None:
            self._buf = self.data()
        return self._buf

    def detach(self) -> bool:
        """Detaches (the last one out removes the segment). BufferError while memoryviews of
        data() or arrays made from .buf are alive, so none can outlive the mapping."""
        if self._buf is not None:
            self._buf.release()  # BufferError while an array made from it is alive
            self._buf = None
        return bool(super().detach())

    def close(self) -> None:
        """Detaches (the standard library's name)."""
        if self.is_attached():
            self.detach()

    def unlink(self) -> None:
        """Removes the segment's name now (the standard library's name): nobody can attach any
        more, and it is gone once the last user detaches. This object is detached too (so
        BufferError while arrays made from .buf are alive)."""
        if self._buf is not None:
            self._buf.release()
            self._buf = None
        if not self.destroy(_shmring.DestroyMode.WAIT):
            raise _ERRORS_AS_EXCEPTIONS.get(self.error(), OSError)(f"{self.key!r}: {self.error_string()}")

    def __enter__(self) -> SharedMemory:
        return self

    def __exit__(self, *exc: object) -> bool:
        if self._buf is not None:
            try:
                self._buf.release()
                self._buf = None
            except BufferError:
                pass
        super().__exit__(*exc)
        return False

    def __repr__(self) -> str:
        state = f"attached, {self.size} bytes" if self.is_attached() else "not attached"
        return f"<shmring.SharedMemory {self.key!r} {state}>"


class SystemSemaphore(_shmring.SystemSemaphore):
    """A named counting semaphore (the QSystemSemaphore contract); tokens a process holds are
    given back when it dies. ``with sem:`` takes a token for the block, as threading.Semaphore."""

    def __enter__(self) -> SystemSemaphore:
        if not self.acquire():
            raise OSError(f"SystemSemaphore {self.key!r}: {self.error_string()}")
        return self

    def __exit__(self, *exc: object) -> bool:
        self.release()
        return False

    def __repr__(self) -> str:
        return f"<shmring.SystemSemaphore {self.key!r}>"
