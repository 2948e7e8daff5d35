"""Data: candidate sets with gold rewards, labelled pairs, the built-in gold world, simulated annotators, and
the task (train / early-stop / validation / test) carved from them."""

from rmsearch.data._annotate import NOISE_LEVELS, Annotator, Pairs, annotate
from rmsearch.data._degenerate import check_not_degenerate
from rmsearch.data._embed import add_embed_parser
from rmsearch.data._embed_dataset import embed_file
from rmsearch.data._files import (
    atomic_save,
    load_pair_folder,
    load_seed_folder,
    open_npy,
    write_pair_folder,
    write_seed_folder,
)
from rmsearch.data._kinds import CandidateSet, Data, GoldData, PairData
from rmsearch.data._load import describe, describe_text, load_data
from rmsearch.data._synth import SynthConfig, synth, write_synth_folder
from rmsearch.data._task import Split, Task, TaskConfig, full_split, make_task
from rmsearch.data._validate import check_float_array

__all__ = [
    "NOISE_LEVELS", "Annotator", "CandidateSet", "Data", "GoldData", "PairData", "Pairs", "Split", "SynthConfig",
    "Task",
    "TaskConfig", "add_embed_parser", "annotate", "atomic_save", "check_float_array", "check_not_degenerate",
    "describe", "describe_text", "embed_file", "full_split", "load_data", "load_pair_folder", "load_seed_folder",
    "make_task", "open_npy", "synth", "write_pair_folder",
    "write_seed_folder", "write_synth_folder",
]
