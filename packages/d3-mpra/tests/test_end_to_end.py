"""MPRA end to end on synthetic data: train the CPU preset, design cell-type-specific sequences,
score them with the planted rule, and train the oracle.

One module-scoped run (about 3 minutes of training on 2 cores) serves the design tests. The
margins were chosen from measured runs of exactly this setup (see "Measured" below) with room for
the spread between runs: each assertion fails for a model that ignores its labels.
"""

import numpy as np
import pytest

from d3_core.checkpoints.load import load_checkpoint
from d3_core.config import resolve_config
from d3_core.evaluation.run import conditional_fidelity
from d3_core.generation.sequences import sample_sequences
from d3_core.training.run import RunDir, train
from d3_mpra.data import load_data
from d3_mpra.synthetic import ground_truth, write_synthetic

N = 256  # designed sequences per comparison
STEPS = 64  # sampler steps, as the CPU preset samples
NAMES = ("K562", "HepG2", "SK-N-SH")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("mpra-e2e") / "small.h5", seed=0, size="small")


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """(data splits, loaded model) of the Conv CPU preset trained on the small synthetic file."""
    cfg = resolve_config("mpra", "conv", preset="cpu", overrides=[f"dataset.data={data}"])
    result = train(cfg, RunDir(tmp_path_factory.mktemp("mpra-run")), progress=False)
    return load_data(data), load_checkpoint(result.last_checkpoint)


def _design(loaded, labels: np.ndarray, seed: int) -> np.ndarray:
    return sample_sequences(loaded, labels.astype(np.float32), seed=seed, steps=STEPS,
                            predictor="analytic", batch_size=128, progress=False).tokens  # fmt: skip


def test_samples_follow_their_labels_better_than_shuffled_real_sequences(run):
    splits, loaded = run
    test = splits["test"]
    real, labels = test.tokens[:N].numpy(), test.labels[:N].numpy()
    report = conditional_fidelity(
        lambda t: np.asarray(ground_truth(t)), real, _design(loaded, labels, seed=0), labels,
        names=NAMES, scorer="planted rule",
    )  # fmt: skip
    mse = report["sp_mse"]
    # Measured (torch 2.13, 256 labels, CFG w = 1 as the preset samples): 2.24 against 3.56
    # for shuffled labels (ratio 0.63) and 5.52 for random sequences; a model that ignores its
    # labels scores the shuffled baseline.
    print(f"planted-rule SP-MSE {mse}")
    assert mse["samples"] < 0.8 * mse["baseline_shuffled_labels"], mse
    assert mse["samples"] < 0.7 * mse["baseline_random_sequences"], mse


def test_k562_specific_labels_give_k562_specific_sequences(run):
    """Sequences designed for "K562 high, HepG2 low, SK-N-SH low" are more K562-specific (K562
    minus the mean of the other two, by the planted rule) than those for the opposite pattern."""
    splits, loaded = run
    train_labels = splits["train"].labels.numpy()
    low, high = np.quantile(train_labels, [0.1, 0.9], axis=0)
    half = N // 2
    asked = np.array([[high[0], low[1], low[2]]] * half + [[low[0], high[1], high[2]]] * half)
    scores = np.asarray(ground_truth(_design(loaded, asked, seed=2)))
    specificity = scores[:, 0] - scores[:, 1:].mean(axis=1)
    gap = specificity[:half].mean() - specificity[half:].mean()
    # Measured (256 sequences, CFG w = 1): gap 3.33 (the research-layout preset without CFG
    # gave 0.53 and 0.60 at 512, standard error 0.11). A model that ignores its labels has gap 0.
    print(f"K562 specificity gap {gap:.3f}")
    assert gap > 1.5, (gap, high, low)


@pytest.mark.slow
def test_the_oracle_learns_all_three_cell_lines(data, tmp_path):
    """``d3 oracle train --dataset mpra`` on the small synthetic file: Pearson >= 0.8 on every
    output of the test split. Slow: about 110 s per epoch on 2 cores, and the SOX term
    (SK-N-SH) is learnt last (measured r after 9 epochs 0.94 / 0.95 / 0.91; this test, 12
    epochs in 17 min 40 s: 0.954 / 0.961 / 0.931)."""
    from d3_core.oracles.oracle import recipe_with, train_oracle
    from d3_mpra.oracle import ORACLE

    result = train_oracle(ORACLE, load_data(data), tmp_path, dataset="mpra",
                          recipe=recipe_with(ORACLE.recipe, max_epochs=12), progress=False)  # fmt: skip
    assert min(result.test_pearson.values()) >= 0.8, result.test_pearson
    assert set(result.test_pearson) == set(NAMES)
