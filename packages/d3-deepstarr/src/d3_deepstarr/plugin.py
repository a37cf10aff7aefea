"""The DeepSTARR plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin
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
    lightning_module="d3_deepstarr.lightning:DeepSTARRD3LightningModule",
    score_models={
        "transformer": "d3_deepstarr.models:DeepSTARRTransformerScoreModel",
        "conv": "d3_deepstarr.models:DeepSTARRConvScoreModel",
    },
    configs="d3_deepstarr.configs",
    data_loader="d3_deepstarr.data:load_data",
    synthetic_data="d3_deepstarr.synthetic:write_synthetic",
    ground_truth="d3_deepstarr.synthetic:ground_truth",
    oracle="d3_deepstarr.oracle:ORACLE",
    data_suffix=".h5",
)
