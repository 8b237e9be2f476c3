"""The CNN's embedding, the prototype bank and the one ranking over every category."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.answer import PROTOTYPE, TAUGHT, TRAINED
from models.card import ModelStoreError
from models.inputs import Inputs
from models.loading import latest_version, load_store
from models.network import load_network
from models.prototypes import Bank, PrototypeModel, normalise, rank_all
from sketch.raster import strokes_to_bitmap
from sketch.strokes import parse_strokes
from tests.utils.fixtures import FIXTURES, REPO, read_ndjson

STORE = REPO / "model_store"


@pytest.fixture(scope="module")
def store():
    return load_store(STORE)


@pytest.fixture(scope="module")
def held_out():
    """Real drawings of untrained categories from the prototypes' *test* split (never in the bank)."""
    lines = read_ndjson(FIXTURES / "prototype_test_split.ndjson.gz")
    return np.stack([strokes_to_bitmap(parse_strokes(d["drawing"])) for d in lines]).astype(np.float32), lines


def test_bank_similarity_is_the_brute_force_one():
    rng = np.random.default_rng(0)
    emb, queries = normalise(rng.normal(size=(11, 8))), normalise(rng.normal(size=(4, 8)))
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    bank = Bank.build(["a", "b", "c"], emb, labels)
    means = np.stack([normalise(emb[labels == c].mean(0)) for c in range(3)])
    np.testing.assert_allclose(bank.similarity(queries, "mean"), queries @ means.T, atol=1e-6)
    knn = bank.similarity(queries, "knn", 3)
    for c in range(3):
        sims = np.sort(queries @ emb[labels == c].T, axis=1)[:, ::-1][:, :3]  # class b has only 2: their mean
        np.testing.assert_allclose(knn[:, c], sims.mean(1), atol=1e-6)
    assert Bank.empty(8).similarity(queries, "knn", 3).shape == (4, 0)


def test_rank_all_is_a_distribution_that_keeps_each_kind_in_order():
    probs = np.array([[0.7, 0.2, 0.1]], np.float32)
    sims = np.array([[0.9, 0.1]], np.float32)
    p = rank_all(probs, sims, temperature=0.05, offset=18.0)
    assert p.shape == (1, 5) and abs(p.sum() - 1) < 1e-5
    assert p[0, 0] > p[0, 1] > p[0, 2] and p[0, 3] > p[0, 4]
    assert p[0, 3] > p[0, 0]  # a very similar prototype class outranks a lukewarm trained one


def test_cnn_exports_a_unit_embedding_next_to_the_same_probabilities():
    cnn = load_network(latest_version(STORE / "cnn"))
    spec = cnn.card.embedding
    assert spec is not None and spec.output == "embedding"
    x = np.load(FIXTURES / "bitmaps_test_split.npz")["x"][:32].reshape(-1, 28, 28).astype(np.float32)
    out = cnn.outputs(Inputs(bitmaps=x))
    assert set(out) == {"probabilities", "embedding"}
    # predict runs the int8 probabilities file; the int8 file with the embedding too gives those same
    # probabilities, and an embedding within int8 rounding of the float graph's.
    assert cnn.card.files.onnx_probabilities and cnn.run_probabilities is not None and cnn.card.quantization
    assert cnn.card.files.onnx_embedding and cnn.run_embedding is not None
    probabilities, embedding = cnn.probabilities_and_embedding(Inputs(bitmaps=x))
    np.testing.assert_array_equal(probabilities, cnn.probabilities(Inputs(bitmaps=x)))
    np.testing.assert_array_equal(embedding, cnn.embed(Inputs(bitmaps=x)))
    assert (embedding * out["embedding"]).sum(axis=1).min() > 0.999
    assert cnn.card.quantization.embedding_cosine_min > 0.999
    # It answers for the drawing and its mirror image together, like the embedding.
    assert cnn.card.quantization.mirrored
    np.testing.assert_array_equal(cnn.probabilities(Inputs(bitmaps=x[:, :, ::-1].copy())), probabilities)
    mirrored = (out["probabilities"] + cnn.outputs(Inputs(bitmaps=x[:, :, ::-1].copy()))["probabilities"]) / 2
    assert (probabilities.argmax(1) == mirrored.argmax(1)).mean() >= 0.9  # the float graph's, within int8
    emb = cnn.embed(Inputs(bitmaps=x))
    assert emb.shape == (32, spec.dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # Averaged with the mirror image by construction: a mirrored drawing has the same embedding.
    np.testing.assert_allclose(cnn.embed(Inputs(bitmaps=x[:, :, ::-1].copy())), emb, atol=1e-5)


def test_the_old_cnn_replaced_by_the_derived_one_is_gone_and_its_figures_are_kept():
    versions = [p for p in (STORE / "cnn").iterdir() if (p / "card.json").is_file()]
    assert len(versions) == 1
    card = json.loads((versions[0] / "card.json").read_text())
    assert card["metrics"]["n"] == card["onnx_check"]["n"] and card["embedding"]["dim"] >= 2
    assert any("derived from cnn" in note and "max abs diff" in note for note in card["notes"])


def test_the_players_model_answers_every_category_with_its_kind(store):
    model = store.by_name["prototypes"]
    assert isinstance(model, PrototypeModel) and store.teachable is model
    cnn = store.by_name["cnn"]
    assert model.classes == cnn.classes and len(set(model.classes)) == 345
    assert model.origins == [TRAINED] * 345 and PROTOTYPE not in model.origins
    challenge = model.card.challenge
    assert sorted(challenge.prompts) == sorted(model.classes) and challenge.recall == sorted(challenge.recall)[::-1]
    assert 0.3 <= challenge.threshold < 1 and challenge.false_i_know_rate <= 0.02


def test_held_out_drawings_of_prototype_categories_are_recognised(store, held_out):
    x, lines = held_out
    model = store.by_name["prototypes"]
    answer = model.predict(Inputs(bitmaps=x))
    probs, classes, kinds = answer.probabilities, answer.classes, answer.origins
    top5 = np.argsort(-probs, axis=1)[:, :5]
    hits = [line["word"] in [classes[i] for i in row] for line, row in zip(lines, top5, strict=True)]
    # Measured on the whole held-out split (bench/every_category.py); these are real drawings.
    assert np.mean(hits) >= 0.6
    assert {kinds[i] for i in probs.argmax(1)} == {TRAINED}


def test_trained_categories_keep_their_answers(store):
    data = np.load(FIXTURES / "bitmaps_test_split.npz")
    x = data["x"].reshape(-1, 28, 28).astype(np.float32)
    truth = np.array([str(data["classes"][i]) for i in data["y"]])

    def right(name: str) -> float:
        answer = store.by_name[name].predict(Inputs(bitmaps=x))
        return float((np.array(answer.classes)[answer.probabilities.argmax(1)] == truth).mean())

    assert right("prototypes") >= right("cnn") - 0.03


def test_taught_classes_join_the_ranking(store):
    model = store.by_name["prototypes"]
    x = np.load(FIXTURES / "pairs" / "cat.npy")[:4].reshape(-1, 28, 28).astype(np.float32)
    dim = model.cnn.card.embedding.dim
    try:
        model.set_taught(["my cat"], model.embed(Inputs(bitmaps=x[:3])), np.zeros(3, int))
        answer = model.predict(Inputs(bitmaps=x[3:]))
        probs, classes, kinds = answer.probabilities, answer.classes, answer.origins
        assert classes[-1] == "my cat" and kinds[-1] == TAUGHT and len(classes) == 346
        assert probs.shape == (1, 346) and abs(probs.sum() - 1) < 1e-5
    finally:
        model.set_taught([], np.zeros((0, dim), np.float32), np.zeros(0, int))
    assert len(model.classes) == 345


def test_prototypes_built_for_another_cnn_are_refused_with_the_reason(tmp_path):
    for kind in ("cnn", "prototypes"):
        src = latest_version(STORE / kind)
        shutil.copytree(src, tmp_path / kind / src.name, ignore=shutil.ignore_patterns("saved_model", "model.keras"))
    card_path = next((tmp_path / "prototypes").glob("*/card.json"))
    card = json.loads(card_path.read_text())
    card["prototypes"]["members"]["cnn"] = "19990101-000000"
    card_path.write_text(json.dumps(card))
    loaded = load_store(tmp_path)
    assert "cnn" in loaded.by_name and "prototypes" not in loaded.by_name
    assert "built with the embedding of cnn 19990101-000000" in loaded.errors["prototypes"]


def test_prototypes_without_their_cnn_are_refused(tmp_path):
    src = latest_version(STORE / "prototypes")
    shutil.copytree(src, tmp_path / "prototypes" / src.name)
    loaded = load_store(tmp_path)
    assert "needs cnn" in loaded.errors["prototypes"] and not loaded.by_name
    with pytest.raises(ModelStoreError, match="not loaded"):
        PrototypeModel.from_card(loaded_card(src), src, {})


def loaded_card(folder):
    from models.network import load_card

    return load_card(folder)
