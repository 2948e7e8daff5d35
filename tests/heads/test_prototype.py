"""The `prototype` head learns: on held-out pairs it beats a head with random prototypes and values, and its
reward is the softmax-similarity-weighted value of its prototypes."""

import numpy as np

from rmsearch.evaluate import pair_metrics
from rmsearch.heads import forward, head_config, make_head


def _accuracy(scores, split):
    p = split.pairs
    return pair_metrics(scores[p.a], scores[p.b], p.y)["accuracy"]


def test_beats_a_random_head_on_held_out_pairs(small_task):
    head = make_head(head_config("prototype", prototypes=8, epochs=15), seeds=(0,)).fit(small_task.train)
    X = np.asarray(small_task.test.source[small_task.test.rows], np.float32)
    trained = _accuracy(head.score(X)[0], small_task.test)
    rng = np.random.default_rng(0)
    arrays = dict(head.member_arrays()[0])
    randoms = []
    for _ in range(5):
        arrays |= {"prototypes": rng.standard_normal(arrays["prototypes"].shape).astype(np.float32),
                   "values": rng.standard_normal(arrays["values"].shape).astype(np.float32)}
        randoms.append(_accuracy(forward("prototype", arrays, X), small_task.test))
    assert trained > 0.8 and trained > max(randoms) + 0.15, (trained, randoms)


def test_reward_is_the_similarity_weighted_value():
    arrays = {"prototypes": np.array([[0.0, 0.0], [2.0, 0.0]], np.float32), "values": np.array([1.0, -1.0], np.float32),
              "log_temperature": np.zeros(1, np.float32)}
    x = np.array([[1.0, 1.0]], np.float32)  # equally far from both: the mean of the values
    assert forward("prototype", arrays, x)[0] == 0.0
    x = np.array([[0.0, 0.0]], np.float32)  # distances² 0 and 4, divided by τ·D = 2: weights ∝ 1, e⁻²
    w = np.array([1.0, np.exp(-2.0)])
    np.testing.assert_allclose(forward("prototype", arrays, x)[0], (w @ [1.0, -1.0]) / w.sum(), rtol=1e-6)
