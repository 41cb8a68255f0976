"""Mutation testing (mutmut 3) over the core modules, each with its own relevant tests.

    python benchmarks/mutation.py                  # every module in MODULES
    python benchmarks/mutation.py ldl resample     # a few, by short name
    make mutation MODULES="ldl resample"
    python benchmarks/mutation.py --survivors colour   # only last run's survivors, against today's tests
    python benchmarks/mutation.py --sample 300 degradations   # 300 of its mutants drawn at random: an estimate

`--survivors` re-runs only the mutants that survived (or had no covering test) in the module's
last full run, against the tests added since (test_mut_<name>.py files and list entries that
were not in that run; a survivor already passed all the others), and keeps every other mutant's
status from that run: tests are only ever added, so a killed mutant stays killed, and a module
takes minutes instead of an hour. It refuses when the module's source changed since that run (mutant names would no
longer point at the same mutations).

`--sample N` runs N of a module's mutants drawn at random (seed 0, from the sorted names), for a
module too large for the time at hand: its score is an estimate, reported with a 95 % (Wilson)
interval, and `--survivors` then works on that sample as on a full run.

A module's run starts from a fresh `mutants/` folder (mutmut's working copy), so one module's
test selection never leaks into another's results. The score of each module goes to
build/mutation/scores.md, and the diff of every surviving mutant to build/mutation/<name>.survivors.txt,
where benchmarks/results/mutation.md's verdicts (equivalent or killed by a new test) come from.

Shared settings live in pyproject.toml's [tool.mutmut]; this script sets only what differs per
module: which file is mutated and which tests run (the module's own tests plus any
tests/**/test_mut_<name>.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import NormalDist

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "mutation"

# short name -> (module, tests). Fast tests that exercise what a user sees of that module.
MODULES: dict[str, tuple[str, list[str]]] = {
    "ldl": ("ldl_video/ldl.py", ["tests/train/test_train_ldl.py"]),
    # the ncnn references: realesr-animevideov3 ×2/×3 end in resample.Downscaled
    "resample": (
        "ldl_video/resample.py",
        [
            "tests/reference/test_reference_resample.py",
            "tests/engine/test_engine_upscaler.py",
            "tests/reference/test_reference_ncnn.py",
        ],
    ),
    "upscaler": (
        "ldl_video/upscaler.py",
        [
            "tests/engine/test_engine_upscaler.py",
            "tests/reference/test_reference_resample.py",
            "tests/engine/test_engine_backends.py",
        ],
    ),
    "checkpoints": ("ldl_video/checkpoints.py", ["tests/engine/test_engine_checkpoints.py"]),
    "ncnn": ("ldl_video/ncnn.py", ["tests/engine/test_engine_ncnn.py", "tests/reference/test_reference_ncnn.py"]),
    "colour": ("ldl_video/video/colour.py", ["tests/reference/test_reference_colour.py", "tests/video/test_video_colour.py"]),
    # the unit tests only: every convert.py function runs inside each CLI test, and the CLI-level
    # textbook check (test_reference_colour.py) made a mutant cost ~30 s on the shared machine;
    # test_mut_convert.py checks the same formulas on the planes directly
    "convert": ("ldl_video/video/convert.py", ["tests/video/test_video_convert.py"]),
    "validation": ("ldl_video/train/validation.py", ["tests/reference/test_reference_metrics.py"]),
    "images": ("ldl_video/images.py", ["tests/test_images_io.py", "tests/reference/test_reference_image_cli.py"]),
    "streams": (
        "ldl_video/video/streams.py",
        ["tests/video/test_video_streams.py", "tests/video/test_video_sync.py", "tests/video/test_video_timing.py",
         "tests/video/test_video_audio_layouts.py"],
    ),
    "reader": (
        "ldl_video/video/reader.py",
        [
            "tests/video/test_video_inputs.py",
            "tests/video/test_video_timing.py",
            "tests/video/test_video_streams.py",
            "tests/video/test_video_sync.py",
            "tests/video/test_video_cut_threads.py",
        ],
    ),
    "state": ("ldl_video/train/state.py", ["tests/train/test_train_loop.py"]),
    "degradations": ("ldl_video/train/degradations.py", ["tests/train/test_train_degradations.py"]),
    # the napari plugin's package, seen by mutmut as a top-level `napari_ldl` (see PLUGINS)
    "layers": ("napari_ldl/_layers.py", ["tests/napari/test_napari_data.py", "tests/napari/test_napari_widget.py"]),
    "intensity": ("napari_ldl/_intensity.py", ["tests/napari/test_napari_data.py", "tests/napari/test_napari_widget.py"]),
}

# mutmut names a mutant after its file's path (plugins/napari_ldl/x.py -> plugins.napari_ldl.x),
# while the tests import `napari_ldl`: while such a module runs, the plugin is linked in at the top
# level, so both names agree and mutants/napari_ldl comes first on the path.
PLUGINS = {"napari_ldl": "plugins/napari_ldl"}

KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def _tests_for(name: str, tests: list[str]) -> list[str]:
    extra = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob(f"test_mut_{name}.py"))
    return tests + [t for t in extra if t not in tests]


# mutmut stops a mutant's tests after (estimated seconds + 1) × this many seconds of wall time
# and counts it killed ("timeout"). Its default, 15, assumes a machine of one's own: on a shared
# one, a niced run of a 0.1 s test can take longer than 16 s, and survivors were scored as
# timeouts. 60 keeps true hangs (an endless loop) caught within a few minutes.
TIMEOUT_MULTIPLIER = 60.0


SAMPLE_SEED = 0


def _sampled(collect, size: int):
    """mutmut's mutant collection, cut down to `size` mutants drawn at random; the others stay
    "not checked" in mutmut's records."""

    def collect_sample(*, mutant_names):
        mutants, by_path = collect(mutant_names=mutant_names)
        names = sorted(name for _, name, _ in mutants)
        chosen = set(random.Random(SAMPLE_SEED).sample(names, min(size, len(names))))
        print(f"sampled {len(chosen)} of {len(names)} mutants (seed {SAMPLE_SEED})")
        return [m for m in mutants if m[1] in chosen], by_path

    return collect_sample


def run_one(module: str, tests: list[str], children: int, mutants: list[str], show: bool = False,
            sample: int = 0) -> None:
    """Runs inside a child process: mutmut with this module's file and tests (and only the
    named mutants, or a sample of `sample` of them, when given)."""
    import mutmut.__main__ as mutmut_main
    import mutmut.configuration as configuration
    from mutmut.__main__ import cli

    if sample:
        if not hasattr(mutmut_main, "collect_source_file_mutation_data"):
            sys.exit("error: --sample needs mutmut 3.8's collect_source_file_mutation_data")
        mutmut_main.collect_source_file_mutation_data = _sampled(mutmut_main.collect_source_file_mutation_data, sample)

    config = configuration.config()
    config.only_mutate = [module]
    config.debug = bool(os.environ.get("MUTATION_DEBUG"))  # MUTATION_DEBUG=1: mutmut prints each pytest command and its output
    top = module.split("/")[0]
    if top in PLUGINS:
        config.source_paths = [*config.source_paths, top]
    config.pytest_add_cli_args_test_selection = tests
    config.timeout_multiplier = max(config.timeout_multiplier, TIMEOUT_MULTIPLIER)
    if show:  # `mutmut show` of one mutant (named in place of the tests) with the same source paths
        sys.argv = ["mutmut", "show", tests[0]]
    else:
        sys.argv = ["mutmut", "run", "--max-children", str(children), *mutants]
    cli()


def _source_hash(module: str) -> str:
    return hashlib.sha256((ROOT / module).read_bytes()).hexdigest()


def _previous_survivors(name: str, module: str) -> tuple[dict[str, str], list[str]]:
    """The last full run's statuses and the names to run again; exits when that run is missing
    or the module changed since."""
    status_file, hash_file = OUT / f"{name}.json", OUT / f"{name}.source-sha256"
    if not status_file.is_file() or not hash_file.is_file():
        sys.exit(f"error: no full run of {name} to start from; run it without --survivors first")
    if hash_file.read_text().strip() != _source_hash(module):
        sys.exit(f"error: {module} changed since the last full run of {name}; run it without --survivors")
    status = json.loads(status_file.read_text())
    return status, sorted(k for k, s in status.items() if s in ("survived", "no tests", "not checked"))


def _results(module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((ROOT / "mutants" / (module + ".meta")).read_text())
    return {key: status_by_exit_code[code] for key, code in meta["exit_code_by_key"].items()}


def _diff(module: str, name: str) -> str:
    cmd = [sys.executable, __file__, "--show", "--one", module, name]
    shown = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return shown.stdout.strip() or shown.stderr.strip()


def wilson(killed: int, total: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (Wilson 1927), in per cent."""
    z = NormalDist().inv_cdf(0.975)
    if not total:
        return 0.0, 100.0
    p = killed / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return 100 * (centre - half), 100 * (centre + half)


def _report(name: str, module: str, tests: list[str], status: dict[str, str], previous: dict[str, str],
            rerun: list[str], minutes: float, sample: int = 0) -> None:
    """Scores and survivors of one module's run into build/mutation/. A survivors-only run
    (`rerun` given) updates the previous statuses of those mutants alone. A sampled run keeps
    only the mutants it drew."""
    sample_file = OUT / f"{name}.sample"
    if sample and not rerun:
        drawn = {k: s for k, s in status.items() if s != "not checked"}
        sample_file.write_text(f"{len(drawn)} of {len(status)}")
        status = drawn
    elif not rerun:
        sample_file.unlink(missing_ok=True)
    if rerun:
        # a mutant a stopped run did not reach keeps its previous status
        status = {**previous, **{k: status[k] for k in rerun if status.get(k, "not checked") != "not checked"}}
    else:
        (OUT / f"{name}.source-sha256").write_text(_source_hash(module))
        (OUT / f"{name}.tests.json").write_text(json.dumps(tests))
    killed = sum(s in KILLED for s in status.values())
    survivors = sorted(k for k, s in status.items() if s == "survived")
    untested = sorted(k for k, s in status.items() if s in ("no tests", "not checked"))
    total = len(status)
    score = 100 * killed / total if total else 0.0
    label = f"{module} (sample of {sample_file.read_text()}, seed {SAMPLE_SEED})" if sample_file.is_file() else module
    low, high = wilson(killed, total)
    interval = f" ({low:.0f}–{high:.0f})" if sample_file.is_file() else ""
    (OUT / f"{name}.survivors.txt").write_text("\n\n".join(_diff(module, k) for k in survivors + untested) + "\n")
    (OUT / f"{name}.json").write_text(json.dumps(status, indent=1, sort_keys=True))
    print(f"{name}: {killed}/{total} killed ({score:.0f} %{interval}), {len(survivors)} survived, "
          f"{len(untested)} not covered or not run")
    kind = " (survivors re-run)" if rerun else ""
    row = f"| {label}{kind} | {killed} / {total} | {score:.0f} %{interval} | {len(survivors)} | {len(untested)} | {minutes:.1f} |"
    (OUT / f"{name}.row").write_text(row)


@contextmanager
def _plugin_linked(module: str) -> Iterator[None]:
    """The plugin package linked in at the top level while its module is mutated and reported."""
    top = module.split("/")[0]
    link = ROOT / top
    made = top in PLUGINS and (link.is_symlink() or not link.exists())  # a stopped run's link is taken over
    if made and not link.is_symlink():
        link.symlink_to(PLUGINS[top], target_is_directory=True)
    try:
        yield
    finally:
        if made:
            link.unlink()


def _run_module(name: str, args: argparse.Namespace, env: dict[str, str]) -> None:
    module, tests = MODULES[name]
    tests = _tests_for(name, tests)
    previous, rerun = _previous_survivors(name, module) if args.survivors else ({}, [])
    if args.survivors and args.mutants:
        rerun = [m for m in rerun if m in set(args.mutants)]
    if args.collect:  # a run whose parent was stopped: score what its mutants/ folder holds
        _report(name, module, tests, _results(module), previous, rerun, float("nan"), args.sample)
        return
    if args.survivors:
        # Every survivor passed every test of the full run: only tests added since can kill it.
        before = json.loads((OUT / f"{name}.tests.json").read_text()) if (OUT / f"{name}.tests.json").is_file() else []
        tests = [t for t in tests if t not in before or Path(t).name.startswith("test_mut_")]
        if not rerun or not tests:
            print(f"{name}: nothing to run again ({len(rerun)} survivors, {len(tests)} new test files)")
            return
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    # Made before the child starts: Python caches "no finder" for a PYTHONPATH entry that does not exist yet.
    (ROOT / "mutants").mkdir()
    start = time.monotonic()
    cmd = [sys.executable, __file__, "--children", str(args.children), "--one", module, *tests]
    if rerun:
        cmd += ["--mutants", *rerun]
    elif args.sample:
        cmd += ["--sample", str(args.sample)]
    log = OUT / f"{name}{'.survivors' if rerun else ''}.log"
    with log.open("w") as out:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    minutes = (time.monotonic() - start) / 60
    if code != 0:
        print(f"{name}: mutmut failed (exit {code}); see {log.relative_to(ROOT)}")
        (OUT / f"{name}.row").write_text(f"| {module} | mutmut failed (exit {code}) | | | | {minutes:.1f} |")
        return
    _report(name, module, tests, _results(module), previous, rerun, minutes, args.sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"modules by short name (default: all of {', '.join(MODULES)})")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--survivors", action="store_true",
                        help="re-run only the last full run's survivors; keep the other statuses")
    parser.add_argument("--collect", action="store_true",
                        help="only score what is in mutants/ now (a run whose parent process was stopped; "
                             "with --survivors and the same --mutants, merged into the previous statuses)")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--show", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mutants", nargs="*", default=[],
                        help="with --survivors: only these of the survivors (e.g. leaving out those judged equivalent)")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="run N of the module's mutants drawn at random (seeded): an estimated score with its "
                             "95 %% interval")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.one:
        run_one(args.one[0], args.one[1:], args.children, args.mutants, args.show, args.sample)
        return
    unknown = [n for n in args.names if n not in MODULES]
    if unknown:
        sys.exit(f"error: unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    # The editable install puts the repository on sys.path through a .pth file; PYTHONPATH comes
    # first, so child processes the tests start (the CLIs) import the mutated copy as well.
    env = dict(os.environ, PYTHONPATH=str(ROOT / "mutants"), OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    for name in args.names or list(MODULES):
        with _plugin_linked(MODULES[name][0]):
            _run_module(name, args, env)
    # Modules not run this time keep the row of their last run.
    rows = [(OUT / f"{n}.row").read_text() for n in MODULES if (OUT / f"{n}.row").is_file()]
    table = ["| module | killed / total | score | survived | no covering test | minutes |", "|---|---|---|---|---|---|", *rows]
    (OUT / "scores.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
