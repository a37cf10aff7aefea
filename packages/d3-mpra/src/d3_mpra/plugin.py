"""The MPRA plugin object that d3-core finds through the ``d3.datasets`` entry point."""

from d3_core.registry import DatasetPlugin
from d3_mpra import __version__

PLUGIN = DatasetPlugin(
    name="mpra",
    distribution="d3-mpra",
    sequence_length=200,
    # Positional names: the cell lines are named by the data file or config, not hard-coded here.
    label_names=("K562", "HepG2", "SK-N-SH"),
    label_mode="global",
    version=__version__,
    # A placeholder until the data loader, models and oracle land.
    ready=False,
    description=(
        "lentiMPRA measurements of human regulatory sequences, each with its activity in three "
        "cell lines."
    ),
)
