"""A trained CNN rebuilt with a second output, an L2-normalised embedding, without retraining.

The embedding of a drawing ``x`` (chosen by measuring few-shot accuracy on the 267 categories the
78-class CNN never trained on; alternatives and figures in docs/models.md):

    c(x) = [ l2(pre(x)), l2(flat(x)) ]       the penultimate layer before its ReLU (256) and the
                                             flattened last conv block (1,152), each unit-norm
    e(x) = l2( (c(x) + c(flip(x))) @ P )     averaged with the mirrored drawing (a cat facing left
                                             is still a cat), projected on the top principal axes P
                                             of the *trained* classes' training drawings

Both layers carry what a drawing looks like beyond the 78 answers; the ReLU and the softmax throw
part of it away. The projection keeps the stored example banks small. The probabilities are
computed exactly as before, from the unflipped drawing, so the model is a drop-in replacement.

What is served is int8 (``training.quantize``): the network once, with ``pre`` and ``flat`` as
outputs (``for_quantisation``), and the rest of ``e(x)`` built around it. A CNN that already has
the embedding is derived again the same way, its float network unchanged: new int8 files only.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from models.card import EmbeddingSpec, Files, ModelCard, read_card
from models.loading import latest_version
from models.runtime import onnx_runner, probabilities_output
from training import prepare, quantize, shards
from training.export import convert_to_onnx, new_version, write_card, write_model_files

EMBEDDING_OUTPUT = "embedding"
PROBABILITIES_OUTPUT = "probabilities"
EMBEDDING_DIM = 256
SOURCE = "flip-averaged [l2(penultimate Dense pre-activation), l2(flattened last conv block)], PCA-projected"
NORMALISATION = "unit L2 norm (cosine similarity = dot product)"
# Float32 noise between two graphs computing the same thing; a larger difference keeps the old version.
SAME_PROBABILITIES = 1e-5
PROBABILITIES_FILE = "probabilities.onnx"
EMBEDDING_FILE = "embedding.onnx"
FEATURES = ("pre", "flat")  # in the order ``_concat`` puts them


@keras.saving.register_keras_serializable(package="deepdraw")
class L2Normalize(layers.Layer):
    def call(self, x):
        return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), 1e-6)


@keras.saving.register_keras_serializable(package="deepdraw")
class FlipHorizontal(layers.Layer):
    def call(self, x):
        return ops.flip(x, axis=2)  # (batch, rows, columns, channels): mirror the columns


def _backbone(model: keras.Model) -> keras.Model:
    """The CNN up to its features: ``flat`` (last conv block) and ``pre`` (penultimate, before ReLU)."""
    dense = model.get_layer("dense")
    flat = model.get_layer("flatten").output
    linear = layers.Dense(dense.units, name="dense_linear")
    pre = linear(flat)
    linear.set_weights(dense.get_weights())
    return keras.Model(model.inputs, [flat, pre], name="backbone")


def _concat(flat, pre):
    return layers.Concatenate()([L2Normalize()(pre), L2Normalize()(flat)])


def for_quantisation(derived: keras.Model) -> keras.Model:
    """``derived`` (``with_embedding``) run once: the probabilities, and ``FEATURES`` before their
    normalisation. The input's rescaling is folded into the first convolution's weights (exact in
    real numbers), so no float multiply runs on every pixel before the int8 kernels."""
    backbone = derived.get_layer("backbone")
    x = keras.Input(backbone.inputs[0].shape[1:], name=backbone.inputs[0].name)
    h, scale, flat = x, None, None
    for layer in backbone.layers[1:]:  # a chain: input, rescaling, conv blocks, flatten, dense_linear
        if isinstance(layer, layers.Rescaling) and layer.offset == 0:
            scale = layer.scale
            continue
        if scale is not None and isinstance(layer, layers.Conv2D):
            folded = layers.Conv2D.from_config(layer.get_config())
            h = folded(h)
            kernel, *rest = layer.get_weights()
            folded.set_weights([kernel * scale, *rest])
            scale = None
            continue
        h = layer(h)
        flat = h if isinstance(layer, layers.Flatten) else flat
    probs = derived.get_layer(PROBABILITIES_OUTPUT)(derived.get_layer("dense_relu")(h))
    return keras.Model(x, {PROBABILITIES_OUTPUT: probs, "pre": h, "flat": flat})


def feature_model(model: keras.Model) -> keras.Model:
    """``c(x) + c(flip(x))`` before the projection: what the principal axes are fitted on."""
    backbone = _backbone(model)
    x = model.inputs[0]
    summed = layers.Add()([_concat(*backbone(x)), _concat(*backbone(FlipHorizontal()(x)))])
    return keras.Model(x, summed)


def principal_axes(features: np.ndarray, dim: int = EMBEDDING_DIM) -> np.ndarray:
    """(features, dim): the top ``dim`` principal axes of ``features`` (rows: drawings)."""
    features = features / np.linalg.norm(features, axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(features - features.mean(axis=0), full_matrices=False)
    axes = vt[:dim].T.astype(np.float32)
    # Fewer drawings than dimensions (a tiny run) leave no more axes: the rest project to zero.
    return np.pad(axes, ((0, 0), (0, dim - axes.shape[1])))


def with_embedding(model: keras.Model, axes: np.ndarray) -> keras.Model:
    """The deepdraw CNN with outputs ``probabilities`` (unchanged) and ``embedding`` (module docstring)."""
    backbone = _backbone(model)
    head = model.get_layer(PROBABILITIES_OUTPUT)
    x = model.inputs[0]
    flat, pre = backbone(x)
    probs = head(layers.ReLU(name="dense_relu")(pre))
    flat_m, pre_m = backbone(FlipHorizontal(name="flip")(x))
    summed = layers.Add()([_concat(flat, pre), _concat(flat_m, pre_m)])
    project = layers.Dense(axes.shape[1], use_bias=False, name="projection")
    emb = L2Normalize(name=EMBEDDING_OUTPUT)(project(summed))
    project.set_weights([axes])
    return keras.Model(x, {PROBABILITIES_OUTPUT: probs, EMBEDDING_OUTPUT: emb}, name=model.name + "_embedding")


def derive(cnn_dir: Path, data_dir: Path, store: Path, pca_drawings: int = 20_000, replace: bool = False) -> Path:
    """Export ``cnn_dir``'s CNN with the embedding as a new CNN version; its card copies the old one's
    figures and says how it was made. With ``replace``, the old folder goes if the probabilities match."""
    old = read_card(cnn_dir)
    model = keras.saving.load_model(cnn_dir / "model.keras")
    data = shards.ShardSet(prepare.ensure_shards(data_dir, "bitmap", old.classes), "bitmap", old.classes)
    if data.classes != old.classes:
        raise ValueError(f"{data_dir} does not hold the classes of {cnn_dir}")
    train_x, _ = data.arrays("train")
    rng = np.random.default_rng(0)
    sample = train_x[np.sort(rng.choice(len(train_x), min(pca_drawings, len(train_x)), replace=False))]
    if old.embedding is None:
        features = feature_model(model).predict(sample[..., None].astype(np.float32), batch_size=512, verbose=0)
        derived = with_embedding(model, principal_axes(features))
        how = f"the same weights with an embedding output (principal axes from {len(sample)} training drawings)"
    else:
        derived = model
        how = "the same float network and embedding; its int8 files made again"

    out_dir = store / "cnn" / new_version()
    write_model_files(derived, out_dir)
    test, labels = data.arrays("test")
    chosen = rng.choice(len(sample), min(quantize.CALIBRATION_DRAWINGS, len(sample)), replace=False)
    calibration = sample[chosen][..., None].astype(np.float32)
    return finish(cnn_dir, out_dir, derived, test[..., None].astype(np.float32), labels, calibration, how, replace)


def _probabilities(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs[probabilities_output(list(outputs))]


def finish(
    cnn_dir: Path,
    out_dir: Path,
    derived: keras.Model,
    test: np.ndarray,
    labels: np.ndarray,
    calibration: np.ndarray,
    how: str,
    replace: bool,
) -> Path:
    """Compare the float probabilities of both versions, quantise, then check the copy and write the card."""
    old = read_card(cnn_dir)
    batches = [test[i : i + 1024] for i in range(0, len(test), 1024)]
    before, after = (onnx_runner(d / "model.onnx", 4, len(old.classes)) for d in (cnn_dir, out_dir))
    diff = max(float(np.abs(_probabilities(before(x)) - _probabilities(after(x))).max()) for x in batches)
    fields = old.model_dump(exclude={"version", "created", "preprocessing_version", "framework_versions", "files"})
    fields.pop("onnx_check")
    fields["embedding"] = EmbeddingSpec(
        output=EMBEDDING_OUTPUT, dim=EMBEDDING_DIM, source=SOURCE, normalisation=NORMALISATION
    )
    fields["notes"] = [
        *old.notes,
        f"derived from cnn {old.version} without retraining (training.embedding): {how}; metrics, data and "
        f"training are that model's. Probabilities vs cnn {old.version} (both ONNX copies) on the {len(test)} "
        f"test bitmaps: max abs diff {diff:.1e}",
    ]
    if (cnn_dir / "report").is_dir():
        shutil.copytree(cnn_dir / "report", out_dir / "report")
    head = quantize.EmbeddingHead(FEATURES, derived.get_layer("projection").get_weights()[0], EMBEDDING_OUTPUT)
    with tempfile.TemporaryDirectory() as tmp:
        saved, network = Path(tmp) / "saved_model", Path(tmp) / "network.onnx"
        for_quantisation(derived).export(str(saved), verbose=False)
        convert_to_onnx(saved, network)
        fields["quantization"] = quantize.quantize(
            network,
            head,
            out_dir / "model.onnx",
            out_dir / PROBABILITIES_FILE,
            out_dir / EMBEDDING_FILE,
            calibration,
            test,
            labels,
            "test",
            len(old.classes),
        )
    files = Files(onnx_probabilities=PROBABILITIES_FILE, onnx_embedding=EMBEDDING_FILE)
    write_card(out_dir, fields, batches, files=files)
    if replace and diff <= SAME_PROBABILITIES:
        shutil.rmtree(cnn_dir)
    return out_dir


def carry_ensembles(store: Path, old_cnn: str, new_cnn: str, replace: bool = False) -> list[Path]:
    """New versions of the ensembles chosen for ``old_cnn``, naming ``new_cnn`` instead: its probabilities
    are the same, so their weights and figures still hold (``training.compare`` re-measures them)."""
    written = []
    for folder in sorted((store / "ensemble").glob("*/card.json")):
        card = read_card(folder.parent)
        if card.ensemble is None or card.ensemble.members.get("cnn") != old_cnn:
            continue
        out_dir = store / "ensemble" / new_version()
        out_dir.mkdir(parents=True)
        if (folder.parent / "report").is_dir():
            shutil.copytree(folder.parent / "report", out_dir / "report")
        fields = card.model_dump(exclude={"version", "created", "ensemble", "notes"})
        fields["architecture"] = card.architecture.replace(f"cnn {old_cnn}", f"cnn {new_cnn}")
        spec = card.ensemble.model_copy(update={"members": {**card.ensemble.members, "cnn": new_cnn}})
        note = f"ensemble {card.version} carried over to cnn {new_cnn} (derived from cnn {old_cnn}, same probabilities)"
        ModelCard(
            **fields,
            version=out_dir.name,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            ensemble=spec,
            notes=[*card.notes, note],
        ).write(out_dir)
        if replace:
            shutil.rmtree(folder.parent)
        written.append(out_dir)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cnn_dir", type=Path, nargs="?", help="a CNN version folder (default: the newest in the store)")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/quickdraw"))
    parser.add_argument("--model-store", type=Path, default=Path("model_store"))
    parser.add_argument("--replace", action="store_true", help="delete the old version if it gives the same answers")
    args = parser.parse_args(argv)
    args.cnn_dir = args.cnn_dir or latest_version(args.model_store / "cnn")
    out_dir = derive(args.cnn_dir, args.data_dir, args.model_store, replace=args.replace)
    print(out_dir)
    replaced = not args.cnn_dir.exists()
    for path in carry_ensembles(args.model_store, args.cnn_dir.name, out_dir.name, replace=replaced):
        print(path)


if __name__ == "__main__":
    main()
