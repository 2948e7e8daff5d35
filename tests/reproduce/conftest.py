import argparse

import pytest


@pytest.fixture(scope="module")
def ray_module():
    """A local Ray for a test module, unless the session already has one (then it is left running)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


def reproduce_args(study: str, out, *extra: str) -> argparse.Namespace:
    """`rmsearch reproduce STUDY --out OUT --no-progress EXTRA…` parsed as the CLI parses it."""
    from rmsearch.reproduce import add_reproduce_parser

    parser = argparse.ArgumentParser()
    add_reproduce_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["reproduce", study, "--out", str(out), "--no-progress", *extra])
