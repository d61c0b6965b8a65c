"""One prepared check of a device (GPU or CPU): is rimrl correct there, and how fast is it.

Correctness, each against the CPU reference with a stated tolerance (TF32 off, so float32
matmuls are comparable):
  - RIMs forward and backward (thesis and official variants, LSTM and GRU dynamics), eager
    and, unless --quick, compiled;
  - the custom autograd piece (SharedWeight) by torch.autograd.gradcheck in float64;
  - the NFM encoder's forward;
  - IQN updates (finite loss, weights moved) and PPO updates end to end through
    ``rimrl train ppo --device DEVICE``.
Throughput (interleaved rounds, medians): RIMs against nn.LSTM (cuDNN on a GPU) at (T, B) =
(128, 2), (32, 64), (32, 512); PPO on DemonAttack (rims, lstm) against SB3's PPO with as many
envs as cores; IQN updates against sb3-contrib's QR-DQN; the projected wall time of a
10M-step DemonAttack PPO-RIMs run. --quick: tiny shapes and budgets (the default test suite
runs it on CPU, so the script never rots). Exit code 1 when a check fails.
Usage: python benchmarks/device_check.py [--device cuda|cpu] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().cpu() - b.detach().cpu()).abs().max())


def rims_against_cpu(device: str, quick: bool, tol: float = 1e-4) -> None:
    from rimrl.nn import RIMs
    from rimrl.nn.rims_settings import VARIANTS

    T, B, F, H = (6, 3, 16, 24) if quick else (32, 8, 64, 60)
    modes = [False] if quick else [False, True]
    for variant in ("thesis", "official"):
        for dynamics in ("lstm", "gru"):
            for compiled in modes:
                torch.manual_seed(0)
                cpu = RIMs(F, H, num_units=6, k_active=4, dynamics=dynamics,
                           **VARIANTS[variant]).eval()  # eval: the dropouts off
                dev = RIMs(F, H, num_units=6, k_active=4, dynamics=dynamics, compile=compiled,
                           **VARIANTS[variant]).eval().to(device)
                dev.load_state_dict(cpu.state_dict())
                x = torch.randn(T, B, F)
                out_c, _ = cpu(x)
                out_d, _ = dev(x.to(device))
                out_c.square().sum().backward()
                out_d.square().sum().backward()
                grads = max(max_diff(p.grad, q.grad) for p, q in
                            zip(cpu.parameters(), dev.parameters()) if p.grad is not None)
                diff = max(max_diff(out_c, out_d), grads)
                name = f"RIMs {variant} {dynamics} {'compiled' if compiled else 'eager'}"
                check(name, diff <= tol, f"max |device - cpu| {diff:.2e} (outputs and "
                      f"gradients; tolerance {tol:g})")


def shared_weight_gradcheck(device: str) -> None:
    from rimrl.nn.shared_weight import SharedWeight

    w = torch.randn(3, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    h = [torch.randn(3, 2, 4, dtype=torch.float64, device=device, requires_grad=True)
         for _ in range(3)]

    def steps(w, *hs):
        shared = SharedWeight(w)
        return sum(shared(x).square().sum() for x in hs)

    ok = torch.autograd.gradcheck(steps, (w, *h), raise_exception=False)
    check("SharedWeight gradient (gradcheck, float64)", bool(ok), "analytic = numerical")


def nfm_against_cpu(device: str, tol: float = 1e-4) -> None:
    from rimrl.nn.encoders import encoder_class
    from gymnasium import spaces

    torch.manual_seed(0)
    space = spaces.Box(0, 255, (4, 84, 84), dtype="uint8")
    cpu = encoder_class("nfm-resnet")(space).eval()
    dev = encoder_class("nfm-resnet")(space).eval().to(device)
    dev.load_state_dict(cpu.state_dict())
    x = torch.randint(0, 255, (2, 4, 84, 84)).float()
    with torch.no_grad():
        diff = max_diff(cpu(x), dev(x.to(device)))
    check("NFM ResNet encoder forward", diff <= tol, f"max |device - cpu| {diff:.2e}")


def training_end_to_end(device: str, quick: bool) -> None:
    from rimrl.cli import main

    with tempfile.TemporaryDirectory() as root:
        for core in ("rims", "lstm"):
            args = (["--env", "rimrl/CueVector-v0", "--timesteps", "512", "--n-envs", "2",
                     "--set", "core.hidden_size=24", "--set", "policy.features_dim=16"]
                    if quick else ["--env", "DemonAttack", "--timesteps", "2048"])
            code = main(["train", "ppo", "--core", core, "--device", device, "--runs-dir",
                         root, "--quiet", "--set", "core.compile=false"] + args)
            check(f"rimrl train ppo --core {core} --device {device}", code == 0,
                  f"exit code {code}")
        args = (["--env", "CartPole-v1", "--encoder", "mlp"] if quick else ["--env", "MsPacman"])
        code = main(["train", "iqn", "--device", device, "--runs-dir", root, "--quiet",
                     "--timesteps", "300", "--set", "iqn.learning_starts=100",
                     "--set", "iqn.buffer_size=1000"] + args)
        check(f"rimrl train iqn --device {device} (200 updates)", code == 0,
              f"exit code {code}")


def rims_throughput(device: str, quick: bool, rounds: int) -> list[str]:
    from rimrl.nn import RIMs

    shapes = [(8, 2)] if quick else [(128, 2), (32, 64), (32, 512)]
    F, H = (64, 60) if quick else (512, 510)
    lines = []
    for T, B in shapes:
        x = torch.randn(T, B, F, device=device)
        modules = {"nn.LSTM": torch.nn.LSTM(F, H).to(device),
                   "RIMs": RIMs(F, H, num_units=6, k_active=4, compile=not quick).to(device)}
        times = {name: [] for name in modules}
        for r in range(rounds + 1):
            for name, module in modules.items():
                sync(device)
                start = time.perf_counter()
                out, _ = module(x)
                out.sum().backward()
                sync(device)
                if r:  # the first round warms up (and compiles)
                    times[name].append(time.perf_counter() - start)
        ratio = statistics.median(a / b for a, b in zip(times["RIMs"], times["nn.LSTM"]))
        lines.append(f"RIMs / nn.LSTM fwd+bwd (T={T}, B={B}, hidden {H}): "
                     f"{statistics.median(times['RIMs']) * 1e3:.1f} ms vs "
                     f"{statistics.median(times['nn.LSTM']) * 1e3:.1f} ms = {ratio:.2f}x")
    return lines


def ppo_and_iqn_throughput(device: str, rounds: int) -> list[str]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import iqn_throughput as iqn
    import ppo_throughput as ppo
    from stable_baselines3 import PPO

    from rimrl.sb3.environments import make_env

    n = os.cpu_count() or 1
    over = [f"env.n_envs={n}", f"device={device}"]
    cfg = ppo.PPO_LEARNER.load_config(["env.id=DemonAttack"] + over)
    models = {"SB3 PPO": PPO("CnnPolicy", make_env(cfg), n_steps=ppo.N_STEPS,
                             batch_size=ppo.BATCH, n_epochs=ppo.EPOCHS, seed=0, device=device),
              "rims": ppo.rimrl_model("DemonAttack", "rims", over),
              "lstm": ppo.rimrl_model("DemonAttack", "lstm", over)}
    steps = n * ppo.N_STEPS
    times = {label: [] for label in models}
    for r in range(rounds + 1):
        for label, model in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=not r)
            if r:
                times[label].append(time.perf_counter() - start)
    speed = {label: steps / statistics.median(t) for label, t in times.items()}
    lines = [f"PPO DemonAttack, {n} envs: " + ", ".join(
        f"{label} {s:.0f} steps/s ({s / speed['SB3 PPO']:.2f}x SB3)" for label, s in speed.items()),
        f"projected 10M-step DemonAttack PPO-RIMs run: {1e7 / speed['rims'] / 3600:.1f} h"]
    models = {"IQN": iqn.iqn_model("MsPacman", [f"device={device}"], 300),
              "QR-DQN": iqn.qrdqn_model("MsPacman", 300, device)}
    for model in models.values():
        iqn.fill_replay(model, 300)
    t = iqn.interleaved_update_times(models, 20, rounds)
    lines.append("IQN updates/s " + ", ".join(f"{k} {20 / statistics.median(v):.1f}"
                                             for k, v in t.items())
                 + f" (IQN speed / QR-DQN's: {iqn.ratio_text(t['QR-DQN'], t['IQN'])})")
    return lines


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and budgets")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        print(f"device: {torch.cuda.get_device_name(args.device)}, CUDA {torch.version.cuda}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, device {args.device}"
          f"{' (quick)' if args.quick else ''}", flush=True)
    start = time.perf_counter()
    rims_against_cpu(args.device, args.quick)
    shared_weight_gradcheck(args.device)
    if not args.quick:
        nfm_against_cpu(args.device)
    training_end_to_end(args.device, args.quick)
    table = rims_throughput(args.device, args.quick, args.rounds)
    if not args.quick:
        table += ppo_and_iqn_throughput(args.device, args.rounds)
    print("throughput:")
    for line in table:
        print(f"  {line}")
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed; "
          f"{time.perf_counter() - start:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
