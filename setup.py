"""Builds the VapourSynth plugin (vs_ldl/plugin.c) and puts it where VapourSynth autoloads it.

Everything else about the package is in pyproject.toml. VapourSynth loads every native plugin
in `site-packages/vapoursynth/plugins/`, so the wheel carries the compiled plugin as its own
file `vapoursynth/plugins/libvs_ldl.so` in purelib: pip installs it beside the vapoursynth
package and removes it again on uninstall. An editable install (`pip install -e .`) keeps the
Python code in the source tree, but the plugin is still copied into the editable wheel, as a
non-editable file, because nothing would autoload it from the source tree.

The plugin needs VapourSynth4.h (from the vapoursynth wheel, a build requirement) and
Python.h; it links neither libpython nor libvapoursynth.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build
from setuptools.dist import Distribution

SOURCE = "vs_ldl/plugin.c"
TARGET = "vapoursynth/plugins/libvs_ldl.so"  # relative to site-packages


def vapoursynth_include() -> str:
    """The headers the vapoursynth wheel ships (vapoursynth.get_include(), without importing
    vapoursynth: that would load its core library just to find a folder)."""
    spec = importlib.util.find_spec("vapoursynth")
    for location in (spec.submodule_search_locations or []) if spec else []:
        include = Path(location, "include")
        if (include / "VapourSynth4.h").is_file():
            return str(include)
    raise RuntimeError("building the ldl VapourSynth plugin needs VapourSynth's headers: pip install 'vapoursynth>=74'")


class build_vs_plugin(Command):
    """Compile vs_ldl/plugin.c into build_lib/vapoursynth/plugins/."""

    description = "compile the ldl VapourSynth plugin"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        self.build_lib: str | None = None
        self.build_temp: str | None = None
        self.editable_mode = False  # set by setuptools for `pip install -e`

    def finalize_options(self) -> None:
        self.set_undefined_options("build", ("build_lib", "build_lib"), ("build_temp", "build_temp"))

    def run(self) -> None:
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.errors import CCompilerError, DistutilsExecError
        from setuptools._distutils.sysconfig import customize_compiler

        if sys.platform == "win32":  # plugin.c uses dlfcn; the rest of the package works without it
            self.warn("the ldl VapourSynth plugin is not built on Windows; core.ldl will be missing")
            return
        compiler = new_compiler()
        customize_compiler(compiler)
        output = Path(self.build_lib, TARGET)
        output.parent.mkdir(parents=True, exist_ok=True)
        try:
            objects = compiler.compile(
                [SOURCE], output_dir=self.build_temp,
                include_dirs=[vapoursynth_include(), sysconfig.get_paths()["include"]],
                extra_postargs=["-O2", "-fvisibility=hidden", "-Wall"],
            )
            compiler.link_shared_object(objects, str(output))
        except (CCompilerError, DistutilsExecError) as error:
            raise RuntimeError(f"building the ldl VapourSynth plugin ({SOURCE}) failed: {error}; it needs a C compiler "
                               "and Python's headers (Debian: apt-get install gcc libc6-dev)") from error
        if self.editable_mode:
            # The editable wheel holds what the install command puts in install_lib (its
            # unpacked root); build_lib is thrown away.
            editable_root = Path(self.get_finalized_command("install").install_lib, TARGET)
            editable_root.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(output, editable_root)

    def get_outputs(self) -> list[str]:
        return [] if sys.platform == "win32" else [str(Path(self.build_lib, TARGET))]

    def get_source_files(self) -> list[str]:
        return [SOURCE]


class build_with_plugin(build):
    sub_commands = [*build.sub_commands, ("build_vs_plugin", None)]


class PlatformDistribution(Distribution):
    """The wheel holds a compiled library, so it is tagged for the platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build": build_with_plugin, "build_vs_plugin": build_vs_plugin}, distclass=PlatformDistribution)
