"The command line and the generated README."
import subprocess, sys, os
from pathlib import Path


def test_list(project_root):
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "list"], capture_output=True, text=True, cwd=project_root)
    assert r.returncode == 0 and "template" in r.stdout.split()


def test_unknown_paper_and_scale(project_root):
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "paper", "nope", "--scale", "smoke"],
                       capture_output=True, text=True, cwd=project_root)
    assert r.returncode == 2 and "template" in r.stderr
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "paper", "template", "--scale", "huge"],
                       capture_output=True, text=True, cwd=project_root)
    assert r.returncode != 0 and "smoke" in r.stderr


def test_cli_overrides_reach_the_notebook(shared_data, project_root, tmp_path):
    env = {**os.environ, "SHORTCUT_NB_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "paper", "template", "--scale", "smoke", "--run", "cli",
                        "-p", "n_seeds", "1", "-p", "arch", "lenet5", "--out-root", str(tmp_path)],
                       capture_output=True, text=True, cwd=project_root, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    run = json.loads((tmp_path / "template" / "cli" / "run.json").read_text())
    assert run["params"]["arch"] == "lenet5" and run["params"]["n_seeds"] == 1


def test_readme_is_generated_from_index(project_root, tmp_path):
    subprocess.run([Path(sys.executable).parent / "jupyter", "nbconvert", "--to", "markdown", "nbs/index.ipynb",
                    "--output-dir", str(tmp_path), "--output", "README", "--log-level", "WARN"], cwd=project_root, check=True)
    assert (tmp_path / "README.md").read_text() == (project_root / "README.md").read_text(), "run `make readme`"


def test_failing_paper_is_reported(tmp_path):
    "A paper whose notebook raises: non-zero exit, the paper named, and its partial notebook kept for inspection."
    import nbformat
    (tmp_path / "settings.ini").write_text("[DEFAULT]\n")
    (tmp_path / "papers").mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('scale: str = "cpu"\nrun: str = ""\nseed: int = 0\nout_dir: str = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('raise RuntimeError("boom in the experiment")')])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "papers" / "broken.ipynb")
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "reproduce", "--scale", "smoke"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 1 and "broken failed" in r.stderr and "boom" in r.stderr
    assert (tmp_path / "outputs" / "broken" / "smoke.failed" / "broken.ipynb").exists()


def test_failing_run_keeps_good_outputs(tmp_path):
    "A run that fails never touches the outputs of an earlier good run; a run that succeeds replaces them whole."
    import nbformat
    (tmp_path / "settings.ini").write_text("[DEFAULT]\n")
    (tmp_path / "papers").mkdir()
    params = 'scale: str = "cpu"\nrun: str = ""\nseed: int = 0\nout_dir: str = ""\nfail: bool = False'
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('from pathlib import Path\nPath(out_dir, "result.txt").write_text("half")\nif fail: raise RuntimeError("boom")\n'
                                  'Path(out_dir, "result.txt").write_text(f"good {seed}")')])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "papers" / "p.ipynb")
    cli = [Path(sys.executable).parent / "shortcut-nb", "paper", "p", "--scale", "smoke"]
    result = tmp_path / "outputs" / "p" / "smoke" / "result.txt"
    assert subprocess.run(cli + ["-p", "seed", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=300).returncode == 0
    assert result.read_text() == "good 1"
    r = subprocess.run(cli + ["-p", "fail", "true"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 1 and result.read_text() == "good 1"          # the good run survives a failed one
    assert (tmp_path / "outputs" / "p" / "smoke.failed" / "result.txt").read_text() == "half"
    assert subprocess.run(cli + ["-p", "seed", "2"], capture_output=True, text=True, cwd=tmp_path, timeout=300).returncode == 0
    assert result.read_text() == "good 2" and not (tmp_path / "outputs" / "p" / "smoke.failed").exists()


def test_unknown_parameter_is_one_line(project_root):
    "A mistyped -p key: exit 2 and one line naming it, the closest parameter and the list (nothing is executed)."
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "paper", "template", "--scale", "smoke", "-p", "n_seed", "1"],
                       capture_output=True, text=True, cwd=project_root, timeout=120)
    assert r.returncode == 2 and "'n_seed'" in r.stderr and "did you mean 'n_seeds'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_data_error_reaches_the_user(project_root, tmp_path):
    "A paper whose data is missing: the CLI prints the notebook's own DataMissingError and its fix, not a traceback fragment."
    env = {**os.environ, "SHORTCUT_NB_DATA": str(tmp_path / "no_data_here"), "SHORTCUT_NB_CACHE": str(tmp_path / "cache")}
    (tmp_path / "no_data_here").mkdir()
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "paper", "template", "--scale", "smoke", "--out-root", str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=project_root, env=env, timeout=600)
    assert r.returncode == 1
    assert "DataMissingError" in r.stderr and "SHORTCUT_NB_DATA" in r.stderr, r.stderr[-2000:]


def test_help_lists_papers_and_scale_costs(project_root):
    r = subprocess.run([Path(sys.executable).parent / "shortcut-nb", "paper", "--help"], capture_output=True, text=True, cwd=project_root)
    assert r.returncode == 0
    assert "template" in r.stdout and "one_pixel_shortcut" in r.stdout          # the papers
    assert "≤ 60 min per paper" in r.stdout and "GPU hours" in r.stdout         # what each scale costs
    assert "--data" in r.stdout and "config.yaml" in r.stdout                   # where the data root comes from


def test_cli_outside_a_checkout(tmp_path):
    "--root pointing at a folder without papers/, or --data at a missing folder: one clear line and exit 2."
    cli = Path(sys.executable).parent / "shortcut-nb"
    r = subprocess.run([cli, "list", "--root", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "no shortcut_nb checkout" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = subprocess.run([cli, "paper", "template", "--scale", "smoke", "--data", str(tmp_path / "nope")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "--data" in r.stderr and "no such folder" in r.stderr, r.stderr
