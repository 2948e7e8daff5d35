"""Export: write a real heterogeneous ensemble, load it back (also without torch), and refuse tampered folders."""

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
from rmsearch.ensembles import Aggregation
from rmsearch.errors import DataError, ExportError
from rmsearch.export import FORMAT_VERSION, ensemble_from_groups, load_ensemble, write_export
from rmsearch.heads import GBDTConfig, MLPConfig

DIM = 8


@pytest.fixture(scope="module")
def task():
    return make_task(synth(SynthConfig(dim=DIM, train_prompts=200, test_prompts=5, test_responses=20)), TaskConfig())


@pytest.fixture(scope="module")
def ensemble(task):
    from rmsearch.ensembles._train import fit_group

    groups = [
        fit_group(task, MLPConfig(hidden=(16,), epochs=3), (0, 1)),
        fit_group(task, GBDTConfig(max_iter=10, feature_fraction=0.75), (2, 3)),  # trees on a subspace
    ]
    return ensemble_from_groups(groups, None, Aggregation("uwo", 0.5), DIM)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(1).standard_normal((50, DIM)).astype(np.float32)


@pytest.fixture
def exported(tmp_path, ensemble):
    return write_export(tmp_path / "out", ensemble, metrics={"bon_gold": np.float64(0.5), "nll": float("nan")},
                        dataset={"name": "synth", "fingerprint": "abc123"}, extra={"trial": 3})


def _same(a, b, X):
    np.testing.assert_allclose(a.score(X), b.score(X), atol=1e-6, rtol=0)
    np.testing.assert_allclose(a.member_scores(X), b.member_scores(X), atol=1e-6, rtol=0)
    np.testing.assert_allclose(a.uncertainty(X), b.uncertainty(X), atol=1e-6, rtol=0)


def test_roundtrip_same_scores_and_manifest(exported, ensemble, X):
    assert sorted(p.name for p in exported.iterdir()) == ["checksums.sha256", "manifest.json", "members.safetensors"]
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    m = json.loads((exported / "manifest.json").read_text())
    assert m["format_version"] == FORMAT_VERSION and m["input_dim"] == DIM and m["member_count"] == 4
    assert [x["kind"] for x in m["members"]] == ["mlp", "mlp", "gbdt", "gbdt"]
    assert [x["seed"] for x in m["members"]] == [0, 1, 2, 3]
    assert m["members"][0]["config"]["hidden"] == [16] and m["members"][2]["config"]["max_iter"] == 10
    assert "features" in m["members"][2]["arrays"] and "tree_roots" in m["members"][3]["arrays"]
    assert m["aggregation"] == {"name": "uwo", "lambda": 0.5}
    assert m["metrics"] == {"bon_gold": 0.5, "nll": None} and m["dataset"]["fingerprint"] == "abc123"
    assert {"rmsearch", "numpy", "safetensors"} <= set(m["packages"])
    assert set(m["files"]) == {"members.safetensors"} and len(m["files"]["members.safetensors"]["sha256"]) == 64
    r = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=exported, capture_output=True, text=True)
    assert r.returncode == 0 and "manifest.json: OK" in r.stdout and "members.safetensors: OK" in r.stdout
    loaded = load_ensemble(exported)
    assert len(loaded) == 4 and loaded.dim == DIM and loaded.aggregation == ensemble.aggregation
    np.testing.assert_array_equal(loaded.stats, ensemble.stats)
    _same(loaded, ensemble, X)
    import rmsearch

    _same(rmsearch.load_ensemble(exported), ensemble, X)


def test_overwrites_earlier_export_but_not_other_folders(tmp_path, exported, ensemble):
    write_export(exported, ensemble, metrics={}, dataset={})  # re-export in place
    load_ensemble(exported)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an earlier export"):
        write_export(other, ensemble, metrics={}, dataset={})
    assert (other / "notes.txt").read_text() == "keep me"


def test_loads_without_torch(exported, ensemble, X, tmp_path):
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", np.stack([ensemble.score(X), ensemble.uncertainty(X)]))
    np.save(tmp_path / "members.npy", ensemble.member_scores(X))
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        sys.modules["sklearn"] = None
        import numpy as np
        import rmsearch
        e = rmsearch.load_ensemble({str(exported)!r})
        X = np.load({str(tmp_path / 'X.npy')!r})
        exp = np.load({str(tmp_path / 'expected.npy')!r})
        np.testing.assert_allclose(e.score(X), exp[0], atol=1e-6, rtol=0)
        np.testing.assert_allclose(e.uncertainty(X), exp[1], atol=1e-6, rtol=0)
        np.testing.assert_allclose(e.member_scores(X), np.load({str(tmp_path / 'members.npy')!r}), atol=1e-6, rtol=0)
        assert sys.modules["torch"] is None
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "OK"


def test_missing_file(exported):
    (exported / "members.safetensors").unlink()
    with pytest.raises(ExportError, match=r"members\.safetensors: listed in manifest\.json but missing"):
        load_ensemble(exported)


def test_missing_manifest(exported):
    (exported / "manifest.json").unlink()
    with pytest.raises(ExportError, match=r"manifest\.json: missing"):
        load_ensemble(exported)


def test_edited_safetensors_byte(exported):
    path = exported / "members.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0x01  # a bit in the last array's data: the file still parses, only the checksum can tell
    path.write_bytes(bytes(blob))
    with pytest.raises(ExportError, match=r"members\.safetensors: sha256 does not match the manifest.*Re-export"):
        load_ensemble(exported)


def _edit_manifest(folder, edit, reseal=True):
    """Edit the manifest; with `reseal`, also rewrite the seal to match, as someone who means to would (then the
    manifest's own checks must catch what is wrong)."""
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    if reseal:
        reseal_folder(folder)


def reseal_folder(folder):
    from rmsearch.export._format import checksums_text, sha256_bytes

    names = [p.name for p in folder.iterdir() if p.name != "checksums.sha256"]
    (folder / "checksums.sha256").write_text(checksums_text({n: sha256_bytes((folder / n).read_bytes()) for n in names}))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(input_dim=16), r"member 0 \(mlp\) array 'mean' has shape \(8,\), expected \(16,\) \(the manifest's input_dim\)"),
    (lambda m: m.update(input_dim=4), r"'mean' has shape \(8,\), expected \(4,\)"),
    (lambda m: m.update(input_dim=0), r"field 'input_dim'.*positive integer"),
    (lambda m: m.update(member_count=3), r"field 'member_count'"),
    (lambda m: m.update(members=m["members"][:3], member_count=3), r"not 'm<index>\.<name>'"),
    (lambda m: m["members"][1].update(kind="svm"), r"member 1 field 'kind'.*not a known head type"),
    (lambda m: m["members"][2].update(kind="mlp"), r"member 2 field 'config'"),
    (lambda m: m["members"][0]["stats"].update(std=0.0), r"member 0 field 'stats'"),
    (lambda m: m.update(aggregation={"name": "max"}), r"field 'aggregation'.*not a known aggregation"),
    (lambda m: m.update(aggregation={"name": "uwo", "lambda": None}), r"aggregation\.lambda"),
    (lambda m: m.update(format_version=99), r"format_version"),
    (lambda m: m["files"]["members.safetensors"].update(sha256="0" * 64), r"sha256 does not match"),
    (lambda m: m["files"].update({"../x": {"sha256": "0" * 64, "size": 1}}), r"not a plain file name"),
])
def test_edited_manifest_values(exported, edit, message):
    _edit_manifest(exported, edit)
    with pytest.raises(ExportError, match=message):
        load_ensemble(exported)


def test_manifest_not_json(exported):
    (exported / "manifest.json").write_text("{ not json")
    with pytest.raises(ExportError, match=r"manifest\.json: sha256 does not match the one checksums\.sha256 lists"):
        load_ensemble(exported)
    reseal_folder(exported)
    with pytest.raises(ExportError, match=r"manifest\.json: is not valid JSON"):
        load_ensemble(exported)


class _Evil:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_planted_pickle_and_module_are_never_run(exported, tmp_path, X, ensemble):
    """Policy: a folder holding files the manifest does not list is refused, and those files are never opened."""
    marker = tmp_path / "PWNED"
    evil = _Evil()
    evil.marker = str(marker)
    (exported / "members.pkl").write_bytes(pickle.dumps(evil))
    (exported / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (exported / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ExportError, match=r"'__init__\.py', 'evil\.py', 'members\.pkl', not listed in manifest\.json"):
        load_ensemble(exported)
    # Even when the manifest is edited to list the pickle as a member file, it is only hashed, never unpickled.
    _edit_manifest(exported, lambda m: m["files"].update({"members.pkl": {"sha256": "0" * 64, "size": 1}}))
    with pytest.raises(ExportError):
        load_ensemble(exported)
    assert not marker.exists()
    for name in ("members.pkl", "evil.py", "__init__.py"):
        (exported / name).unlink()
    _edit_manifest(exported, lambda m: m["files"].pop("members.pkl"))
    _same(load_ensemble(exported), ensemble, X)
    assert not marker.exists()


def test_wrong_dim_input(exported):
    e = load_ensemble(exported)
    with pytest.raises(DataError, match=r"scores \(n, 8\)"):
        e.score(np.zeros((3, DIM + 1), np.float32))
    with pytest.raises(DataError):
        e.member_scores(np.zeros(DIM, np.float32))


def test_failed_write_leaves_nothing(tmp_path, ensemble):
    bad = type(ensemble)(ensemble.members, ensemble.stats, Aggregation("uwo", 0.5), ensemble.dim)
    bad.members = list(bad.members)
    from rmsearch.ensembles import Member

    m0 = bad.members[0]
    bad.members[0] = Member(m0.kind, m0.config, m0.seed, {**m0.arrays, "w0": m0.arrays["w0"][:2]})
    with pytest.raises(ExportError, match="w0"):
        write_export(tmp_path / "out", bad, metrics={}, dataset={})
    assert list(tmp_path.iterdir()) == []



def test_failure_mid_write_keeps_earlier_export(tmp_path, exported, ensemble, X, monkeypatch):
    import rmsearch.export._write as w

    def boom(path):
        raise OSError("disk full")

    before = (exported / "manifest.json").read_bytes()
    monkeypatch.setattr(w, "sha256_file", boom)
    with pytest.raises(OSError, match="disk full"):
        write_export(exported, ensemble, metrics={"new": 1}, dataset={})
    with pytest.raises(OSError):
        write_export(tmp_path / "fresh", ensemble, metrics={}, dataset={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folders, no half-written "fresh"
    assert (exported / "manifest.json").read_bytes() == before
    _same(load_ensemble(exported), ensemble, X)


def test_tree_arrays_that_would_loop_forever_are_refused(tmp_path, ensemble):
    from rmsearch.ensembles import Member

    m = ensemble.members[2]
    left = m.arrays["node_left"].copy()
    split = int(np.flatnonzero(m.arrays["node_is_leaf"] == 0)[0])
    left[split] = split  # a split node pointing to itself: the level-by-level traversal would never end
    bad = type(ensemble)([Member(m.kind, m.config, m.seed, {**m.arrays, "node_left": left})], None,
                         ensemble.aggregation, ensemble.dim)
    with pytest.raises(ExportError, match=r"member 0 \(gbdt\) has tree nodes whose children point outside"):
        write_export(tmp_path / "out", bad, metrics={}, dataset={})


def test_calibration_temperature_roundtrip_and_preference(tmp_path, ensemble, X):
    """A temperature stored at export gives calibrated P(a ≻ b); an export without one (written before
    calibration existed, like `exported`) loads with temperature None and the raw σ(score(a) − score(b))."""
    out = write_export(tmp_path / "cal", ensemble, metrics={}, dataset={},
                       calibration={"temperature": 0.25, "pairs": 10, "fitted_on": "validation pairs"})
    loaded = load_ensemble(out)
    assert loaded.temperature == 0.25
    Xa, Xb = X[:25], X[25:]
    d = ensemble.score(Xa) - ensemble.score(Xb)
    np.testing.assert_allclose(loaded.preference(Xa, Xb), 1 / (1 + np.exp(-d / 0.25)), rtol=1e-6)
    plain = load_ensemble(write_export(tmp_path / "plain", ensemble, metrics={}, dataset={}))
    assert plain.temperature is None
    assert "calibration" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())
    np.testing.assert_allclose(plain.preference(Xa, Xb), 1 / (1 + np.exp(-d)), rtol=1e-6)
    with pytest.raises(DataError, match="same shape"):
        loaded.preference(Xa, Xb[:3])


@pytest.mark.parametrize("value", [0, -1.0, None, "2", float("inf")])
def test_bad_calibration_temperature_refused(tmp_path, ensemble, value):
    out = write_export(tmp_path / "cal", ensemble, metrics={}, dataset={}, calibration={"temperature": 1.0})
    _edit_manifest(out, lambda m: m["calibration"].update(temperature=value))
    with pytest.raises(ExportError, match=r"calibration\.temperature.*finite number > 0"):
        load_ensemble(out)
    with pytest.raises(ExportError, match="temperature"):
        write_export(tmp_path / "bad", ensemble, metrics={}, dataset={}, calibration={"temperature": value})


def _leaves(value, path=()):
    """Every leaf of a JSON value with its path."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _changed(value):
    """Another JSON value of a leaf: a number nudged, a string altered, a boolean flipped, a null or [] filled."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.001
    if isinstance(value, str):
        return value + "x"
    return 1


def _set(m, path, value):
    for key in path[:-1]:
        m = m[key]
    m[path[-1]] = value


def test_every_manifest_field_edited_in_turn_is_refused(exported):
    """The seal covers the manifest: editing any single field (the weight of a member, a metric, a date) is
    refused at load, naming the folder and manifest.json."""
    original = (exported / "manifest.json").read_text()
    leaves = list(_leaves(json.loads(original)))
    assert len(leaves) > 100 and any(p[-1] == "weight" for p, _ in leaves)
    for path, value in leaves:
        _edit_manifest(exported, lambda m: _set(m, path, _changed(value)), reseal=False)
        with pytest.raises(ExportError, match=rf"export {exported}: manifest\.json: sha256 does not match"):
            load_ensemble(exported)
        (exported / "manifest.json").write_text(original)
    load_ensemble(exported)


def test_40_random_edits_to_any_file_are_all_refused(exported, X, ensemble):
    rng = np.random.default_rng(22)
    files = ["manifest.json", "members.safetensors", "checksums.sha256"]
    originals = {f: (exported / f).read_bytes() for f in files}
    leaves = list(_leaves(json.loads(originals["manifest.json"])))
    kinds = []
    for i in range(40):
        name = files[i % 3]
        blob = bytearray(originals[name])
        if name == "manifest.json" and i % 2:  # a JSON field, the file re-serialized as the writer does
            path, value = leaves[rng.integers(len(leaves))]
            m = json.loads(originals[name])
            _set(m, path, _changed(value))
            blob = bytearray((json.dumps(m, indent=2) + "\n").encode())
            kinds.append("field")
        else:  # one byte changed, inserted or deleted
            at = int(rng.integers(len(blob)))
            how = rng.integers(3)
            if how == 0:
                blob[at] ^= int(rng.integers(1, 256))
            elif how == 1:
                blob.insert(at, int(rng.integers(256)))
            else:
                del blob[at]
            kinds.append("byte")
        (exported / name).write_bytes(bytes(blob))
        with pytest.raises(ExportError, match=rf"export {exported}: ({name}|checksums\.sha256|manifest\.json)"):
            load_ensemble(exported)
        (exported / name).write_bytes(originals[name])
    assert kinds.count("field") == 7 and kinds.count("byte") == 33
    _same(load_ensemble(exported), ensemble, X)


@pytest.mark.parametrize("damage, message", [
    ("missing", r"checksums\.sha256: missing; every export is sealed"),
    ("uppercase", r"checksums\.sha256: is not the checksum list an export writes"),
    ("lists-more", r"checksums\.sha256: lists zz-extra, which the manifest does not"),
    ("other-hash", r"checksums\.sha256: lists members\.safetensors with another sha256"),
], ids=["missing", "uppercase", "lists-more", "other-hash"])
def test_a_damaged_seal_is_refused(exported, damage, message):
    seal = exported / "checksums.sha256"
    text = seal.read_text()
    if damage == "missing":
        seal.unlink()
    elif damage == "uppercase":  # what `sha256sum -c` would accept, but not what an export writes
        seal.write_text(text.upper().replace("MANIFEST.JSON", "manifest.json").replace("MEMBERS.SAFETENSORS",
                                                                                        "members.safetensors"))
    elif damage == "lists-more":
        seal.write_text(text + "0" * 64 + "  zz-extra\n")
    else:
        lines = text.splitlines(keepends=True)
        lines[1] = "0" * 64 + lines[1][64:]
        seal.write_text("".join(lines))
    with pytest.raises(ExportError, match=message):
        load_ensemble(exported)
