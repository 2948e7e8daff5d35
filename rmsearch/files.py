"""Output folders and files written whole or not at all (reports, exports, arrays, caches), readable as the user's
umask says; JSON files of numpy values; and the sha256 of a file.

A folder is built in a hidden sibling, `.NAME.tmp-<random suffix>`, then swapped in: an earlier folder at the target is
first renamed aside to `.NAME.old-<random suffix>`, the new one renamed into place, and only then the old one removed.
A failure while writing leaves the earlier folder untouched; a failure while moving the new one in puts the
earlier one back. The working directory (or a folder above it) is never a target: it cannot be replaced whole.

Permissions follow the umask like any other file the user creates. `tempfile.mkdtemp` makes 0700 folders and
some writers (safetensors) make 0600 files, so the staged tree is set to 0777/0666 minus the umask before it
is moved in.

A single file is written the same way (`atomic_file`): to a hidden sibling `.NAME.tmp-<random suffix>`, which
then replaces the target in one rename (the random suffix lets two processes write the same target at once).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rmsearch.errors import RMSearchError


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux /proc); else set-and-restore."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(root: Path) -> None:
    """Set `root` and everything under it to the modes a plain mkdir/open would give (0777/0666 & ~umask)."""
    mask = current_umask()
    dir_mode, file_mode = 0o777 & ~mask, 0o666 & ~mask
    os.chmod(root, dir_mode)
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(folder, d), dir_mode)
        for f in files:
            path = os.path.join(folder, f)
            if not os.path.islink(path):
                os.chmod(path, file_mode)


def check_not_cwd(out: Path, option: str | None = "--out") -> None:
    """Refuse the working directory, or a folder above it, as a folder to replace. `option` names the
    command-line option that chose it, for the message (None: no option)."""
    target, cwd = Path(out).resolve(), Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        what = "the working directory" if target == cwd else "a folder above the working directory"
        where = f"{option} {out}" if option else str(out)
        raise RMSearchError(f"{where}: is {what}, which is never replaced. Name a new folder for the output "
                            f"instead, e.g. {option + ' ' if option else ''}./report.")


def check_writable(folder: Path) -> None:
    """Create the run folder `folder` if needed and prove it takes a small file; a clear error where not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as exc:
        raise RMSearchError(f"run folder {folder} is not writable ({exc.strerror}); choose another --runs folder "
                            f"or free disk space.") from None


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{uuid.uuid4().hex[:8]}"


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder `tmp` to `out`, replacing an earlier `out` without a moment where a failure
    loses it: old aside, new in (old back if that fails), old removed."""
    old = None
    if out.exists() or out.is_symlink():
        old = _sibling(out, "old")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old, out)  # put the earlier folder back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(out, option: str | None = "--out"):
    """Yield an empty staging folder beside `out`; when the block succeeds it replaces `out` (see `replace_dir`),
    with modes from the umask; when it fails it is removed and `out` is untouched."""
    check_not_cwd(Path(out), option)
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        apply_umask(tmp)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(path):
    """Yield a temporary path beside `path` for the block to write; when the block succeeds the file is given the
    umask's mode (0666 & ~umask) and replaces `path`; when it fails it is removed and `path` is untouched. The
    folder of `path` must exist."""
    path = Path(path)
    tmp = _sibling(path, "tmp")
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path, chunk: int = 1 << 22) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def jsonable(value):
    """Plain JSON values from numpy scalars/arrays, tuples and paths; non-finite floats become None (strict
    JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def write_json(path, blob) -> None:
    """`blob` as strict JSON (`jsonable`) at `path`, written whole or not at all (`atomic_file`)."""
    with atomic_file(path) as tmp:
        Path(tmp).write_text(json.dumps(jsonable(blob), indent=2, allow_nan=False) + "\n")


ROW_BLOCK = 8192
"""Rows gathered from a stored split at a time where a head builds one matrix from it (a few tens of MB of
temporaries at D = 2,048), with `drop_pages` after each block."""


def mapped_root(view):
    """(root, mm): the array at the root of `view`'s chain of bases, and the `mmap.mmap` of the file under it (an
    array from `open_npy`, or a view of one), or None for an array in memory."""
    import mmap

    import numpy as np

    root = view
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root, root.base if isinstance(root.base, mmap.mmap) else None


def drop_pages(view) -> None:
    """Drop the pages of a memory-mapped file under `view` (a contiguous part of an array from `open_npy`) from
    this process's resident memory; the kernel keeps them in its page cache, shared, and a later read maps them
    again. Streaming a split this way keeps a process's RSS at about one chunk whatever the split's size. A no-op
    for arrays in memory."""
    import mmap

    root, mm = mapped_root(view)
    if mm is None or not view.flags.c_contiguous or view.nbytes == 0:
        return
    start = root.__array_interface__["data"][0] - getattr(root, "offset", 0) % mmap.ALLOCATIONGRANULARITY
    first = view.__array_interface__["data"][0] - start
    page = first - first % mmap.PAGESIZE
    end = min(len(mm), first + view.nbytes)
    end -= end % mmap.PAGESIZE  # the last partial page stays (it may hold the next rows)
    if end > page:
        mm.madvise(mmap.MADV_DONTNEED, page, end - page)
