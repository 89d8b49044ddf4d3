import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT

@pytest.fixture(scope="session")
def shared_data() -> Path:
    "The shared data root; tests that need real data are skipped without it."
    d = os.environ.get("SHORTCUT_NB_DATA") or (ROOT.parent / "shared" / "data")
    d = Path(d).resolve()
    if not (d / "MD5SUMS").exists():
        pytest.skip(f"no shared data root at {d} (set SHORTCUT_NB_DATA)")
    os.environ["SHORTCUT_NB_DATA"] = str(d)
    return d
