"""The MPRA plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin, package_components
from d3_mpra import __version__

# Components are "module:attribute" paths, imported only when used: listing datasets imports
# neither torch nor h5py.
PLUGIN = DatasetPlugin(
    name="mpra",
    distribution="d3-mpra",
    sequence_length=200,
    # The cell lines of the paper's benchmark file, in its column order; a config may rename them
    # (dataset.label_names), their number is fixed.
    label_names=("K562", "HepG2", "SK-N-SH"),
    label_mode="global",
    version=__version__,
    description=(
        "lentiMPRA measurements of human regulatory sequences, each with its activity in three "
        "cell lines."
    ),
    data_suffix=".h5",
    **package_components(
        "d3_mpra",
        lightning_module="MPRAD3LightningModule",
        score_models=("MPRATransformerScoreModel", "MPRAConvScoreModel"),
    ),
)
