"""The Promoter plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin
from d3_promoter import __version__

PLUGIN = DatasetPlugin(
    name="promoter",
    distribution="d3-promoter",
    sequence_length=1024,
    label_names=("CAGE",),
    label_mode="per_position",
    version=__version__,
    # A placeholder until the data loader, models and oracle land.
    ready=False,
    description=(
        "Human promoters, 1,024 bp around a transcription start site, each position labelled with "
        "the CAGE signal on the start site's strand."
    ),
)
