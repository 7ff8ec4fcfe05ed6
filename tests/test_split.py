from collections import Counter

import numpy as np

from sketchlab.split import Split, bucket_of, drawing_key, split_of


def test_split_is_deterministic_and_roughly_80_10_10():
    splits = Counter(split_of(str(k)) for k in range(20_000))
    assert splits[Split.TRAIN] / 20_000 > 0.77 and 0.08 < splits[Split.TEST] / 20_000 < 0.12
    assert 0.08 < splits[Split.VALID] / 20_000 < 0.12
    assert split_of("5152802093400064") == split_of("5152802093400064")


def test_split_is_salted():
    # the sealed set took unsalted sha1(key_id) % 10 == 0; our test split must not coincide with it
    import hashlib

    unsalted = [k for k in map(str, range(5_000)) if int(hashlib.sha1(k.encode()).hexdigest(), 16) % 10 == 0]
    assert Counter(split_of(k) for k in unsalted)[Split.TEST] < len(unsalted) / 2


def test_content_key_when_no_key_id():
    a = [np.array([[0, 0], [10, 10]])]
    b = [np.array([[0.2, 0], [10, 10]])]  # same integer coordinates
    assert drawing_key(None, a) == drawing_key(None, b)
    assert split_of(None, a) == split_of(None, b)
    assert drawing_key("7", a) == "7"
    assert 0 <= bucket_of("x") < 10
