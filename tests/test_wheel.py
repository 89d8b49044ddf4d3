"""The CLI from an installed package: a wheel built from this checkout, installed into a fresh virtualenv, lists and runs
the papers from an empty folder (no checkout anywhere above it) and writes its outputs there."""
import json, os, subprocess, sys, sysconfig, venv
from pathlib import Path
import pytest


@pytest.fixture(scope="module")
def installed(project_root, tmp_path_factory):
    "A fresh virtualenv holding only the wheel; the dependencies (torch & co.) are read from this test's environment."
    base = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"),
                            str(project_root)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((base / "dist").glob("shortcut_nb-*.whl"))
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # dependencies only: a path line adds this environment's packages, but not its .pth hooks (the editable checkout)
    Path(site, "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # a plain `pip install <wheel>` into that environment (pip's --python: the fresh venv needs no pip of its own)
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    cli = env_dir / "bin" / "shortcut-nb"                  # the console script pip made from settings.ini's console_scripts
    assert cli.exists() and cli.read_text().startswith(f"#!{py}"), "pip made no shortcut-nb script for the fresh venv"
    return env_dir, py, cli


def test_the_wheel_is_imported_not_the_checkout(installed, project_root, tmp_path):
    env_dir, py, _ = installed
    where = subprocess.run([str(py), "-c", "import shortcut_nb; print(shortcut_nb.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(env_dir)) and not where.startswith(str(project_root)), where


def test_list_and_smoke_run_from_an_empty_folder(installed, shared_data, tmp_path):
    env_dir, py, cli = installed
    env = {**os.environ, "SHORTCUT_NB_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg", "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}"}
    work = tmp_path / "empty"
    work.mkdir()
    listed = subprocess.run([str(cli), "list"], cwd=work, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {"template", "be_persistent", "one_pixel_shortcut"} <= set(listed.stdout.split())
    run = subprocess.run([str(cli), "paper", "template", "--scale", "smoke"], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    out = work / "outputs" / "template" / "smoke"
    assert (out / "claims.csv").exists() and (out / "template.ipynb").exists()
    assert json.loads((out / "run.json").read_text())["params"]["n_seeds"] >= 1


def test_dask_executor_without_distributed_is_one_line(installed, tmp_path):
    "Without the dask extra, --executor dask says what to install, before anything runs (distributed hidden from the venv)."
    env_dir, py, _ = installed
    code = ("import sys, importlib.util as u; real = u.find_spec; "
            "u.find_spec = lambda n, *a, **k: None if n == 'distributed' else real(n, *a, **k); "
            "from shortcut_nb.runner import main; sys.exit(main(['paper', 'template', '--scale', 'smoke', '--executor', 'dask']))")
    r = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and 'pip install "shortcut_nb[dask]"' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
