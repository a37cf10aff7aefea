"""Writes the lentiMPRA fixtures of tests/fixtures/ with d3-dna itself.

Run it in the test-only venv that has d3-dna 0.1.3, torch and pytorch_lightning, from the
repository root::

    /tmp/d3dna/bin/python packages/d3-lentimpra/tests/make_d3dna_fixtures.py \
        [--d3dna-git /work/.mirror/anirbansarkar-cs+d3-dna/repo]

LegNet is not in d3-dna's wheel: it lives in the k562 and hepg2 examples' ``oracle.py`` of the
d3-dna repository, which this script reads from that repository's git directory and imports.
It writes:

* ``legnet-keys.json``: the ``state_dict`` keys and shapes, in order, and the parameter count of
  the examples' LegNet at its default (published) sizes, for K562 and HepG2.
* ``legnet-tiny.ckpt``: a small LegNet (``legnet-tiny.json``, the config d3-dna's ``load``
  reads) inside a LightningModule laid out as LegNet's own (``self.model``, hyper-parameters
  ``{"config": ...}``), trained two steps by ``pytorch_lightning.Trainer`` on random one-hot
  data (its initial weights perturbed, so outputs are not near zero) and saved by
  ``Trainer.save_checkpoint``. The published network (1.3 M parameters,
  5 MB) would not fit the fixture budget.
* ``legnet-tiny-output.npz``: ``tokens`` (N, 230) and d3-dna's own prediction ``prediction``
  (N, 1), from the example's ``load(...).predict`` on their one-hot.
* ``d3dna-lentimpra-transformer.ckpt`` / ``d3dna-lentimpra-conv.ckpt``: d3-dna's
  ``D3LightningModule`` with the k562 example's config shrunk to tiny sizes (dataset
  ``lentimpra``, 230 bp, one global label), two optimizer steps, Lightning's save. The freshly
  built weights are first randomised (d3-dna zero-initialises its output layers, so two steps
  leave outputs too small to test against).
* ``d3dna-lentimpra-<arch>-output.npz``: ``tokens`` (B, 230), ``labels`` (B, 1), ``sigma`` (B,)
  and ``log_score`` (B, 230, 4), d3-dna's ``get_score_fn`` output in eval mode with the EMA
  weights copied in (what d3 loads from the file).

Nothing here imports d3: the files are what those tools write.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import TensorDataset

HERE = Path(__file__).resolve().parent / "fixtures"
LENGTH = 230
MIRROR = "/work/.mirror/anirbansarkar-cs+d3-dna/repo"
TINY_LEGNET = {"stem_ch": 8, "stem_ks": 11, "ef_ks": 9, "ef_block_sizes": [8, 12, 12, 16],
               "pool_sizes": [2, 2, 2, 2], "resize_factor": 4, "use_reverse_channel": False,
               "output_dim": 1}  # fmt: skip


def _example_oracle(git_dir: str, cell: str, scratch: Path):
    """The example's ``oracle.py`` for `cell`, read from d3-dna's git directory and imported."""
    text = subprocess.run(
        ["git", "-C", git_dir, "show", f"HEAD:examples/{cell}/oracle.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = scratch / f"d3dna_{cell}_oracle.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _trainer() -> pl.Trainer:
    return pl.Trainer(
        max_steps=2, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        limit_val_batches=0, precision="32-true",
    )  # fmt: skip


def _onehot(tokens: torch.Tensor) -> torch.Tensor:
    """(N, L) tokens -> (N, 4, L) float32 one-hot, A C G T."""
    return torch.nn.functional.one_hot(tokens, 4).permute(0, 2, 1).float()


def write_legnet_keys(oracles: dict, out: Path) -> None:
    table = {}
    for cell, module in oracles.items():
        model = module._LegNetConfig().get_model()
        table[cell] = {
            "keys": [[k, list(v.shape)] for k, v in model.state_dict().items()],
            "parameters": sum(p.numel() for p in model.parameters()),
            "input_length": module.INPUT_LEN,
        }
    out.write_text(json.dumps(table, indent=1) + "\n")


def write_legnet_tiny(module, ckpt: Path, config: Path, output: Path) -> None:
    """A small LegNet trained two steps in LegNet's own Lightning layout; d3-dna's prediction."""
    config.write_text(json.dumps(TINY_LEGNET, indent=1) + "\n")
    cfg = module._LegNetConfig.from_json(config)

    class LitLegNet(pl.LightningModule):  # LegNet's layout: the network under ``model``
        def __init__(self) -> None:
            super().__init__()
            self.model = cfg.get_model()
            generator = torch.Generator().manual_seed(4)
            with torch.no_grad():  # spread the outputs beyond the default init's ~0.05
                for p in self.model.parameters():
                    p.add_(0.2 * torch.randn(p.shape, generator=generator))
            self.loss = torch.nn.MSELoss()
            self.save_hyperparameters({"config": dict(TINY_LEGNET)})

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss(self.model(x), y)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-2, weight_decay=0.1)

    generator = torch.Generator().manual_seed(0)
    x = _onehot(torch.randint(0, 4, (64, LENGTH), generator=generator))
    y = torch.randn(64, generator=generator)
    lit = LitLegNet()
    trainer = _trainer()
    trainer.fit(lit, torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=16))
    trainer.save_checkpoint(ckpt)

    oracle = module.load(str(ckpt), "cpu", config_path=str(config))
    reference = lit.model.eval()
    tokens = torch.randint(0, 4, (12, LENGTH), generator=torch.Generator().manual_seed(1))
    prediction = oracle.predict(_onehot(tokens).numpy(), batch_size=5, progress=False)
    with torch.no_grad():  # its strict=False load took every weight
        assert np.allclose(prediction[:, 0], reference(_onehot(tokens)).numpy(), atol=1e-6)
    np.savez(output, tokens=tokens.numpy(), prediction=prediction.astype(np.float32))


def _d3dna_config(arch: str):
    """The k562 example's config (examples/k562/config_<arch>.yaml) at tiny sizes."""
    model = {
        "name": "small",
        "type": "ddit",
        "hidden_size": 16,
        "cond_dim": 16,
        "n_blocks": 1,
        "n_heads": 2,
        "dropout": 0.1,
        "class_dropout_prob": 0.1,
    }
    if arch == "convolutional":
        model = {"name": "conv", "type": "conv", "conv_channels": 8, "cond_dim": 16}
    return OmegaConf.create({
        "ngpus": 1, "nnodes": 1, "tokens": 4,
        "dataset": {"name": "lentimpra", "sequence_length": LENGTH, "num_classes": 4,
                    "signal_dim": 1},
        "model": {**model, "architecture": arch, "length": LENGTH, "scale_by_sigma": False},
        "training": {"batch_size": 8, "accum": 1, "ema": 0.9999, "weight": "standard",
                     "precision": "32-true", "num_workers": 0},
        "eval": {"batch_size": 8},
        "optim": {"optimizer": "AdamW", "lr": 3e-4, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                  "weight_decay": 0, "warmup": 0, "grad_clip": 1.0},
        "graph": {"type": "uniform", "file": "data", "report_all": False},
        "noise": {"type": "geometric", "sigma_min": 1e-4, "sigma_max": 20},
    })  # fmt: skip


def write_d3dna(arch: str, ckpt: Path, output: Path) -> None:
    """d3-dna's module, randomised start, two steps, Lightning's save; its own output."""
    from d3_dna import D3DataModule, D3LightningModule
    from d3_dna.models.diffusion import get_score_fn

    class RandomStart(D3LightningModule):
        def create_model(self):
            model = super().create_model()
            generator = torch.Generator().manual_seed(2)
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(0.3 * torch.randn(p.shape, generator=generator))
            return model

    cfg = _d3dna_config(arch)
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(0, 4, (16, LENGTH), generator=generator),
                         torch.randn(16, 1, generator=generator))  # fmt: skip
    module = RandomStart(cfg, dataset_name="lentimpra")
    trainer = _trainer()
    trainer.fit(module, D3DataModule(cfg, data, data))
    trainer.save_checkpoint(ckpt)

    model = module.score_model
    module.ema.copy_to(model.parameters())  # d3 loads the EMA weights
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 4, (4, LENGTH), generator=generator)
    labels = torch.randn(4, 1, generator=generator)
    sigma = torch.tensor([1e-3, 0.3, 2.0, 20.0])
    with torch.no_grad():
        score = get_score_fn(model, train=False, sampling=False)(tokens, sigma, labels)
    np.savez(output, tokens=tokens.numpy(), labels=labels.numpy(), sigma=sigma.numpy(),
             log_score=score.float().numpy())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d3dna-git", default=MIRROR, help="d3-dna's git directory")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    pl.seed_everything(0, verbose=False)
    HERE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        oracles = {cell: _example_oracle(args.d3dna_git, cell, Path(scratch))
                   for cell in ("k562", "hepg2")}  # fmt: skip
        write_legnet_keys(oracles, HERE / "legnet-keys.json")
        write_legnet_tiny(oracles["k562"], HERE / "legnet-tiny.ckpt", HERE / "legnet-tiny.json",
                          HERE / "legnet-tiny-output.npz")  # fmt: skip
    for arch, short in (("transformer", "transformer"), ("convolutional", "conv")):
        write_d3dna(arch, HERE / f"d3dna-lentimpra-{short}.ckpt",
                    HERE / f"d3dna-lentimpra-{short}-output.npz")  # fmt: skip
    for path in sorted(HERE.iterdir()):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
