"""Untrusted uploads: every odd or broken file gives a result or a clear
message that names it, never a traceback."""

import numpy as np
import pytest
from image_corpus import corpus

from resexplorer.data.images import (
    MAX_UPLOAD_BYTES,
    PREVIEW_SIZE,
    UploadError,
    decode_many,
    decode_upload,
)

CORPUS = corpus()


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_corpus_file_decodes_or_says_why(name):
    data, expected = CORPUS[name]
    if expected == "ok":
        image = decode_upload(name, data)
        assert image.rgb.dtype == np.uint8 and image.rgb.ndim == 3 and image.rgb.shape[2] == 3
        assert max(image.rgb.shape[:2]) <= PREVIEW_SIZE
        assert image.model_input().shape == (3, 32, 32)
    else:
        with pytest.raises(UploadError) as err:
            decode_upload(name, data)
        assert name in str(err.value) and expected in str(err.value)


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 20


def test_one_bad_file_never_stops_the_others():
    images, problems = decode_many([(name, data) for name, (data, _) in CORPUS.items()])
    assert len(images) == sum(e == "ok" for _, e in CORPUS.values())
    assert len(problems) == len(CORPUS) - len(images) and all(":" in p for p in problems)


def test_modes_become_rgb_the_right_way():
    pixel = lambda name: decode_upload(name, CORPUS[name][0]).rgb[0, 0].tolist()  # noqa: E731
    assert pixel("rgba-transparent.png") == [255, 255, 255]  # alpha on white
    assert pixel("grey-alpha.png") == [255, 255, 255]
    assert pixel("palette-transparency.png") == [255, 0, 0]  # index 1, opaque red
    assert decode_upload("p", CORPUS["palette-transparency.png"][0]).rgb[0, 7].tolist() == [
        255,
        255,
        255,
    ]  # index 0 is transparent
    sixteen = decode_upload("s", CORPUS["sixteen-bit.png"][0])
    assert sixteen.rgb[0, 0].tolist() == [255] * 3 and sixteen.rgb[1, 1].tolist() == [128] * 3  # rescaled, not clipped
    assert any("rescaled" in note for note in sixteen.notes)
    cmyk = pixel("cmyk.jpg")
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] < 60  # no cyan ink, full magenta and yellow: red
    assert pixel("grey.png") == [77, 77, 77]


def test_first_frame_and_first_page_are_used_and_said():
    gif = decode_upload("a.gif", CORPUS["animated.gif"][0])
    assert gif.rgb[0, 0].tolist()[0] > 200 and gif.rgb[0, 0].tolist()[2] < 50 and "first of 2 frames" in gif.notes[0]
    tiff = decode_upload("m.tiff", CORPUS["multipage.tiff"][0])
    assert tiff.rgb[0, 0].tolist() == [0, 255, 0] and "first of 2 pages" in tiff.notes[0]


def test_exif_orientation_is_applied():
    image = decode_upload("r.jpg", CORPUS["exif-rotated.jpg"][0])
    assert image.rgb.shape[:2] == (40, 20) and image.original_size == (20, 40)  # now standing upright
    top, bottom = image.rgb[2, 10], image.rgb[37, 10]
    assert top[0] > 200 and bottom[0] < 60  # the red left half turned to the top
    assert any("EXIF" in note for note in image.notes)


def test_large_photos_are_reduced_and_oversized_files_refused():
    big = decode_upload("large.jpg", CORPUS["large.jpg"][0])
    assert big.original_size == (4000, 3000) and max(big.rgb.shape[:2]) == PREVIEW_SIZE
    with pytest.raises(UploadError, match="over the"):
        decode_upload("huge.png", b"\0" * (MAX_UPLOAD_BYTES + 1))
    strip = decode_upload("s.png", CORPUS["long-strip.png"][0])
    assert strip.model_input().shape == (3, 32, 32)
