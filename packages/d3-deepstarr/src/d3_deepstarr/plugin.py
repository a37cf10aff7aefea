"""The DeepSTARR plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin
from d3_deepstarr import __version__

PLUGIN = DatasetPlugin(
    name="deepstarr",
    distribution="d3-deepstarr",
    sequence_length=249,
    label_names=("Dev", "Hk"),
    label_mode="global",
    version=__version__,
    # A placeholder until the data loader, models and oracle land.
    ready=False,
    description=(
        "DeepSTARR enhancers of Drosophila S2 cells, each with its developmental (Dev) and "
        "housekeeping (Hk) STARR-seq activity as log2 enrichment."
    ),
)
