"""Do the training-data reconstructions converge? KKT residual and best-10 SSIM against iterations (issue #12, item 3).

Base models exactly as `papers/recovered_samples.ipynb`'s `experiment` builds them at `cpu` scale (seed 0, no bias,
50 images per class, two hidden layers of width 256, loss-scaled full-batch GD with lr 0.01 up to 20,000 epochs,
float32). For each dataset and setting, `reconstruct` runs for up to `--iters` iterations or `--budget` seconds of
optimisation, whichever comes first; every `--log-every` iterations its `callback` scores the current candidates
(best-10 SSIM, Eq. 9) — scoring time is excluded from the seconds per iteration.

Settings: `paper` = Haim et al.'s released hyper-parameters (`HAIM_MNIST` / `HAIM_CIFAR`); `lrX` = the same with the
candidate learning rate multiplied by X. Before the curves, a baseline (50 iterations of `paper`, no callback) is
timed in the same process, and every seconds-per-iteration is also reported as a ratio to it (the CPU is shared).
`--big` additionally times iterations at the paper's size (width 1000, 250 images per class, 500 candidates) and
the training epochs of that model, to decide whether it fits the `cpu` budget.

    python bench/reconstruct_convergence.py [--iters 5000] [--budget 150] [--log-every 50] [--settings paper,lr3,lr10] [--big] [--append]
Writes bench/reconstruct_convergence.csv, bench/reconstruct_convergence.png, bench/reconstruct_convergence.json.
"""
import argparse, json, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from shortcut_nb.data import load_images, subset, relabel, VEHICLES_VS_ANIMALS, EVEN_VS_ODD
from shortcut_nb.reconstruct import (homogeneous_mlp, to_model_space, train_homogeneous, reconstruct, reconstruction_score,
                                     HAIM_CIFAR, HAIM_MNIST, functional_forward, kkt_residual)

GROUPS = {"mnist": EVEN_VS_ODD, "cifar10": VEHICLES_VS_ANIMALS}
HPARAMS = {"mnist": HAIM_MNIST, "cifar10": HAIM_CIFAR}
HERE = Path(__file__).parent


class _Stop(Exception):
    "Raised by the callback when the time budget of a curve is spent."


def base_model(name: str, n_per_class: int, hidden: int, seed: int = 0, max_epochs: int = 20_000, train: bool = True):
    "The `experiment` base model: (model, train01, mean, x model space) — trained unless `train` is False."
    ds = subset(relabel(load_images(name, "train"), GROUPS[name]), n_per_class, seed=seed)
    x, y, mu = to_model_space(ds)
    model = homogeneous_mlp(x[0].numel(), (hidden, hidden), seed=seed)
    if train:
        rep = train_homogeneous(model, x, y, lr=0.01, max_epochs=max_epochs, strict=False, log_every=0)
        print(f"  {name} h={hidden} n={len(ds)}: trained {rep.epochs} epochs in {rep.seconds:.1f}s, converged={rep.converged}", flush=True)
    return model, ds.floats(), mu, x, y


def time_iters(model, m, shape, hp, iters=50, seed=0) -> float:
    "Seconds per iteration of `reconstruct` (no logging), after a 2-iteration warm-up."
    reconstruct(model, m, shape, iters=2, seed=seed, allow_unconverged=True, **hp)
    rec = reconstruct(model, m, shape, iters=iters, seed=seed, allow_unconverged=True, **hp)
    return rec.seconds / iters


def curve(model, train01, mu, hp, iters, budget, log_every, seed=0) -> tuple[list, str]:
    "Rows (iter, kkt, best10_ssim, opt_seconds) every `log_every` iterations; status 'done' | 'budget' | 'diverged@it'."
    m = 2 * len(train01)
    f = functional_forward(model, hp["relu_alpha"])
    labels = torch.ones(m); labels[: m // 2] = -1                      # reconstruct's default labels
    rows, clock = [], {"opt": 0.0, "t": time.perf_counter()}
    def cb(it, x, lam):
        clock["opt"] += time.perf_counter() - clock["t"]               # optimisation time since the last callback
        s = reconstruction_score(train01, x.cpu(), mu, k=10).best_k
        kkt = kkt_residual(model, f, x, lam, labels).item()           # the same residual reconstruct logs (recomputed: it
        rows.append({"iter": it, "kkt": kkt, "best10_ssim": s,         #  survives a budget stop, which loses the history)
                     "opt_seconds": clock["opt"], "lam_mean": lam.mean().item()})
        if clock["opt"] > budget: raise _Stop
        clock["t"] = time.perf_counter()
        return {"best10_ssim": s}
    status = "done"
    try:
        reconstruct(model, m, tuple(train01.shape[1:]), iters=iters, seed=seed, log_every=log_every, callback=cb, **hp)
    except _Stop:
        status = "budget"
    except FloatingPointError as e:
        status = f"diverged@{str(e).split('iteration ')[-1].split(';')[0]}"
    return rows, status


def plateau_iter(it: np.ndarray, s: np.ndarray, frac: float = 0.95) -> int:
    "First logged iteration at which SSIM has made `frac` of its largest gain over the start."
    gain = s.max() - s[0]
    if gain <= 0: return int(it[0])
    return int(it[np.argmax(s >= s[0] + frac * gain)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5000); ap.add_argument("--budget", type=float, default=150.0)
    ap.add_argument("--log-every", type=int, default=50); ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--datasets", default="mnist,cifar10"); ap.add_argument("--settings", default="paper,lr3,lr10")
    ap.add_argument("--big", action="store_true"); ap.add_argument("--out", default=str(HERE / "reconstruct_convergence"))
    ap.add_argument("--seed", type=int, default=0, help="seed of the training subset, model and candidates (experiment's seed)")
    ap.add_argument("--append", action="store_true", help="merge into the existing --out files (same dataset+setting replaced)")
    a = ap.parse_args()
    if a.append:
        tmp = a.out + "_new"; main_run(a, tmp); merge(a.out, tmp)
        for ext in (".csv", ".json", ".png"): Path(tmp + ext).unlink(missing_ok=True)
    else:
        main_run(a, a.out)


def merge(out: str, new: str):
    "Replace/add the curves of run `new` in the files of run `out` (rows keyed by dataset+setting; summaries by setting)."
    old_df, new_df = pd.read_csv(out + ".csv"), pd.read_csv(new + ".csv")
    keys = set(zip(new_df.dataset, new_df.setting))
    df = pd.concat([old_df[[k not in keys for k in zip(old_df.dataset, old_df.setting)]], new_df], ignore_index=True)
    df.to_csv(out + ".csv", index=False)
    so, sn = json.loads(Path(out + ".json").read_text()), json.loads(Path(new + ".json").read_text())
    for name, info in sn["datasets"].items():
        d = so["datasets"].setdefault(name, {"settings": {}})
        d["settings"].update(info["settings"])
        d.setdefault("extra_runs", []).append({k: v for k, v in info.items() if k != "settings"} | {"budget_s": sn["budget_s"],
                                                                                                 "iters": sn["iters"]})
    Path(out + ".json").write_text(json.dumps(so, indent=1))
    plot(df, out + ".png")


def main_run(a, out: str):
    torch.set_num_threads(a.threads)
    rows, summary = [], {"threads": a.threads, "torch": torch.__version__, "iters": a.iters, "budget_s": a.budget,
                         "log_every": a.log_every, "seed": a.seed, "datasets": {}}
    for name in a.datasets.split(","):
        print(name, flush=True)
        model, train01, mu, x, _ = base_model(name, 50, 256, seed=a.seed)
        m, shape = 2 * len(train01), tuple(train01.shape[1:])
        base = time_iters(model, m, shape, HPARAMS[name])
        info = {"baseline_s_per_iter": base, "settings": {}}
        print(f"  baseline (paper hparams, h=256, n=100, 50 iters): {base * 1e3:.1f} ms/iter", flush=True)
        for st in a.settings.split(","):
            mult = 1.0 if st == "paper" else float(st[2:])
            hp = {**HPARAMS[name], "lr": HPARAMS[name]["lr"] * mult}
            r, status = curve(model, train01, mu, hp, a.iters, a.budget, a.log_every, seed=a.seed)
            d = pd.DataFrame(r)
            n_it = int(d["iter"].iloc[-1]) if len(d) else 0
            spi = d["opt_seconds"].iloc[-1] / max(n_it, 1) if len(d) else np.nan
            it, s = d["iter"].to_numpy(), d["best10_ssim"].to_numpy()
            res = {"lr": hp["lr"], "status": status, "iters_run": n_it, "s_per_iter": spi, "ratio_to_baseline": spi / base,
                   "ssim_init": float(s[0]), "ssim_max": float(s.max()), "ssim_last": float(s[-1]),
                   "iter_ssim_max": int(it[s.argmax()]), "plateau_iter_95": plateau_iter(it, s),
                   "ssim_at_600": float(s[it <= 600][-1]), "kkt_init": float(d["kkt"].iloc[0]), "kkt_last": float(d["kkt"].iloc[-1])}
            info["settings"][st] = res
            print(f"  {st}: {json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()})}", flush=True)
            rows += [{"dataset": name, "setting": st, "status": status, "hidden": 256, "n_train": m // 2, "lr": hp["lr"], **row}
                     for row in r]
            pd.DataFrame(rows).to_csv(out + ".csv", index=False)
        info["baseline_s_per_iter_end"] = time_iters(model, m, shape, HPARAMS[name])     # load drift check
        if a.big:
            bm, btr, bmu, bx, by = base_model(name, 250, 1000, train=False)
            t0 = time.perf_counter(); rep = train_homogeneous(bm, bx, by, lr=0.01, max_epochs=20, strict=False, log_every=0)
            ep_s = (time.perf_counter() - t0) / rep.epochs
            big = time_iters(bm, 2 * len(btr), tuple(btr.shape[1:]), HPARAMS[name], iters=5)
            info["big"] = {"hidden": 1000, "n_train": len(btr), "s_per_iter": big, "ratio_to_baseline": big / base,
                           "train_s_per_epoch": ep_s}
            print(f"  big (h=1000, n={len(btr)}): {big:.3f} s/iter ({big / base:.1f}x baseline), training {ep_s:.3f} s/epoch", flush=True)
        summary["datasets"][name] = info
        Path(out + ".json").write_text(json.dumps(summary, indent=1))
    plot(pd.DataFrame(rows), out + ".png")


def plot(df: pd.DataFrame, path: str):
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(df["dataset"]))
    fig, axs = plt.subplots(2, len(names), figsize=(5 * len(names), 6), squeeze=False)
    for j, name in enumerate(names):
        for st, d in df[df.dataset == name].groupby("setting", sort=False):
            status = d["status"].iloc[0] if "status" in d else "done"
            lbl = f"{st} (lr {d.lr.iloc[0]:.3g})" + (f", diverged at iteration {status.split('@')[1]}" if status.startswith("div") else "")
            mk = "o" if len(d) == 1 else None                                  # a run that diverged before its 2nd log
            axs[0, j].plot(d["iter"], d["kkt"], marker=mk, label=lbl); axs[1, j].plot(d["iter"], d["best10_ssim"], marker=mk, label=lbl)
        axs[0, j].set_yscale("log"); axs[0, j].set_title(f"{name}: KKT residual (h=256, n=100)")
        axs[1, j].set_title(f"{name}: best-10 SSIM"); axs[1, j].set_xlabel("iteration")
        for ax in axs[:, j]: ax.axvline(600, color="grey", ls=":", lw=1)          # the current `cpu` scale's 600 iterations
        axs[0, j].legend(fontsize=8); axs[1, j].legend(fontsize=8)
    fig.tight_layout(); fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
