"""Search spaces: a declarative YAML file (or a built-in name) where each parameter of an ensemble point is fixed
or a distribution, with conditional parameters.

    head: {categorical: [mlp, gbdt]}        # fixed value, or one of:
    members: {int: [1, 10]}                 #   {int: [low, high]} (optional step: {int: [2, 10], step: 2})
    mlp.weight_decay: {log: [1.0e-6, 0.1]}  #   {log: [low, high]}   log-uniform float, low > 0
    mlp.dropout: {float: [0.0, 0.3]}        #   {float: [low, high]}
    mlp.hidden: {categorical: [[64, 32], [256, 128]]}
    uwo.lambda: {float: [0.1, 3.0]}
    lcb.kappa: {range: default}             # an aggregation parameter's registered range (`spaces show` prints it)

Keys are those of an ensemble point (see `rmsearch.ensembles.EnsembleConfig`). The optional key `starts` lists
points a new study tries first (Optuna's `enqueue_trial`), so a small budget cannot end below known-good
configurations; each start gives values inside the space's distributions (parameters it omits are sampled).
`<head>.<field>` applies only when `head` is that head type, `uwo.lambda` / `lcb.kappa` only when `aggregation`
is that aggregation; nested YAML (`mlp: {dropout: {float: [0, 0.3]}}`) is the same as the dotted form. The space
only suggests; it computes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import yaml

from rmsearch.ensembles import (
    AGGREGATORS,
    PARAM_NAMES,
    TOP_KEYS,
    EnsembleConfig,
    flatten,
)
from rmsearch.errors import ConfigError
from rmsearch.heads import HEAD_CONFIGS
from rmsearch.spaces._fields import _default_range, _field_kind, _inapplicable

DISTRIBUTIONS = ("int", "float", "log", "categorical")
BUILTIN_SPACES = ("default", "seed-paper", "coste")
DEFAULTS = {"head": "mlp", "aggregation": "mean"}  # what EnsembleConfig uses when a point omits them
SCALARS = (type(None), bool, int, float, str)  # what Optuna accepts as categorical choices


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (1e-3), as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass(frozen=True)
class Param:
    name: str
    line: int
    dist: str | None = None
    """None for a fixed value, else one of DISTRIBUTIONS."""
    value: object = None
    low: float | None = None
    high: float | None = None
    step: int | None = None
    choices: tuple = ()

    @property
    def condition(self) -> tuple[str, str] | None:
        group = self.name.partition(".")[0]
        if group in HEAD_CONFIGS:
            return ("head", group)
        if group in AGGREGATORS:
            return ("aggregation", group)
        return None

    def values(self) -> set:
        return set(self.choices) if self.dist == "categorical" else {self.value}


def _encode(choice):
    """Optuna's categorical choices must be None/bool/int/float/str: lists travel as '64x32'."""
    return "x".join(str(v) for v in choice) if isinstance(choice, list) else choice


def _start_nodes(node, source: str) -> list:
    if not isinstance(node, yaml.SequenceNode) or not all(isinstance(n, yaml.MappingNode) for n in node.value):
        raise ConfigError(f"{source} line {node.start_mark.line + 1}: starts is a list of points, e.g. "
                          f"starts: [{{head: mlp, members: 5}}].")
    return node.value


def _walk(node: yaml.MappingNode, prefix: str, out: dict, source: str) -> None:
    loader = _Loader("")
    for key_node, val_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(f"{source} line {line}: parameter names must be plain strings like 'mlp.hidden'.")
        key = f"{prefix}{key_node.value}"
        if isinstance(val_node, yaml.MappingNode) and not prefix and (key in HEAD_CONFIGS or key in AGGREGATORS):
            _walk(val_node, f"{key}.", out, source)  # nested group: mlp: {hidden: ..}
            continue
        if key in out:
            raise ConfigError(f"{source} line {line}: {key!r} is given twice (first on line {out[key].line}); "
                              f"keep one.")
        try:
            value = loader.construct_object(val_node, deep=True)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} line {line}: {key}: not a plain YAML value ({exc}).") from None
        if isinstance(val_node, yaml.MappingNode):
            out[key] = _dist(key, line, value, source)
        else:
            out[key] = Param(key, line, value=value)


def _dist(key: str, line: int, spec: dict, source: str) -> Param:
    where = f"{source} line {line}: {key}"
    if "range" in spec:
        spec = _default_range(key, spec, where)
    kinds = [k for k in spec if k in DISTRIBUTIONS]
    unknown = [k for k in spec if k not in DISTRIBUTIONS and k != "step"]
    if unknown:
        raise ConfigError(f"{where}: unknown distribution {', '.join(map(repr, unknown))}; a distribution is "
                          f"one of {', '.join(DISTRIBUTIONS)} (e.g. {{int: [1, 10]}}, {{log: [1.0e-5, 0.1]}}); "
                          f"a list value that is not a distribution is written as a plain list.")
    if len(kinds) != 1:
        raise ConfigError(f"{where}: a distribution has exactly one of {', '.join(DISTRIBUTIONS)} "
                          f"(got {', '.join(map(str, spec)) or 'none'}).")
    kind = kinds[0]
    arg = spec[kind]
    if kind == "categorical":
        if not isinstance(arg, list) or not arg:
            raise ConfigError(f"{where}: categorical needs a non-empty list of choices, e.g. "
                              f"{{categorical: [a, b]}}.")
        for c in arg:
            if not (isinstance(c, SCALARS) or (isinstance(c, list) and all(isinstance(v, SCALARS) for v in c))):
                raise ConfigError(f"{where}: choice {c!r} must be a plain value or a list of plain values.")
        encoded = [_encode(c) for c in arg]  # as Optuna sees them: [64, 32] and "64x32" are the same choice
        if len(set(encoded)) != len(encoded):
            raise ConfigError(f"{where}: categorical choices {arg} repeat a choice; list each once.")
        return Param(key, line, "categorical", choices=tuple(tuple(c) if isinstance(c, list) else c for c in arg))
    if not (isinstance(arg, list) and len(arg) == 2):
        raise ConfigError(f"{where}: {kind} needs [low, high], e.g. {{{kind}: [1, 10]}}.")
    try:
        low, high = (float(v) for v in arg)  # YAML 1.1 reads 1e-6 as a string; accept it
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: bounds {arg} must be numbers.") from None
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{where}: int bounds {arg} must be integers.")
    if low >= high:
        raise ConfigError(f"{where}: low {arg[0]} must be below high {arg[1]}.")
    if kind == "log" and low <= 0:
        raise ConfigError(f"{where}: log needs low > 0 (got {arg[0]}); use float for ranges that include 0.")
    step = spec.get("step")
    if step is not None and (kind != "int" or isinstance(step, bool) or not isinstance(step, int) or step < 1):
        raise ConfigError(f"{where}: step applies to int distributions and must be a positive integer.")
    if kind == "int":
        return Param(key, line, "int", low=int(low), high=int(high), step=step)
    return Param(key, line, kind, low=low, high=high)


class Space:
    def __init__(self, params: dict[str, Param], source: str, starts: tuple[dict, ...] = ()):
        self.params = params
        self.source = source
        self.starts = starts
        """Points (flat dicts of point keys) a new study runs first, in order."""

    # ---- loading and validation ---------------------------------------------------------------------------
    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<space>") -> "Space":
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}); "
                              f"fix the indentation or brackets there.") from None
        if root is None or not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1 if root is not None else 1
            raise ConfigError(f"{source} line {line}: a space is a mapping of parameter names to fixed values or "
                              f"distributions, e.g. 'members: {{int: [1, 10]}}'.")
        params: dict[str, Param] = {}
        starts_node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "starts"), None)
        root.value = [(k, v) for k, v in root.value if not (isinstance(k, yaml.ScalarNode) and k.value == "starts")]
        _walk(root, "", params, source)
        space = cls(params, source)
        space._validate()
        if starts_node is not None:
            space.starts = tuple(space._check_start(n) for n in _start_nodes(starts_node, source))
        return space

    def _check_start(self, node: yaml.MappingNode) -> dict:
        """A start as a flat point; every key a parameter of this space, active in it, with a value inside its
        distribution (a fixed parameter may be repeated with its own value)."""
        line = node.start_mark.line + 1
        where = f"{self.source} line {line}: start"
        point = flatten(_Loader("").construct_object(node, deep=True))
        context = {k: p.value for k, p in self.params.items() if p.dist is None} | point
        for key, value in point.items():
            p = self.params.get(key)
            if p is None:
                raise ConfigError(f"{where}: {key!r} is not a parameter of this space; starts set its parameters only.")
            if (why := _inapplicable(key, context)) is not None:
                raise ConfigError(f"{where}: {key} does nothing here: {why}. Remove it from the start.")
            if not self._active(p, context):
                raise ConfigError(f"{where}: {key!r} applies only when {p.condition[0]} is {p.condition[1]!r}.")
            inside = {None: lambda v: v == p.value,
                      "categorical": lambda v: _encode(v) in {_encode(list(c) if isinstance(c, tuple) else c)
                                                              for c in p.choices},
                      "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and p.low <= v <= p.high,
                      "float": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                                          and p.low <= v <= p.high),
                      "log": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and p.low <= v <= p.high}
            if not inside[p.dist](value):
                raise ConfigError(f"{where}: {key}={value!r} is outside this space's {key} (line {p.line}); give a "
                                  f"value it can take.")
        return point

    def enqueue_params(self, start: dict) -> dict:
        """A start as Optuna parameters (distributions only, categorical lists encoded as Optuna sees them)."""
        return {k: _encode(v) for k, v in start.items() if self.params[k].dist is not None}

    def _validate(self) -> None:
        src = self.source
        reachable = {k: self.params[k].values() if k in self.params else {v} for k, v in DEFAULTS.items()}
        for key, known in (("head", HEAD_CONFIGS), ("aggregation", AGGREGATORS)):
            p = self.params.get(key)
            if p is not None:
                if p.dist not in (None, "categorical"):
                    raise ConfigError(f"{src} line {p.line}: {key} must be fixed or categorical.")
                bad = [v for v in p.values() if v not in known]
                if bad:
                    raise ConfigError(f"{src} line {p.line}: unknown {key} {bad[0]!r}; choose from {', '.join(known)}.")
        for p in self.params.values():
            group, _, name = p.name.partition(".")
            cond = p.condition
            if p.name in TOP_KEYS:
                self._check_top(p)
                continue
            if cond is None or not name:
                raise ConfigError(
                    f"{src} line {p.line}: unknown key {p.name!r}; keys are {', '.join(TOP_KEYS)}, '<head>.<field>' "
                    f"for heads {', '.join(HEAD_CONFIGS)}, and {', '.join(f'{a}.{n}' for a, n in PARAM_NAMES.items())}."
                )
            if cond[0] == "head":
                valid = [f.name for f in fields(HEAD_CONFIGS[group])]
                if name not in valid:
                    raise ConfigError(f"{src} line {p.line}: head '{group}' has no parameter {name!r}; its parameters "
                                      f"are {', '.join(sorted(valid))}.")
            elif (param := AGGREGATORS[group].param) is None or param.name != name:
                raise ConfigError(f"{src} line {p.line}: aggregation '{group}' has no parameter {name!r}; "
                                  f"use {group}.{param.name if param else '(none)'}.")
            if cond[1] not in reachable[cond[0]]:
                raise ConfigError(
                    f"{src} line {p.line}: {p.name!r} applies only when {cond[0]} is {cond[1]!r}, which this space "
                    f"never chooses ({cond[0]}: {sorted(map(str, reachable[cond[0]]))}); remove it or add {cond[1]!r}."
                )
            fixed = {k: q.value for k, q in self.params.items() if q.dist is None and k != p.name}
            switched = cond[0] == "head" and all(f"{group}.{s}" in fixed for s in HEAD_CONFIGS[group].switches)
            if switched and (why := _inapplicable(p.name, fixed)) is not None:
                raise ConfigError(f"{src} line {p.line}: {p.name} does nothing in this space: {why}. Remove it.")
            kind = _field_kind(group, name)
            if p.dist in ("int", "float", "log") and kind not in (int, float):
                raise ConfigError(f"{src} line {p.line}: {p.name} takes {kind.__name__} values; give a fixed value or "
                                  f"{{categorical: [...]}}, not {p.dist}.")
            if p.dist in ("float", "log") and kind is int:
                raise ConfigError(f"{src} line {p.line}: {p.name} takes integers; use {{int: [low, high]}}, "
                                  f"not {p.dist}.")
            self._check_values(p)
        if all(p.dist is None for p in self.params.values()):
            self.fixed_point()  # a fixed space must be one valid point

    def _check_top(self, p: Param) -> None:
        """members / seed are integers (members 1-999), standardize a boolean."""
        where = f"{self.source} line {p.line}: {p.name}"
        if p.name in ("head", "aggregation"):
            return
        if p.name == "standardize":
            if p.dist not in (None, "categorical") or not all(isinstance(v, bool) for v in p.values()):
                raise ConfigError(f"{where} is true or false, or {{categorical: [true, false]}}.")
            return
        if p.dist in ("float", "log"):
            raise ConfigError(f"{where} takes integers; use {{int: [low, high]}}, not {p.dist}.")
        samples = [p.low, p.high] if p.dist == "int" else list(p.values())
        for v in samples:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{where}={v!r} must be an integer.")
            if p.name == "members" and not 1 <= v <= 999:
                raise ConfigError(f"{where}={v} must be between 1 and 999.")
            if p.name == "seed" and v < 0:
                raise ConfigError(f"{where}={v} must be >= 0.")

    def _check_values(self, p: Param) -> None:
        """Every value a head or aggregation parameter can take passes that config's own validation."""
        group, _, name = p.name.partition(".")
        if p.dist == "categorical":
            samples = [list(c) if isinstance(c, tuple) else c for c in p.choices]
        elif p.dist is None:
            samples = [p.value]
        else:
            samples = [p.low, p.high]
        kind = _field_kind(group, name)
        for v in samples:
            ok = {bool: lambda x: isinstance(x, bool),
                  int: lambda x: isinstance(x, int) and not isinstance(x, bool),
                  float: lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
                  tuple: lambda x: isinstance(x, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                                               for i in x),
                  str: lambda x: isinstance(x, str)}[kind](v)
            if not ok:
                want = {bool: "true or false", int: "an integer", float: "a number",
                        tuple: "a list of integers like [64, 32]", str: "a string"}[kind]
                raise ConfigError(f"{self.source} line {p.line}: {p.name}={v!r} must be {want}.")
            try:
                if p.condition[0] == "head":
                    HEAD_CONFIGS[group].from_dict({name: v})
                elif not (param := AGGREGATORS[group].param).allows(v):
                    raise ConfigError(f"{p.name} must be a finite number >= {param.minimum:g}")
            except (ConfigError, TypeError, ValueError) as exc:
                raise ConfigError(f"{self.source} line {p.line}: {p.name}={v!r} is not allowed: {exc}") from None

    # ---- use ---------------------------------------------------------------------------------------------------
    def _active(self, p: Param, point: dict) -> bool:
        cond = p.condition
        if cond is not None and point.get(cond[0], DEFAULTS[cond[0]]) != cond[1]:
            return False
        return _inapplicable(p.name, point) is None

    def _ordered(self) -> list[Param]:
        """head and aggregation first, then the fields that switch others on or off (e.g. linear.solver)."""
        switches = {f"{g}.{s}" for g, c in HEAD_CONFIGS.items() for s in c.switches}
        first = [k for k in ("head", "aggregation", *sorted(switches)) if k in self.params]
        return [self.params[k] for k in first] + [p for k, p in self.params.items() if k not in first]

    def suggest(self, trial) -> dict:
        """A point: each active parameter suggested under its own name (Optuna's parameter name = point key)."""
        point: dict = {}
        for p in self._ordered():
            if not self._active(p, point):
                continue
            if p.dist is None:
                point[p.name] = p.value
            elif p.dist == "int":
                point[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1)
            elif p.dist in ("float", "log"):
                point[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.dist == "log")
            else:
                encoded = {_encode(list(c) if isinstance(c, tuple) else c): c for c in p.choices}
                pick = encoded[trial.suggest_categorical(p.name, list(encoded))]
                point[p.name] = list(pick) if isinstance(pick, tuple) else pick
        return point

    def fixed_point(self) -> dict:
        """The one point of a space without distributions."""
        open_ = [p.name for p in self.params.values() if p.dist is not None]
        if open_:
            raise ConfigError(f"{self.source}: not a single point; {', '.join(open_)} are distributions.")
        point: dict = {}
        for p in self._ordered():
            if self._active(p, point):
                point[p.name] = p.value
        EnsembleConfig.from_point(point)
        return point

    def to_yaml(self) -> str:
        lines = [f"# space: {self.source}"]
        for p in self.params.values():
            if p.dist is None:
                val = p.value
            elif p.dist == "categorical":
                val = {"categorical": [list(c) if isinstance(c, tuple) else c for c in p.choices]}
            else:
                val = {p.dist: [p.low, p.high], **({"step": p.step} if p.step else {})}
            dumped = yaml.safe_dump(val, default_flow_style=True, width=1000).strip()
            lines.append(f"{p.name}: {dumped.removesuffix('...').strip()}")
        if self.starts:
            lines.append("starts:")
            lines += [f"  - {yaml.safe_dump(s, default_flow_style=True, width=1000, sort_keys=False).strip()}"
                      for s in self.starts]
        return "\n".join(lines) + "\n"


def load_space(name_or_path: str | Path) -> Space:
    """A built-in space by name (default, seed-paper, coste) or a YAML file."""
    s = str(name_or_path)
    if s in BUILTIN_SPACES:
        text = resources.files("rmsearch.spaces").joinpath("builtin", f"{s}.yaml").read_text()
        return Space.from_yaml_text(text, source=f"space '{s}'")
    path = Path(s)
    if not path.is_file():
        raise ConfigError(f"--space {s}: not a built-in space ({', '.join(BUILTIN_SPACES)}) and no such file.")
    return Space.from_yaml_text(path.read_text(), source=str(path))
