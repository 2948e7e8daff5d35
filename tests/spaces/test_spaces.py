import optuna
import pytest

from rmsearch.ensembles import EnsembleConfig
from rmsearch.errors import ConfigError
from rmsearch.spaces import BUILTIN_SPACES, Space, load_space

HEADS = ("linear", "mlp", "mlp_clf", "gbdt")


def _study(seed=0):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_builtins_load_and_print(name):
    space = load_space(name)
    assert space.params
    again = Space.from_yaml_text(space.to_yaml(), source="printed")  # what `spaces show` prints loads back
    assert again.params.keys() == space.params.keys()


def test_builtin_files_start_with_a_comment():
    from importlib import resources

    for name in BUILTIN_SPACES:
        text = resources.files("rmsearch.spaces").joinpath("builtin", f"{name}.yaml").read_text()
        assert text.startswith(f"# {name}:")


def test_load_space_from_a_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("head: mlp\nmembers: 3\n")
    assert load_space(path).fixed_point() == {"head": "mlp", "members": 3}


def test_default_suggests_valid_points_with_only_active_conditionals():
    space = load_space("default")
    study = _study(1)
    heads, aggs = set(), set()
    for _ in range(30):
        trial = study.ask()
        point = space.suggest(trial)
        assert set(trial.params) == set(point)  # Optuna parameter names are the point keys, nothing else
        config = EnsembleConfig.from_point(point)
        heads.add(config.head.kind)
        aggs.add(config.aggregation.name)
        for key in point:
            group = key.partition(".")[0]
            if group in HEADS:
                assert group == point["head"], (key, point["head"])
            if group in ("uwo", "lcb"):
                assert group == point["aggregation"]
        assert any(k.startswith(point["head"] + ".") for k in point)
        assert 1 <= config.members <= 10
        if "mlp.hidden" in point:
            assert isinstance(point["mlp.hidden"], list)
    assert len(heads) >= 3 and len(aggs) >= 3


def test_seed_paper_is_one_point():
    space = load_space("seed-paper")
    point = space.fixed_point()
    assert point == {
        "head": "mlp", "members": 10, "aggregation": "mean", "standardize": False, "mlp.hidden": [1024, 512],
        "mlp.lr": 0.001, "mlp.batch_size": 5120, "mlp.epochs": 30, "mlp.patience": 3, "mlp.bootstrap": False,
    }
    assert space.suggest(_study().ask()) == point
    config = EnsembleConfig.from_point(point)
    assert config.head.hidden == (1024, 512) and config.head.lr == 1e-3 and not config.standardize


def test_spaces_with_distributions_have_no_fixed_point():
    with pytest.raises(ConfigError, match="members"):
        load_space("default").fixed_point()


def test_coste_space():
    space = load_space("coste")
    assert space.params["members"].high <= 8
    assert set(space.params["aggregation"].choices) == {"mean", "min", "uwo"}
    study = _study(3)
    for _ in range(15):
        point = space.suggest(study.ask())
        EnsembleConfig.from_point(point)
        assert ("uwo.lambda" in point) == (point["aggregation"] == "uwo")


def test_list_choices_round_trip_and_nested_form():
    text = "head: mlp\nmlp:\n  hidden: {categorical: [[8], [16, 8]]}\n  dropout: {float: [0, 0.3]}\n"
    text += "aggregation: {categorical: [mean, uwo]}\nuwo: {lambda: 2}\n"
    space = Space.from_yaml_text(text)
    assert set(space.params) == {"head", "mlp.hidden", "mlp.dropout", "aggregation", "uwo.lambda"}
    study = _study()
    seen = set()
    for _ in range(12):
        trial = study.ask()
        point = space.suggest(trial)
        assert isinstance(trial.params["mlp.hidden"], str)  # Optuna stores "16x8"
        assert ("uwo.lambda" in point) == (point["aggregation"] == "uwo")
        seen.add(tuple(point["mlp.hidden"]))
        assert EnsembleConfig.from_point(point).head.hidden == tuple(point["mlp.hidden"])
    assert seen == {(8,), (16, 8)}
    printed = Space.from_yaml_text(space.to_yaml())
    assert printed.params["mlp.hidden"].choices == space.params["mlp.hidden"].choices


def test_exponent_floats_are_numbers():
    point = Space.from_yaml_text("head: mlp\nmlp.lr: 1e-3\n").fixed_point()
    assert point["mlp.lr"] == 0.001


def test_conditional_on_a_categorical_that_includes_it():
    space = Space.from_yaml_text("head: {categorical: [mlp, gbdt]}\ngbdt.max_iter: {int: [10, 20]}\n"
                                 "mlp.dropout: 0.1\n")
    study = _study(2)
    for _ in range(10):
        point = space.suggest(study.ask())
        assert ("gbdt.max_iter" in point) == (point["head"] == "gbdt")
        assert ("mlp.dropout" in point) == (point["head"] == "mlp")


@pytest.mark.parametrize("text, line, match", [
    ("head: mlp\ncolour: red\n", 2, "unknown key 'colour'"),
    ("head: mlp\nmlp.width: 3\n", 2, "head 'mlp' has no parameter 'width'"),
    ("head: mlp\nmlp:\n  width: 3\n", 3, "head 'mlp' has no parameter 'width'"),
    ("aggregation: uwo\nuwo.kappa: 1\n", 2, "aggregation 'uwo' has no parameter 'kappa'"),
    ("head: {categorical: [mlp, svm]}\n", 1, "unknown head 'svm'"),
    ("members: 3\naggregation: {categorical: [mean, softmax]}\n", 2, "unknown aggregation 'softmax'"),
    ("members: {int: [5, 2]}\n", 1, "members: low 5 must be below high 2"),
    ("head: mlp\nmlp.dropout: {float: [0.2, 0.2]}\n", 2, "mlp.dropout: low 0.2 must be below high 0.2"),
    ("head: mlp\nmlp.weight_decay: {log: [0, 1]}\n", 2, "mlp.weight_decay: log needs low > 0"),
    ("members: {int: [1.5, 3]}\n", 1, "members: int bounds"),
    ("members: {gaussian: [0, 1]}\n", 1, "members: unknown distribution 'gaussian'"),
    ("head: mlp\ngbdt.max_iter: 10\n", 2, "'gbdt.max_iter' applies only when head is 'gbdt'"),
    ("head: {categorical: [mlp, linear]}\n\ngbdt.max_iter: {int: [10, 20]}\n", 3,
     "'gbdt.max_iter' applies only when head is 'gbdt'"),
    ("gbdt.max_iter: 10\n", 1, "'gbdt.max_iter' applies only when head is 'gbdt'"),  # head defaults to mlp
    ("aggregation: mean\nuwo.lambda: 1.0\n", 2, "'uwo.lambda' applies only when aggregation is 'uwo'"),
    ("head: mlp\nmlp.dropout: {float: [0.0, 1.5]}\n", 2, "mlp.dropout=1.5 is not allowed"),
    ("head: mlp\nmlp.epochs: {float: [5, 10]}\n", 2, "mlp.epochs takes integers"),
    ("head: mlp\nmlp.bootstrap: 'no'\n", 2, "mlp.bootstrap='no' must be true or false"),
    ("members: 0\n", 1, "members=0 must be between 1 and 999"),
    ("standardize: {categorical: [true, 2]}\n", 1, "standardize is true or false"),
    ("head: mlp\nmembers: 2\nmembers: 3\n", 3, "'members' is given twice"),
    ("head: mlp\nmlp.hidden: {categorical: [[64, 32], '64x32']}\n", 2, "mlp.hidden: categorical choices"),
    ("head: mlp\nmlp.hidden: {categorical: [[64, [32]]]}\n", 2, "mlp.hidden: choice"),
    ("members: {int: [1, 5], step: 0}\n", 1, "members: step"),
    ("head: mlp\n  bad: [\n", 2, "not valid YAML"),
    ("head: mlp\nmembers: [1, 2\n", 3, "not valid YAML"),
    ("- head\n", 1, "a space is a mapping"),
])
def test_bad_spaces_name_the_line(text, line, match):
    with pytest.raises(ConfigError, match=match) as info:
        Space.from_yaml_text(text, source="s.yaml")
    assert f"s.yaml line {line}:" in str(info.value)


def test_unknown_space_name():
    with pytest.raises(ConfigError, match="not a built-in space"):
        load_space("nonexistent-space")
