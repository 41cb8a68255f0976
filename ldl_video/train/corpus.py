"""The offline HR corpus: freely licensed photographs from Debian wallpaper packages and
scikit-image, fetched with `apt-get download`, unpacked with `dpkg -x` (nothing is installed),
written as 8-bit PNG with a manifest beside them.

Selection rule: photographs only. Each kept file is named in `PHOTOGRAPHS` below, a list made by
looking at contact sheets of every image in these packages; renders, flat vector art, gradients,
paintings and logos were left out (e.g. most of plasma-workspace-wallpapers, all of
ukui-wallpapers, lomiri's umang, Fossa, Infinite-Sea and Painting-Colors, mate's abstract/ and
desktop/). A name list rather than a statistic because a blurred-background macro photo and a
smooth render have similar gradient energy, while a list is checked once and reproducible.

Layout of DIR:
  train/*.png      cropped for training (`--set data.hr=DIR/train`)
  heldout/*.png    the fixed held-out photographs, never cropped for training (evaluation only)
  manifest.csv     file, package, version, original path, licence, copyright, width, height, split
"""

from __future__ import annotations

import csv
import fnmatch
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LdlError

MANIFEST_FIELDS = ("file", "package", "version", "original", "licence", "copyright", "width", "height", "split")
DEFAULT_MAX_SIDE = 2048


@dataclass(frozen=True)
class Pick:
    """Photographs of one Debian package. `folder` is where they lie inside the package; with
    `sized_dirs`, each name is a folder NAME/contents/images/WxH.ext (KDE's layout) and the
    largest size is taken."""

    package: str
    folder: str
    names: tuple[str, ...]
    sized_dirs: bool = False


PHOTOGRAPHS: tuple[Pick, ...] = (
    Pick("plasma-workspace-wallpapers", "usr/share/wallpapers",
         ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
          "OneStandsOut", "Path", "summer_1am"), sized_dirs=True),
    Pick("mate-backgrounds", "usr/share/backgrounds/mate/nature",
         ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm", "TwoWings",
          "Wood", "YellowFlower")),
    Pick("lomiri-wallpapers-16.04", "usr/share/backgrounds",
         ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
          "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
          "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
          "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")),
    Pick("lomiri-wallpapers-20.04", "usr/share/backgrounds", ("Kleiber_by_Lukas_Baubkus",)),
)

# Whole photographs kept out of training: landscape, macro, close-up colour, architecture-free
# forest, people-free scenes at several sizes, from every package.
HELD_OUT: frozenset[str] = frozenset({
    "plasma-workspace-wallpapers/EveningGlow", "plasma-workspace-wallpapers/ColorfulCups",
    "plasma-workspace-wallpapers/Path", "mate-backgrounds/Dune", "mate-backgrounds/LadyBird",
    "lomiri-wallpapers-16.04/life_by_Aitzol_Berasategi", "lomiri-wallpapers-16.04/picosdeeuropa_by_Aitzol_Berasategi",
    "lomiri-wallpapers-20.04/Kleiber_by_Lukas_Baubkus",
})

# scikit-image's bundled colour photographs, with the licence its docstrings state.
SKIMAGE_PHOTOGRAPHS: dict[str, str] = {
    "astronaut": "public domain (NASA)",
    "coffee": "CC0-1.0 (Rachel Michetti)",
    "chelsea": "CC0-1.0 (Stefan van der Walt)",
    "rocket": "public domain (SpaceX)",
}


@dataclass
class Entry:
    file: str
    package: str
    version: str
    original: str
    licence: str
    copyright: str
    width: int
    height: int
    split: str

    def row(self) -> dict[str, str | int]:
        return {k: getattr(self, k) for k in MANIFEST_FIELDS}


def build_corpus(out: str | Path, picks: Iterable[Pick] | None = None, held_out: Iterable[str] | None = None,
                 skimage_names: Iterable[str] | None = None, debs: dict[str, str | Path] | None = None,
                 max_side: int = DEFAULT_MAX_SIDE, say: Callable[[str], None] = print) -> list[Entry]:
    """Build the corpus in `out` (which must not exist yet; it appears only when complete).
    The selection defaults to PHOTOGRAPHS, HELD_OUT and SKIMAGE_PHOTOGRAPHS. `debs` maps package
    names to .deb files already here; the others come from `apt-get download`. `max_side` > 0
    shrinks larger photographs (area-averaged), 0 keeps their size."""
    picks = PHOTOGRAPHS if picks is None else picks
    held_out = HELD_OUT if held_out is None else held_out
    skimage_names = tuple(SKIMAGE_PHOTOGRAPHS) if skimage_names is None else tuple(skimage_names)
    out = Path(out)
    if out.exists():
        raise LdlError(f"{out} exists; remove it or name a new folder for the corpus")
    if max_side < 0 or 0 < max_side < 256:
        raise LdlError(f"--max-side must be 0 (keep the size) or at least 256, got {max_side}")
    picks, held_out, debs = list(picks), set(held_out), dict(debs or {})
    known = {f"{p.package}/{n}" for p in picks for n in p.names}
    unknown = held_out - known - {f"skimage/{n}" for n in skimage_names}
    if unknown:
        raise LdlError(f"held-out names {sorted(unknown)} are not in the selection")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        entries: list[Entry] = []
        for pick in picks:
            entries += _package_photographs(pick, debs.get(pick.package), held_out, staging, max_side, say)
        for name in skimage_names:
            entries.append(_skimage_photograph(name, held_out, staging, max_side))
        write_manifest(staging / "manifest.csv", entries)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts = {s: sum(e.split == s for e in entries) for s in ("train", "heldout")}
    say(f"{out}: {counts['train']} training and {counts['heldout']} held-out photographs; manifest {out / 'manifest.csv'}")
    return entries


def _package_photographs(pick: Pick, deb: str | Path | None, held_out: set[str], staging: Path, max_side: int,
                         say: Callable[[str], None]) -> list[Entry]:
    work = staging / ".unpack"
    work.mkdir(exist_ok=True)
    try:
        deb_path = Path(deb) if deb else _download(pick.package, work, say)
        if not deb_path.is_file():
            raise LdlError(f"{deb_path} does not exist (given for {pick.package})")
        version = _run(["dpkg-deb", "-f", str(deb_path), "Version"], f"read {deb_path}").strip()
        root = work / pick.package
        _run(["dpkg-deb", "-x", str(deb_path), str(root)], f"unpack {deb_path}")
        stanzas = read_copyright(root / "usr/share/doc" / pick.package / "copyright")
        entries = []
        for name in pick.names:
            source = _find(root / pick.folder, name, pick.sized_dirs, pick.package)
            relative = str(source.relative_to(root))
            licence, holder = licence_of(stanzas, relative)
            split = "heldout" if f"{pick.package}/{name}" in held_out else "train"
            file = f"{split}/{_short(pick.package)}_{name}.png"
            width, height = _write_png(_read_rgb(source), staging / file, max_side)
            entries.append(Entry(file, pick.package, version, "/" + relative, licence, holder, width, height, split))
        return entries
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download(package: str, folder: Path, say: Callable[[str], None]) -> Path:
    if shutil.which("apt-get") is None:
        raise LdlError(f"apt-get is not here to fetch {package}; pass its .deb with --deb {package}=FILE")
    say(f"apt-get download {package}")
    _run(["apt-get", "download", package], f"apt-get download {package} (run apt-get update, or pass --deb {package}=FILE)",
         cwd=folder)
    found = sorted(folder.glob(f"{package}_*.deb"))
    if not found:
        raise LdlError(f"apt-get download {package} left no .deb in {folder}")
    return found[-1]


def _run(command: list[str], what: str, cwd: Path | None = None) -> str:
    if shutil.which(command[0]) is None:
        raise LdlError(f"{command[0]} is needed to {what} (Debian's dpkg and apt)")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise LdlError(f"could not {what}: {last}")
    return done.stdout


def _find(folder: Path, name: str, sized_dirs: bool, package: str) -> Path:
    if sized_dirs:
        candidates = [p for p in (folder / name / "contents" / "images").glob("*") if _pixels(p.stem)]
        if candidates:
            return max(candidates, key=lambda p: _pixels(p.stem))
    else:
        for p in sorted(folder.glob(f"{name}.*")):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                return p
    raise LdlError(f"{package} has no photograph {name} under /{folder.name}; this package version differs from the "
                   "one the selection was made for (edit PHOTOGRAPHS in ldl_video/train/corpus.py)")


def _pixels(stem: str) -> int:
    width, sep, height = stem.partition("x")
    return int(width) * int(height) if sep and width.isdigit() and height.isdigit() else 0


def _short(package: str) -> str:
    return {"plasma-workspace-wallpapers": "plasma", "mate-backgrounds": "mate"}.get(package, package)


def read_copyright(path: Path) -> list[dict[str, str]]:
    """The stanzas of a Debian machine-readable copyright file (DEP-5) as field -> value; a
    field's continuation lines are joined with newlines."""
    if not path.is_file():
        return []
    stanzas, current, field = [], {}, None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, field = {}, None
        elif line[0] in " \t" and field:
            current[field] += "\n" + line.strip()
        elif ":" in line:
            field, _, value = line.partition(":")
            current[field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def licence_of(stanzas: list[dict[str, str]], relative: str) -> tuple[str, str]:
    """(licence, copyright) of a file from the last `Files:` stanza that matches it (DEP-5's rule).
    Debian lists paths of the upstream tree, so a pattern also matches the end of the installed path."""
    found = ("unknown (see the package's copyright file)", "")
    for stanza in stanzas:
        patterns = stanza.get("Files", "").split()
        if any(_matches(p, relative) for p in patterns):
            found = (stanza.get("License", "").split("\n")[0] or found[0], stanza.get("Copyright", "").replace("\n", "; "))
    return found


def _matches(pattern: str, relative: str) -> bool:
    if pattern.startswith("debian/"):
        return False
    if pattern == "*":
        return True
    parts = Path(relative).parts
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    if any(fnmatch.fnmatchcase(t, pattern) for t in tails):
        return True
    # lomiri lists 16.04/NAME.jpg for files installed as backgrounds/NAME.jpg; a wildcard name
    # (Dawn/*) must not stand for every file of the package
    name = pattern.rsplit("/", 1)[-1]
    return "/" in pattern and not any(c in name for c in "*?[") and parts[-1] == name


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the wallpapers are up to 6000×4000
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _write_png(image: np.ndarray, path: Path, max_side: int) -> tuple[int, int]:
    from PIL import Image

    picture = Image.fromarray(image)
    if max_side and max(picture.size) > max_side:
        # shrinking a JPEG photograph also averages away its compression noise: cleaner HR
        factor = max_side / max(picture.size)
        picture = picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.Resampling.BOX)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="PNG", compress_level=6)
    return picture.width, picture.height


def _skimage_photograph(name: str, held_out: set[str], staging: Path, max_side: int) -> Entry:
    import skimage
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise LdlError(f"scikit-image has no image {name!r}")
    split = "heldout" if f"skimage/{name}" in held_out else "train"
    file = f"{split}/skimage_{name}.png"
    image = np.asarray(loader())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    width, height = _write_png(np.ascontiguousarray(image[..., :3]), staging / file, max_side)
    licence = SKIMAGE_PHOTOGRAPHS.get(name, "see skimage.data's docstring")
    return Entry(file, "scikit-image", skimage.__version__, f"skimage.data.{name}", licence, "", width, height, split)


def write_manifest(path: Path, entries: list[Entry]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for entry in entries:
            writer.writerow(entry.row())


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """The manifest's rows (as written by build_corpus)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise LdlError(f"{path} does not exist; build the corpus with: ldl-train corpus DIR")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
