"""The build step behind pyproject.toml: the extension `shmring._shmring` is built by the
project's own CMake (only the `_shmring` target and what it links), then put beside the package's
Python files, with the generated `_build.py` (the project's version and the Python it is for).

Environment (optional):
  SHMRING_PIP_BUILD_DIR  the CMake build directory (default: under setuptools' build_temp); a
                         directory kept between builds makes the next one incremental
  SHMRING_CMAKE_ARGS     more CMake arguments, e.g. "-DCMAKE_BUILD_TYPE=RelWithDebInfo"
  CMAKE_BUILD_PARALLEL_LEVEL  jobs (default: the CPUs this process may use)
ccache is used when it is installed.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def project_version():
    """The one version: `project(shmring VERSION x.y.z ...)` in the top-level CMakeLists.txt."""
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*shmring\s+VERSION\s+([0-9][0-9.]*)", text)
    if match is None:
        raise RuntimeError("CMakeLists.txt: no `project(shmring VERSION ...)`")
    return match.group(1)


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = Path(os.environ.get("SHMRING_PIP_BUILD_DIR") or Path(self.build_temp).resolve() / "cmake")
        args = [
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DSHMRING_BUILD_PYTHON=ON",
            "-DSHMRING_BUILD_TESTS=OFF",
            "-DSHMRING_BUILD_BENCHMARKS=OFF",
            "-DSHMRING_BUILD_TOOLS=OFF",
            "-DSHMRING_BUILD_BRIDGE=OFF",
            "-DSHMRING_INSTALL=OFF",
        ]
        try:
            import pybind11  # Debian: python3-pybind11 (pybind11-dev has the CMake files too)
            args.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
        except ImportError:
            pass
        if shutil.which("ccache"):
            args.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
        args += shlex.split(os.environ.get("SHMRING_CMAKE_ARGS", ""))
        env = dict(os.environ)
        env.setdefault("CCACHE_BASEDIR", str(ROOT))  # cache hits from another clone of the tree
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(len(os.sched_getaffinity(0)))
        subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], env=env)
        subprocess.check_call(["cmake", "--build", str(build_dir), "--target", "_shmring", "-j", jobs], env=env)

        built = build_dir / "python" / "shmring"
        target = Path(self.get_ext_fullpath(ext.name))
        source = built / target.name
        if not source.exists():
            raise RuntimeError(f"CMake built no {source}: is it configured for another Python?")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        shutil.copy2(built / "_build.py", target.parent / "_build.py")


setup(
    version=project_version(),
    ext_modules=[CMakeExtension("shmring._shmring")],
    cmdclass={"build_ext": CMakeBuild},
)
