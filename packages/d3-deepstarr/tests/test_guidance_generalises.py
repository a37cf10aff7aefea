"""Guidance is not tuned to the package's rule: a DeepSTARR-format file with other motifs,
weights and interactions, the CPU preset trained on it, its oracle trained on it, and the
sampling defaults must still design sequences whose planted-rule scores follow the request.

Slow (about 8 minutes on 2 cores: 3 of training, 4 of the oracle); `nox -s slow` runs it.
"""

import h5py
import numpy as np
import pytest
import torch

from d3_core.checkpoints.load import load_checkpoint
from d3_core.config import resolve_config
from d3_core.data.splits import write_onehot_splits
from d3_core.data.synthetic import Motif, MotifRule
from d3_core.diffusion.guidance import resolve_guidance
from d3_core.evaluation.run import conditional_fidelity
from d3_core.generation.sequences import sample_sequences
from d3_core.oracles.oracle import load_oracle, recipe_with, train_oracle
from d3_core.training.run import RunDir, train
from d3_deepstarr.data import load_data, split_keys
from d3_deepstarr.oracle import ORACLE

# Not the package's rule: other words (a CRE, an E-box variant, NF-Y, SP1, a TEAD site and a
# made-up GC-poor word), other weights, an interaction on the other label, a negative weight.
OTHER_RULE = MotifRule(
    motifs=(
        Motif("CRE", "TGACGTCA"),
        Motif("Ebox", "CACGTG"),
        Motif("NFY", "CCAATCA"),
        Motif("SP1", "GGGGCGGGG"),
        Motif("TEAD", "CATTCCA"),
        Motif("ATrich", "TTATTTAT"),
    ),
    baseline=(0.5, -0.5),
    weights=(
        (1.2, 0.0),
        (0.0, 0.9),
        (0.7, 0.7),
        (0.0, 1.1),
        (0.9, -0.4),
        (-0.6, 0.5),
    ),
    interactions=((0, 4, 1, 0.5), (1, 3, 0, 0.3)),
    noise_sd=0.25,
    max_copies=2,
    gc=0.48,
)
N = 256


@pytest.mark.slow
def test_default_guidance_follows_a_rule_the_package_does_not_ship(tmp_path):
    data = tmp_path / "other-rule.h5"
    with h5py.File(data, "w") as out:
        write_onehot_splits(
            out, draw=lambda rng, n: OTHER_RULE.draw(rng, n, 249), sizes=(8000, 1000, 1000),
            seed=5, keys=split_keys, layout="NCL", length=249, width=2,
            label_names=("Dev", "Hk"),
        )  # fmt: skip
    cfg = resolve_config("deepstarr", "conv", preset="cpu", overrides=[f"dataset.data={data}"])
    result = train(cfg, RunDir(tmp_path / "run"), progress=False)
    loaded = load_checkpoint(result.last_checkpoint)
    splits = load_data(data)
    torch.set_num_threads(2)
    trained = train_oracle(ORACLE, splits, tmp_path / "oracle", dataset="deepstarr",
                           recipe=recipe_with(ORACLE.recipe, max_epochs=8), progress=False)  # fmt: skip
    guidance, _ = resolve_guidance(loaded.model, loaded.cfg.sampling, has_oracle=True)
    test = splits["test"]
    real, labels = test.tokens[:N].numpy(), test.labels[:N].numpy().astype(np.float32)
    tokens = sample_sequences(loaded, labels, steps=loaded.cfg.sampling.steps, progress=False,
                              guidance=guidance,
                              oracle=load_oracle(trained.checkpoint, ORACLE)).tokens  # fmt: skip
    report = conditional_fidelity(OTHER_RULE.score, real, tokens, labels, names=("Dev", "Hk"),
                                  scorer="the other rule")  # fmt: skip
    pearson = report["pearson_requested_vs_scored"]["samples"]
    print(
        f"other rule: SP-MSE {report['sp_mse']}, Pearson r {pearson}, oracle test r "
        f"{trained.test_pearson}"
    )
    assert min(pearson.values()) >= 0.7, report
    assert report["sp_mse"]["samples"] < 0.5 * report["sp_mse"]["baseline_shuffled_labels"], report
