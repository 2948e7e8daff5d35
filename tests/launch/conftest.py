import pytest


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """An exported ensemble of two linear members on 6-d embeddings, trained in a second."""
    from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
    from rmsearch.ensembles._train import fit_group
    from rmsearch.export import ensemble_from_groups, write_export
    from rmsearch.heads import LinearConfig

    task = make_task(synth(SynthConfig(dim=6, train_prompts=100, test_prompts=4, test_responses=10)), TaskConfig())
    group = fit_group(task, LinearConfig(epochs=2), (0, 1))
    return write_export(tmp_path_factory.mktemp("ens") / "ens", ensemble_from_groups([group], dim=6),
                        metrics={}, dataset={})
