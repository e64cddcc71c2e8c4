"""Run as a script: one update on 1 device vs MirroredStrategy over 2 logical CPUs; prints JSON."""
import json
import sys

from wavegrad_tf.trainer import Trainer, split_cpu

split_cpu(2)  # before any TF op

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wavegrad_tf import data, train_lib  # noqa: E402
from wavegrad_tf.config import load_config  # noqa: E402
from wavegrad_tf.runs import checkpoint_variables  # noqa: E402

config, corpus_dir, work = sys.argv[1:4]
cfg = load_config(config, ["train.batch_size=4", "train.ema_decay=0.5"])
clips = data.prepare_corpus(corpus_dir, cfg, f"{work}/cache").clips
cfg = train_lib.measure_prior(cfg, clips)
batches = list(data.dataset(clips, cfg, 4, seed=5).take(3))
single = Trainer(cfg, f"{work}/single")
mirrored = Trainer(cfg, f"{work}/mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
ref = checkpoint_variables(single.network)
for name, var in checkpoint_variables(mirrored.network).items():
    var.assign(ref[name])
    mirrored.ema[name].assign(ref[name])
initial = {k: np.asarray(v).copy() for k, v in ref.items()}
losses = []
for batch in batches:
    dist = next(iter(mirrored.strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch))))
    losses.append((float(single.train_step(batch)["loss"]), float(mirrored.train_step(dist)["loss"])))
diff = max(float(np.max(np.abs(np.asarray(v) - np.asarray(ref[k]))))
           for k, v in checkpoint_variables(mirrored.network).items())
average_diff = max(float(np.max(np.abs(v.numpy() - single.ema[k].numpy()))) for k, v in mirrored.ema.items())
moved = max(float(np.max(np.abs(np.asarray(v) - initial[k]))) for k, v in ref.items())
print(json.dumps({"replicas": mirrored.strategy.num_replicas_in_sync, "losses": losses, "max_weight_diff": diff,
                  "max_average_diff": average_diff, "moved": moved, "steps": [single.global_step, mirrored.global_step]}))
