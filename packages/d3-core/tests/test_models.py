"""Tests of the score models: published names and sizes, invariants, equivalences and messages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from d3_core.errors import D3ConfigError, D3InputError
from d3_core.models import (
    ConvConfig,
    ConvScoreModel,
    TransformerConfig,
    TransformerScoreModel,
    count_parameters,
)
from d3_core.models.layers import LayerNormF32, Rotary, SigmaEmbedding, apply_rotary, modulate

# (dataset, L, S, label_mode) of the three paper datasets (docs/models.md#dataset-variants).
DATASETS = {
    "deepstarr": (249, 2, "global"),
    "mpra": (200, 3, "global"),
    "promoter": (1024, 1, "per_position"),
}
TRANSFORMER_COUNTS = {"deepstarr": 92_389_124, "mpra": 92_389_892, "promoter": 92_388_356}
CONV_COUNTS = {"deepstarr": 13_400_857, "mpra": 13_378_860, "promoter": 13_337_860}


def small_transformer(label_mode="global", length=16, signal_dim=2, **overrides):
    """A CPU-sized transformer: hidden 64, 2 blocks, 4 heads of dim 16."""
    sizes = dict(hidden_size=64, n_blocks=2, n_heads=4, cond_dim=32) | overrides
    return TransformerScoreModel(TransformerConfig(length, signal_dim, label_mode, **sizes))


def small_conv(label_mode="global", length=16, signal_dim=2, **overrides):
    """A CPU-sized conv model: 32 channels, 4 blocks, cond 32."""
    sizes = dict(channels=32, n_blocks=4, cond_dim=32) | overrides
    return ConvScoreModel(ConvConfig(length, signal_dim, label_mode, **sizes))


def perturb_zero_init(model, seed=0, std=0.1):
    """Give the zero-initialised adaLN and output weights random values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "adaLN_modulation" in name or name.startswith("output_layer.linear"):
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    return model


def make_inputs(model, batch=3, seed=0):
    """Random tokens (B, L), labels in the model's layout, σ (B,)."""
    cfg = model.config
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.vocab_size, (batch, cfg.length), generator=generator)
    if cfg.label_mode == "global":
        labels = torch.randn(batch, cfg.signal_dim, generator=generator)
    else:
        labels = torch.randn(batch, cfg.length, cfg.signal_dim, generator=generator)
    sigma = torch.rand(batch, generator=generator) * 5
    return tokens, labels, sigma


def expected_transformer_keys(signal_dim, cond_dim=128, hidden=768, n_blocks=12, vocab=4):
    """docs/checkpoint-formats.md#research-checkpoints transformer keys and shapes, in order
    (without `scale`, `label_embed`)."""
    keys = [
        ("vocab_embed.embedding", (vocab, hidden)),
        ("vocab_embed.signal_embedding.weight", (hidden, signal_dim)),
        ("vocab_embed.signal_embedding.bias", (hidden,)),
        ("sigma_map.mlp.0.weight", (cond_dim, 256)),
        ("sigma_map.mlp.0.bias", (cond_dim,)),
        ("sigma_map.mlp.2.weight", (cond_dim, cond_dim)),
        ("sigma_map.mlp.2.bias", (cond_dim,)),
        ("rotary_emb.inv_freq", (32,)),
    ]
    for i in range(n_blocks):
        keys += [
            (f"blocks.{i}.norm1.weight", (hidden,)),
            (f"blocks.{i}.attn_qkv.weight", (3 * hidden, hidden)),
            (f"blocks.{i}.attn_out.weight", (hidden, hidden)),
            (f"blocks.{i}.norm2.weight", (hidden,)),
            (f"blocks.{i}.mlp.0.weight", (4 * hidden, hidden)),
            (f"blocks.{i}.mlp.0.bias", (4 * hidden,)),
            (f"blocks.{i}.mlp.2.weight", (hidden, 4 * hidden)),
            (f"blocks.{i}.mlp.2.bias", (hidden,)),
            (f"blocks.{i}.adaLN_modulation.weight", (6 * hidden, cond_dim)),
            (f"blocks.{i}.adaLN_modulation.bias", (6 * hidden,)),
        ]
    keys += [
        ("output_layer.norm_final.weight", (hidden,)),
        ("output_layer.linear.weight", (vocab, hidden)),
        ("output_layer.linear.bias", (vocab,)),
        ("output_layer.adaLN_modulation.weight", (2 * hidden, cond_dim)),
        ("output_layer.adaLN_modulation.bias", (2 * hidden,)),
    ]
    return keys


def expected_conv_keys(length, signal_dim, label_mode, cond_dim=256, ch=256, n_blocks=20):
    """docs/checkpoint-formats.md#research-checkpoints conv keys and shapes, in order (sigma_map
    shared with the transformer)."""
    keys = [
        ("sigma_map.mlp.0.weight", (cond_dim, 256)),
        ("sigma_map.mlp.0.bias", (cond_dim,)),
        ("sigma_map.mlp.2.weight", (cond_dim, cond_dim)),
        ("sigma_map.mlp.2.bias", (cond_dim,)),
        ("linear.weight", (ch, 5, 9)),
        ("linear.bias", (ch,)),
    ]
    keys += [
        (f"conv_blocks.{k}.{p}", (ch, ch, 9) if p == "weight" else (ch,))
        for k in range(n_blocks)
        for p in ("weight", "bias")
    ]
    keys += [
        (f"denses.{k}.dense.{p}", (ch, cond_dim) if p == "weight" else (ch,))
        for k in range(n_blocks)
        for p in ("weight", "bias")
    ]
    keys += [(f"norms.{k}.{p}", (ch,)) for k in range(n_blocks) for p in ("weight", "bias")]
    keys += [
        ("final.0.weight", (ch, ch, 1)),
        ("final.0.bias", (ch,)),
        ("final.2.weight", (4, ch, 1)),
        ("final.2.bias", (4,)),
    ]
    if label_mode == "global":
        keys += [
            ("label_emb.0.weight", (length, signal_dim)),
            ("label_emb.0.bias", (length,)),
            ("label_emb.2.weight", (length, length)),
            ("label_emb.2.bias", (length,)),
        ]
    return keys


def shapes_of(model):
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items()]


# --- published sizes and names -------------------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_transformer_has_the_paper_parameter_count(dataset):
    length, signal_dim, mode = DATASETS[dataset]
    with torch.device("meta"):
        model = TransformerScoreModel(TransformerConfig(length, signal_dim, mode))
    assert count_parameters(model) == TRANSFORMER_COUNTS[dataset]


@pytest.mark.parametrize("dataset", DATASETS)
def test_conv_has_the_paper_parameter_count(dataset):
    length, signal_dim, mode = DATASETS[dataset]
    with torch.device("meta"):
        model = ConvScoreModel(ConvConfig(length, signal_dim, mode))
    assert count_parameters(model) == CONV_COUNTS[dataset]


@pytest.mark.parametrize("dataset", DATASETS)
def test_transformer_state_dict_matches_the_published_keys_and_shapes(dataset):
    length, signal_dim, mode = DATASETS[dataset]
    with torch.device("meta"):
        model = TransformerScoreModel(TransformerConfig(length, signal_dim, mode))
    assert shapes_of(model) == expected_transformer_keys(signal_dim)


@pytest.mark.parametrize("dataset", DATASETS)
def test_conv_state_dict_matches_the_published_keys_and_shapes(dataset):
    length, signal_dim, mode = DATASETS[dataset]
    with torch.device("meta"):
        model = ConvScoreModel(ConvConfig(length, signal_dim, mode))
    assert shapes_of(model) == expected_conv_keys(length, signal_dim, mode)


def test_rotary_tables_stay_out_of_the_state_dict():
    model = small_transformer()
    model(*make_inputs(model))
    assert [k for k in model.state_dict() if k.startswith("rotary_emb")] == ["rotary_emb.inv_freq"]
    assert [name for name, _ in model.named_buffers()] == ["rotary_emb.inv_freq"]


def test_count_parameters_can_count_only_trainable_ones():
    model = small_conv()
    model.final.requires_grad_(False)
    frozen = sum(p.numel() for p in model.final.parameters())
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - frozen


def test_paper_size_transformer_runs_a_real_forward_pass():
    torch.manual_seed(0)
    model = perturb_zero_init(TransformerScoreModel(TransformerConfig(249, 2, "global"))).eval()
    tokens, labels, sigma = make_inputs(model, batch=2)
    with torch.no_grad():
        out = model(tokens, labels, sigma)
    assert out.shape == (2, 249, 4) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_paper_size_conv_runs_a_real_forward_pass():
    torch.manual_seed(0)
    model = ConvScoreModel(ConvConfig(249, 2, "global")).eval()
    tokens, labels, sigma = make_inputs(model, batch=2)
    with torch.no_grad():
        out = model(tokens, labels, sigma)
    assert out.shape == (2, 249, 4) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("build", [TransformerScoreModel, ConvScoreModel], ids=["tran", "conv"])
def test_paper_size_promoter_models_run_a_real_forward_pass(build):
    torch.manual_seed(0)
    config_type = TransformerConfig if build is TransformerScoreModel else ConvConfig
    model = perturb_zero_init(build(config_type(1024, 1, "per_position"))).eval()
    tokens, labels, sigma = make_inputs(model, batch=1)
    with torch.no_grad():
        out = model(tokens, labels, sigma)
    assert out.shape == (1, 1024, 4) and torch.isfinite(out).all()


# --- outputs and invariants -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["global", "per_position"])
@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_output_is_float32_log_scores_with_zero_at_the_current_token(build, mode):
    model = perturb_zero_init(build(mode, signal_dim=2 if mode == "global" else 1))
    tokens, labels, sigma = make_inputs(model)
    out = model(tokens, labels, sigma)
    assert out.shape == (3, 16, 4) and out.dtype == torch.float32
    assert torch.equal(out.gather(-1, tokens[..., None]), torch.zeros(3, 16, 1))
    other = torch.ones_like(out, dtype=torch.bool).scatter(-1, tokens[..., None], False)
    assert (out[other] != 0).all()


def test_zero_initialised_transformer_outputs_exactly_zero():
    model = small_transformer()
    out = model(*make_inputs(model))
    assert torch.equal(out, torch.zeros_like(out))


def test_zero_initialised_adaln_makes_each_block_the_identity():
    model = small_transformer()
    x = torch.randn(2, 16, 64)
    c = torch.randn(2, 32)
    cos, sin = model.rotary_emb(16, x.dtype)
    assert torch.equal(model.blocks[0](x, c, cos, sin), x)


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_per_position_label_changes_the_output_at_its_position(build):
    model = perturb_zero_init(build("per_position", signal_dim=1)).eval()
    tokens, labels, sigma = make_inputs(model)
    changed = labels.clone()
    changed[1, 5, 0] += 3.0
    delta = (model(tokens, changed, sigma) - model(tokens, labels, sigma)).abs()
    assert delta[1, 5].max() > 1e-4
    assert delta[0].max() == 0 and delta[2].max() == 0  # other sequences untouched


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_global_labels_condition_the_output(build):
    model = perturb_zero_init(build("global")).eval()
    tokens, labels, sigma = make_inputs(model)
    assert not torch.allclose(model(tokens, labels + 1, sigma), model(tokens, labels, sigma))


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_research_four_argument_call_equals_the_three_argument_call(build):
    model = perturb_zero_init(build()).eval()
    tokens, labels, sigma = make_inputs(model)
    expected = model(tokens, labels, sigma)
    assert torch.equal(model(tokens, labels, True, sigma), expected)
    assert torch.equal(model(tokens, labels, False, sigma), expected)


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_sigma_may_be_a_column(build):
    model = perturb_zero_init(build()).eval()
    tokens, labels, sigma = make_inputs(model)
    assert torch.equal(model(tokens, labels, sigma[:, None]), model(tokens, labels, sigma))


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_sequences_in_a_batch_are_scored_independently(build):
    model = perturb_zero_init(build()).eval()
    tokens, labels, sigma = make_inputs(model, batch=4)
    whole = model(tokens, labels, sigma)
    part = model(tokens[1:3], labels[1:3], sigma[1:3])
    torch.testing.assert_close(part, whole[1:3], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["none", "selective"])
def test_transformer_trains_under_bfloat16_autocast(mode):
    model = perturb_zero_init(small_transformer(checkpointing=mode)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*make_inputs(model))
    assert out.dtype == torch.float32
    out.sum().backward()
    assert model.blocks[0].attn_qkv.weight.grad is not None


def test_dropout_acts_only_in_training_mode():
    model = perturb_zero_init(small_transformer(dropout=0.5))
    inputs = make_inputs(model)
    model.eval()
    assert torch.equal(model(*inputs), model(*inputs))
    model.train()
    assert not torch.equal(model(*inputs), model(*inputs))


# --- layers against naive references --------------------------------------------------------


def test_sigma_features_are_cosines_then_sines_of_raw_sigma():
    sigma = torch.tensor([0.0, 0.5, 7.0])
    phi = SigmaEmbedding.features(sigma)
    k = torch.arange(128, dtype=torch.float64)
    freqs = torch.exp(-math.log(10000.0) * k / 128)
    angles = sigma.double()[:, None] * freqs
    expected = torch.cat([angles.cos(), angles.sin()], dim=-1).float()
    assert phi.shape == (3, 256) and phi.dtype == torch.float32
    torch.testing.assert_close(phi, expected, rtol=0, atol=1e-6)
    assert torch.equal(phi[0], torch.cat([torch.ones(128), torch.zeros(128)]))


def test_layer_norm_runs_in_float32_without_bias():
    norm = LayerNormF32(8)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
    x = torch.randn(2, 3, 8)
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * norm.weight
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    assert norm(x.bfloat16()).dtype == torch.float32
    assert [name for name, _ in norm.named_parameters()] == ["weight"]


def test_modulate_scales_then_shifts():
    x, shift, scale = torch.randn(2, 5, 4), torch.randn(2, 1, 4), torch.randn(2, 1, 4)
    torch.testing.assert_close(modulate(x, shift, scale), x * (1 + scale) + shift)


def naive_rotary(x, base=10000.0):
    """Rotate x (B, L, heads, D) position by position with the rotate-half formula."""
    length, dim = x.shape[1], x.shape[-1]
    out = torch.empty_like(x)
    for p in range(length):
        theta = torch.tensor([p / base ** (2 * i / dim) for i in range(dim // 2)])
        cos, sin = torch.cat([theta, theta]).cos(), torch.cat([theta, theta]).sin()
        x1, x2 = x[:, p, ..., : dim // 2], x[:, p, ..., dim // 2 :]
        out[:, p] = x[:, p] * cos + torch.cat([-x2, x1], dim=-1) * sin
    return out


@pytest.mark.parametrize("head_dim", [64, 16])
def test_rotary_matches_a_naive_rotate_half_reference(head_dim):
    rotary = Rotary(head_dim)
    expected_inv = torch.tensor([1 / 10000 ** (2 * i / head_dim) for i in range(head_dim // 2)])
    torch.testing.assert_close(rotary.inv_freq, expected_inv)
    x = torch.randn(2, 11, 3, head_dim)
    cos, sin = rotary(11, torch.float32)
    torch.testing.assert_close(apply_rotary(x, cos, sin), naive_rotary(x), rtol=1e-5, atol=1e-5)


def test_rotary_applies_to_stacked_queries_and_keys_alike():
    rotary = Rotary(16)
    qk = torch.randn(2, 7, 2, 3, 16)  # (B, L, two, heads, D)
    cos, sin = rotary(7, torch.float32)
    rotated = apply_rotary(qk, cos, sin)
    for i in range(2):
        torch.testing.assert_close(
            rotated[:, :, i], naive_rotary(qk[:, :, i]), rtol=1e-5, atol=1e-5
        )


def test_rotary_tables_are_cached_and_refreshed_after_loading_new_frequencies():
    rotary = Rotary(16)
    first = rotary(9, torch.float32)
    assert rotary(9, torch.float32)[0] is first[0]
    rotary.load_state_dict({"inv_freq": rotary.inv_freq * 2})
    assert not torch.equal(rotary(9, torch.float32)[1], first[1])
    assert rotary(9, torch.float64)[0].dtype == torch.float64


def test_rotary_tables_made_under_inference_mode_can_be_used_for_training():
    model = perturb_zero_init(small_transformer())
    inputs = make_inputs(model)
    with torch.inference_mode():
        model(*inputs)
    model(*inputs).sum().backward()


def test_attention_equals_naive_softmax_attention():
    torch.manual_seed(0)
    block = small_transformer().blocks[0]
    h = torch.randn(2, 16, 64)
    cos, sin = Rotary(16)(16, torch.float32)
    qkv = (h @ block.attn_qkv.weight.T).view(2, 16, 3, 4, 16)  # (B, L, three, heads, D)
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))  # (B, heads, L, D)
    q = naive_rotary(q.transpose(1, 2)).transpose(1, 2)
    k = naive_rotary(k.transpose(1, 2)).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(16), dim=-1)  # (B, heads, L, L)
    expected = (weights @ v).transpose(1, 2).reshape(2, 16, 64)  # heads merged as (heads, D)
    torch.testing.assert_close(block.attention(h, cos, sin), expected, rtol=1e-5, atol=1e-5)


def test_conv_blocks_cycle_through_the_dilations():
    model = ConvScoreModel(ConvConfig(249, 2, "global"))
    dilations = [conv.dilation[0] for conv in model.conv_blocks]
    assert dilations == [1, 1, 4, 16, 64] * 4
    assert [conv.padding[0] for conv in model.conv_blocks] == [4 * d for d in dilations]


def test_conv_uses_a_per_position_label_as_the_signal_channel():
    model = small_conv("per_position", signal_dim=1)
    assert not hasattr(model, "label_emb")
    tokens, labels, sigma = make_inputs(model)
    seen = {}
    model.linear.register_forward_hook(lambda mod, args, out: seen.update(x=args[0]))
    model(tokens, labels, sigma)
    assert seen["x"].shape == (3, 5, 16)  # (B, V + 1, L)
    assert torch.equal(seen["x"][:, 4], labels[..., 0])
    assert torch.equal(seen["x"][:, :4], F.one_hot(tokens, 4).float().transpose(1, 2))


# --- checkpointing ----------------------------------------------------------------------------


def loss_and_grads(mode):
    torch.manual_seed(0)
    model = perturb_zero_init(small_transformer(checkpointing=mode, dropout=0.2)).train()
    tokens, labels, sigma = make_inputs(model)
    torch.manual_seed(1)  # same dropout masks in every mode
    out = model(tokens, labels, sigma)
    loss = (out.exp() - out).mean()
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["blocks", "selective"])
def test_checkpointing_gives_the_same_loss_and_gradients(mode):
    ref_loss, ref_grads = loss_and_grads("none")
    loss, grads = loss_and_grads(mode)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-6, atol=1e-9, msg=name)


@pytest.mark.parametrize("mode", ["blocks", "selective"])
def test_checkpointing_is_skipped_in_eval_mode_and_without_grad(monkeypatch, mode):
    import d3_core.models.transformer as transformer

    def fail(*args, **kwargs):
        raise AssertionError("checkpoint called")

    monkeypatch.setattr(transformer, "checkpoint", fail)
    model = small_transformer(checkpointing=mode)
    inputs = make_inputs(model)
    model.eval()(*inputs)
    with torch.no_grad():
        model.train()(*inputs)
    with pytest.raises(AssertionError, match="checkpoint called"):
        model.train()(*inputs)


# --- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"length": 0}, "length must be a positive integer; got 0"),
        ({"signal_dim": 1.5}, "signal_dim must be a positive integer"),
        ({"label_mode": "both"}, "label_mode must be one of"),
        ({"n_heads": 5}, "hidden_size must be divisible by n_heads"),
        ({"hidden_size": 36, "n_heads": 12}, "head dim\\) must be even"),
        ({"dropout": 1.0}, "dropout must be in \\[0, 1\\); got 1.0"),
        ({"checkpointing": "all"}, "checkpointing must be one of"),
        ({"n_blocks": True}, "n_blocks must be a positive integer; got True"),
    ],
)
def test_transformer_config_rejects_bad_values_naming_the_field(overrides, message):
    base = dict(length=16, signal_dim=2, label_mode="global") | overrides
    with pytest.raises(D3ConfigError, match=message):
        TransformerConfig(**base)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"channels": 0}, "channels must be a positive integer; got 0"),
        ({"kernel_size": 8}, "kernel_size must be a positive odd integer; got 8"),
        ({"dilations": "1,2"}, "dilations must be a non-empty tuple"),
        ({"dilations": ()}, "dilations must be a non-empty tuple"),
        ({"dilations": (1, 0)}, "dilations must be a non-empty tuple of positive integers"),
        ({"label_mode": "per_position"}, "signal_dim must be 1; got signal_dim=2"),
        ({"label_mode": None}, "label_mode must be one of"),
    ],
)
def test_conv_config_rejects_bad_values_naming_the_field(overrides, message):
    base = dict(length=16, signal_dim=2, label_mode="global") | overrides
    with pytest.raises(D3ConfigError, match=message):
        ConvConfig(**base)


def test_conv_config_stores_listed_dilations_as_a_tuple():
    assert ConvConfig(16, 2, "global", dilations=[1, 2]).dilations == (1, 2)


def test_transformer_config_rejects_a_negative_inference_chunk():
    with pytest.raises(D3ConfigError, match="inference_chunk_tokens must be a non-negative"):
        TransformerConfig(16, 2, "global", inference_chunk_tokens=-1)


@pytest.mark.parametrize("chunk_tokens", [16, 40])
def test_chunked_inference_equals_the_whole_batch(chunk_tokens):
    model = perturb_zero_init(small_transformer(inference_chunk_tokens=0)).eval()
    chunked = small_transformer(inference_chunk_tokens=chunk_tokens).eval()
    chunked.load_state_dict(model.state_dict())
    inputs = make_inputs(model, batch=5)
    with torch.no_grad():
        torch.testing.assert_close(chunked(*inputs), model(*inputs), rtol=1e-5, atol=1e-6)
    # With gradients the whole batch runs at once, and gradients flow.
    chunked(*inputs).sum().backward()


def test_configs_are_frozen():
    config = TransformerConfig(16, 2, "global")
    with pytest.raises(AttributeError):
        config.length = 3


# --- input errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_global_model_rejects_per_position_labels(build):
    model = build("global")
    tokens, _, sigma = make_inputs(model)
    with pytest.raises(
        D3InputError,
        match=r"labels must have shape \(B, S\) = \(3, 2\) for "
        r"label_mode='global'; got \(3, 16, 2\)",
    ):
        model(tokens, torch.randn(3, 16, 2), sigma)


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_per_position_model_rejects_global_labels(build):
    model = build("per_position", signal_dim=1)
    tokens, _, sigma = make_inputs(model)
    with pytest.raises(D3InputError, match=r"labels must have shape \(B, L, S\) = \(3, 16, 1\)"):
        model(tokens, torch.randn(3, 1), sigma)


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_wrong_label_width_is_rejected(build):
    model = build("global")
    tokens, _, sigma = make_inputs(model)
    with pytest.raises(D3InputError, match=r"got \(3, 3\)"):
        model(tokens, torch.randn(3, 3), sigma)


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t, y, s: (t.int(), y, s),
            "tokens must be an int64 tensor of shape \\(B, L\\); got torch.int32",
        ),
        (
            lambda t, y, s: (t[:, :8], y, s),
            "tokens must have shape \\(B, 16\\) for this model; got \\(3, 8\\)",
        ),
        (lambda t, y, s: (t + 4, y, s), "tokens must lie in \\[0, 4\\); got values from 4 to 7"),
        (
            lambda t, y, s: (t, y.long(), s),
            "labels must be a floating-point tensor; got torch.int64",
        ),
        (
            lambda t, y, s: (t, y, s[:2]),
            "sigma must have shape \\(3,\\) \\(or \\(3, 1\\)\\); got \\(2,\\)",
        ),
        (
            lambda t, y, s: (t, y, 0.5),
            "sigma must be a floating-point tensor of shape \\(B,\\); got float",
        ),
    ],
)
def test_bad_inputs_raise_input_errors_naming_the_argument(build, change, message):
    model = build("global")
    with pytest.raises(D3InputError, match=message):
        model(*change(*make_inputs(model)))


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_check_inputs_rejects_negative_tokens(build):
    model = build("global")
    tokens, labels, sigma = make_inputs(model)
    model.check_inputs(tokens, labels, sigma)
    with pytest.raises(D3InputError, match=r"tokens must lie in \[0, 4\); got values from -1"):
        model.check_inputs(tokens - 1, labels, sigma)


@pytest.mark.parametrize("build", [small_transformer, small_conv], ids=["tran", "conv"])
def test_extra_arguments_match_neither_call_convention(build):
    model = build("global")
    tokens, labels, sigma = make_inputs(model)
    with pytest.raises(D3InputError, match="got 1 extra positional argument"):
        model(tokens, labels, sigma, sigma)
    with pytest.raises(D3InputError, match=r"model\(tokens, labels, train, sigma\); got 3"):
        model(tokens, labels, True)


# --- check_dataset_config (dataset variants) ----------------------------------------------------


def test_a_dataset_variant_check_names_the_dataset_the_value_and_the_expected_one(make_plugin):
    from d3_core.errors import D3ConfigError
    from d3_core.models.base import check_dataset_config

    plugin = make_plugin(
        "promoter", sequence_length=64, label_names=("CAGE",), label_mode="per_position"
    )
    good = TransformerConfig(
        length=64,
        signal_dim=1,
        label_mode="per_position",
        hidden_size=32,
        n_blocks=1,
        n_heads=2,
        cond_dim=8,
    )
    check_dataset_config(good, TransformerScoreModel, dataset="Promoter", plugin=plugin)
    short = TransformerConfig(
        length=32,
        signal_dim=1,
        label_mode="per_position",
        hidden_size=32,
        n_blocks=1,
        n_heads=2,
        cond_dim=8,
    )
    with pytest.raises(
        D3ConfigError,
        match=r"^TransformerScoreModel models Promoter data \(64-bp sequences, 1 per-position labels CAGE\): config length=32, expected 64$",
    ):
        check_dataset_config(short, TransformerScoreModel, dataset="Promoter", plugin=plugin)
    conv = ConvConfig(
        length=64, signal_dim=1, label_mode="per_position", channels=8, n_blocks=1, cond_dim=8
    )
    with pytest.raises(
        D3ConfigError, match=r"^TransformerScoreModel takes a TransformerConfig, got ConvConfig$"
    ):
        check_dataset_config(conv, TransformerScoreModel, dataset="Promoter", plugin=plugin)


def test_the_cpu_preset_options_of_the_transformer_change_only_their_own_parameters():
    """conv_stem adds `stem` (a residual Conv1d over the embedded tokens); token_embedding_std
    draws the token embedding from N(0, std²); both off keep the research layout."""
    base = dict(length=16, signal_dim=2, label_mode="global", hidden_size=32, n_blocks=1,
                n_heads=2, cond_dim=16)  # fmt: skip
    research = set(dict(TransformerScoreModel(TransformerConfig(**base)).named_parameters()))
    torch.manual_seed(0)
    model = TransformerScoreModel(TransformerConfig(**base, conv_stem=5, token_embedding_std=1.0))
    names = set(dict(model.named_parameters()))
    assert names - research == {"stem.weight", "stem.bias"} and research <= names
    assert tuple(model.stem.weight.shape) == (32, 32, 5)
    assert 0.8 < model.vocab_embed.embedding.std().item() < 1.2  # research init: ~0.1
    out = model(torch.randint(0, 4, (2, 16)), torch.randn(2, 2), torch.rand(2))
    assert out.shape == (2, 16, 4) and torch.isfinite(out).all()
    for bad in ({"conv_stem": 4}, {"conv_stem": -1}, {"token_embedding_std": -0.5}):
        with pytest.raises(D3ConfigError):
            TransformerConfig(**base, **bad)
