"""Reading a dataset's data file through its plugin's loader, with errors that name the file.

A plugin's loader knows its format; `read_data_file` is what every command calls instead of the
loader itself. It makes sure that whatever is wrong with the file a user gave ends in one
`D3InputError` naming that file and the dataset: a loader's own D3 errors pass through, and
anything else it raises (a truncated zip or HDF5 file, a key it did not expect, a file that is
not in the format at all) is described from the exception. It then checks the splits the
command needs: present, not empty, and of the dataset's sequence length and label shape.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from d3_core.errors import D3Error, D3InputError

__all__ = ["read_data_file"]


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def read_data_file(
    plugin: Any, path: str | os.PathLike, *, need: Iterable[str] = ("train", "valid")
) -> dict[str, Any]:
    """The splits of a data file, read by the dataset's loader and checked.

    Args:
        plugin: The dataset's `d3_core.registry.DatasetPlugin`.
        path: The data file.
        need: The splits the caller uses; each must be present and hold at least one sequence
            of the dataset's length and label shape.

    Returns:
        The loader's ``{split: dataset}``.

    Raises:
        D3InputError: The file is missing, unreadable, not in the dataset's format, or a needed
            split is missing, empty or of the wrong shape; the message names the file.
    """
    from d3_core.data.loader import check_example

    path = Path(path)
    fix = (
        f"give a {plugin.name} data file ({plugin.description.split('.')[0].strip()}), or "
        f"write one with `d3 make-data --dataset {plugin.name} --out FILE`"
    )
    if not path.exists():
        raise D3InputError(f"data file {str(path)!r} does not exist; {fix}")
    if not path.is_file():
        raise D3InputError(f"data file {str(path)!r} is not a file; {fix}")
    if path.stat().st_size == 0:
        raise D3InputError(f"data file {str(path)!r} is empty (0 bytes); {fix}")
    try:
        splits = plugin.load("data_loader")(path)
    except D3Error:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:
        raise D3InputError(
            f"cannot read data file {str(path)!r} as {plugin.name} data ({_reason(err)}); {fix}"
        ) from None
    for split in need:
        if split not in splits:
            raise D3InputError(
                f"data file {str(path)!r} has no {split!r} split ({plugin.distribution}'s "
                f"loader found {', '.join(map(repr, splits)) or 'none'}); {fix}"
            )
        dataset = splits[split]
        if len(dataset) == 0:
            raise D3InputError(
                f"the {split!r} split of data file {str(path)!r} holds no sequences; it needs "
                f"at least one"
            )
        try:
            check_example(dataset[0], length=plugin.sequence_length, label_shape=plugin.label_shape)
        except D3InputError as err:
            raise D3InputError(f"the {split!r} split of data file {str(path)!r}: {err}") from None
    return splits
