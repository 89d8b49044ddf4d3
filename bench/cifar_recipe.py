"""Clean CIFAR-10 test accuracy against seconds per model: the fast recipe beside today's `cpu` protocol, in one process.

Baseline: Be Persistent's `cpu` protocol for its ResNet block (ResNet-18 at width 16 on 640 images, flips, batch 128,
lr 0.05, trained until it fits 97 % of its images within 30 epochs). Ours: `shortcut_nb.train.FAST_CIFAR_RECIPE`
(batch 256, Nesterov one-cycle to 0.4, label smoothing 0.2, ±2-px shifts + flips) on a narrow ResNet-9 (`resnet9_w16`)
and on the same ResNet-18 (width 16), on 10,000 images for a few epochs (and all 50,000 with --full). Every row reports
clean test accuracy (2,000 test images), its fit (accuracy on its own training images, eval mode: the other half of
the regime), seconds per model, images/s, and the trainer's GFLOP/s as a share of a dense matmul timed in this process.

    python bench/cifar_recipe.py [--threads 2] [--full] [--out bench/cifar_recipe]
"""
import argparse, json, time
from pathlib import Path
import torch
from shortcut_nb.data import load_images, subset
from shortcut_nb.train import TrainConfig, FAST_CIFAR_RECIPE, train_model, evaluate
from train_throughput import matmul_gflops, train_flops_per_image


def rows(full: bool) -> list[dict]:
    fast = lambda epochs: TrainConfig(**{**FAST_CIFAR_RECIPE, "epochs": epochs})
    out = [dict(name="today: Be Persistent cpu, ResNet-18 (width 16), 640 images, until 97 % fit", arch="resnet18_w16", per_class=64,
                cfg=TrainConfig(epochs=30, batch_size=128, lr=0.05, augment="flip", stop_at_train_acc=0.97)),
           dict(name="fast recipe, ResNet-9 (width 16), 10,000 images, 4 epochs", arch="resnet9_w16", per_class=1000, cfg=fast(4)),
           dict(name="fast recipe, ResNet-9 (width 16), 10,000 images, 8 epochs", arch="resnet9_w16", per_class=1000, cfg=fast(8)),
           dict(name="fast recipe, ResNet-18 (width 16), 10,000 images, 8 epochs", arch="resnet18_w16", per_class=1000, cfg=fast(8))]
    if full: out.append(dict(name="fast recipe, ResNet-9 (width 16), 50,000 images, 3 epochs", arch="resnet9_w16", per_class=-1, cfg=fast(3)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--full", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).with_name("cifar_recipe")))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train_all, test_all = load_images("cifar10", "train"), load_images("cifar10", "test")
    test = subset(test_all, 200, seed=3)
    peak = matmul_gflops(torch.device("cpu"))
    results = []
    for r in rows(a.full):
        train = train_all if r["per_class"] < 0 else subset(train_all, r["per_class"], seed=0)
        t0 = time.perf_counter()
        res = train_model(r["arch"], train, r["cfg"], progress=False)
        seconds = time.perf_counter() - t0
        images = len(train) // r["cfg"].batch_size * r["cfg"].batch_size * res.epochs_run
        gflops = images / res.seconds * train_flops_per_image(r["arch"], 64, torch.device("cpu")) / 1e9
        row = {"run": r["name"], "arch": r["arch"], "train_images": len(train), "epochs": res.epochs_run,
               "test_acc_pct": round(100 * evaluate(res.model, test)["acc"], 2), "fit_pct": round(100 * res.fit_acc, 2),
               "seconds": round(seconds, 1), "images_per_s": round(images / res.seconds), "gflops": round(gflops, 1),
               "share_of_matmul": round(gflops / peak, 3)}
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]
    for row in results[1:]:
        row["accuracy_gain_pts"] = round(row["test_acc_pct"] - base["test_acc_pct"], 2)
        row["seconds_ratio"] = round(row["seconds"] / base["seconds"], 2)
    summary = {"machine": f"{torch.get_num_threads()} CPU threads", "matmul_gflops": round(peak, 1), "rows": results,
               "date": time.strftime("%Y-%m-%d")}
    Path(a.out + ".json").write_text(json.dumps(summary, indent=1))
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for row in results:
        ax.scatter(row["seconds"], row["test_acc_pct"], s=40)
        ax.annotate(f"{row['arch']}, {row['train_images']:,} img, {row['epochs']} ep\nfit {row['fit_pct']:.0f} %",
                    (row["seconds"], row["test_acc_pct"]), fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.set_xlabel("seconds per model (this machine, this run)"); ax.set_ylabel("clean test accuracy (%)")
    ax.set_title(f"CIFAR-10: accuracy against time per model ({summary['machine']}, matmul {peak:.0f} GFLOP/s)", fontsize=9)
    fig.savefig(a.out + ".png", dpi=110, bbox_inches="tight")
    print(f"wrote {a.out}.json and {a.out}.png")


if __name__ == "__main__":
    main()
