"""rimrl as a real package: the built wheel holds every source file and the configs under the
``rimrl`` namespace, claims no generic top-level names, and installed on its own it trains."""

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> where it installs
MAPPED = {"rimrl": "rimrl", "agents": "rimrl/agents", "envs": "rimrl/envs",
          "configs": "rimrl/configs"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (found,) = out.glob("rimrl-*.whl")
    return found


def test_wheel_holds_every_source_file_under_the_rimrl_namespace(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{MAPPED[folder]}/{path.relative_to(ROOT / folder).as_posix()}"
                for folder in MAPPED for path in (ROOT / folder).rglob("*")
                if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts}
    assert "rimrl/configs/ppo.yaml" in expected and "rimrl/agents/ppo/ppo.py" in expected
    assert expected <= names, sorted(expected - names)
    top = {name.split("/")[0] for name in names if not name.startswith("rimrl-")}
    assert top == {"rimrl"}


def test_installed_wheel_trains(wheel, tmp_path):
    """Installed from the wheel into a throwaway venv that borrows this interpreter's
    site-packages for the dependencies, ``rimrl train copy --updates 2`` runs from an
    unrelated folder, with the configs the wheel shipped."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # a plain path entry: this interpreter's .pth files (an editable rimrl) stay inactive
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import importlib.util as u, rimrl.config as c; "
         "print(c.config_dir()); print(u.find_spec('agents'), u.find_spec('envs'))"],
        cwd=work, capture_output=True, text=True, check=True).stdout.splitlines()
    assert where[0].startswith(str(site)) and where[1] == "None None"
    done = subprocess.run([str(env_dir / "bin" / "rimrl"), "train", "copy", "--updates", "2"],
                          cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = (work / "runs").iterdir()
    assert (run / "model.pt").is_file() and (run / "config.yaml").is_file()
