"""rmsearch.files: a single file written whole or not at all, with the umask's mode; the sha256 of a file."""

import hashlib
import os
import stat

import numpy as np
import pytest

from rmsearch.files import atomic_file, sha256_file


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def test_atomic_file_replaces_the_target_whole(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old contents, longer than the new ones\n")
    with atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.txt.tmp-") and tmp != target
        tmp.write_text("new\n")
        assert target.read_text().startswith("old")  # not touched before the block ends
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_file_creates_a_new_target(tmp_path):
    with atomic_file(str(tmp_path / "new.bin")) as tmp:  # a str path works too
        tmp.write_bytes(b"\x00\x01")
    assert (tmp_path / "new.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin"]


def test_a_failure_in_the_block_leaves_the_earlier_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("earlier")
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_failure_before_writing_leaves_no_target(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_file(tmp_path / "never.txt"):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_mode_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    target = tmp_path / "out.bin"
    with atomic_file(target) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)  # a writer that makes private files (like safetensors)
        os.write(fd, b"x")
        os.close(fd)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_sha256_file_is_hashlibs_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    blob = os.urandom(10_000) + b"\x00" * 3
    path.write_bytes(blob)
    assert sha256_file(path) == sha256_file(str(path), chunk=7) == hashlib.sha256(blob).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def _rss_file_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssFile:"))


def test_drop_pages_lets_a_memory_map_go_from_resident_memory_and_keeps_its_values(tmp_path):
    from rmsearch.data._files import open_npy
    from rmsearch.files import drop_pages

    data = np.arange(16 * 2**20 // 4, dtype=np.float32).reshape(-1, 1024)  # 16 MiB
    np.save(tmp_path / "x.npy", data)
    m = open_npy(tmp_path / "x.npy")
    view = m[100:]
    before = _rss_file_kib()
    total = float(np.asarray(view, np.float64).sum())  # every page of the view read: resident
    read = _rss_file_kib()
    drop_pages(view)
    after = _rss_file_kib()
    assert read - before > 12 * 1024 and read - after > 12 * 1024, (before, read, after)
    assert float(np.asarray(view, np.float64).sum()) == total == float(data[100:].sum(dtype=np.float64))
    drop_pages(data[100:])  # an array in memory: nothing to let go, nothing changes
    assert float(data[100:].sum(dtype=np.float64)) == total


def test_streaming_a_split_holds_about_one_chunk_of_a_memory_mapped_file(tmp_path):
    from rmsearch.data import TaskConfig, load_data, make_task
    from rmsearch.data._files import write_seed_folder

    write_seed_folder(tmp_path / "w", load_data("synth:train_prompts=40,test_prompts=40,test_responses=400,dim=256"))
    task = make_task(load_data(str(tmp_path / "w")), TaskConfig())
    split_kib = len(task.test) * 256 * 4 // 1024  # float32 on disk: 8 MiB
    before = _rss_file_kib()
    rows = sum(len(block) for _, block in task.test.chunks(size=400))
    assert rows == len(task.test) == 20 * 400
    assert _rss_file_kib() - before < split_kib / 4, (before, _rss_file_kib(), split_kib)


def test_checking_a_memory_mapped_file_with_long_rows_reads_it_a_block_at_a_time(tmp_path, monkeypatch):
    """A seed-format test split has rows of responses × dim values (2 MB at 500 × 2048 float16): the finiteness
    check reads about `_CHUNK_BYTES` at once whatever the row length, and lets each block's pages go."""
    import rmsearch.data._validate as validate
    from rmsearch.data._files import open_npy

    monkeypatch.setattr(validate, "_CHUNK_BYTES", 2**20)
    np.save(tmp_path / "e.npy", np.ones((4, 1024, 1024), np.float32))  # 16 MiB in 4 rows of 4 MiB
    m = open_npy(tmp_path / "e.npy")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak resident size (VmHWM) starts again from here
    with open("/proc/self/status") as f:
        start = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    assert validate.check_float_array("e.npy", m, (3,), what="(prompts, responses, dim)") is m
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    assert peak - start < 8 * 1024, (start, peak)  # KiB: one 4 MiB row (and its check) at a time, not 16 MiB
    bad = np.ones((4, 1024, 1024), np.float32)
    bad[3, 5, 7] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(Exception, match=r"non-finite value \(nan\) in row 3"):
        validate.check_float_array("bad.npy", open_npy(tmp_path / "bad.npy"), (3,), what="(p, r, d)")
