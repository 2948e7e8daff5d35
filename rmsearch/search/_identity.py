"""What a study is: its name, confined to one folder of the run folder, and everything that decides what its
trials' values mean (objective, space, data, annotator, seed, folds), recorded when it is created and checked on
every relaunch before any work: a relaunch that differs in any of these would rank values of two experiments
together, so it is refused, naming each field that differs, both values and the fix (the study's own settings, or
a new `--study`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict
from pathlib import Path

from rmsearch.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_study_name(name: str, runs: str | Path | None = None) -> None:
    """A study name is one plain folder name: letters, digits, '-', '_' and '.', not '.' or '..'. With `runs`,
    also prove that the study's folder lies inside it (it always does for such a name)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"--study {name!r}: a study name is one folder name inside --runs, made of letters, digits, "
                          f"'-', '_' and '.' (not '.' or '..', no '/' or spaces); choose e.g. --study my-study.")
    if runs is not None:
        root = Path(runs).resolve()
        if root not in (root / name).resolve().parents:
            raise ConfigError(f"--study {name!r}: its folder would lie outside --runs {runs}; choose another name.")


def space_canonical(space) -> str:
    """The space's canonical YAML without the line naming where it came from: two files of the same space
    (or a file copying a built-in one) are the same space."""
    return "".join(line + "\n" for line in space.to_yaml().splitlines() if not line.startswith("# space:"))


def identity(options, space, data, task_config, objective) -> dict:
    """Everything that decides what a trial's value means, as a study records it (JSON)."""
    canonical = space_canonical(space)
    return {
        "objective": objective.name,
        "multi_objective": bool(options.multi_objective),
        "space": {"name": str(options.space), "sha256": hashlib.sha256(canonical.encode()).hexdigest(),
                  "canonical": canonical},
        "data": {"spec": str(options.data), "fingerprint": data.fingerprint},
        "task": asdict(task_config),
    }


def _legacy(attrs: dict) -> dict:
    """What a study created before identities were recorded says of itself (its space by name only)."""
    out = {}
    if "objective" in attrs:
        out["objective"] = attrs["objective"]
    if "space" in attrs:
        out["space"] = {"name": attrs["space"]}
    if "data" in attrs:
        out["data"] = {"spec": attrs["data"].get("spec"), "fingerprint": attrs["data"].get("fingerprint")}
    if "task" in attrs:
        out["task"] = attrs["task"].get("config")
    return out


OPTIONS = {"objective": "--objective", "multi_objective": "--multi-objective", "space": "--space", "data": "--data",
           "task.seed": "--seed", "task.folds": "--folds", "task.annotator.quality": "--quality",
           "task.annotator.flip_rate": "--flip-rate", "task.annotator.pairing": "--pairing",
           "task.annotator.pairs_per_prompt": "--pairs-per-prompt"}
"""Identity field -> the launch option that sets it."""


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("space", "data"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(field: str, value) -> str:
    if field == "space" and isinstance(value, dict):
        digest = f" (canonical form sha256 {value['sha256'][:12]})" if value.get("sha256") else ""
        return f"{value.get('name')!r}{digest}"
    if field == "data" and isinstance(value, dict):
        return f"{value.get('spec')!r} (fingerprint {value.get('fingerprint')})"
    return repr(value)


def _same(field: str, old, new) -> bool:
    if field == "space":
        return old.get("sha256", new["sha256"]) == new["sha256"] and (
            "sha256" in old or old.get("name") == new["name"])
    if field == "data":
        return old.get("fingerprint") == new["fingerprint"]
    return old == new


def _space_lines(old: dict, new: dict) -> str:
    """The lines in which two canonical spaces differ, for the message."""
    if "canonical" not in old:
        return ""
    a, b = old["canonical"].splitlines(), new["canonical"].splitlines()
    gone, added = [x for x in a if x not in b], [x for x in b if x not in a]
    return (" (the study's space has " + ("; ".join(gone) or "nothing more") + " where this one has "
            + ("; ".join(added) or "nothing more") + ")")


def check_identity(name: str, attrs: dict, new: dict) -> None:
    """Refuse a relaunch of study `name` (its user attributes `attrs`) whose identity `new` differs from the
    study's recorded one, naming every field that differs with both values and the fix."""
    if "identity" in attrs:
        old = attrs["identity"]
    elif "data" in attrs:
        old = _legacy(attrs)
    else:
        return  # a new study (or one that never recorded anything): nothing to compare with
    old_flat, new_flat = _flat(old), _flat(new)
    diffs = []
    for field, value in new_flat.items():
        if field not in old_flat or _same(field, old_flat[field], value):
            continue
        option = OPTIONS.get(field, "the launch settings")
        extra = _space_lines(old_flat[field], value) if field == "space" else ""
        diffs.append(f"{field} (set by {option}): the study ran with {_show(field, old_flat[field])}, this launch "
                     f"asks {_show(field, value)}{extra}")
    if diffs:
        raise ConfigError(
            f"study {name!r} is one experiment, and this launch differs from it in "
            + "; ".join(diffs) + ". Trials of both would be ranked together. Relaunch with the study's own settings, "
            f"or start a new study with another --study name (e.g. --study {name}-2).")
