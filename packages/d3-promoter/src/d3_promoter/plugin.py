"""The Promoter plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin, package_components
from d3_promoter import __version__

# Components are "module:attribute" paths that d3-core imports only when it needs them, so that
# listing the installed datasets imports neither torch nor this package's other modules.
PLUGIN = DatasetPlugin(
    name="promoter",
    distribution="d3-promoter",
    sequence_length=1024,
    label_names=("CAGE",),
    label_mode="per_position",
    version=__version__,
    description=(
        "Human promoters, 1,024 bp around a transcription start site, each position labelled with "
        "the CAGE signal on the start site's strand."
    ),
    data_suffix=".npz",
    **package_components(
        "d3_promoter",
        lightning_module="PromoterD3LightningModule",
        score_models=("PromoterTransformerScoreModel", "PromoterConvScoreModel"),
    ),
)
