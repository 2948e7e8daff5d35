import optuna
import pytest

from rmsearch.ensembles import EnsembleConfig
from rmsearch.errors import ConfigError
from rmsearch.spaces import BUILTIN_SPACES, Space, load_space


@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_builtins_load(name):
    assert load_space(name).params


def test_default_suggests_valid_points_with_only_active_conditionals():
    space = load_space("default")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    heads = set()
    for _ in range(30):
        point = space.suggest(study.ask())
        config = EnsembleConfig.from_point(point)
        heads.add(config.head.kind)
        for key in point:
            group = key.partition(".")[0]
            if group in ("linear", "mlp", "mlp_clf", "gbdt"):
                assert group == point["head"], (key, point["head"])
            if group in ("uwo", "lcb"):
                assert group == point["aggregation"]
        assert 1 <= config.members <= 10
    assert len(heads) >= 3


def test_seed_paper_is_one_point():
    point = load_space("seed-paper").fixed_point()
    config = EnsembleConfig.from_point(point)
    assert config.head.kind == "mlp" and config.head.hidden == (1024, 512) and config.members == 10
    assert config.head.lr == 1e-3 and config.aggregation.name == "mean" and not config.standardize


def test_coste_space_bounds():
    space = load_space("coste")
    assert space.params["members"].high == 8
    assert set(space.params["aggregation"].choices) == {"mean", "min", "uwo"}


def test_list_choices_round_trip_and_nested_form():
    space = Space.from_yaml_text("head: mlp\nmlp:\n  hidden: {categorical: [[8], [16, 8]]}\n  dropout: 0.1\n")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {tuple(space.suggest(study.ask())["mlp.hidden"]) for _ in range(12)}
    assert seen == {(8,), (16, 8)}


@pytest.mark.parametrize("text, match", [
    ("head: mlp\ncolour: red\n", "line 2: unknown key 'colour'"),
    ("head: mlp\nmlp.width: 3\n", "line 2: head 'mlp' has no parameter 'width'"),
    ("head: {categorical: [mlp, svm]}\n", "line 1: unknown head 'svm'"),
    ("members: {int: [5, 2]}\n", "line 1: members: low 5 must be below high 2"),
    ("head: mlp\nmlp.weight_decay: {log: [0, 1]}\n", "line 2: mlp.weight_decay: log needs low > 0"),
    ("members: {int: [1.5, 3]}\n", "line 1: members: int bounds"),
    ("members: {gaussian: [0, 1]}\n", "line 1: members: a distribution has exactly one of"),
    ("head: mlp\ngbdt.max_iter: 10\n", "line 2: 'gbdt.max_iter' applies only when head is 'gbdt'"),
    ("aggregation: mean\nuwo.lambda: 1.0\n", "line 2: 'uwo.lambda' applies only when aggregation is 'uwo'"),
    ("head: mlp\nmlp.dropout: {float: [0.0, 1.5]}\n", "line 2: mlp.dropout=1.5 is not allowed"),
    ("head: mlp\n  bad: [\n", "not valid YAML"),
])
def test_bad_spaces_name_the_line(text, match):
    with pytest.raises(ConfigError, match=match):
        Space.from_yaml_text(text, source="s.yaml")


def test_unknown_space_name():
    with pytest.raises(ConfigError, match="not a built-in space"):
        load_space("nonexistent-space")
