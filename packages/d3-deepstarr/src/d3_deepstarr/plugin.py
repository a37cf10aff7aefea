"""The DeepSTARR plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin, package_components
from d3_deepstarr import __version__

# Components are "module:attribute" paths, imported only when used: listing datasets imports
# neither torch nor h5py.
PLUGIN = DatasetPlugin(
    name="deepstarr",
    distribution="d3-deepstarr",
    sequence_length=249,
    label_names=("Dev", "Hk"),
    label_mode="global",
    version=__version__,
    description=(
        "DeepSTARR enhancers of Drosophila S2 cells, each with its developmental (Dev) and "
        "housekeeping (Hk) STARR-seq activity as log2 enrichment."
    ),
    data_suffix=".h5",
    **package_components(
        "d3_deepstarr",
        lightning_module="DeepSTARRD3LightningModule",
        score_models=("DeepSTARRTransformerScoreModel", "DeepSTARRConvScoreModel"),
    ),
)
