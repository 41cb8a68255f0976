"""ldl-train RECIPE.yaml [--set key=value ...] [--resume]; under torchrun the same, data-parallel.
ldl-train corpus DIR builds the offline photograph corpus (train/corpus.py).
ldl-train prepare OUT --div2k ... --flickr2k ... --ost ... lays out the paper's training data (train/prepare.py).
Errors are one line on stderr with a non-zero exit (LDL_DEBUG=1 shows tracebacks)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import report_errors

PROG = "ldl-train"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Train or fine-tune a super-resolution generator with LDL. "
                "Recipes are in training/ (see training/README.md). Data-parallel: "
                "torchrun --nproc-per-node=N -m ldl_video.train RECIPE.yaml")
    p.add_argument("recipe", metavar="RECIPE.yaml", help="the recipe (training/smoke.yaml, finetune.yaml, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set data.hr=/my/frames --set train.iterations=1000 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue runs/<name> from its latest training state (starts anew when there is none)")
    return p


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def train(recipe: str | None, overrides: list[str], resume: bool = False):
    """Load the recipe, join the process group (under torchrun), train; returns the path of
    net_g_latest.pth."""
    import yaml

    from . import state as run_files
    from .config import load_config
    from .distributed import barrier, broadcast_flag, cleanup, setup
    from .loop import Trainer

    config = load_config(recipe, overrides, say=_say)
    world = setup(config.device)
    try:
        run_dir = config.run_dir
        has_state = broadcast_flag(world, run_files.latest_state(run_dir) is not None)  # rank 0's view decides
        if resume and not has_state and world.main:
            _say(f"--resume: nothing to resume in {run_dir}; starting a new run")
        trainer = Trainer(config, world, resume=resume and has_state, say=_say)  # checks data and weights first
        if not (resume and has_state) and world.main:
            archived = run_files.archive_run(run_dir)
            if archived:
                _say(f"{run_dir} was used before; moved it to {archived} (use --resume to continue a run)")
        barrier(world)
        if world.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "recipe.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
        try:
            return trainer.fit()
        finally:
            if trainer.log is not None:
                trainer.log.close()
    finally:
        cleanup(world)


def main(argv: list[str] | None = None) -> int:
    code = _run(argv)
    from .distributed import launched_by_torchrun

    if argv is None and launched_by_torchrun() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Everything is written and the process group is gone. Skipping the interpreter's teardown
        # avoids a rare abort ("terminate called without an active exception") seen here when a
        # torchrun worker that decoded PNGs with PyAV exits.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def build_corpus_parser() -> argparse.ArgumentParser:
    from .corpus import DEFAULT_MAX_SIDE

    p = _Parser(prog=f"{PROG} corpus", description="Build the offline HR photograph corpus (Debian wallpaper packages via "
                "apt-get download + dpkg -x, and scikit-image): DIR/train, DIR/heldout, DIR/manifest.csv")
    p.add_argument("dir", metavar="DIR", help="the folder to create")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help=f"shrink photographs larger than this (default {DEFAULT_MAX_SIDE}; 0 keeps their size)")
    p.add_argument("--deb", action="append", default=[], metavar="PACKAGE=FILE",
                   help="use a .deb already here instead of apt-get download (repeatable)")
    return p


def _corpus(argv: list[str]) -> int:
    from .corpus import build_corpus

    args = build_corpus_parser().parse_args(argv)
    debs = {}
    for item in args.deb:
        package, sep, file = item.partition("=")
        if not sep:
            build_corpus_parser().error(f"--deb expects PACKAGE=FILE, got {item!r}")
        debs[package] = file

    def action() -> int:
        build_corpus(args.dir, debs=debs, max_side=args.max_side, say=_say)
        return 0

    return report_errors(f"{PROG} corpus", action, "interrupted; nothing was written (run the command again)")


def build_prepare_parser() -> argparse.ArgumentParser:
    from .prepare import CROP, PAIRED_CROP, PAIRED_STEP, STEP

    p = _Parser(prog=f"{PROG} prepare", description="The paper's training data from your DIV2K / Flickr2K / OST folders, "
                "as Real-ESRGAN's scripts make it: multiscale copies (0.75, 1/2, 1/3, shortest edge 400), overlapping "
                f"{CROP} px sub-images (step {STEP}) and a meta-info list for data.hr; with --bicubic, the synthetic "
                "recipe's paired HR/LR sub-images (see training/README.md)")
    p.add_argument("out", metavar="OUT", help="where the sub-image folders and meta_info/ go (the recipes read datasets/DF2K)")
    sets = (("--div2k", "DIV2K_train_HR"), ("--flickr2k", "Flickr2K_HR"), ("--hr", "any other HR folder to treat as DF2K"))
    for flag, what in sets:
        p.add_argument(flag, action="append", default=[], metavar="DIR", help=f"{what} (repeatable)")
    p.add_argument("--ost", action="append", default=[], metavar="DIR",
                   help="OST (OutdoorSceneTrain) images, used at their own scale")
    p.add_argument("--no-multiscale", action="store_true", help="sub-images of the originals only (no rescaled copies)")
    p.add_argument("--bicubic", type=int, default=0, choices=(2, 3, 4), metavar="SCALE",
                   help="the synthetic recipe's set instead: HR cropped to a multiple of 12 and its bicubic LR, "
                   f"{PAIRED_CROP} px HR sub-images every {PAIRED_STEP} px with their LR")
    p.add_argument("--crop", type=int, default=0, help=f"sub-image size (default {CROP}; {PAIRED_CROP} with --bicubic)")
    p.add_argument("--step", type=int, default=0,
                   help=f"distance between sub-images (default {STEP}, {PAIRED_STEP} with --bicubic: they overlap)")
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per CPU core)")
    return p


def _prepare(argv: list[str]) -> int:
    from .prepare import prepare

    args = build_prepare_parser().parse_args(argv)

    def action() -> int:
        prepare(args.out, args.div2k + args.flickr2k + args.hr, args.ost, multiscale_copies=not args.no_multiscale,
                crop=args.crop, step=args.step, workers=args.workers, bicubic=args.bicubic, say=_say)
        return 0

    return report_errors(f"{PROG} prepare", action, "interrupted; nothing was written (run the command again)")


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["corpus"]:
        return _corpus(argv[1:])
    if argv[:1] == ["prepare"]:
        return _prepare(argv[1:])
    args = build_parser().parse_args(argv)

    def action() -> int:
        train(args.recipe, args.overrides, args.resume)
        return 0

    return report_errors(PROG, action, "interrupted; continue from the last saved state with --resume")


if __name__ == "__main__":
    sys.exit(main())
