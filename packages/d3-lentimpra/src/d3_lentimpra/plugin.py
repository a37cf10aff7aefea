"""The lentiMPRA plugin object that d3-core finds through the ``d3.datasets`` entry point, and
the cell lines it measures.

One dataset name, ``lentimpra``, serves both cell lines of the published lentiMPRA examples
(K562 and HepG2): their files, models and oracles have the same shape (230 bp, one global
activity), and d3-dna's checkpoints of both store ``dataset.name: lentimpra``. The cell line is
the name of the one label (docs/data-formats.md#lentimpra): ``K562`` unless the data file's
``label_names`` attribute or the config says otherwise, e.g. ``dataset.label_names=[HepG2]``.
d3-core's config schema has no dataset keys of a plugin's own, so the label name is where the
cell is recorded; every run, checkpoint, sample set and report carries it. A name that is not one
of `CELLS` is refused when a run starts (`check_cell`).
"""

from d3_core.errors import D3ConfigError
from d3_core.registry import DatasetPlugin, package_components
from d3_lentimpra import __version__

__all__ = ["CELLS", "PLUGIN", "check_cell"]

CELLS = ("K562", "HepG2")
"""The cell lines of the published lentiMPRA files (``data_MPRA_<cell>.h5``); the first is the
default."""

# Components are "module:attribute" paths, imported only when used: listing datasets imports
# neither torch nor h5py.
PLUGIN = DatasetPlugin(
    name="lentimpra",
    distribution="d3-lentimpra",
    sequence_length=230,
    label_names=(CELLS[0],),
    label_mode="global",
    version=__version__,
    description=(
        "lentiMPRA activity of 230-bp human regulatory sequences in one cell line, K562 "
        "(default) or HepG2 (dataset.label_names=[HepG2])."
    ),
    data_suffix=".h5",
    **package_components(
        "d3_lentimpra",
        lightning_module="LentiMPRAD3LightningModule",
        score_models=("LentiMPRATransformerScoreModel", "LentiMPRAConvScoreModel"),
    ),
)


def check_cell(label_names: object) -> str:
    """The cell line a lentiMPRA config or file names, checked.

    Args:
        label_names: ``dataset.label_names`` of a config (or a file's ``label_names``): one name.

    Returns:
        The cell line, one of `CELLS`.

    Raises:
        D3ConfigError: The name is not one of `CELLS` (exact spelling); the message names the
            value, the cells there are and, for another case, the spelling to use.
    """
    names = [str(name) for name in list(label_names)]  # type: ignore[call-overload]
    if len(names) == 1 and names[0] in CELLS:
        return names[0]
    same = [cell for cell in CELLS if len(names) == 1 and cell.lower() == names[0].strip().lower()]
    hint = f"did you mean [{same[0]}]? " if same else ""
    raise D3ConfigError(
        f"config dataset.label_names = {names!r} names no lentiMPRA cell line; {hint}the label of "
        f"a lentimpra run is its cell line: use dataset.label_names=[K562] (the default) or "
        f"dataset.label_names=[HepG2]"
    )
