import pytest
import pickle

import numpy as np

from mfcli.data import prompts
from mfcli.data.tasks import PRETRAINED, TARGET, TASKS, split_indices
from mfcli.eval.labels import named_labels


def test_roles_are_fixed():
    roles = {n: t.role for n, t in TASKS.items()}
    assert roles["digits"] == PRETRAINED and roles["animals"] == TARGET
    assert sum(r == PRETRAINED for r in roles.values()) >= 2 and sum(r == TARGET for r in roles.values()) >= 2


def test_animals_load_without_unpickling(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("pickle must not be executed")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    images, ids = TASKS["animals"].load()
    assert images.shape == (10000, 28, 28, 3) and images.dtype == np.uint8
    assert np.bincount(ids).tolist() == [1000] * 10


def test_every_task_loads_with_all_labels():
    for task in TASKS.values():
        images, ids = task.load()
        assert len(images) == len(ids) and images.ndim == 4 and images.shape[-1] == 3
        assert images.std() > 10  # real pictures, not blanks
        if task.kind == "classification":
            assert set(np.unique(ids)) == set(range(len(task.labels)))
        else:
            assert all(qa.references and all(qa.references) for qa in ids)


def test_each_kind_has_a_pretrained_and_a_target_task():
    roles = {(t.kind, t.role) for t in TASKS.values()}
    for kind in ("classification", "vqa", "caption"):
        assert (kind, PRETRAINED) in roles and (kind, TARGET) in roles, kind
    assert TASKS["scene-vqa"].role == PRETRAINED and TASKS["scene-caption"].role == TARGET


def _colour_at(image, cell):
    """The named colour nearest the brightest pixels of a cell (the object's fill)."""
    from mfcli.data.scenes import CELL, COLOURS

    r, c = divmod(cell, 2)
    patch = image[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL].reshape(-1, 3).astype(float)
    fill = patch[patch.sum(1) > 200]
    if len(fill) < 10:
        return None
    mean = fill.mean(0)
    return min(COLOURS, key=lambda k: np.abs(np.array(COLOURS[k]) - mean).sum())


def test_scene_answers_are_true_of_their_pictures():
    """The references describe the drawn picture: colours sit where the captions say, counts match, the
    asked object sits where the position answer says, the four question forms come in equal quarters,
    yes/no in equal halves."""
    from mfcli.data import scenes

    images, items = scenes.load_scene_caption(200)
    for img, qa in zip(images, items):
        first = qa.references[0]  # "a red circle left of / above a blue square": the upper or left one first
        relation = " left of " if " left of " in first else " above "
        colours = [first.split()[1], first.split(relation)[1].split()[1]]
        cells = [k for k in range(4) if _colour_at(img, k)]
        assert [_colour_at(img, k) for k in cells] == colours, qa
        assert (cells[1] - cells[0]) == (1 if relation == " left of " else 2), qa
    images, items = scenes.load_scene_vqa(400)
    forms = [qa.question.split()[0] for qa in items]
    assert forms.count("What") == forms.count("Which") == forms.count("Where") == forms.count("How") == 100
    for img, qa in zip(images, items):
        if qa.question.startswith("How many"):
            assert int(qa.references[0]) == sum(_colour_at(img, k) is not None for k in range(4))
        if qa.question.startswith("Where is the"):  # "Where is the red circle?" -> "top left"
            colour = qa.question.split()[3]
            cell = ("top left", "top right", "bottom left", "bottom right").index(qa.references[0])
            assert _colour_at(img, cell) == colour, qa
    _, items = scenes.load_scene_exists(200)
    assert sum(qa.references == ("yes",) for qa in items) == 100
    # deterministic: the same seed draws the same scenes
    assert (scenes.load_scene_objects(20)[0] == scenes.load_scene_objects(20)[0]).all()
    assert scenes.load_scene_objects(20)[1] == scenes.load_scene_objects(20)[1]


def test_relation_captions_give_both_true_phrasings():
    from mfcli.data.scenes import Thing, relation_captions

    a, b = Thing("red", "circle", 2), Thing("blue", "square", 0)  # b above a
    assert relation_captions(a, b) == ("a blue square above a red circle", "a red circle below a blue square")
    a, b = Thing("red", "circle", 1), Thing("blue", "square", 0)  # b left of a
    assert relation_captions(a, b) == ("a blue square left of a red circle", "a red circle right of a blue square")


def test_split_is_seeded_disjoint_and_complete():
    tr, ev = split_indices(100, 0.2, 0)
    assert len(ev) == 20 and set(tr).isdisjoint(ev) and len(set(tr) | set(ev)) == 100
    assert (split_indices(100, 0.2, 0)[1] == ev).all() and not (split_indices(100, 0.2, 1)[1] == ev).all()


def test_prompts_verbatim():
    cifar = "airplane automobile bird cat deer dog frog horse ship truck".split()
    assert prompts.emt_prompt(cifar) == ("What is the object in the image? Please only answer a single object in "
                                         "airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck.")
    assert prompts.clip_prompt("number", "3") == 'a photo of the number: "3".'
    assert prompts.clip_prompt("object", "cat") == "a photo of a cat."
    assert prompts.train_answer("object", "airplane") == "The object is a(n) airplane."


def test_label_matching_is_label_set_aware():
    cifar = "airplane automobile bird cat deer dog frog horse ship truck".split()
    assert named_labels("The object in the image is a large black bird.", cifar) == ["bird"]
    assert named_labels("airplane, automobile, bird, cat, deer, dog, frog, horse,,", cifar) == cifar[:8]
    assert named_labels("", cifar) == []
    digits = [str(i) for i in range(10)]
    assert named_labels("Number eight", digits) == ["8"] and named_labels("The number is 8.", digits) == ["8"]
    assert named_labels("an aquarium_fish", ["aquarium fish", "fish"]) == ["aquarium fish"]


def test_label_forms_plurals_letters_and_longest_first():
    assert named_labels("two butterflies and a fly", ["butterfly", "bus"]) == ["butterfly"]
    assert named_labels("flies", ["fly"]) == ["fly"] and named_labels("buses", ["bus"]) == ["bus"]
    # a label that is only an article (multiple-choice letters) still matches itself
    assert named_labels("b", ["a", "b"]) == ["b"] and named_labels("A.", ["a", "b"]) == ["a"]
    # articles inside a label are not part of its pattern
    assert named_labels("a dog", ["a cat", "a dog"]) == ["a dog"]
    assert named_labels("cat", ["the cat"]) == ["the cat"]
    # the longer label claims its words whatever the label-set order
    assert named_labels("an aquarium fish", ["fish", "aquarium fish"]) == ["aquarium fish"]
    assert named_labels("a tropical fish", ["fish", "tropical fish"]) == ["tropical fish"]


@pytest.mark.parametrize("answer, named", [
    ("This is definitely not a horse.", []),
    ("no cat here", []),
    ("It isn't a horse.", []),
    ("It's a dog, not a cat.", ["dog"]),
    ("Not a cat but a dog.", ["dog"]),
    ("There is no doubt it is a cat.", ["cat"]),  # the negation is about the doubt
    ("A cat. Not a dog, not a horse.", ["cat"]),
])
def test_a_negated_mention_is_not_a_naming(answer, named):
    from mfcli.eval.labels import mentions

    labels = ["cat", "dog", "horse"]
    assert named_labels(answer, labels) == named
    found, negated = mentions(answer, labels)
    assert found == named and not set(found) & set(negated)
    assert bool(negated) == (not answer.startswith("There"))  # every other example negates a label


def test_a_word_that_only_looks_like_a_plural_of_a_label_is_not_that_label():
    """"applies" is no plural of "apple" (only a label ending in -y takes -ies: butterfly/butterflies)."""
    from mfcli.eval.labels import mentions

    assert mentions("The same applies to a pear.", ["apple", "pear"]) == (["pear"], [])
    assert mentions("Two butterflies.", ["butterfly", "pear"]) == (["butterfly"], [])


def test_icons_are_learnable_fixed_and_in_animals_style():
    """`icons` is pre-trained so tiny knows Animal-MNIST's kind of picture: white silhouettes on black,
    28×28, one class each — distinguishable (a pixel-space classifier separates them), drawn the same
    every time, and named by words that are neither an animal nor a shape."""
    from sklearn.linear_model import LogisticRegression

    from mfcli.data.icons import ICONS

    task = TASKS["icons"]
    assert task.role == PRETRAINED and task.noun == "object" and task.labels == ICONS
    images, ids = task.load()
    again, _ = task.load()
    assert np.array_equal(images, again)
    assert images.shape == (2000, 28, 28, 3) and np.bincount(ids).tolist() == [200] * 10
    animals, _ = TASKS["animals"].load()
    for x in (images, animals[:2000]):  # mostly black, a bright figure
        assert np.median(x) < 20 and np.percentile(x, 95) > 200
    assert not set(ICONS) & (set(TASKS["animals"].labels) | set(TASKS["shapes"].labels))
    train, held = split_indices(len(ids), 0.2, 0)
    flat = images[..., 0].reshape(len(ids), -1) / 255.0
    probe = LogisticRegression(max_iter=500).fit(flat[train], ids[train])
    assert probe.score(flat[held], ids[held]) > 0.8  # each class is a consistent figure
