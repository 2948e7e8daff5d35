"""A study's identity, checked without a launch: each field that differs is named with both values; studies
created before identities were recorded are checked on what they recorded."""

import pytest

from rmsearch.errors import ConfigError
from rmsearch.search._identity import check_identity, check_study_name

NEW = {"objective": "bon_auc", "multi_objective": False,
       "space": {"name": "default", "sha256": "a" * 64, "canonical": "head: mlp\nmembers: 3\n"},
       "data": {"spec": "synth", "fingerprint": "f1"},
       "task": {"seed": 0, "folds": None, "annotator": {"pairing": "within", "quality": 2.0, "flip_rate": None,
                                                        "pairs_per_prompt": 10}}}


def _with(**changes):
    import copy

    out = copy.deepcopy(NEW)
    for path, value in changes.items():
        d = out
        *head, last = path.split("__")
        for k in head:
            d = d[k]
        d[last] = value
    return out


def test_the_same_identity_passes_and_a_new_study_has_nothing_to_compare():
    check_identity("s", {"identity": NEW}, NEW)
    check_identity("s", {}, NEW)


def test_each_differing_field_is_named_with_both_values():
    old = _with(task__annotator__quality=3.0, objective="bon_gold")
    with pytest.raises(ConfigError) as e:
        check_identity("s", {"identity": old}, NEW)
    msg = str(e.value)
    assert "task.annotator.quality (set by --quality): the study ran with 3.0, this launch asks 2.0" in msg
    assert "objective (set by --objective): the study ran with 'bon_gold', this launch asks 'bon_auc'" in msg
    assert "seed" not in msg and "--study s-2" in msg


def test_a_space_that_differs_shows_the_lines_that_differ():
    old = _with(space={"name": "mine.yaml", "sha256": "b" * 64, "canonical": "head: mlp\nmembers: 5\n"})
    with pytest.raises(ConfigError, match=r"space \(set by --space\): the study ran with 'mine.yaml' \(canonical form "
                                          r"sha256 bbbbbbbbbbbb\), this launch asks 'default' .*the study's space has "
                                          r"members: 5 where this one has members: 3"):
        check_identity("s", {"identity": old}, NEW)


def test_a_study_from_before_identities_is_checked_on_what_it_recorded():
    legacy = {"objective": "bon_auc", "space": "default", "data": {"spec": "synth", "fingerprint": "f1"},
              "task": {"key": "k", "config": {**NEW["task"], "annotator": {**NEW["task"]["annotator"],
                                                                            "pairing": "cross"}}}}
    with pytest.raises(ConfigError, match=r"task\.annotator\.pairing \(set by --pairing\): the study ran with "
                                          r"'cross', this launch asks 'within'"):
        check_identity("s", legacy, NEW)
    legacy["task"]["config"]["annotator"]["pairing"] = "within"
    check_identity("s", legacy, NEW)  # the space by name only: 'default' is 'default'


@pytest.mark.parametrize("name", ["a", "my-study_2.0", "...", "A1"])
def test_good_names(name, tmp_path):
    check_study_name(name, tmp_path)
