"""Search spaces: YAML files (or built-in names) of fixed values and distributions over ensemble points."""

from rmsearch.spaces._space import BUILTIN_SPACES, DISTRIBUTIONS, Param, Space, load_space

__all__ = ["BUILTIN_SPACES", "DISTRIBUTIONS", "Param", "Space", "load_space"]
