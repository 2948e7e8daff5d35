"""The grid studies `rmsearch reproduce` runs, by name (the seed paper's `seed-ensembles` study has its own
engine, `rmsearch.reproduce._study`). Adding a study is one `GridStudy` subclass and one entry here."""

from __future__ import annotations

from rmsearch.reproduce._active import ActiveStudy
from rmsearch.reproduce._beyond_bt import BeyondBTStudy
from rmsearch.reproduce._coste import CosteStudy
from rmsearch.reproduce._grid_study import GridStudy
from rmsearch.reproduce._scaling import ScalingStudy

GRID_STUDIES: dict[str, type[GridStudy]] = {cls.name: cls for cls in (BeyondBTStudy, ScalingStudy, CosteStudy,
                                                                      ActiveStudy)}
