"""Time per training step of probdl.nn models against PyTorch (CPU), side by side.

Two models, each one full step (zero_grad, forward, loss, backward, optimizer step):

- the MLP 64-256-256-10 (ReLU, batch 128, cross-entropy) with SGD and with Adam, in float32
  and float64 (target: probdl within 1.3x of PyTorch's CPU time);
- the digits CNN of ``examples/digits_classifier.py`` (two 3x3 convolutions with max-pooling,
  then two linear layers) on a batch of 128 8x8 images, with Adam.

Both libraries start from the same weights, and the losses are checked equal before timing.
Timings are medians over interleaved repeats (helpers shared with ``bench_engine.py``).

Usage::

    PYTHONPATH=. python benchmarks/bench_nn.py [--quick] [--json PATH] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_engine import environment, import_torch, load_average, pin_threads, summarize, table, time_interleaved

import probdl as pd
from probdl import nn, optim

HERE = Path(__file__).resolve().parent
TARGET = 1.3


def mlp(dtype: Any) -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256, rng=0), nn.ReLU(), nn.Linear(256, 256, rng=1), nn.ReLU(),
                         nn.Linear(256, 10, rng=2)).to(dtype=dtype)


def cnn(dtype: Any) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1, rng=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 2 * 2, 128, rng=2), nn.ReLU(), nn.Linear(128, 10, rng=3)).to(dtype=dtype)


def torch_twin(torch: Any, model: nn.Module) -> Any:
    """The same architecture in PyTorch with the probdl model's weights copied in."""
    layers = []
    for m in model:
        if isinstance(m, nn.Linear):
            layers.append(torch.nn.Linear(m.in_features, m.out_features))
        elif isinstance(m, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(m, nn.Flatten):
            layers.append(torch.nn.Flatten())
        elif isinstance(m, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(2))
        else:
            layers.append(torch.nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1))
    twin = torch.nn.Sequential(*layers)
    dtype = torch.float32 if next(model.parameters()).dtype == np.float32 else torch.float64
    twin.to(dtype)
    with torch.no_grad():
        for p, q in zip(model.parameters(), twin.parameters()):
            q.copy_(torch.from_numpy(p.numpy().copy()))
    return twin


def step_fns(model: nn.Module, x: np.ndarray, y: np.ndarray, opt_name: str, torch: Any) -> tuple[dict, dict]:
    """One training step for each library, and the first-step losses for the equality check."""
    lr = 0.01 if opt_name == "sgd" else 1e-3
    opt = optim.SGD(model.parameters(), lr=lr) if opt_name == "sgd" else optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = pd.tensor(x), pd.tensor(y)

    def probdl_step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    fns, losses = {"probdl": probdl_step}, {}
    if torch is not None:
        twin = torch_twin(torch, model)
        topt = (torch.optim.SGD(twin.parameters(), lr=lr) if opt_name == "sgd"
                else torch.optim.Adam(twin.parameters(), lr=lr))
        tloss_fn, tx, ty = torch.nn.CrossEntropyLoss(), torch.from_numpy(x), torch.from_numpy(y)

        def torch_step() -> float:
            topt.zero_grad()
            loss = tloss_fn(twin(tx), ty)
            loss.backward()
            topt.step()
            return loss

        with torch.no_grad():
            losses["torch"] = float(tloss_fn(twin(tx), ty))
        fns["torch"] = torch_step
    with pd.no_grad():
        losses["probdl"] = float(loss_fn(model(xt), yt).item())
    if "torch" in losses and not np.isclose(losses["probdl"], losses["torch"], rtol=1e-4 if x.dtype == np.float32
                                            else 1e-10):
        raise RuntimeError(f"the two models disagree before timing: {losses}")
    return fns, losses


def run_case(name: str, model: nn.Module, x: np.ndarray, y: np.ndarray, opt_name: str, torch: Any,
             iters: int, repeats: int) -> dict:
    fns, losses = step_fns(model, x, y, opt_name, torch)
    timings = time_interleaved(fns, iters, repeats, warmup=max(3, iters // 5))
    out = {lib: summarize(t, 1e3) for lib, t in timings.items()}
    ratio = out["probdl"]["median"] / out["torch"]["median"] if "torch" in out else None
    return {"case": name, "ms": out, "ratio": ratio, "initial_loss": losses}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, default=HERE / "results" / "bench_nn.json")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    torch = import_torch()
    threads = pin_threads(args.threads, torch)
    iters, repeats = (5, 3) if args.quick else (40, 7)
    rng = np.random.default_rng(0)
    x_mlp, y_mlp = rng.normal(size=(128, 64)), rng.integers(0, 10, size=128)
    x_img = rng.uniform(0, 1, size=(128, 1, 8, 8))
    cases = []
    for dt in (np.float32, np.float64):
        for opt_name in ("sgd", "adam"):
            cases.append(run_case(f"MLP 64-256-256-10 {np.dtype(dt).name} {opt_name}", mlp(dt),
                                  x_mlp.astype(dt), y_mlp, opt_name, torch, iters, repeats))
        cases.append(run_case(f"CNN digits 8x8 {np.dtype(dt).name} adam", cnn(dt), x_img.astype(dt), y_mlp, "adam",
                              torch, max(3, iters // 2), repeats))
    rows = [[c["case"], f"{c['ms']['probdl']['median']:.3f}",
             f"{c['ms']['torch']['median']:.3f}" if "torch" in c["ms"] else "not installed",
             "-" if c["ratio"] is None else f"{c['ratio']:.2f}x"] for c in cases]
    env = environment(threads, torch)
    print(f"probdl {env['probdl']} ({env['git_commit']}) | numpy {env['numpy']} | torch {env['torch']} | "
          f"threads {threads} | load {env['load_average_start']} -> {load_average()}")
    print("ms per training step (batch 128), median of interleaved repeats")
    print(table(["case", "probdl", "torch", "probdl/torch"], rows))
    mlp_ratios = [c["ratio"] for c in cases if c["case"].startswith("MLP") and c["ratio"] is not None]
    if mlp_ratios:
        worst = max(mlp_ratios)
        verdict = "PASS" if worst <= TARGET else "MISS"
        print(f"target: MLP within {TARGET}x of PyTorch CPU: worst {worst:.2f}x -> {verdict}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": env, "cases": cases, "time": time.time()}, indent=2) + "\n")
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
