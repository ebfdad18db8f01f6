#!/usr/bin/env bash
# The Python package as a user installs it (ctest python_pip_install): a fresh venv over Debian's
# python3 (--system-site-packages: numpy, pytest, pybind11, setuptools, wheel), `pip install
# --no-build-isolation .` of the source tree (offline; the extension built by the project's CMake,
# only its target, with ccache, in a build directory kept beside this test), pip's metadata, the
# whole Python test suite against the installed package, mypy --strict over a typed program, a
# wheel from `python -m build --no-isolation --wheel`, and uninstalling.
#   usage: pip_install_test.sh SOURCE_DIR WORK_DIR PYTHON
set -euo pipefail
src=$1 work=$2 python=$3
venv=$work/venv
export SHMRING_PIP_BUILD_DIR=$work/pip-build CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
unset PYTHONPATH
step() { echo "=== $* ($SECONDS s)"; }

step "fresh venv"
rm -rf "$venv" "$work/dist"
"$python" -m venv --system-site-packages "$venv"
py=$venv/bin/python

step "pip install --no-build-isolation $src"
"$py" -m pip install --no-build-isolation --no-index --disable-pip-version-check -q "$src"
version=$(sed -n 's/^project(shmring VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
"$py" -m pip show shmring | tee "$work/pip-show.txt"
grep -qx "Version: $version" "$work/pip-show.txt"
location=$(cd / && "$py" -c 'import shmring, os; print(os.path.dirname(shmring.__file__))')
case $location in "$venv"/lib/python*/site-packages/shmring) ;; *) echo "imported from $location"; exit 1;; esac
(cd / && "$py" -c "import shmring; assert shmring.__version__ == '$version', shmring.__version__")
(cd / && "$py" -m shmring --version)

step "the Python tests against the installed package"
(cd "$work" && "$py" -m pytest -q -p no:cacheprovider "$src/tests/python")

step "mypy --strict over a typed program"
(cd "$work" && mypy --strict --no-incremental --python-executable "$py" "$src/tests/python/typed/typed_example.py")

step "a wheel: python -m build --no-isolation --wheel"
(cd "$src" && "$py" -m build --no-isolation --wheel --outdir "$work/dist" . > "$work/build-wheel.log")
wheel=$(ls "$work"/dist/shmring-"$version"-cp*-linux_*.whl)
"$py" - "$wheel" "$version" <<'PY'
import sys, zipfile
wheel, version = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
for needed in ("shmring/__init__.py", "shmring/__init__.pyi", "shmring/py.typed", "shmring/_build.py",
               f"shmring-{version}.dist-info/METADATA", f"shmring-{version}.dist-info/RECORD"):
    assert needed in names, (needed, names)
assert any(n.startswith("shmring/_shmring.cpython-") and n.endswith(".so") for n in names), names
metadata = zipfile.ZipFile(wheel).read(f"shmring-{version}.dist-info/METADATA").decode()
assert f"Version: {version}" in metadata and "Requires-Python" in metadata, metadata
PY
"$py" -m pip uninstall -y -q shmring
"$py" -m pip install --no-index --disable-pip-version-check -q "$wheel"
(cd / && "$py" -c 'import shmring; shmring.list_channels()')

step "pip uninstall"
"$py" -m pip uninstall -y -q shmring
if (cd / && "$py" -c 'import shmring' 2> /dev/null); then echo "still importable after uninstall"; exit 1; fi
[ ! -e "$location" ] || { echo "left behind: $(ls "$location")"; exit 1; }
rm -rf "$venv"
step "done"
