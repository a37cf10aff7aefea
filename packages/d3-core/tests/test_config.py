"""Run configs: schema → preset → files → overrides, unknown keys and bad values named."""

import re

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError

from d3_core.config import (
    PRECISIONS,
    config_from_plain,
    resolve_config,
    resolve_precision,
    save_config,
    to_plain,
)
from d3_core.errors import D3ConfigError, PluginError

TRAINING_KEYS = (
    "batch_size, micro_batch, max_steps, lr, betas, adam_eps, weight_decay, warmup_steps, "
    "grad_clip, ema_decay, time_eps, label_dropout, seed, precision, num_workers, val_every_n_steps, "
    "val_batches, checkpoint_every_n_steps, log_every_n_steps, sample_eval_every_n_steps, "
    "sample_eval_labels, sample_eval_steps, sample_eval_scorer, sample_eval_oracle"
)
SECTIONS = "dataset, model, noise, graph, training, sampling, trainer"


def exactly(message: str) -> str:
    """A `match` pattern for the whole of `message`."""
    return f"^{re.escape(message)}$"


def _yaml(path, text):
    path.write_text(text)
    return path


# -- presets over the schema ----------------------------------------------------------------


def test_the_cpu_transformer_preset_overrides_the_schema_defaults(toy):
    cfg = resolve_config("toy", "Tran")
    assert to_plain(cfg.model) == {
        "architecture": "transformer",
        "vocab_size": 4,
        "hidden_size": 32,
        "n_blocks": 2,
        "n_heads": 2,
        "cond_dim": 16,
        "dropout": 0.0,
        "mlp_ratio": 4,
        "checkpointing": "none",
        "inference_chunk_tokens": 4096,
        "null_label": False,
        "label_conditioning": False,
        "conv_stem": 0,
        "token_embedding_std": 0.0,
    }
    assert cfg.training.batch_size == 16 and cfg.training.max_steps == 60
    assert cfg.training.lr == 3e-3 and cfg.training.warmup_steps == 5
    assert cfg.sampling.steps == 16
    # Keys the preset does not set keep the schema's defaults.
    assert cfg.training.ema_decay == 0.9999 and list(cfg.training.betas) == [0.9, 0.999]
    assert cfg.sampling.predictor == "analytic" and cfg.sampling.batch_size == 64
    assert to_plain(cfg.noise) == {"type": "geometric", "sigma_min": 1e-4, "sigma_max": 20.0}


def test_the_cpu_conv_preset_overrides_the_schema_defaults(toy):
    model = to_plain(resolve_config("toy", "Conv").model)
    assert model["architecture"] == "conv"
    assert (model["channels"], model["n_blocks"], model["cond_dim"]) == (16, 3, 16)
    assert list(model["dilations"]) == [1, 2, 4]
    assert model["kernel_size"] == 9  # not in the preset: the schema's default


@pytest.mark.parametrize(
    ("arch", "sizes"),
    [
        ("tran", {"hidden_size": 768, "n_blocks": 12, "n_heads": 12, "cond_dim": 128}),
        ("conv", {"channels": 256, "n_blocks": 20, "cond_dim": 256, "kernel_size": 9}),
    ],
)
def test_the_paper_preset_keeps_the_paper_model_sizes(toy, arch, sizes):
    cfg = resolve_config("toy", arch, preset="paper")
    assert {k: cfg.model[k] for k in sizes} == sizes
    assert cfg.training.batch_size == 256 and cfg.training.max_steps == 1_000_000


def test_the_dataset_section_comes_from_the_plugin(toy):
    cfg = resolve_config("toy", "tran")
    assert to_plain(cfg.dataset) == {
        "name": "toy",
        "sequence_length": 32,
        "label_names": ["copies"],
        "label_mode": "global",
        "data": None,
    }


def test_the_dataset_and_architecture_names_are_accepted_in_any_spelling(toy):
    assert resolve_config("TOY", "ddit") == resolve_config("toy", "transformer")
    assert resolve_config("Toy", "CNN") == resolve_config("toy", "conv")


def test_a_resolved_config_rejects_new_keys(toy):
    cfg = resolve_config("toy", "tran")
    with pytest.raises(ConfigAttributeError):
        cfg.training.max_stepz = 3


# -- the order of the layers ------------------------------------------------------------------


def test_a_config_file_overrides_the_preset_and_an_override_overrides_the_file(toy, tmp_path):
    file = _yaml(tmp_path / "run.yaml", "training:\n  max_steps: 7\n  lr: 0.01\n")
    assert resolve_config("toy", "tran", config_files=[file]).training.max_steps == 7
    cfg = resolve_config("toy", "tran", config_files=[file], overrides=["training.max_steps=11"])
    assert cfg.training.max_steps == 11
    assert cfg.training.lr == 0.01  # the file's, untouched by the override
    assert cfg.training.batch_size == 16  # the preset's


def test_later_files_and_later_overrides_win(toy, tmp_path):
    first = _yaml(tmp_path / "a.yaml", "training:\n  max_steps: 7\n  seed: 1\n")
    second = _yaml(tmp_path / "b.yaml", "training:\n  max_steps: 9\n")
    cfg = resolve_config("toy", "tran", config_files=[first, second])
    assert (cfg.training.max_steps, cfg.training.seed) == (9, 1)
    cfg = resolve_config("toy", "tran", overrides=["training.max_steps=3", "training.max_steps=5"])
    assert cfg.training.max_steps == 5


def test_an_empty_config_file_changes_nothing(toy, tmp_path):
    file = _yaml(tmp_path / "empty.yaml", "")
    assert resolve_config("toy", "tran", config_files=[file]) == resolve_config("toy", "tran")


def test_overrides_are_converted_to_the_schema_types(toy):
    cfg = resolve_config(
        "toy",
        "tran",
        overrides=["training.lr=1e-3", "training.micro_batch=4", "training.grad_clip=null"],
    )
    assert cfg.training.lr == 1e-3 and isinstance(cfg.training.lr, float)
    assert cfg.training.micro_batch == 4 and cfg.training.grad_clip is None


# -- unknown keys and wrong types --------------------------------------------------------------


def test_an_unknown_key_in_a_file_is_named_with_the_file_and_the_allowed_keys(toy, tmp_path):
    file = _yaml(tmp_path / "run.yaml", "training:\n  max_stepz: 3\n")
    message = (
        f"config file {str(file)!r}: unknown config key 'training.max_stepz'; "
        f"did you mean 'training.max_steps'? the keys of 'training' are: {TRAINING_KEYS}"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", config_files=[file])


def test_an_unknown_key_in_an_override_is_named_with_the_override_and_the_allowed_keys(toy):
    message = (
        "override 'training.max_stepz=3': unknown config key 'training.max_stepz'; "
        f"did you mean 'training.max_steps'? the keys of 'training' are: {TRAINING_KEYS}"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["training.max_stepz=3"])


def test_an_unknown_section_lists_the_sections_and_the_closest(toy):
    message = (
        "override 'modle.x=1': unknown config key 'modle'; did you mean 'model'? "
        f"the keys of 'the top level' are: {SECTIONS}"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["modle.x=1"])


def test_an_unknown_model_key_lists_the_keys_of_the_architecture(toy):
    message = (
        "override 'model.channels=8': unknown config key 'model.channels'; the keys of 'model' "
        "are: architecture, vocab_size, hidden_size, n_blocks, n_heads, cond_dim, dropout, "
        "mlp_ratio, checkpointing, inference_chunk_tokens, null_label, label_conditioning, "
        "conv_stem, token_embedding_std"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["model.channels=8"])


def test_a_wrongly_typed_value_names_the_override_and_the_key(toy):
    message = (
        "override 'training.max_steps=abc': invalid value at 'training.max_steps': "
        "Value 'abc' of type 'str' could not be converted to Integer"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["training.max_steps=abc"])


def test_a_section_replaced_by_a_scalar_is_an_invalid_value(toy):
    message = (
        "override 'training=3': invalid value: Merge error: int is not a subclass of "
        "TrainingSection. value: 3"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["training=3"])


@pytest.mark.parametrize("override", ["training.max_steps", "=3", "a b=1", " =1"])
def test_a_malformed_override_is_refused_with_the_expected_form(toy, override):
    message = (
        f"override {override!r} is not of the form section.key=value, e.g. training.max_steps=1000"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=[override])


# -- config files ----------------------------------------------------------------------------


def test_a_missing_config_file_is_named(toy, tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(
        D3ConfigError, match=exactly(f"config file {str(missing)!r} does not exist")
    ):
        resolve_config("toy", "tran", config_files=[missing])


def test_a_file_that_is_not_yaml_is_named_with_the_parser_s_reason(toy, tmp_path):
    file = _yaml(tmp_path / "run.yaml", "training: [unclosed\n")
    pattern = f"^{re.escape(f'config file {str(file)!r} is not valid YAML: ')}.+$"
    with pytest.raises(D3ConfigError, match=pattern):
        resolve_config("toy", "tran", config_files=[file])


def test_a_yaml_list_is_refused_as_a_config_file(toy, tmp_path):
    file = _yaml(tmp_path / "run.yaml", "- 1\n- 2\n")
    message = f"config file {str(file)!r} must hold a mapping of sections"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", config_files=[file])


# -- values out of range (check_config) ------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.batch_size=0", "config training.batch_size = 0 is invalid: expected a positive integer"),
        ("training.max_steps=-1", "config training.max_steps = -1 is invalid: expected a positive integer"),
        ("training.micro_batch=0", "config training.micro_batch = 0 is invalid: expected a positive integer or null"),
        ("training.val_batches=0", "config training.val_batches = 0 is invalid: expected a positive integer or null"),
        ("training.warmup_steps=-1", "config training.warmup_steps = -1 is invalid: expected an integer >= 0"),
        ("training.lr=0", "config training.lr = 0.0 is invalid: expected a positive number"),
        ("training.betas=[0.9]", "config training.betas = [0.9] is invalid: expected two numbers in [0, 1)"),
        ("training.betas=[0.9,1.0]", "config training.betas = [0.9, 1.0] is invalid: expected two numbers in [0, 1)"),
        ("training.ema_decay=1.0", "config training.ema_decay = 1.0 is invalid: expected a number in [0, 1)"),
        ("training.time_eps=1", "config training.time_eps = 1.0 is invalid: expected a number in (0, 1)"),
        ("training.grad_clip=0", "config training.grad_clip = 0.0 is invalid: expected a positive number or null"),
        ("training.precision=fp16", "config training.precision = 'fp16' is invalid: expected one of auto, 32-true, bf16-mixed"),
        ("sampling.predictor=x", "config sampling.predictor = 'x' is invalid: expected one of euler, analytic"),
        ("sampling.steps=0", "config sampling = {'predictor': 'analytic', 'steps': 0, 'batch_size': 64, 'guidance': 0.0, 'guidance_with_oracle': 0.0, 'oracle_guidance': 3.0, 'oracle_guidance_form': 'gradient'} is invalid: expected positive steps and batch_size"),
        ("graph.type=absorbing", "config graph.type = 'absorbing' is invalid: expected 'uniform' (the graph D3 trains with)"),
        ("dataset.name=other", "config dataset.name = 'other' is invalid: expected 'toy' (the dataset being configured)"),
        ("dataset.sequence_length=31", "config dataset.sequence_length = 31 is invalid: expected 32 for toy"),
        ("dataset.label_mode=per_position", "config dataset.label_mode = 'per_position' is invalid: expected 'global' for toy"),
        ("dataset.label_names=[a,b]", "config dataset.label_names = ['a', 'b'] is invalid: expected 1 names for toy"),
    ],
)  # fmt: skip
def test_an_out_of_range_value_is_named_with_what_is_allowed(toy, override, message):
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=[override])


def test_the_precisions_offered_are_auto_float32_and_bfloat16():
    assert PRECISIONS == ("auto", "32-true", "bf16-mixed")


def test_a_noise_schedule_error_comes_from_the_schedule(toy):
    message = "unknown noise schedule 'foo'; choose one of ['geometric', 'loglinear']"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["noise.type=foo"])


def test_a_model_size_error_comes_from_the_model_dataclass(toy):
    message = "hidden_size must be divisible by n_heads; got hidden_size=32, n_heads=3"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("toy", "tran", overrides=["model.n_heads=3"])


def test_a_conv_size_error_comes_from_the_conv_dataclass(toy):
    with pytest.raises(
        D3ConfigError, match=exactly("kernel_size must be a positive odd integer; got 4")
    ):
        resolve_config("toy", "conv", overrides=["model.kernel_size=4"])


def test_changing_the_architecture_in_a_config_layer_is_a_config_error(toy):
    with pytest.raises(D3ConfigError, match=r"model\.architecture"):
        resolve_config("toy", "tran", overrides=["model.architecture=conv"])


# -- presets and plugins ---------------------------------------------------------------------


def test_an_unknown_preset_lists_the_presets(toy):
    with pytest.raises(D3ConfigError, match=exactly("unknown preset 'big'; use one of cpu, paper")):
        resolve_config("toy", "tran", preset="big")


def test_an_unknown_architecture_is_a_plugin_error(toy):
    message = "unknown architecture 'rnn'; use Tran (transformer) or Conv (conv), in any case"
    with pytest.raises(PluginError, match=exactly(message)):
        resolve_config("toy", "rnn")


def test_a_plugin_without_the_preset_file_names_where_it_was_expected(toy, installed, make_plugin):
    plugin = make_plugin("bare", score_models=toy.score_models, configs="toyplugin")
    installed(plugin)
    message = (
        "d3-bare 0.1.0 has no 'cpu' config for transformer "
        "(expected toyplugin/transformer/cpu.yaml)"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        resolve_config("bare", "tran")


# -- stored configs ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["tran", "conv"])
def test_a_config_survives_the_round_trip_through_plain_data(toy, arch):
    cfg = resolve_config("toy", arch, overrides=["training.max_steps=7", "dataset.data=x.npz"])
    plain = to_plain(cfg)
    assert isinstance(plain, dict) and isinstance(plain["training"]["betas"], list)
    assert config_from_plain(plain) == cfg
    assert config_from_plain(plain, toy) == cfg


@pytest.mark.parametrize(
    "plain", [{"model": {"architecture": "transformer"}}, {"dataset": {"name": "toy"}}, [1, 2]]
)
def test_stored_data_without_the_dataset_or_architecture_is_refused(plain):
    message = "the stored config lacks dataset.name or model.architecture"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        config_from_plain(plain)


def test_stored_data_with_an_unknown_key_names_the_stored_config(toy):
    plain = {**to_plain(resolve_config("toy", "tran")), "extra": 1}
    message = f"the stored config: unknown config key 'extra'; the keys of 'the top level' are: {SECTIONS}"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        config_from_plain(plain)


def test_stored_data_is_checked_like_a_fresh_config(toy):
    plain = to_plain(resolve_config("toy", "tran"))
    plain["training"]["ema_decay"] = 1.5
    message = "config training.ema_decay = 1.5 is invalid: expected a number in [0, 1)"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        config_from_plain(plain)


@pytest.mark.parametrize("arch", ["tran", "conv"])
def test_a_saved_config_loads_back_equal(toy, tmp_path, arch):
    cfg = resolve_config("toy", arch, overrides=["training.seed=3"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert path == tmp_path / "run" / "config.yaml"
    loaded = OmegaConf.to_container(OmegaConf.load(path))
    assert loaded["training"]["seed"] == 3
    assert config_from_plain(loaded) == cfg


def test_save_config_replaces_the_file_and_leaves_no_temporary(toy, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("old: true\n")
    save_config(resolve_config("toy", "tran"), path)
    assert OmegaConf.load(path).dataset.name == "toy"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


# -- precision policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "accelerator", "precision"),
    [
        ("transformer", "gpu", "bf16-mixed"),
        ("Tran", "cuda", "bf16-mixed"),
        ("transformer", "cpu", "32-true"),
        ("transformer", "mps", "32-true"),
        ("conv", "gpu", "32-true"),
        ("Conv", "cpu", "32-true"),
    ],
)
def test_auto_precision_is_bfloat16_only_for_the_transformer_on_gpus(arch, accelerator, precision):
    assert resolve_precision("auto", arch, accelerator) == precision


@pytest.mark.parametrize("requested", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize(("arch", "accelerator"), [("conv", "gpu"), ("transformer", "cpu")])
def test_an_explicit_precision_passes_through(requested, arch, accelerator):
    assert resolve_precision(requested, arch, accelerator) == requested
