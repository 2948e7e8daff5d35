"""The head cache knows its code: a member's key holds the versions of rmsearch, torch, scikit-learn and numpy and
a hash of the training code, and 'auto' precision resolved; a study resumed on an upgraded install trains its
members again and says how many."""

import pytest

from tests.search.conftest import SMALL

FIXED = """
head: mlp
members: 2
aggregation: mean
mlp.hidden: [8]
mlp.epochs: 2
"""


def test_a_member_key_changes_with_the_code_and_holds_the_resolved_precision(monkeypatch):
    from rmsearch.heads import MLPConfig
    from rmsearch.search import _store

    head = MLPConfig().resolved(8).to_dict()
    assert head["precision"] == "fp32" and MLPConfig(precision="bf16").resolved(8).precision == "bf16"
    key = _store.member_key("task", head, 0)
    assert set(_store.code_identity()) == {"rmsearch", "torch", "scikit-learn", "numpy", "training code"}
    upgraded = {**_store.code_identity(), "torch": "9.9"}
    monkeypatch.setattr(_store, "code_identity", lambda: upgraded)
    assert _store.member_key("task", head, 0) != key


def test_a_resumed_study_on_an_upgraded_install_retrains_its_members_and_says_so(tmp_path, ray_session,
                                                                                   monkeypatch, capsys):
    from rmsearch.search import LaunchOptions, Search, _store  # noqa: F401
    from rmsearch.search import _launch_study, _scheduler

    space = tmp_path / "fixed.yaml"
    space.write_text(FIXED)
    options = dict(data=SMALL, space=str(space), trials=1, study="up", runs=tmp_path / "runs", final=False,
                   workers=1, progress=False)
    real = _store.code_identity()
    old = {**real, "torch": "2.0.0", "training code": "0" * 16}
    with monkeypatch.context() as m:  # the install the study was launched with
        m.setattr(_store, "code_identity", lambda: old)
        m.setattr(_launch_study, "code_identity", lambda: old)
        m.setattr(_scheduler, "code_identity", lambda: old)
        first = Search(LaunchOptions(**options)).run()
    assert first.state.trained == 2 and first.state.retrained == 0
    again = Search(LaunchOptions(**options)).run()  # the same study on this install
    err = capsys.readouterr().err
    assert "study 'up': 2 cached members were trained by other code (torch 2.0.0 → " in err
    assert "training code 0000000000000000 → " in err
    assert again.state.trained == 2 and again.state.retrained == 2 and again.state.reused == 0
    assert again.study.user_attrs["last_launch"]["retrained"] == 2
    third = Search(LaunchOptions(**options)).run()  # nothing changed since: the cache serves the members
    assert third.state.trained == 0 and third.state.reused == 2 and third.state.retrained == 0
