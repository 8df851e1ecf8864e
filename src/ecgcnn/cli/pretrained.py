"""``ecgcnn pretrained list|pack``: the shipped models and their recorded figures; packing a recipe run into the
package."""

from __future__ import annotations

import argparse
import importlib
import os

from ..core.errors import EcgcnnError
from ..runtimes.pretrained import read_manifest, resolve_model_path
from ._parser import NONNEGATIVE_INT, add_actions, add_data_dir, add_subcommand

EXAMPLES = ("ecgcnn pretrained list",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = add_actions(parser, "pretrained_command", "ACTION")
    add_subcommand(actions, "list", "show the shipped models, their files, sizes and recorded per-class test recall",
                   ("ecgcnn pretrained list",))
    k = add_subcommand(actions, "pack", "copy a recipe run's best and edge files into the package, score them, "
                                        "write the manifest", ("ecgcnn pretrained pack --from outputs/seed0 --seed 0",))
    k.add_argument("--from", dest="run_root", default=None, help="a pipeline seed directory, e.g. outputs/seed0")
    k.add_argument("--seed", type=NONNEGATIVE_INT, default=None, help="the seed of that run")
    k.add_argument("--shipped", action="store_true",
                   help="instead: measure the shipped files again at this commit (same weights; their metadata "
                        "rewritten to what is true of them)")
    k.add_argument("--noise-file", default=None, help="NSTDB noise for the stress rows (default: as ecgcnn stress)")
    add_data_dir(k)


def run(args) -> int:
    if args.pretrained_command == "pack":
        # packing trains nothing but scores and stress-tests with the whole stack: imported only here, so that
        # `pretrained list` stays light
        if args.shipped == (args.run_root is not None) or (args.run_root is not None) != (args.seed is not None):
            raise EcgcnnError("pretrained pack: give --from DIR --seed N, or --shipped")
        pack = importlib.import_module("ecgcnn.workflows.pack")
        if args.shipped:
            pack.repack_shipped(data_dir=args.data_dir, noise_file=args.noise_file)
        else:
            pack.pack_pretrained(args.run_root, args.seed, data_dir=args.data_dir, noise_file=args.noise_file)
        return 0
    manifest = read_manifest()
    directory = resolve_model_path("pretrained:edge").parent if manifest.get("models") else None
    for name, entry in manifest["models"].items():
        trained = f", trained at {manifest['trained_at']}" if manifest.get("trained_at") else ""
        print(f"pretrained:{name}  recipe {entry['recipe']}, seed {entry['seed']}, packed at commit "
              f"{manifest.get('commit')}{trained}")
        for fmt, info in entry["files"].items():
            test = info["test"]
            recall = test.get("per_class_recall")
            recall_text = ("  recall per class " + " ".join(f"{r:.2f}" for r in recall)) if recall else ""
            print(f"  {fmt:17s} {os.path.join(str(directory), info['file'])}  {info['bytes'] / 1024:,.0f} KiB  "
                  f"test accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}{recall_text}")
            stress = info.get("stress")
            if stress:
                print(f"  {'':17s} stress ({stress['beats']} test beats): re-cut from a recording "
                      f"{stress['recut_accuracy']:.4f}, worst NSTDB noise at 12 dB "
                      f"{stress['noise_12db_worst_accuracy']:.4f}  ({stress['command']})")
    return 0
