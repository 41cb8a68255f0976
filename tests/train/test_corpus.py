"""`ldl-train corpus`: a tiny Debian package built here with dpkg-deb stands in for the wallpaper
packages (no network); scikit-image gives one real photograph."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldl_video.train.cli import main
from ldl_video.train.corpus import Pick, build_corpus, read_manifest

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tiny-walls

Files: *
Copyright: 2020 Everyone
License: GPL-2+

Files: photos/Lake.png
 photos/Moss.png
Copyright: 2021 A. Photographer
License: CC-BY-4.0

Files: Dawn/*
Copyright: 2019 B. Photographer
License: CC0-1.0

Files: debian/*
Copyright: 2022 Packager
License: Expat
"""


def _pattern(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def tiny_deb(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """tiny-walls_1.0_all.deb: KDE-style sized folders (Dawn at 320×200 and 640×400) and two plain files."""
    root = tmp_path / "pkg"
    images = {
        "Dawn-small": _pattern(200, 320, 1), "Dawn": _pattern(400, 640, 2),
        "Lake": _pattern(160, 240, 3), "Moss": _pattern(300, 200, 4), "Fern": _pattern(100, 150, 5),
    }
    files = {
        "usr/share/wallpapers/Dawn/contents/images/320x200.png": "Dawn-small",
        "usr/share/wallpapers/Dawn/contents/images/640x400.png": "Dawn",
        "usr/share/backgrounds/Lake.png": "Lake",
        "usr/share/backgrounds/Moss.png": "Moss",
        "usr/share/backgrounds/Fern.png": "Fern",
    }
    for rel, key in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[key]).save(root / rel)
    doc = root / "usr/share/doc/tiny-walls"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text("Package: tiny-walls\nVersion: 1.0\nArchitecture: all\n"
                                         "Maintainer: Test <t@example.org>\nDescription: test wallpapers\n")
    deb = tmp_path / "tiny-walls_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb, images


PICKS = (Pick("tiny-walls", "usr/share/wallpapers", ("Dawn",), sized_dirs=True),
         Pick("tiny-walls", "usr/share/backgrounds", ("Lake", "Moss", "Fern")))


def test_corpus_keeps_the_largest_size_writes_licences_and_holds_photographs_out(tiny_deb, tmp_path):
    deb, images = tiny_deb
    out = tmp_path / "corpus"
    entries = build_corpus(out, PICKS, held_out={"tiny-walls/Lake"}, skimage_names=("coffee",),
                           debs={"tiny-walls": deb}, max_side=0, say=lambda m: None)
    assert len(entries) == 5
    rows = {r["file"]: r for r in read_manifest(out)}
    assert set(rows) == {"train/tiny-walls_Dawn.png", "heldout/tiny-walls_Lake.png", "train/tiny-walls_Moss.png",
                         "train/tiny-walls_Fern.png", "train/skimage_coffee.png"}
    # the 640×400 file, pixel for pixel, not the 320×200 one
    dawn = np.asarray(Image.open(out / "train/tiny-walls_Dawn.png"))
    np.testing.assert_array_equal(dawn, images["Dawn"])
    assert rows["train/tiny-walls_Dawn.png"]["original"] == "/usr/share/wallpapers/Dawn/contents/images/640x400.png"
    # licences from the package's DEP-5 file: the last matching stanza wins over Files: *; Debian
    # names upstream paths (Dawn/*, photos/Lake.png), which match the end of the installed path
    assert rows["heldout/tiny-walls_Lake.png"]["licence"] == "CC-BY-4.0"
    assert rows["train/tiny-walls_Moss.png"]["licence"] == "CC-BY-4.0"
    assert rows["train/tiny-walls_Dawn.png"]["licence"] == "CC0-1.0"
    assert rows["train/tiny-walls_Fern.png"]["licence"] == "GPL-2+"
    assert rows["heldout/tiny-walls_Lake.png"]["copyright"] == "2021 A. Photographer"
    assert rows["train/tiny-walls_Moss.png"]["version"] == "1.0"
    assert (rows["train/tiny-walls_Moss.png"]["width"], rows["train/tiny-walls_Moss.png"]["height"]) == ("200", "300")
    # the held-out photograph is whole and only in heldout/, so data.hr=DIR/train never crops it
    assert not list((out / "train").glob("*Lake*"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "heldout/tiny-walls_Lake.png")), images["Lake"])
    import skimage.data

    np.testing.assert_array_equal(np.asarray(Image.open(out / "train/skimage_coffee.png")), skimage.data.coffee())
    assert rows["train/skimage_coffee.png"]["licence"].startswith("CC0")


def test_corpus_shrinks_large_photographs_by_area_averaging(tiny_deb, tmp_path):
    deb, images = tiny_deb
    out = tmp_path / "corpus"
    build_corpus(out, PICKS[:1], held_out=(), skimage_names=(), debs={"tiny-walls": deb}, max_side=320, say=lambda m: None)
    dawn = np.asarray(Image.open(out / "train/tiny-walls_Dawn.png")).astype(float)
    reference = images["Dawn"].astype(float).reshape(200, 2, 320, 2, 3).mean(axis=(1, 3))  # exact 2×2 box mean
    assert dawn.shape == (200, 320, 3)
    assert np.abs(dawn - reference).max() <= 1.0


def test_corpus_cli_refuses_an_existing_folder(tiny_deb, tmp_path, capsys):
    deb, _ = tiny_deb
    existing = tmp_path / "corpus"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    assert main(["corpus", str(existing), "--deb", f"tiny-walls={deb}"]) == 1
    err = capsys.readouterr().err
    assert "exists" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in existing.iterdir()) == ["mine.txt"]


def test_corpus_cli_builds_the_selection_and_fails_cleanly_on_a_missing_photograph(tiny_deb, tmp_path, capsys, monkeypatch):
    import ldl_video.train.corpus as corpus

    deb, _ = tiny_deb
    monkeypatch.setattr(corpus, "PHOTOGRAPHS", PICKS)
    monkeypatch.setattr(corpus, "HELD_OUT", frozenset({"tiny-walls/Moss"}))
    monkeypatch.setattr(corpus, "SKIMAGE_PHOTOGRAPHS", {"chelsea": "CC0-1.0"})
    out = tmp_path / "c"
    assert main(["corpus", str(out), "--deb", f"tiny-walls={deb}", "--max-side", "0"]) == 0
    assert "4 training and 1 held-out" in capsys.readouterr().err
    rows = read_manifest(out)
    assert sorted((r["split"], r["file"]) for r in rows) == [
        ("heldout", "heldout/tiny-walls_Moss.png"), ("train", "train/skimage_chelsea.png"),
        ("train", "train/tiny-walls_Dawn.png"), ("train", "train/tiny-walls_Fern.png"), ("train", "train/tiny-walls_Lake.png")]

    # a package version without a listed photograph: one line, exit 1, no corpus folder, no leftovers
    monkeypatch.setattr(corpus, "PHOTOGRAPHS", (Pick("tiny-walls", "usr/share/backgrounds", ("Lake", "Gone")),))
    monkeypatch.setattr(corpus, "HELD_OUT", frozenset())
    assert main(["corpus", str(tmp_path / "fresh"), "--deb", f"tiny-walls={deb}"]) == 1
    err = capsys.readouterr().err
    assert "no photograph Gone" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if "fresh" in p.name) == []
