"""Configuration values of the wrong type, from `--set` and from a `--config` file, exit 2 with a message naming
where (the file's line), the key, the value, what the key takes and an example -- never a traceback."""

import subprocess
import sys

import pytest

from rmsearch.ensembles import EnsembleConfig
from rmsearch.errors import ConfigError
from rmsearch.heads import MLPConfig

TINY = "synth:train_prompts=50,test_prompts=4,test_responses=10,dim=6"


def evaluate(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", "evaluate", "--data", TINY, *map(str, args)],
                          capture_output=True, text=True, timeout=300)


# (--set value, YAML line, what the message must say)
CASES = [
    ("mlp.hidden=64", "mlp.hidden: 64", ["mlp.hidden=64", "is an integer", "takes a list of integers", "[64, 32]"]),
    ("mlp.hidden=64,32", "mlp.hidden: 64,32", ["mlp.hidden='64,32'", "is a string", "takes a list of integers",
                                                "[64, 32]"]),
    ("members=abc", "members: abc", ["members='abc'", "is a string", "takes an integer", "members"]),
    ("members=2.5", "members: 2.5", ["members=2.5", "takes an integer"]),
    ("standardize=yes please", "standardize: yes please", ["standardize='yes please'", "takes true or false"]),
    ("uwo.lambda=high", "uwo.lambda: high", ["uwo.lambda='high'", "takes a number", "uwo.lambda"]),
    ("mlp.bootstrap=1", "mlp.bootstrap: 1", ["mlp.bootstrap=1", "takes true or false"]),
    ("mlp.precision=16", "mlp.precision: 16", ["mlp.precision=16", "takes a string", "auto"]),
    ("head=[mlp]", "head: [mlp]", ["unknown head type ['mlp']", "choose one of linear, mlp"]),
]


@pytest.mark.parametrize("setting, _, parts", CASES, ids=[c[0] for c in CASES])
def test_wrong_typed_set_exits_2_with_key_value_type_and_example(tmp_path, setting, _, parts):
    r = evaluate("--set", setting, "--out", tmp_path / "never")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    for part in parts:
        assert part in r.stderr, (part, r.stderr)
    assert "e.g. --set" in r.stderr  # the example is written as the option the user typed
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("_, line, parts", CASES, ids=[c[0] for c in CASES])
def test_wrong_typed_config_file_exits_2_naming_the_line(tmp_path, _, line, parts):
    config = tmp_path / "ens.yaml"
    config.write_text(f"# my ensemble\nhead: mlp\naggregation: uwo\n{line}\n")
    r = evaluate("--config", config, "--out", tmp_path / "never")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"--config {config} line 4:" in r.stderr, r.stderr
    for part in parts:
        assert part in r.stderr, (part, r.stderr)


def test_nested_yaml_form_names_the_inner_line(tmp_path):
    config = tmp_path / "ens.yaml"
    config.write_text("head: mlp\nmlp:\n  epochs: 3\n  hidden: 64\n")
    r = evaluate("--config", config, "--out", tmp_path / "never")
    assert r.returncode == 2 and f"--config {config} line 4: mlp.hidden=64" in r.stderr, r.stderr
    assert "mlp.hidden: [64, 32]" in r.stderr  # the example in the file's own syntax


def test_set_value_that_is_not_yaml(tmp_path):
    r = evaluate("--set", "mlp.hidden=[64", "--out", tmp_path / "never")
    assert r.returncode == 2 and "not valid YAML" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("point, match", [
    ({"mlp.hidden": 64},
     r"mlp.hidden=64 is an integer, but mlp.hidden takes a list of integers .*mlp.hidden=\[64, 32\]"),
    ({"members": "abc"}, r"members='abc' is a string, but members takes an integer; write e.g. members=8"),
    ({"head": "gbdt", "gbdt.max_iter": "many"},
     r"gbdt.max_iter='many' is a string, but gbdt.max_iter takes an integer"),
    ({"head": "mlp", "gbdt.max_iter": [1]}, r"gbdt.max_iter=\[1\]"),  # another head's key is still type-checked
    ({"aggregation": "uwo", "uwo.kappa": 1.0}, r"unknown key 'uwo.kappa'"),
    ({1: 2}, r"unknown key '1'"),
])
def test_from_point_refuses_wrong_types(point, match):
    with pytest.raises(ConfigError, match=match):
        EnsembleConfig.from_point(point)


def test_from_dict_uses_the_same_check():
    with pytest.raises(ConfigError, match=r"mlp.hidden='64,32' is a string, but mlp.hidden takes a list of integers"):
        MLPConfig.from_dict({"hidden": "64,32"})
    with pytest.raises(ConfigError, match=r"mlp.normalize='false' is a string, but mlp.normalize takes true or false"):
        MLPConfig.from_dict({"normalize": "false"})  # bool('false') would have been True
    cfg = MLPConfig.from_dict({"hidden": [64.0, 32], "epochs": 4.0, "lr": "1e-3"})  # whole floats, YAML 1.1 floats
    assert cfg.hidden == (64, 32) and cfg.epochs == 4 and cfg.lr == 1e-3


def test_right_types_still_train(tmp_path):
    config = tmp_path / "ens.yaml"
    config.write_text("head: mlp\nmembers: 2\nmlp: {hidden: [8], epochs: 2, lr: 1e-2}\n")
    r = evaluate("--config", config, "--set", "members=3", "--set", "mlp.hidden=[8, 4]", "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    assert '"members": 3' in (tmp_path / "r" / "report.md").read_text()
