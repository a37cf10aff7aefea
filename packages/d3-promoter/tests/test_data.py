"""Tests of the Promoter NPZ loader: round trips, chunked lazy reading, one test per message."""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch

from d3_core.data.loader import TokenDataset, onehot_to_tokens
from d3_core.errors import D3InputError
from d3_promoter import data as data_module
from d3_promoter.data import load_data


def _rows(n: int = 4, length: int = 1024, channels: int = 6, seed: int = 0) -> np.ndarray:
    """(n, length, channels) float32 rows of valid one-hot DNA and a non-negative CAGE signal."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, length, channels), dtype=np.float32)
    tokens = rng.integers(0, 4, size=(n, length))
    rows[np.arange(n)[:, None], np.arange(length), tokens] = 1.0
    rows[..., 4:] = rng.random((n, length, channels - 4))
    return rows


def _save(path, **arrays):
    with open(path, "wb") as handle:  # a handle: np.savez adds no ".npz" suffix
        np.savez(handle, **arrays)
    return path


def _valid(**changes) -> dict[str, np.ndarray]:
    return {"train": _rows(seed=0), "valid": _rows(seed=1), "test": _rows(seed=2), **changes}


def test_loading_the_synthetic_file_round_trips(tiny_npz):
    data = load_data(tiny_npz)
    assert list(data) == ["train", "valid", "test"]
    with np.load(tiny_npz) as archive:
        for key, dataset in data.items():
            stored = archive[key]
            assert isinstance(dataset, TokenDataset)
            assert len(dataset) == len(stored)
            tokens, labels = dataset[3]
            assert tokens.dtype == torch.int64 and tokens.shape == (1024,)
            assert labels.dtype == torch.float32 and labels.shape == (1024, 1)
            np.testing.assert_array_equal(tokens.numpy(), stored[3, :, :4].argmax(axis=-1))
            np.testing.assert_array_equal(labels.numpy(), stored[3, :, 4:5])


def test_float64_and_a_string_path_are_accepted(tmp_path):
    arrays = {key: value.astype(np.float64) for key, value in _valid().items()}
    data = load_data(str(_save(tmp_path / "data.npz", **arrays)))
    assert data["test"].labels.dtype == torch.float32
    np.testing.assert_allclose(data["test"].labels.numpy(), arrays["test"][..., 4:5], rtol=1e-6)


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.npz"
    message = f"{path}: no such file; the Promoter data is an NPZ file with keys train, valid, test"
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}, each \\(N, 1024, 6\\)"):
        load_data(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b"\x80\x04a pickle",
            "neither a zip archive nor a .npy array; pickled data is never loaded",
        ),
        (b"", r"EOFError: No data left in file"),
        (b"PK\x03\x04cut short", r"BadZipFile: File is not a zip file"),
    ],
)
def test_a_file_that_is_not_an_npz_archive_is_refused_without_unpickling(tmp_path, content, reason):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    message = rf"data\.npz: not an NPZ archive \({reason}\); expected an NPZ file with keys"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_a_truncated_synthetic_file_is_not_an_npz_archive(tiny_npz, tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(tiny_npz.read_bytes()[:100_000])
    with pytest.raises(D3InputError, match=r"cut\.npz: not an NPZ archive \(BadZipFile"):
        load_data(path)


def test_a_single_npy_array_is_not_an_npz_archive(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, _rows())
    with pytest.raises(D3InputError, match=r"holds a single array of shape \(4, 1024, 6\), not an"):
        load_data(path)


def test_missing_splits_are_listed_with_the_keys_found(tmp_path):
    path = _save(tmp_path / "data.npz", train=_rows(), valid=_rows(), x_test=_rows())
    message = "missing key(s) test; expected keys train, valid, test (found: train, valid, x_test)"
    with pytest.raises(D3InputError, match=re.escape(message)):
        load_data(path)


@pytest.mark.parametrize(
    ("array", "shape"),
    [
        (_rows(channels=5), "(4, 1024, 5)"),
        (_rows(length=200), "(4, 200, 6)"),
        (np.zeros((4, 6144), dtype=np.float32), "(4, 6144)"),
    ],
)
def test_a_wrongly_shaped_split_names_the_key_and_the_expected_shape(tmp_path, array, shape):
    path = _save(tmp_path / "data.npz", **_valid(valid=array))
    message = (
        f"{path}:valid: expected shape (N, 1024, 6) float32: channels 0-3 one-hot A, C, G, T, "
        f"channel 4 the CAGE signal, channel 5 the opposite strand; got shape {shape}"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def test_a_split_of_strings_is_refused(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid(test=np.full((2, 1024, 6), "A")))
    with pytest.raises(
        D3InputError, match=r"data\.npz:test: expected float32 values; got dtype <U1$"
    ):
        load_data(path)


def test_an_object_array_is_never_unpickled(tmp_path):
    objects = np.empty((2, 1024, 6), dtype=object)
    path = _save(tmp_path / "data.npz", **_valid(train=objects))
    message = r"data\.npz:train: cannot be read \(ValueError: .*allow_pickle=False.*never pickled"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_cage_value_is_located(tmp_path, value):
    rows = _rows()
    rows[3, 17, 4] = value
    path = _save(tmp_path / "data.npz", **_valid(test=rows))
    message = (
        f"{path}:test: the CAGE signal (channel 4) of sequence 3 is {value} at position 17; "
        f"it must be finite"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def test_a_non_finite_opposite_strand_is_ignored(tmp_path):
    rows = _rows()
    rows[..., 5] = np.nan  # channel 5 is not used
    assert len(load_data(_save(tmp_path / "data.npz", **_valid(train=rows)))["train"]) == 4


def test_a_position_that_is_not_one_hot_acgt_is_located(tmp_path):
    rows = _rows()
    rows[2, 5, :4] = 0.0  # an N
    path = _save(tmp_path / "data.npz", **_valid(valid=rows))
    message = f"{path}:valid: sequence 2, position 5 is not one-hot A/C/G/T"
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}"):
        load_data(path)


# Lazy reading: stored members are memory-mapped, compressed ones streamed, a chunk at a time.


def _save_compressed(path, **arrays):
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


_SAVERS = {"stored": _save, "compressed": _save_compressed}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4 rows, so that a split of 10 rows is read as 4 + 4 + 2."""
    monkeypatch.setattr(data_module, "_CHUNK_ROWS", 4)
    return 4


def _as_arrays(dataset: TokenDataset) -> tuple[np.ndarray, np.ndarray]:
    return dataset.tokens.numpy(), dataset.labels.numpy()


def test_stored_and_compressed_files_give_the_arrays_written(tmp_path, small_chunks):
    arrays = _valid(train=_rows(n=10, seed=3), valid=_rows(n=0))
    loaded = {
        name: load_data(save(tmp_path / f"{name}.npz", **arrays)) for name, save in _SAVERS.items()
    }
    for key, array in arrays.items():
        for data in loaded.values():
            tokens, labels = _as_arrays(data[key])
            assert tokens.dtype == np.uint8 and labels.dtype == np.float32
            np.testing.assert_array_equal(tokens, array[..., :4].argmax(axis=-1))
            np.testing.assert_array_equal(labels, array[..., 4:5])
        stored, compressed = (_as_arrays(data[key]) for data in loaded.values())
        for a, b in zip(stored, compressed, strict=True):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("save", _SAVERS.values(), ids=_SAVERS.keys())
def test_float64_big_endian_and_integer_splits_read_in_chunks_as_when_read_whole(
    tmp_path, small_chunks, save
):
    rows = _rows(n=9, seed=4)
    arrays = {"train": rows.astype(">f8"), "valid": rows.astype(np.int16), "test": rows}
    data = load_data(save(tmp_path / "data.npz", **arrays))
    for key, array in arrays.items():
        tokens, labels = _as_arrays(data[key])
        np.testing.assert_array_equal(
            tokens, onehot_to_tokens(array[..., :4], layout="NLC", source="")
        )
        np.testing.assert_array_equal(labels, np.array(array[..., 4:5], dtype=np.float32))


@pytest.mark.parametrize("save", _SAVERS.values(), ids=_SAVERS.keys())
def test_a_bad_position_in_a_late_chunk_is_located_by_its_row_in_the_split(
    tmp_path, small_chunks, save
):
    rows = _rows(n=10)
    rows[9, 700, :4] = [0.0, 1.0, 1.0, 0.0]
    path = save(tmp_path / "data.npz", **_valid(train=rows))
    message = (
        f"{path}:train: sequence 9, position 700 is not one-hot A/C/G/T "
        f"(channels [0.0, 1.0, 1.0, 0.0]); every position needs one 1 and three 0s"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def test_the_message_for_a_bad_position_is_that_of_onehot_to_tokens(tmp_path):
    rows = _rows()
    rows[1, 3, :4] = 0.5
    path = _save(tmp_path / "data.npz", **_valid(test=rows))
    with pytest.raises(D3InputError) as expected:
        onehot_to_tokens(rows[..., :4], layout="NLC", source=f"{path}:test")
    with pytest.raises(D3InputError, match=f"^{re.escape(str(expected.value))}$"):
        load_data(path)


@pytest.mark.parametrize("save", _SAVERS.values(), ids=_SAVERS.keys())
def test_a_non_finite_cage_value_in_a_late_chunk_is_located_by_its_row_in_the_split(
    tmp_path, small_chunks, save
):
    rows = _rows(n=10)
    rows[8, 1023, 4] = -np.inf
    path = save(tmp_path / "data.npz", **_valid(valid=rows))
    message = (
        f"{path}:valid: the CAGE signal (channel 4) of sequence 8 is -inf at position 1023; "
        f"it must be finite"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def test_a_non_finite_cage_value_is_reported_before_an_earlier_bad_position(tmp_path, small_chunks):
    rows = _rows(n=10)
    rows[0, 0, :4] = 0.0  # in the first chunk
    rows[9, 5, 4] = np.nan  # in the last: reported first, as when the split was read whole
    path = _save(tmp_path / "data.npz", **_valid(train=rows))
    with pytest.raises(D3InputError, match=r"train: the CAGE signal \(channel 4\) of sequence 9 "):
        load_data(path)


@pytest.mark.parametrize("save", _SAVERS.values(), ids=_SAVERS.keys())
def test_reading_a_split_never_holds_it_as_float32(tmp_path, monkeypatch, save):
    # 4,096 windows: 96 MiB as float32 (a full copy would be >= 100 MB). numpy reports its
    # buffers to tracemalloc, which sees neither mapped file pages nor released memory.
    n = 4096
    rows = np.zeros((n, 1024, 6), dtype=np.float32)
    rows[..., 0] = 1.0  # all A
    path = save(tmp_path / "big.npz", **_valid(train=rows))
    full = rows.nbytes
    del rows
    chunk_rows = 256
    monkeypatch.setattr(data_module, "_CHUNK_ROWS", chunk_rows)
    # What must be held: the result, 5 bytes a position (uint8 token, float32 CAGE), 20 MiB.
    # On top of it, one chunk of float32 (6 MiB) and its temporaries: measured 26 MiB in all
    # when stored and 34 MiB when compressed (whose chunk also has a buffer). The bound allows
    # three chunks; it is under half the float32 split.
    bound = n * 1024 * 5 + 3 * chunk_rows * 1024 * 6 * 4
    assert bound < full / 2
    tracemalloc.start()
    try:
        data = load_data(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data["train"]) == n
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB"


def test_a_fortran_ordered_split_is_refused_with_how_to_fix_it(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid(valid=np.asfortranarray(_rows())))
    message = (
        f"{path}:valid: the array is stored in Fortran (column-major) order, which cannot be "
        f"read a window at a time; expected (N, 1024, 6) float32: channels 0-3 one-hot A, C, "
        f"G, T, channel 4 the CAGE signal, channel 5 the opposite strand in C order: pass each "
        f"array through np.ascontiguousarray before np.savez"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def _member_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def _zip(path, compression=zipfile.ZIP_STORED, **members: bytes):
    """An NPZ file written member by member, so that a member can be malformed."""
    contents = {f"{key}.npy": _member_bytes(array) for key, array in _valid().items()}
    contents.update({f"{key}.npy": raw for key, raw in members.items()})
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)
    return path


def test_a_corrupt_stored_member_fails_its_crc_check(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid())
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("valid.npy")
    content[info.header_offset + 500] ^= 0xFF  # a byte of the array data
    path.write_bytes(bytes(content))
    message = r"data\.npz:valid: cannot be read \(BadZipFile: Bad CRC-32 for file 'valid\.npy'\)"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_a_corrupt_compressed_member_cannot_be_read(tmp_path):
    path = _zip(tmp_path / "data.npz", zipfile.ZIP_DEFLATED)
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("test.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    content[start + 200 : start + 260] = bytes(60)
    path.write_bytes(bytes(content))
    with pytest.raises(
        D3InputError,
        match=r"data\.npz:test: cannot be read \(zlib\.error: Error -3 while decompressing",
    ):
        load_data(path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_member_shorter_than_its_header_promises_cannot_be_read(tmp_path, compression):
    raw = _member_bytes(_rows(n=3))
    path = _zip(tmp_path / "data.npz", compression, train=raw[: -1024 * 6 * 4])
    message = (
        r"data\.npz:train: cannot be read \(ValueError: 'train\.npy' holds 49152 bytes of "
        r"array data, but its header promises 73728 \(shape \(3, 1024, 6\), dtype float32\)\)"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not an array", r"ValueError: the magic string is not correct"),
        (b"\x93NUMPY\x03\x00" + bytes(60), r"ValueError: \.npy format version 3\.0 is not supp"),
    ],
)
def test_a_member_that_is_not_a_npy_array_cannot_be_read(tmp_path, raw, reason):
    path = _zip(tmp_path / "data.npz", test=raw)
    with pytest.raises(D3InputError, match=rf"data\.npz:test: cannot be read \({reason}"):
        load_data(path)


def test_a_stored_member_with_a_bad_local_header_cannot_be_read(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid())
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("valid.npy").header_offset
    content[offset : offset + 4] = b"XXXX"
    path.write_bytes(bytes(content))
    message = r"cannot be read \(BadZipFile: Bad local file header for file 'valid\.npy'\)"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_an_encrypted_member_cannot_be_read(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid())
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("train.npy").header_offset
    central = content.index(b"PK\x01\x02")  # train.npy's entry comes first
    for flags in (offset + 6, central + 8):  # the flag bits of both its headers
        content[flags] |= 0x1
    path.write_bytes(bytes(content))
    with pytest.raises(D3InputError, match=r"cannot be read \(ValueError: 'train\.npy' is encr"):
        load_data(path)


def test_a_compression_zipfile_cannot_undo_is_named(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid())
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("train.npy").header_offset
    central = content.index(b"PK\x01\x02")  # train.npy's entry comes first
    for method in (offset + 8, central + 10):  # the compression method of both its headers
        content[method] = 9  # Deflate64
    path.write_bytes(bytes(content))
    message = r"train: cannot be read \(NotImplementedError: That compression method is not supp"
    with pytest.raises(D3InputError, match=message):
        load_data(path)
