"""Tests of the dataset-plugin registry: declaration checks, discovery, loading and readiness."""

import re

import pytest

from d3_core.errors import PluginError
from d3_core.registry import (
    ENTRY_POINT_GROUP,
    arch_label,
    canonical_arch,
    get_model_class_for_dataset,
    list_datasets,
    load_dataset_plugin,
    require_ready,
    resolve_ref,
)

# --- DatasetPlugin declarations -------------------------------------------------------------------


def test_a_valid_declaration_reports_its_label_width(make_plugin):
    assert make_plugin(label_names=("a", "b", "c")).label_width == 3


def test_a_declaration_is_frozen(make_plugin):
    plugin = make_plugin()
    with pytest.raises(AttributeError):
        plugin.sequence_length = 100


@pytest.mark.parametrize("name", ["", "DeepSTARR", "1mpra", "deep-starr", "deep starr", None])
def test_a_name_must_be_lower_case_letters_digits_and_underscores(make_plugin, name):
    with pytest.raises(
        PluginError,
        match=rf"^DatasetPlugin.name must be lower-case letters, digits and underscores starting with a letter, got {re.escape(repr(name))}$",
    ):
        make_plugin(name=name)


@pytest.mark.parametrize("length", [0, -249, 249.0, "249", True])
def test_a_sequence_length_must_be_a_positive_int(make_plugin, length):
    with pytest.raises(
        PluginError,
        match=rf"^DatasetPlugin 'deepstarr': sequence_length must be a positive int, got {re.escape(repr(length))}$",
    ):
        make_plugin(sequence_length=length)


@pytest.mark.parametrize("labels", [(), ["Dev", "Hk"], ("Dev", ""), ("Dev", 2), "Dev"])
def test_label_names_must_be_a_non_empty_tuple_of_non_empty_strings(make_plugin, labels):
    with pytest.raises(
        PluginError,
        match=rf"^DatasetPlugin 'deepstarr': label_names must be a non-empty tuple of non-empty strings, got {re.escape(repr(labels))}$",
    ):
        make_plugin(label_names=labels)


@pytest.mark.parametrize("mode", ["per-position", "GLOBAL", None])
def test_a_label_mode_must_be_global_or_per_position(make_plugin, mode):
    with pytest.raises(
        PluginError,
        match=rf"^DatasetPlugin 'deepstarr': label_mode must be one of \('global', 'per_position'\), got {re.escape(repr(mode))}$",
    ):
        make_plugin(label_mode=mode)


# --- Discovery ----------------------------------------------------------------------------------


def test_list_datasets_keys_entry_points_by_lower_case_name_without_loading_them(
    installed, fake_entry_point, make_plugin
):
    entry_points = installed(
        fake_entry_point("promoter", make_plugin("promoter"), "d3-promoter"),
        fake_entry_point("DeepSTARR", make_plugin(), "d3-deepstarr"),
        fake_entry_point("other", make_plugin("other"), "x", group="not.d3"),
    )

    found = list_datasets()

    assert list(found) == ["deepstarr", "promoter"]
    assert found["deepstarr"] is entry_points[1]
    assert not any(ep.loaded for ep in entry_points)


def test_list_datasets_is_empty_when_nothing_is_installed(installed):
    installed()
    assert list_datasets() == {}


def test_list_datasets_rejects_a_name_registered_by_two_packages(installed, make_plugin):
    installed(
        make_plugin("mpra", distribution="d3-mpra"), make_plugin("mpra", distribution="mpra-fork")
    )
    with pytest.raises(
        PluginError,
        match=r"^dataset name 'mpra' is registered by more than one installed package: d3-mpra and mpra-fork; uninstall all but one of them$",
    ):
        list_datasets()


def test_one_package_seen_twice_on_the_path_is_not_a_duplicate(installed, make_plugin):
    plugin = make_plugin("mpra")
    installed(plugin, plugin)
    assert list(list_datasets()) == ["mpra"]
    assert load_dataset_plugin("mpra") is plugin


def test_the_real_entry_point_group_is_d3_datasets():
    assert ENTRY_POINT_GROUP == "d3.datasets"


# --- Loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("asked", ["deepstarr", "DeepSTARR", " DEEPSTARR "])
def test_load_finds_a_plugin_whatever_the_case_of_its_name(installed, make_plugin, asked):
    plugin = make_plugin()
    installed(plugin)
    assert load_dataset_plugin(asked) is plugin


def test_load_imports_only_the_plugin_asked_for(installed, make_plugin):
    entry_points = installed(make_plugin("deepstarr"), make_plugin("mpra"), make_plugin("promoter"))
    load_dataset_plugin("mpra")
    assert [ep.loaded for ep in entry_points] == [False, True, False]


def test_load_names_the_package_to_install_for_a_known_dataset(installed, make_plugin):
    installed(make_plugin("promoter"), make_plugin("mpra"))
    with pytest.raises(
        PluginError,
        match=r"^no dataset plugin named 'deepstarr' is installed; install it with `pip install d3-deepstarr` \(installed: mpra, promoter\)$",
    ):
        load_dataset_plugin("DeepSTARR")


def test_load_lists_the_published_datasets_for_an_unknown_name(installed):
    installed()
    with pytest.raises(
        PluginError,
        match=r"^no dataset plugin named 'starr' is installed; the datasets published by d3 are deepstarr, mpra, promoter \(installed: none\)$",
    ):
        load_dataset_plugin("starr")


def test_load_rejects_a_name_registered_by_two_packages_naming_both(installed, make_plugin):
    installed(
        make_plugin("mpra", distribution="d3-mpra"),
        make_plugin("deepstarr"),
        make_plugin("mpra", distribution="mpra-fork"),
    )
    with pytest.raises(PluginError, match=r"'mpra' is registered by .*: d3-mpra and mpra-fork;"):
        load_dataset_plugin("mpra")


def test_a_duplicate_name_does_not_block_loading_another_dataset(installed, make_plugin):
    plugin = make_plugin("deepstarr")
    installed(make_plugin("mpra"), make_plugin("mpra", distribution="mpra-fork"), plugin)
    assert load_dataset_plugin("deepstarr") is plugin


def test_load_reports_a_plugin_module_that_fails_to_import(installed, fake_entry_point):
    failure = ModuleNotFoundError("No module named 'h5py'")
    installed(fake_entry_point("deepstarr", failure, "d3-deepstarr"))
    with pytest.raises(
        PluginError,
        match=r"^entry point 'deepstarr' \(d3_deepstarr.plugin:PLUGIN\) of d3-deepstarr failed to import: ModuleNotFoundError: No module named 'h5py'; reinstall that package$",
    ) as caught:
        load_dataset_plugin("deepstarr")
    assert caught.value.__cause__ is failure


def test_load_rejects_an_entry_point_that_is_not_a_dataset_plugin(installed, fake_entry_point):
    installed(fake_entry_point("deepstarr", {"name": "deepstarr"}, "d3-deepstarr"))
    with pytest.raises(
        PluginError,
        match=r"^entry point 'deepstarr' \(d3_deepstarr.plugin:PLUGIN\) of d3-deepstarr leads to a dict, not a d3_core.registry.DatasetPlugin$",
    ):
        load_dataset_plugin("deepstarr")


def test_load_rejects_a_plugin_whose_name_differs_from_its_entry_point(
    installed, fake_entry_point, make_plugin
):
    installed(fake_entry_point("deepstarr", make_plugin("mpra"), "d3-deepstarr"))
    with pytest.raises(
        PluginError,
        match=r"^entry point 'deepstarr' \(d3_deepstarr.plugin:PLUGIN\) of d3-deepstarr leads to a plugin named 'mpra'; the entry-point name and DatasetPlugin.name must be the same$",
    ):
        load_dataset_plugin("deepstarr")


# --- Readiness ----------------------------------------------------------------------------------


def test_require_ready_names_package_version_and_every_missing_component(make_plugin):
    plugin = make_plugin("promoter", version="0.1.3")
    with pytest.raises(
        PluginError,
        match=r"^d3-promoter 0\.1\.3 is installed but does not provide a LightningModule subclass, score models, packaged configs, a data loader; upgrade it \(`pip install -U d3-promoter`\)$",
    ):
        require_ready(plugin)


def test_require_ready_accepts_a_plugin_with_every_training_component(
    make_plugin, ready_components
):
    plugin = make_plugin(**ready_components)
    require_ready(plugin)
    assert plugin.ready


def test_a_plugin_names_one_missing_component_and_the_upgrade(make_plugin):
    with pytest.raises(
        PluginError,
        match=r"^d3-mpra 0\.1\.0 does not provide a synthetic-data writer yet; upgrade it \(`pip install -U d3-mpra`\)$",
    ):
        make_plugin("mpra").load("synthetic_data")


def test_score_models_must_be_keyed_by_known_architectures(make_plugin):
    with pytest.raises(
        PluginError,
        match=r"score_models keys must be among \('transformer', 'conv'\), got \['Tran'\]",
    ):
        make_plugin(score_models={"Tran": object})


# --- Architectures and components ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("Tran", "transformer"), ("TRANSFORMER", "transformer"), ("conv", "conv"), ("Conv", "conv"),
     ("convolutional", "conv"), (" tran ", "transformer")],
)  # fmt: skip
def test_architectures_are_accepted_in_any_spelling_and_case(spelling, canonical):
    assert canonical_arch(spelling) == canonical


def test_an_unknown_architecture_names_the_accepted_ones():
    with pytest.raises(
        PluginError,
        match=r"^unknown architecture 'lstm'; use Tran \(transformer\) or Conv \(conv\), in any case$",
    ):
        canonical_arch("lstm")


def test_arch_labels_are_the_run_folder_names():
    assert (arch_label("transformer"), arch_label("CONV")) == ("Tran", "Conv")


def test_a_component_path_is_imported_only_when_resolved():
    assert resolve_ref("d3_core.registry:canonical_arch", what="x") is canonical_arch
    marker = object()
    assert resolve_ref(marker, what="x") is marker


def test_a_component_path_that_does_not_import_names_the_path():
    with pytest.raises(
        PluginError,
        match=r"^d3-x's data loader \(d3_nowhere.data:load\) cannot be imported: ModuleNotFoundError",
    ):
        resolve_ref("d3_nowhere.data:load", what="d3-x's data loader")
    with pytest.raises(
        PluginError, match=r"\(d3_core.registry:nothing\) cannot be imported: AttributeError"
    ):
        resolve_ref("d3_core.registry:nothing", what="x")


def test_get_model_class_for_dataset_routes_through_the_plugin(toy):
    from d3_core.models import ConvScoreModel, TransformerScoreModel

    assert get_model_class_for_dataset("TOY", "Tran") is TransformerScoreModel
    assert get_model_class_for_dataset("toy", "conv") is ConvScoreModel
