"""d3's own files carry a content digest that loading verifies
(docs/checkpoint-formats.md#content-digest): torch does not check a zip entry's CRC, so without
it one flipped byte in a tensor would load silently."""

import re
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from d3_core.checkpoints.digest import COVERED, DIGEST_KEY, content_digest
from d3_core.checkpoints.load import load_checkpoint, read_checkpoint, read_contents
from d3_core.checkpoints.native import write_checkpoint
from d3_core.errors import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.usefixtures("one_thread")


def _flip_a_tensor_byte(path: Path, tensor: torch.Tensor) -> None:
    """Flips one byte inside the stored bytes of every zip record holding `tensor`'s values."""
    wanted = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename]
        records = [i for i in records if archive.read(i) == wanted]
    assert records, "no record holds the tensor"
    data = bytearray(path.read_bytes())
    for info in records:
        name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 :][:4])
        start = info.header_offset + 30 + name_length + extra_length  # the record's own bytes
        assert data[start : start + info.file_size] == wanted
        data[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture
def d3_file(toy, tmp_path) -> Path:
    return write_checkpoint(read_contents(FIXTURES / "d3dna-transformer.ckpt"), tmp_path / "m.ckpt")


def test_a_d3_file_stores_the_digest_of_its_content(d3_file):
    state = torch.load(d3_file, weights_only=True)
    stored = state["d3"][DIGEST_KEY]
    assert stored["sha256"] == content_digest(state, COVERED, "d3")
    assert re.fullmatch(r"[0-9a-f]{64}", stored["sha256"])


def test_one_flipped_byte_in_a_tensor_is_refused(d3_file):
    state = torch.load(d3_file, weights_only=True)
    weight = state["ema"]["shadow"]["blocks.0.attn_qkv.weight"]
    _flip_a_tensor_byte(d3_file, weight)
    # torch itself reads the damaged tensor without a word
    damaged = torch.load(d3_file, weights_only=True)["ema"]["shadow"]["blocks.0.attn_qkv.weight"]
    assert not torch.equal(damaged, weight)
    message = (
        f"{d3_file} changed after it was written: its content no longer matches the digest d3 "
        f"stored in it (bit rot or an edit); copy it again from its source or a backup, or "
        f"write it again (train, or d3 convert its source)"
    )
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        load_checkpoint(d3_file)
    with pytest.raises(CheckpointError, match="changed after it was written"):
        read_checkpoint(d3_file)  # what d3 train --resume reads


def test_the_unmodified_file_loads(d3_file):
    loaded = load_checkpoint(d3_file)
    assert loaded.format == "d3"
    assert not any("unverified" in note for note in loaded.notes)


def test_an_edited_value_outside_the_tensors_is_refused_too(d3_file):
    state = torch.load(d3_file, weights_only=True)
    state["hyper_parameters"]["cfg"]["sampling"]["steps"] += 1
    torch.save(state, d3_file)
    with pytest.raises(CheckpointError, match="changed after it was written"):
        load_checkpoint(d3_file)


def test_a_file_written_before_digests_loads_with_a_note(d3_file):
    state = torch.load(d3_file, weights_only=True)
    del state["d3"][DIGEST_KEY]
    torch.save(state, d3_file)
    loaded = load_checkpoint(d3_file)
    assert "written before d3 stored a content digest, so its tensors are unverified" in (
        loaded.notes
    )


def test_a_digest_of_an_unknown_kind_is_refused(d3_file):
    state = torch.load(d3_file, weights_only=True)
    state["d3"][DIGEST_KEY]["algorithm"] = "blake3/d3-content-9"
    torch.save(state, d3_file)
    with pytest.raises(CheckpointError, match="content digest of kind 'blake3/d3-content-9'"):
        load_checkpoint(d3_file)


def test_the_digest_reads_tensors_by_value_dtype_and_shape():
    a = {"state_dict": {"w": torch.zeros(2, 2)}, "d3": {}}
    same = {"state_dict": {"w": torch.zeros(4)[:4].reshape(2, 2).clone()}, "d3": {}}
    assert content_digest(a, COVERED, "d3") == content_digest(same, COVERED, "d3")
    for other in (torch.zeros(4), torch.zeros(2, 2, dtype=torch.float64), torch.eye(2)):
        changed = {"state_dict": {"w": other}, "d3": {}}
        assert content_digest(changed, COVERED, "d3") != content_digest(a, COVERED, "d3")
    optimizer = {**a, "optimizer_states": [{"state": {0: torch.ones(1)}}]}
    assert content_digest(optimizer, COVERED, "d3") == content_digest(a, COVERED, "d3")
