"""Identical weights held once: a head trained on a loaded encoder reuses the encoder's tensors (real MiniLM)."""

import warnings
from pathlib import Path

import pytest

import specnb
from specnb.backends.weights import MIN_SHARED_BYTES, resident_bytes
from specnb.datasets import BBC_DESCRIPTIONS, bbc_topics


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """Two heads trained on MiniLM (folders), and texts to score."""
    out = tmp_path_factory.mktemp("heads")
    data = bbc_topics(40, seed=1, max_chars=200)
    for seed in (0, 1):
        specnb.specialize("minilm", data, eval=None, seed=seed, alias=f"head-{seed}", out=out / f"head-{seed}",
                          progress=False)
    specnb.registry.clear()
    return out / "head-0", out / "head-1", bbc_topics(12, seed=2, max_chars=200)["text"].tolist()


def _encoder(model):
    """name -> parameter of the BERT encoder and pooler, with a head model's ``bert.`` prefix taken off."""
    return {name.removeprefix("bert."): p for name, p in model.native.named_parameters()
            if not name.startswith("classifier")}


def _mapped(path: Path) -> bool:
    return str(path.resolve()) in Path("/proc/self/maps").read_text()


def _scores(model, texts):
    return [(p.label, p.score) for p in model.predict(texts, task="classify", progress=False)]


def test_a_head_loaded_beside_its_encoder_holds_only_its_head(heads):
    one, two, texts = heads
    specnb.config.share_weights = False
    alone = _scores(specnb.load(one, task="classify", alias="alone"), texts)
    specnb.registry.clear()
    specnb.config.share_weights = True

    base = specnb.load("minilm")
    head = specnb.load(one, task="classify", alias="head")
    encoder, in_head = _encoder(base), _encoder(head)
    assert encoder.keys() == in_head.keys()
    matrices = {name for name, p in encoder.items() if p.numel() * p.element_size() >= MIN_SHARED_BYTES}
    assert len(matrices) == 39  # word and position embeddings, 6 layers x 6 matrices, the pooler
    assert all(in_head[name].data_ptr() == encoder[name].data_ptr() for name in matrices)  # one tensor, not two
    assert all(in_head[name].data_ptr() != p.data_ptr() for name, p in encoder.items() if name not in matrices)
    encoder_bytes = sum(p.numel() * p.element_size() for p in encoder.values())
    assert head.shared_bytes == base.shared_bytes == sum(encoder[name].numel() * 4 for name in matrices)
    assert head.shared_bytes > 0.99 * encoder_bytes  # the norms and biases left out hold under 1 %
    assert head.unique_bytes == head.weight_bytes - head.shared_bytes < 2 * 2**20
    assert not _mapped(one / "model.safetensors")  # the head's own copy of the encoder is let go
    frame = specnb.models().set_index("alias")
    assert frame.at["head", "shared_bytes"] == head.shared_bytes
    assert resident_bytes(list(specnb.registry)) == base.weight_bytes + head.weight_bytes - head.shared_bytes

    # bit-identical tensors: the same answers as the head loaded on its own
    shared = _scores(head, texts)
    assert [label for label, _ in shared] == [label for label, _ in alone]
    assert [score for _, score in shared] == pytest.approx([score for _, score in alone], abs=1e-6)


def test_two_heads_share_the_encoder_and_unloading_keeps_what_the_other_uses(heads):
    one, two, texts = heads
    base = specnb.load("minilm")
    first = specnb.load(one, task="classify", alias="first")
    second = specnb.load(two, task="classify", alias="second")
    assert _encoder(first)["embeddings.word_embeddings.weight"].data_ptr() == \
        _encoder(second)["embeddings.word_embeddings.weight"].data_ptr() == \
        base.native.embeddings.word_embeddings.weight.data_ptr()
    before = _scores(second, texts)
    comparison = specnb.compare("classify", texts, [first, second, "minilm"], label_space=BBC_DESCRIPTIONS,
                                progress=False, store=False)
    assert set(comparison.summary.index) == {"first", "second", "minilm"}

    specnb.unload("minilm")
    specnb.unload("first")
    assert second.shared_bytes == 0 and second.unique_bytes == second.weight_bytes  # all its own now
    assert _scores(second, texts) == before


def test_models_with_other_weights_share_nothing(heads, tmp_path):
    from tiny_models import tiny_bert_classifier

    one, _, _ = heads
    head = specnb.load(one, task="classify", alias="head")
    tiny = specnb.load(tiny_bert_classifier(tmp_path / "tiny"), task="classify", alias="tiny")
    assert head.shared_bytes == tiny.shared_bytes == 0
    assert resident_bytes(list(specnb.registry)) == head.weight_bytes + tiny.weight_bytes


def test_sharing_can_be_turned_off(heads):
    one, _, _ = heads
    specnb.config.share_weights = False
    base = specnb.load("minilm")
    head = specnb.load(one, task="classify", alias="head")
    assert head.shared_bytes == base.shared_bytes == 0
    assert _encoder(head)["embeddings.word_embeddings.weight"].data_ptr() != \
        base.native.embeddings.word_embeddings.weight.data_ptr()


def test_the_budget_counts_shared_weights_once(heads):
    one, two, _ = heads
    base = specnb.load("minilm")
    first = specnb.load(one, task="classify", alias="first")
    # Room for MiniLM, the first head's own bytes and a whole second model (before a load, a model's size is
    # its file's: what it will share is known once it is loaded), not for three copies of the encoder.
    specnb.config.memory_budget["cpu"] = base.weight_bytes + first.unique_bytes + first.weight_bytes + 8 * 2**20
    with warnings.catch_warnings():
        warnings.simplefilter("error", specnb.EvictionWarning)
        second = specnb.load(two, task="classify", alias="second")
    assert sorted(specnb.models()["alias"]) == ["first", "minilm", "second"]
    assert specnb.registry.last_evicted == []
    assert resident_bytes(list(specnb.registry)) == base.weight_bytes + first.unique_bytes + second.unique_bytes


def test_training_a_head_on_the_shared_encoder_gives_the_same_head(tmp_path):
    from safetensors.torch import load_file

    data = bbc_topics(40, seed=3, max_chars=200)
    heads = {}
    for share in (True, False):
        specnb.config.share_weights = share
        specnb.specialize("minilm", data, eval=None, seed=0, alias=f"h-{share}", out=tmp_path / f"h-{share}",
                          progress=False)
        heads[share] = load_file(tmp_path / f"h-{share}" / "model.safetensors")
        specnb.registry.clear()
    assert heads[True].keys() == heads[False].keys()
    assert all((heads[True][k] == heads[False][k]).all() for k in heads[True])

    curves = {}
    for share in (True, False):
        specnb.config.share_weights = share
        curves[share] = specnb.learning_curve("minilm", data, sizes=[1, 2], seeds=2, eval=0.25, seed=0,
                                              progress=False).frame
    assert curves[True].equals(curves[False])


def test_a_matrix_that_differs_in_one_element_is_not_shared(heads, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    one, _, texts = heads
    changed = tmp_path / "changed"
    shutil.copytree(one, changed)
    weights = load_file(changed / "model.safetensors")
    name = "bert.encoder.layer.0.attention.self.query.weight"
    weights[name][5, 7] += 1e-3  # not one of the elements the fingerprint reads
    save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})

    base = specnb.load("minilm")
    head = specnb.load(changed, task="classify", alias="changed")
    mine, theirs = _encoder(head), _encoder(base)
    key = name.removeprefix("bert.")
    assert mine[key].data_ptr() != theirs[key].data_ptr()
    assert mine[key][5, 7] == theirs[key][5, 7] + 1e-3
    assert mine["encoder.layer.0.attention.self.key.weight"].data_ptr() == \
        theirs["encoder.layer.0.attention.self.key.weight"].data_ptr()
    matrices = sum(p.numel() * 4 for p in theirs.values() if p.numel() * 4 >= MIN_SHARED_BYTES)
    assert head.shared_bytes == base.shared_bytes == matrices - theirs[key].numel() * 4
    assert len(head.predict(texts, task="classify", progress=False)) == len(texts)
