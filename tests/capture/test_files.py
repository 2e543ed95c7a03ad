"""Still images, image sequences and video files: order, looping, bad files, timing."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from sonify.capture import Frame, ImageSource, SequenceSource, SourceError, VideoSource
from sonify.capture.convert import (
    MAX_IMAGE_PIXELS,
    ImageHeader,
    ImageTooLargeError,
    read_header,
    read_image,
    to_bgr8,
)
from tests.capture.huge import write_huge_png


def write_png(path: Path, level: int, size: tuple[int, int] = (24, 32)) -> None:
    assert cv2.imwrite(str(path), np.full((*size, 3), level, np.uint8))


def levels(frames: list[Frame]) -> list[int]:
    return [int(frame.image[0, 0, 0]) for frame in frames]


def test_sequence_plays_in_natural_order(tmp_path: Path) -> None:
    for number in (10, 2, 1, 33, 3):
        write_png(tmp_path / f"img{number}.png", number)
    with SequenceSource(tmp_path) as source:
        assert levels(list(source)) == [1, 2, 3, 10, 33]


def test_sequence_extension_is_case_insensitive_and_hidden_files_are_ignored(
    tmp_path: Path,
) -> None:
    write_png(tmp_path / "a1.PNG", 1)
    assert cv2.imwrite(str(tmp_path / "a2.JPG"), np.full((24, 32, 3), 200, np.uint8))
    (tmp_path / "._a0.png").write_bytes(b"macOS metadata, not a picture")
    (tmp_path / "notes.txt").write_text("not a picture")
    with SequenceSource(tmp_path) as source:
        frames = list(source)
    assert len(frames) == 2
    assert frames[0].image[0, 0, 0] == 1


def test_sequence_without_loop_ends_and_with_loop_wraps(tmp_path: Path) -> None:
    for number in range(1, 5):
        write_png(tmp_path / f"f{number}.png", number)
    with SequenceSource(tmp_path) as once:
        assert levels(list(once)) == [1, 2, 3, 4]
    with SequenceSource(tmp_path, loop=True, max_frames=10) as looping:
        frames = list(looping)
    assert levels(frames) == [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]
    assert [frame.index for frame in frames] == list(range(10))


def test_sequence_from_glob_takes_only_matching_files(tmp_path: Path) -> None:
    for number in (1, 2, 3):
        write_png(tmp_path / f"shot_{number}.png", number)
    write_png(tmp_path / "other_9.png", 9)
    with SequenceSource(str(tmp_path / "shot_*.png")) as source:
        assert levels(list(source)) == [1, 2, 3]


def test_bad_files_are_skipped_with_one_warning_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for number in (1, 2, 6, 7):
        write_png(tmp_path / f"img{number}.png", number)
    ok, encoded = cv2.imencode(".png", np.full((64, 64, 3), 50, np.uint8))
    assert ok
    (tmp_path / "img3.png").write_bytes(b"\x00garbage that is not a png\xff" * 10)
    (tmp_path / "img4.png").write_bytes(encoded.tobytes()[: encoded.size // 2])
    (tmp_path / "img5.png").write_bytes(b"")
    caplog.set_level(logging.WARNING, logger="sonify.capture")

    with SequenceSource(tmp_path, loop=True, max_frames=12) as source:
        frames = list(source)

    assert levels(frames) == [1, 2, 6, 7] * 3  # three passes, the bad files never delivered
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("img3.png", "img4.png", "img5.png"):
        assert sum(name in message for message in warnings) == 1, (name, warnings)
    assert len(warnings) == 3


def test_all_bad_sequence_raises_instead_of_looping_on_nothing(tmp_path: Path) -> None:
    for number in (1, 2, 3):
        (tmp_path / f"img{number}.png").write_bytes(b"")
    with SequenceSource(tmp_path, loop=True) as source, pytest.raises(SourceError) as error:
        list(source)
    assert str(tmp_path) in str(error.value)


def test_empty_folder_names_folder_and_extensions(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(SourceError) as error:
        SequenceSource(tmp_path).open()
    message = str(error.value)
    assert str(tmp_path) in message and ".png" in message and ".jpg" in message


def test_glob_matching_nothing_names_the_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "nothing_*.png")
    with pytest.raises(SourceError) as error:
        SequenceSource(pattern).open()
    assert pattern in str(error.value) and ".png" in str(error.value)


def test_offline_timeline_is_index_over_fps(tmp_path: Path) -> None:
    for number in range(5):
        write_png(tmp_path / f"{number}.png", number)
    with SequenceSource(tmp_path, fps=25.0) as source:
        frames = list(source)
    assert [frame.t for frame in frames] == [index / 25.0 for index in range(5)]


def test_still_image_repeats_as_new_copies(tmp_path: Path) -> None:
    write_png(tmp_path / "still.png", 42)
    with ImageSource(tmp_path / "still.png", fps=10.0, max_frames=25) as source:
        frames = list(source)
    assert len(frames) == 25
    assert [frame.t for frame in frames][:3] == [0.0, 0.1, 0.2]
    frames[0].image[:] = 0  # a consumer drawing on one frame does not touch the next
    assert (frames[1].image == 42).all()
    assert not np.shares_memory(frames[0].image, frames[1].image)


def test_unreadable_still_image_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"nope")
    with pytest.raises(SourceError, match="broken.png"):
        ImageSource(path).open()


def test_realtime_paces_at_fps(tmp_path: Path) -> None:
    write_png(tmp_path / "still.png", 1)
    started = time.perf_counter()
    with ImageSource(tmp_path / "still.png", fps=50.0, realtime=True, max_frames=10) as source:
        frames = list(source)
    elapsed_s = time.perf_counter() - started
    assert 0.15 <= elapsed_s < 2.0
    times = [frame.t for frame in frames]
    assert times == sorted(times) and started <= times[0] <= times[-1] <= time.perf_counter()
    assert times[-1] - times[0] >= 9 / 50 - 0.01


def test_close_from_another_thread_stops_a_realtime_source(tmp_path: Path) -> None:
    write_png(tmp_path / "still.png", 1)
    source = ImageSource(tmp_path / "still.png", fps=0.5, realtime=True)  # 2 s per frame
    source.open()
    delivered: list[Frame] = []
    reader = threading.Thread(target=lambda: delivered.extend(source))
    reader.start()
    time.sleep(0.2)
    closed_at = time.perf_counter()
    source.close()
    reader.join(timeout=2.0)
    assert not reader.is_alive()
    assert time.perf_counter() - closed_at < 0.5
    assert len(delivered) == 1  # the first frame comes at once, the second never


def test_iterating_an_unopened_source_says_to_open_it(tmp_path: Path) -> None:
    write_png(tmp_path / "still.png", 1)
    with pytest.raises(RuntimeError, match="open"):
        next(iter(ImageSource(tmp_path / "still.png")))


def write_video(path: Path, frame_count: int, size: tuple[int, int] = (64, 48),
                fps: float = 25.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi"
    for number in range(frame_count):
        writer.write(np.full((size[1], size[0], 3), 10 + 20 * number, np.uint8))
    writer.release()


def test_video_plays_every_frame_at_its_own_rate(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, 12)
    with VideoSource(path) as source:
        frames = list(source)
        assert source.fps == 25.0
    assert len(frames) == 12
    assert all(frame.image.shape == (48, 64, 3) for frame in frames)
    assert [frame.t for frame in frames] == [index / 25.0 for index in range(12)]
    means = [float(frame.image.mean()) for frame in frames]
    assert means == sorted(means)  # the picture gets brighter frame by frame, in order


def test_video_loops_from_the_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, 5)
    with VideoSource(path, loop=True, max_frames=12, fps=100.0) as source:
        frames = list(source)
    assert len(frames) == 12
    assert frames[-1].t == pytest.approx(11 / 100.0)
    for a, b in zip(frames[:5], frames[5:10], strict=True):
        assert np.array_equal(a.image, b.image)


def test_video_can_be_iterated_twice(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, 4)
    with VideoSource(path) as source:
        assert len(list(source)) == 4
        assert len(list(source)) == 4


def test_unreadable_video_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is not a video" * 50)
    with pytest.raises(SourceError, match="broken.mp4"):
        VideoSource(path).open()


# -- huge pictures: the size is read from the header, before anything is decoded ------------------

def test_a_huge_16_bit_png_is_refused_from_its_header(tmp_path: Path) -> None:
    path = write_huge_png(tmp_path / "huge.png")
    assert path.stat().st_size < 1000
    assert read_header(np.fromfile(path, np.uint8)) == ImageHeader("png", 20000, 20000, 3, 2)
    with pytest.raises(ImageTooLargeError) as err:
        read_image(path)
    msg = str(err.value)
    assert isinstance(err.value, SourceError)
    assert "20000x20000 pixels (400 megapixels, 16-bit)" in msg
    assert "about 2.4 GB" in msg and "up to 100 megapixels" in msg and "scale it down" in msg
    with pytest.raises(ImageTooLargeError, match="20000x20000"), ImageSource(path):
        pass


def test_an_8_bit_one_just_over_the_limit_is_refused_and_one_under_it_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_IMAGE_PIXELS == 100_000_000
    with pytest.raises(ImageTooLargeError, match="10001x10000 pixels \\(100 megapixels\\)"):
        read_image(write_huge_png(tmp_path / "over.png", 10001, 10000, 8))
    # under the limit the decoder is asked (and fails on the truncated data: None, as before)
    monkeypatch.setattr("sonify.capture.convert.MAX_IMAGE_PIXELS", 10001 * 10000)
    assert read_image(tmp_path / "over.png") is None


def test_a_huge_jpeg_is_read_at_a_reduced_size(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    image = np.zeros((400, 600, 3), np.uint8)
    image[:, 300:] = (0, 0, 255)  # right half red
    path = tmp_path / "big.jpg"
    assert cv2.imwrite(str(path), image)
    with caplog.at_level(logging.WARNING, logger="sonify.capture.convert"):
        small = read_image(path, max_pixels=70_000)  # 240 000 pixels: 1/2 is 60 000
    assert small is not None and small.shape == (200, 300, 3)
    assert small[100, 250, 2] > 200 and small[100, 50, 2] < 30  # the same picture, smaller
    assert "read at 1/2 size, 300x200" in caplog.text
    quarter = read_image(path, max_pixels=10_000)  # 1/4 is 15 000, 1/8 is 3 750
    assert quarter is not None and quarter.shape[:2] == (50, 75)
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=1_000)  # even 1/8 is too large


def test_a_sequence_skips_a_huge_picture_and_goes_on(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    write_png(tmp_path / "a1.png", 10)
    write_huge_png(tmp_path / "a2.png")
    write_png(tmp_path / "a3.png", 30)
    with caplog.at_level(logging.WARNING), SequenceSource(tmp_path) as source:
        assert levels(list(source)) == [10, 30]
    assert "a2.png" in caplog.text and "20000x20000" in caplog.text


@pytest.mark.parametrize(("ext", "channels"), [(".png", 3), (".jpg", 3), (".bmp", 3),
                                               (".tif", 3), (".webp", 3), (".ppm", 3),
                                               (".pgm", 1)])
def test_headers_state_the_size_of_every_format(tmp_path: Path, ext: str,
                                                channels: int) -> None:
    image = np.full((37, 53, 3), 90, np.uint8)
    if channels == 1:
        image = image[:, :, 0]
    path = tmp_path / f"pic{ext}"
    assert cv2.imwrite(str(path), image)
    header = read_header(path.read_bytes())
    assert header is not None and (header.width, header.height) == (53, 37), header
    assert header.sample_bytes == 1


def test_16_bit_pictures_convert_exactly_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sonify.capture.convert._CHUNK_ELEMENTS", 7)  # many small blocks
    values = np.linspace(0, 65535, 20 * 24 * 3).astype(np.uint16).reshape(20, 24, 3)
    out = to_bgr8(values)
    assert out is not None
    expected = ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    assert np.array_equal(out, expected)
