"""Packing an image folder and unpacking it gives back the same bytes."""

import pytest

from resexplorer.cli import main
from resexplorer.data.jpegpack import pack_folder, unpack_folder
from resexplorer.data.synthetic import make_synthetic, write_image_folder
from resexplorer.errors import ResExplorerError


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def folder(tmp_path):
    folder = write_image_folder(
        make_synthetic(n_train=40, n_test=20, num_classes=4, seed=1), tmp_path / "images", suffix=".jpg"
    )
    (folder / "README.md").write_text("not an image: kept whole\n")
    first_class = sorted((folder / "train").iterdir())[0]
    (first_class / "odd.jpg").write_bytes(b"\xff\xd8 a JPEG start without a scan")
    return folder


def test_unpacking_restores_every_file_bit_for_bit_and_the_pack_is_smaller(folder, tmp_path):
    info = pack_folder(folder, tmp_path / "images.pack")
    assert info["files"] == len(_files(folder)) and info["packed_bytes"] < info["original_bytes"]
    assert info["headers"] == 1  # one encoder, one header, stored once
    assert unpack_folder(tmp_path / "images.pack", tmp_path / "back") == info["files"]
    assert _files(tmp_path / "back") == _files(folder)


def test_the_command_line_packs_and_unpacks(folder, tmp_path, capsys):
    assert main(["pack-images", str(folder), str(tmp_path / "p.pack")]) == 0
    assert "distinct header(s)" in capsys.readouterr().out
    assert main(["unpack-images", str(tmp_path / "p.pack"), str(tmp_path / "out")]) == 0
    assert _files(tmp_path / "out") == _files(folder)


def test_a_foreign_or_damaged_pack_is_a_clear_error(folder, tmp_path):
    (tmp_path / "photo.pack").write_bytes(b"GIF89a....")
    with pytest.raises(ResExplorerError, match="not an image pack"):
        unpack_folder(tmp_path / "photo.pack", tmp_path / "x")
    pack_folder(folder, tmp_path / "good.pack")
    (tmp_path / "long.pack").write_bytes((tmp_path / "good.pack").read_bytes() + b"extra")
    with pytest.raises(ResExplorerError, match="damaged"):
        unpack_folder(tmp_path / "long.pack", tmp_path / "y")
