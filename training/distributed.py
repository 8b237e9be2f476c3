"""Training on more than one machine: ``tf.distribute.MultiWorkerMirroredStrategy`` set up by ``TF_CONFIG``.

``TF_CONFIG`` (set by ``training.launch`` on 127.0.0.1, or by the cluster, e.g. the Kubernetes Job in
``deploy/``) names every worker and this process's index. Without it, or with a single worker,
training runs exactly as before on the default strategy. With it, every worker builds the same
model under the strategy, reads its own share of the shard files, and the gradients are
all-reduced each step, so all workers hold identical weights; only the chief (worker 0) evaluates,
exports, and writes to MLflow.
"""

from __future__ import annotations

import json
import os


def _config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    return json.loads(raw) if raw else {}


def worker_count() -> int:
    cluster = _config().get("cluster", {})
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker")) or 1


def worker_index() -> int:
    """This worker's position among all workers (the chief, when there is one, is 0)."""
    config = _config()
    task = config.get("task", {})
    if not task:
        return 0
    has_chief = bool(config.get("cluster", {}).get("chief"))
    if task.get("type") == "chief":
        return 0
    return int(task.get("index", 0)) + (1 if has_chief else 0)


def is_chief() -> bool:
    return worker_index() == 0


def strategy():
    """The multi-worker strategy when ``TF_CONFIG`` names more than one worker, else the default one.

    Must be called before any other TensorFlow op: the collective runtime starts with it.
    """
    import tensorflow as tf

    if worker_count() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def prepare_keras_fit(model, strategy, batch) -> None:
    """Work around Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585).

    Keras builds the compiled model on a first batch reduced across workers (``strategy.reduce`` of
    a per-replica batch, which fails in eager mode) and reduces scalar step logs over ``axis=0``
    (invalid for a scalar). Building it here on a local example batch under the strategy's scope, and
    reducing scalars with ``axis=None``, is what Keras means to do. Call it after ``compile``; a no-op
    on one worker.

    Batch normalisation is switched to statistics over the global batch (``synchronized``): each
    worker would otherwise keep its own moving averages, and the workers would end with different
    weights, none of them what one worker with the global batch computes.
    """
    if worker_count() <= 1:
        return
    import keras
    from keras.src.backend.tensorflow import trainer

    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True

    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    original = getattr(trainer.reduce_per_replica, "__wrapped__", trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if trainer._collective_all_reduce_multi_worker(strategy) and reduction in ("auto", "mean"):

            def mean(v):
                return strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0)

            import tensorflow as tf

            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica.__wrapped__ = original
    trainer.reduce_per_replica = reduce_per_replica


def weights_digest(model) -> str:
    """A short hash of every weight: equal on all workers when they trained in lockstep."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]
