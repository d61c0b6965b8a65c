"""The prepared device check runs (on CPU, --quick) so that it is ready when a GPU is."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.py"


def test_device_check_quick_on_cpu():
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick",
                           "--rounds", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "PASS  RIMs official gru eager" in out and "PASS  SharedWeight gradient" in out
    assert "PASS  rimrl train ppo --core rims --device cpu" in out
    assert "PASS  rimrl train iqn --device cpu" in out
    assert "RIMs / nn.LSTM fwd+bwd (T=8, B=2" in out
    assert ", 0 failed;" in out and "FAIL" not in out
