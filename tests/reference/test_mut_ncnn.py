"""The ncnn reader on a graph built byte by byte in the test (the .param text and .bin layout as
ncnn writes them: a 4-byte storage tag before each convolution's weights, fp16 padded to 4 bytes
or raw fp32, then the fp32 bias; PReLU slopes raw fp32), and its one-line refusals."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from ldl_video.errors import LdlError
from ldl_video.ncnn import ncnn_to_state_dict, read_ncnn

PARAM = """7767517
4 4
Input            data   0 1 data
Convolution      conv0  1 1 data a 0=3 1=1 5=1 6=3
Convolution      conv1  1 1 a b 0=1 1=1 5=0 6=3
PReLU            act    1 1 b out
"""

W0 = np.array([0.5, -1.25, 2.0], np.float32)  # 3 out × 1 in × 1×1, stored as fp16 (exact values)
B0 = np.array([0.1, 0.2, 0.3], np.float32)
W1 = np.array([1.0 / 3, -0.7, 0.05], np.float32)  # 1 out × 3 in, stored as fp32
SLOPE = np.array([0.25], np.float32)  # one slope: the layer gives no count


def _bin() -> bytes:
    fp16 = W0.astype("<f2").tobytes()
    fp16 += b"\0" * (-len(fp16) % 4)  # padded to 4 bytes
    return (struct.pack("<I", 0x01306B47) + fp16 + B0.astype("<f4").tobytes()
            + struct.pack("<I", 0) + W1.astype("<f4").tobytes() + SLOPE.astype("<f4").tobytes())


def _files(tmp_path: Path, param: str = PARAM, data: bytes | None = None) -> tuple[Path, Path]:
    (tmp_path / "g.param").write_text(param)
    (tmp_path / "g.bin").write_bytes(_bin() if data is None else data)
    return tmp_path / "g.param", tmp_path / "g.bin"


def test_weights_land_where_ncnn_stored_them(tmp_path: Path) -> None:
    layers = read_ncnn(*_files(tmp_path))
    assert [(layer.kind, layer.name) for layer in layers] == [("Input", "data"), ("Convolution", "conv0"),
                                                              ("Convolution", "conv1"), ("PReLU", "act")]
    conv0, conv1, act = layers[1], layers[2], layers[3]
    np.testing.assert_array_equal(conv0.blobs["weight"], W0.reshape(3, 1, 1, 1))
    np.testing.assert_array_equal(conv0.blobs["bias"], B0)
    np.testing.assert_array_equal(conv1.blobs["weight"], W1.reshape(1, 3, 1, 1))
    assert "bias" not in conv1.blobs
    np.testing.assert_array_equal(act.blobs["weight"], SLOPE)
    state = ncnn_to_state_dict(layers, ["c0.weight", "c0.bias", "c1.weight", "p.weight"])
    assert all(t.dtype.is_floating_point and t.dtype.itemsize == 4 for t in state.values())
    np.testing.assert_array_equal(state["c1.weight"].numpy().ravel(), W1)


@pytest.mark.parametrize(("param", "words"), [("", "7767517"), ("12345\n1 1\nInput data 0 1 data\n", "7767517")])
def test_not_a_param_file(tmp_path: Path, param: str, words: str) -> None:
    with pytest.raises(LdlError, match=words):
        read_ncnn(*_files(tmp_path, param=param))


def test_unknown_storage_tag_is_named(tmp_path: Path) -> None:
    data = bytearray(_bin())
    data[0:4] = struct.pack("<I", 0x002C056B)  # ncnn's int8 tag
    with pytest.raises(LdlError, match="storage tag 0x002c056b"):
        read_ncnn(*_files(tmp_path, data=bytes(data)))


def test_blob_count_mismatch_names_both_counts(tmp_path: Path) -> None:
    layers = read_ncnn(*_files(tmp_path))
    with pytest.raises(LdlError, match="4 weight blobs but the network expects 3"):
        ncnn_to_state_dict(layers, ["a", "b", "c"])
