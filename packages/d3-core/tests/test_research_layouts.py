"""docs/checkpoint-formats.md's key tables, pinned: the six research layouts and the two d3-dna ones
at paper size.

The test fixtures write research files from `research_key_table`; this file holds that table to
docs/checkpoint-formats.md#research-checkpoints entry by entry (names, shapes, order, EMA list),
writes the research constants out literally, checks the parameter counts of
docs/models.md#transformer/docs/models.md#convolutional, and then holds d3's layout reader to the
table: every shape it expects is the table's.
"""

import pytest
import torch

from d3_core.checkpoints import layouts
from d3_core.errors import CheckpointError
from d3_core.testing.key_tables import (
    PAPER_LAYOUTS,
    Key,
    packaged_key_table,
    research_key_table,
)

LAYOUTS = sorted(PAPER_LAYOUTS)

# docs/checkpoint-formats.md#research-checkpoints, as written there: (S, L, label_embed rows,
# embed?, S_lab, EMA length).
PUBLISHED_LAYOUTS = {
    ("deepstarr", "transformer"): (2, 249, 5, True, 2, 266),
    ("deepstarr", "conv"): (2, 249, 5, False, 2, 264),
    ("mpra", "transformer"): (3, 200, 4, False, 2, 264),
    ("mpra", "conv"): (3, 200, 4, False, 3, 264),
    ("promoter", "transformer"): (1, 1024, 5, False, None, 260),
    ("promoter", "conv"): (1, 1024, 5, False, None, 260),
}
# docs/models.md#transformer and docs/models.md#convolutional: parameters the forward pass of the
# trained tower uses.
PUBLISHED_PARAMETERS = {
    ("deepstarr", "transformer"): 92_389_124,
    ("mpra", "transformer"): 92_389_892,
    ("promoter", "transformer"): 92_388_356,
    ("deepstarr", "conv"): 13_400_857,
    ("mpra", "conv"): 13_378_860,
    ("promoter", "conv"): 13_337_860,
}
FORWARD = {
    "transformer": ("vocab_embed.", "sigma_map.", "blocks.", "output_layer."),
    "conv": ("sigma_map.", "linear.", "conv_blocks.", "denses.", "norms.", "final.", "label_emb."),
}


def table(dataset: str, arch: str) -> list[Key]:
    spec = {k: v for k, v in PAPER_LAYOUTS[(dataset, arch)].items() if k != "ema_length"}
    return research_key_table(arch=arch, **spec)


def shapes(keys: list[Key]) -> dict[str, tuple[int, ...]]:
    return {key.name: key.shape for key in keys}


@pytest.mark.parametrize(("dataset", "arch"), LAYOUTS)
def test_the_layouts_are_spec_10a(dataset, arch):
    signal, length, rows, fourier, s_lab, ema_length = PUBLISHED_LAYOUTS[(dataset, arch)]
    layout = PAPER_LAYOUTS[(dataset, arch)]
    assert (layout["signal"], layout["length"], layout["label_classes"]) == (signal, length, rows)
    assert (layout["fourier"], layout["label_emb_width"], layout["ema_length"]) == (
        fourier,
        s_lab,
        ema_length,
    )


@pytest.mark.parametrize(("dataset", "arch"), LAYOUTS)
def test_every_key_of_a_research_file_has_spec_10a_shape_and_place(dataset, arch):
    signal, length, rows, fourier, s_lab, ema_length = PUBLISHED_LAYOUTS[(dataset, arch)]
    c = 128 if arch == "transformer" else 256
    keys = table(dataset, arch)
    got = shapes(keys)
    expected = {"scale": (1,), "vocab_embed.embedding": (4, 768),
                "vocab_embed.signal_embedding.weight": (768, signal),
                "vocab_embed.signal_embedding.bias": (768,),
                "sigma_map.mlp.0.weight": (c, 256), "sigma_map.mlp.0.bias": (c,),
                "sigma_map.mlp.2.weight": (c, c), "sigma_map.mlp.2.bias": (c,),
                "label_embed.embedding_table.weight": (rows, c), "rotary_emb.inv_freq": (32,)}  # fmt: skip
    for i in range(12):
        expected |= {f"blocks.{i}.norm1.weight": (768,), f"blocks.{i}.attn_qkv.weight": (2304, 768),
                     f"blocks.{i}.attn_out.weight": (768, 768), f"blocks.{i}.norm2.weight": (768,),
                     f"blocks.{i}.mlp.0.weight": (3072, 768), f"blocks.{i}.mlp.0.bias": (3072,),
                     f"blocks.{i}.mlp.2.weight": (768, 3072), f"blocks.{i}.mlp.2.bias": (768,),
                     f"blocks.{i}.adaLN_modulation.weight": (4608, c),
                     f"blocks.{i}.adaLN_modulation.bias": (4608,)}  # fmt: skip
    expected |= {"output_layer.norm_final.weight": (768,), "output_layer.linear.weight": (4, 768),
                 "output_layer.linear.bias": (4,),
                 "output_layer.adaLN_modulation.weight": (1536, c),
                 "output_layer.adaLN_modulation.bias": (1536,)}  # fmt: skip
    if fourier:
        expected |= {"embed.0.W": (128,), "embed.1.weight": (256, 256), "embed.1.bias": (256,)}
    expected |= {"linear.weight": (256, 5, 9), "linear.bias": (256,)}
    for group, shape in (("conv_blocks", (256, 256, 9)), ("denses", (256, 256)), ("norms", None)):
        for k in range(20):
            name = f"{group}.{k}.dense" if group == "denses" else f"{group}.{k}"
            expected |= {f"{name}.weight": shape or (256,), f"{name}.bias": (256,)}
    expected |= {"final.0.weight": (256, 256, 1), "final.0.bias": (256,),
                 "final.2.weight": (4, 256, 1), "final.2.bias": (4,)}  # fmt: skip
    if s_lab is not None:
        expected |= {"label_emb.0.weight": (length, s_lab), "label_emb.0.bias": (length,),
                     "label_emb.2.weight": (length, length), "label_emb.2.bias": (length,)}  # fmt: skip
    assert list(got) == list(expected)  # the stored order, which names the EMA list
    assert got == expected
    assert [key.name for key in keys if not key.ema] == (
        ["rotary_emb.inv_freq"] + (["embed.0.W"] if fourier else [])
    )
    assert sum(key.ema for key in keys) == ema_length


@pytest.mark.parametrize(("dataset", "arch"), LAYOUTS)
def test_the_trained_tower_has_spec_parameter_count(dataset, arch):
    keys = [k for k in table(dataset, arch) if k.ema and k.name.startswith(FORWARD[arch])]
    count = sum(torch.Size(k.shape).numel() for k in keys)
    assert count == PUBLISHED_PARAMETERS[(dataset, arch)]


def _meta(keys: list[Key]) -> dict[str, torch.Tensor]:
    return {key.name: torch.empty(key.shape, device="meta") for key in keys}


@pytest.mark.parametrize(("dataset", "arch"), LAYOUTS)
def test_d3s_research_reader_expects_exactly_the_table(dataset, arch):
    keys = table(dataset, arch)
    expected = layouts.check_layout(_meta(keys), layouts.RESEARCH, f"{dataset}-{arch}")
    assert [(e.name, e.shape, e.trainable) for e in expected] == [
        (k.name, k.shape, k.ema) for k in keys
    ]


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_d3_dna_files_have_133_ema_tensors_and_d3s_reader_expects_their_table(arch):
    keys = packaged_key_table(arch=arch, signal=1)
    # docs/checkpoint-formats.md#packaged-release-checkpoints
    assert sum(key.ema for key in keys) == 133
    layout = layouts.PACKAGED_TRANSFORMER if arch == "transformer" else layouts.PACKAGED_CONV
    expected = layouts.check_layout(_meta(keys), layout, f"d3-dna {arch}")
    assert [(e.name, e.shape, e.trainable) for e in expected] == [
        (k.name, k.shape, k.ema) for k in keys
    ]
    if arch == "conv":  # d3-dna builds its denses and unused embed from cond_dim (128)
        got = shapes(keys)
        assert got["denses.0.dense.weight"] == (256, 128)
        assert (got["embed.0.W"], got["embed.1.weight"]) == ((64,), (128, 128))


@pytest.mark.parametrize(
    ("key", "shape"),
    [("denses.3.dense.weight", (256, 128)), ("embed.1.weight", (128, 128)), ("embed.0.W", (64,))],
)
def test_a_research_constant_sized_from_the_config_is_refused_by_name(key, shape):
    keys = table("deepstarr", "transformer")
    weights = _meta(keys)
    weights[key] = torch.empty(shape, device="meta")
    with pytest.raises(CheckpointError, match=rf"{key}: file \({shape[0]},"):
        layouts.check_layout(weights, layouts.RESEARCH, "file")
