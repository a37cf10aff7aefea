"""lentiMPRA's Transformer CPU preset on synthetic data: its designs follow the requested activity.

The preset trains 3,000 steps (about 11 minutes on 2 cores) and the LegNet trains on the same
file (about 5 more), so this class is ``slow`` and outside CI's ``-k Designs`` selection; run it
with ``nox -s slow -- d3-lentimpra -k TransformerPreset``. At 1,500 steps (the Conv preset's
length) this model scored no better than shuffled labels; each assertion fails for such a model.
"""

import pytest

from d3_core.testing.package_conformance import GlobalLabelDesignConformance


class TestLentiMPRATransformerPreset(GlobalLabelDesignConformance):
    name = "lentimpra"
    arch = "transformer"
    # Measured (torch 2.13, 256 test labels, planted rule; the preset's CFG w = 2): SP-MSE 2.40
    # against 4.20 for shuffled labels (ratio 0.57) and 5.44 for random sequences (0.44). At
    # 1,500 steps with w = 1 it was 4.51, above the shuffled baseline.
    shuffled_ratio = 0.75
    random_ratio = 0.6
    oracle_epochs = 6  # LegNet: test Pearson 0.968 after 6 epochs in the demo

    def test_the_run_is_the_transformer_preset(self, run):
        _, loaded = run
        assert loaded.cfg.model.architecture == "transformer"
        assert loaded.cfg.training.max_steps == 3000 and loaded.cfg.sampling.guidance == 2.0

    def test_samples_correlate_with_the_requested_activity(self, run):
        report = self.fidelity(run)
        (pearson,) = report["pearson_requested_vs_scored"]["samples"].values()
        print(f"lentimpra Tran planted-rule Pearson r {pearson:.3f}, SP-MSE {report['sp_mse']}")
        # Measured: r 0.60 (w = 1: 0.41; 1,500 steps with w = 1: 0.16). Ignoring labels gives r 0.
        assert pearson >= 0.45, report

    @pytest.mark.slow
    def test_oracle_guided_samples_hit_the_requested_activity(self, run, oracle):
        """LegNet guidance (weight 3) with the preset's CFG beside it, judged by the planted rule."""
        report, guidance = self.guided_fidelity(run, oracle)
        assert (guidance.oracle, guidance.cfg) == (3.0, 2.0)
        (pearson,) = report["pearson_requested_vs_scored"]["samples"].values()
        # Measured (256 test labels, 64 steps): here SP-MSE 0.98 against 4.20 shuffled and 5.44
        # random, r 0.856 (seed 3, LegNet of 6 epochs); the demo 0.85, r 0.87 (1,500 steps with
        # the oracle alone: 2.62, r 0.61). The class took 17 minutes on 2 cores.
        print(f"Tran, LegNet-guided: r {pearson:.3f}, SP-MSE {report['sp_mse']}")
        assert pearson >= 0.75 and report["sp_mse"]["samples"] <= 1.5, report
