"""ldl-video: parse, call the engine, report. Errors are one line on stderr, non-zero exit,
and nothing left at OUTPUT (set LDL_DEBUG=1 for tracebacks)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import nullcontext
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import LdlError, report_errors

if TYPE_CHECKING:
    from .upscaler import Upscaler

PROG = "ldl-video"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .zoo import DEFAULT_MODEL

    p = _Parser(prog=PROG, description="Upscale a video or an image with a super-resolution model, or every video and "
                "image in a folder. `ldl-video models` lists the models.")
    p.add_argument("input", metavar="INPUT", help="video (anything FFmpeg demuxes), image (png, jpg, tif, webp), "
                   "or a folder: every video and image in it and its subfolders")
    p.add_argument("output", metavar="OUTPUT", help="its suffix picks the container or image format; for a folder INPUT, "
                   "a folder where results get the same relative names (complete ones are skipped)")
    p.add_argument("-s", "--scale", type=int, choices=(2, 3, 4), help="output scale (default: the model's own)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or checkpoint path (default {DEFAULT_MODEL})")
    p.add_argument("--tile", type=int, default=0, help="tile size in input pixels, 0 = whole frame (default)")
    p.add_argument("--tile-overlap", type=int, default=16, help="overlap between tiles in input pixels (default 16)")
    p.add_argument("--batch", type=int, default=1, help="frames (or tiles) per network call (default 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N; a comma list splits video frames")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="auto: fp16 on CUDA; bf16 on CPUs with native bf16 for the models measured close to fp32, else fp32")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "tensorrt", "openvino"),
                   help="what runs the network: auto (TensorRT on an NVIDIA GPU when installed, else torch)")
    p.add_argument("--codec", help="video encoder (default: libx264, or libx265 for >8-bit sources)")
    p.add_argument("--crf", type=int, help="encoder quality, lower is better (default 18)")
    p.add_argument("--preset", help="encoder preset (default medium)")
    p.add_argument("--pix-fmt", help="output pixel format (default: the source's)")
    p.add_argument("--artifact-map", metavar="PATH",
                   help="also write the estimated artifact map (image or video; a folder of them for a folder INPUT)")
    p.add_argument("--keep-partial", action="store_true", help="keep what was decoded of a damaged video")
    p.add_argument("--fps", type=_positive_rate, help="frame rate of an image sequence INPUT, frames/%%05d.png (default 25)")
    p.add_argument("--segment", type=_segment_seconds, metavar="SECONDS",
                   help="resumable video job: cut at the source's keyframes into segments of at least SECONDS, kept "
                   "beside OUTPUT until the end (default 6, for videos of a minute or more; shorter ones run in one pass); "
                   "0 = one pass, not resumable")
    p.add_argument("--restart", action="store_true", help="discard the finished segments of an earlier run of this OUTPUT")
    p.add_argument("--ray", nargs="?", const="local", type=_ray_address, metavar="ADDRESS",
                   help="run video segments as Ray tasks: no ADDRESS starts a local Ray instance, `auto` joins the running "
                   "cluster (or RAY_ADDRESS), else a cluster address such as head:6379; needs ldl-video[cluster]. "
                   "Put it after INPUT OUTPUT, or write --ray=ADDRESS")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (in a folder: redo finished results)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _ray_address(text: str) -> str:
    # `--ray IN OUT` would take IN for the address: say so rather than "OUTPUT is required"
    if Path(text).exists():
        raise argparse.ArgumentTypeError(f"took {text!r} for the cluster address; put --ray after INPUT OUTPUT "
                                         "or write --ray=ADDRESS")
    return text


def _segment_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (e.g. 10, or 0 for one pass)") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a segment lasts more than 0 seconds (or 0 for one pass)")
    return seconds


def _positive_rate(text: str) -> Fraction:
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate (e.g. 24, 23.976 or 24000/1001)") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a frame rate must be above 0")
    return rate


def list_models(out=None) -> int:
    out = out or sys.stdout
    from .zoo import DEFAULT_MODEL, ZOO, model_dir, weights_present

    rows = [("name", "architecture", "scale", "weights", "from")]
    for entry in ZOO.values():
        scale = "any" if entry.kernel else str(entry.scale)
        here = "built in" if entry.kernel else ("here" if weights_present(entry) else "missing")
        name = entry.name + (" (default)" if entry.name == DEFAULT_MODEL else "")
        rows.append((name, entry.arch, scale, here, entry.source))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4], file=out)
    print(f"\nmodel folder: {model_dir()} (set LDL_MODEL_DIR to change it)", file=out)
    return 0


def build_export_parser() -> argparse.ArgumentParser:
    from .backends.onnx_export import DEFAULT_OPSET

    p = _Parser(prog=f"{PROG} export", description="Write a model as ONNX: input N×3×H×W RGB in [0, 1], dynamic N, H, W; "
                "checked against PyTorch with onnxruntime before it is written.")
    p.add_argument("model", metavar="MODEL", help="model name (`ldl-video models`) or checkpoint path")
    p.add_argument("output", metavar="OUT.onnx")
    p.add_argument("--fp16", action="store_true", help="float16 weights, input and output")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.onnx if it exists")
    return p


def export(argv: list[str]) -> int:
    from .backends.onnx_export import export_onnx
    from .files import check_output
    from .zoo import load_model

    args = build_export_parser().parse_args(argv)
    check_output(Path(args.output), args.overwrite)
    model = load_model(args.model, device="cpu")
    agreement = export_onnx(model, args.output, fp16=args.fp16, opset=args.opset)
    print(f"wrote {args.output} ({model.name}, ×{model.scale}, {'float16' if args.fp16 else 'float32'}, opset {args.opset}; "
          f"{agreement:.0f} dB from PyTorch on the check picture)", file=sys.stderr)
    return 0


def upscale_image(args: argparse.Namespace, source: Path, target: Path, upscaler: Upscaler | None = None) -> str:
    """Upscale one still image into `target` (and `args.artifact_map`); `upscaler` is one already
    loaded (a folder job), else it is built from `args`. Returns the output size as 'W×H'."""
    from .artifacts import blind_artifact_map, to_display
    from .files import atomic_output
    from .images import check_image_size, read_image, write_image
    from .video.run import make_upscalers

    if upscaler is None and "," in args.device:
        raise LdlError(f"--device {args.device}: a device list splits the frames of a video; an image takes one device")
    image = read_image(source)
    upscaler = upscaler or make_upscalers(args, [args.device])[0]
    out_h, out_w = upscaler.output_size(*image.shape[:2])
    for path in filter(None, (target, args.artifact_map)):
        check_image_size(path, out_h, out_w)  # before the model runs, not after
    result = upscaler.upscale(image)
    map_path = Path(args.artifact_map) if args.artifact_map else None
    # Both files are written under temporary names and renamed only when both are complete.
    with (atomic_output(target, args.overwrite, lock=True) as tmp,
          (atomic_output(map_path, args.overwrite, lock=True) if map_path else nullcontext()) as map_tmp):
        write_image(tmp, result)
        if map_tmp is not None:
            # the result itself (as saved) stands in for the network's output: the model runs once
            weights = blind_artifact_map(upscaler, upscaler.to_tensor(image[None]), sr=upscaler.to_tensor(result[None]))
            write_image(map_tmp, to_display(weights)[0, 0].numpy())
    return f"{result.shape[1]}×{result.shape[0]}"


def _is_stream(path: Path) -> bool:
    """Standard input or a numbered image sequence: read as one video."""
    from .video.reader import STDIN, is_sequence

    return str(path) == STDIN or is_sequence(path)


def _check_input(source: Path, fps: Fraction | None) -> None:
    from .video.reader import STDIN, is_sequence, sequence_files

    if is_sequence(source):
        if not sequence_files(source):
            raise LdlError(f"no file matches the image sequence {source}; check the folder and the %0Nd number width")
    elif fps is not None:
        raise LdlError("--fps is for an image-sequence INPUT (frames/%05d.png); a video keeps its own timing")
    elif str(source) != STDIN and not source.exists():
        raise LdlError(f"input {source} does not exist")


def _is_still(path: Path) -> bool:
    """An image read as one picture; an animated PNG, WebP or GIF is a video."""
    from .images import is_image
    from .video.reader import is_animated

    return is_image(path) and not _is_stream(path) and not is_animated(path)


def upscale_file(args: argparse.Namespace, source: Path, target: Path, upscalers: list[Upscaler] | None = None) -> str:
    """One INPUT into one OUTPUT through the image or the video path; `upscalers` are loaded
    ones (a folder job), else each path loads the model. Returns the output size as 'W×H'."""
    from .images import is_image

    if _is_still(source):
        if not is_image(target):
            raise LdlError(f"INPUT is an image, so OUTPUT needs an image suffix (.png, .tif, .jpg, .webp), not {target.suffix!r}")
        return upscale_image(args, source, target, upscalers[0] if upscalers else None)
    from .video import upscale_video

    return upscale_video(args, source, target, upscalers)


def _check_options(args: argparse.Namespace, videos: bool) -> None:
    import importlib.util

    if args.tile < 0 or args.tile_overlap < 0 or args.batch < 1:
        raise LdlError("--tile and --tile-overlap must be 0 or more, --batch 1 or more")
    if videos and args.ray is not None and importlib.util.find_spec("ray") is None:
        from .cluster import INSTALL_HINT

        raise LdlError(INSTALL_HINT)  # before a folder job starts, not once per video


def _run_folder(args: argparse.Namespace, in_dir: Path, out_dir: Path) -> int:
    from .folder import run_folder
    from .video.run import make_upscalers, parse_devices

    _check_options(args, videos=True)
    return run_folder(args, in_dir, out_dir, upscale_file, lambda: make_upscalers(args, parse_devices(args.device)))


def run(args: argparse.Namespace) -> int:
    from .files import check_output
    from .images import is_image

    source, target = Path(args.input), Path(args.output)
    _check_input(source, getattr(args, "fps", None))
    if args.output == "-":
        raise LdlError("OUTPUT cannot be - (standard output): a result is written as a file and named only when "
                       "complete; give a file name such as out.mkv")
    if source.is_dir():
        return _run_folder(args, source, target)
    if not target.suffix and not target.is_dir():
        raise LdlError(f"OUTPUT {target} has no suffix, and the suffix picks the format: add one "
                       "(.mkv, .mp4, .mov, .webm; .png, .tif, .jpg, .webp for an image)")
    if source.resolve() == target.resolve():
        raise LdlError("OUTPUT is the same file as INPUT; write to a new file (the source is never touched)")
    check_output(target, args.overwrite)
    still = _is_still(source)
    if args.artifact_map:
        map_path = Path(args.artifact_map)
        if map_path.resolve() in (source.resolve(), target.resolve()):
            raise LdlError("--artifact-map needs a file of its own, not INPUT or OUTPUT")
        if still and not is_image(map_path):
            raise LdlError(f"INPUT is an image, so --artifact-map needs an image suffix (.png, .tif), not {map_path.suffix!r}")
        check_output(map_path, args.overwrite)
    _check_options(args, videos=not still)
    video_only = [flag for flag, value in (("--ray", args.ray), ("--segment", args.segment), ("--restart", args.restart or None))
                  if value is not None]
    if still and video_only and not args.quiet:
        print(f"{PROG}: {', '.join(video_only)}: for videos; an image is upscaled here, in one pass", file=sys.stderr)
    start = time.perf_counter()
    size = upscale_file(args, source, target)
    if not args.quiet:
        print(f"wrote {target} ({size}) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _interrupted(argv: list[str]) -> str:
    folder = any(not arg.startswith("-") and Path(arg).is_dir() for arg in argv)
    if folder:  # finished results stay: each got its name only when complete
        return "interrupted; finished files are kept and the same command goes on with the rest"
    return "interrupted; no output written"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["models"]:
        return report_errors(PROG, list_models, "interrupted")
    if argv[:1] == ["export"]:
        return report_errors(PROG, lambda: export(argv[1:]), "interrupted; nothing written")
    return report_errors(PROG, lambda: run(build_parser().parse_args(argv)), _interrupted(argv))


if __name__ == "__main__":
    sys.exit(main())
