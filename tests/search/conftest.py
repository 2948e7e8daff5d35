import pytest

TINY_SPACE = """
# a tiny space for tests: small MLPs and trees, few epochs
head: {categorical: [mlp, gbdt]}
members: {int: [1, 3]}
aggregation: {categorical: [mean, min, uwo]}
uwo.lambda: {float: [0.5, 2.0]}
standardize: true
mlp.hidden: [16]
mlp.epochs: 3
mlp.bootstrap: {categorical: [true, false]}
gbdt.max_iter: 10
gbdt.bootstrap: true
"""

SMALL = "synth:train_prompts=200,test_prompts=20,test_responses=40,dim=8"


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (starting Ray costs seconds)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def tiny_space(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path
