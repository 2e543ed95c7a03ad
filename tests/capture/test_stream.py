"""Network streams through OpenCV's FFmpeg backend, live like a camera: read, lost when the
server goes, back when it returns; a password in the URL is never shown. The peer is a tiny
HTTP MJPEG server (``multipart/x-mixed-replace``, what IP cameras and ``ffmpeg -f mpjpeg``
serve) on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from sonify.capture import SourceError, StreamSource, is_stream_spec, open_source
from sonify.capture.stream import redact
from sonify.config import Config
from sonify.live.runtime import Runtime
from sonify.outputs.recording import RecordingOutput
from tests.conftest import wait_until

FRAME_S = 0.04  # 25 fps


class MjpegServer:
    """Serves numbered colour frames as MJPEG at /stream.mjpg; ``pause()`` drops every
    connection and answers 503 until ``resume()`` (a camera server restarting)."""

    def __init__(self) -> None:
        self.paused = threading.Event()
        self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if server.paused.is_set():
                    self.send_error(503, "restarting")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not server.paused.is_set() and not server.closing:
                        self.wfile.write(server.jpeg_part())
                        time.sleep(FRAME_S)
                except OSError:  # the client went away
                    pass

        self.closing = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def jpeg_part(self) -> bytes:
        self.served += 1
        image = np.full((120, 160, 3), (self.served * 5) % 256, np.uint8)
        cv2.putText(image, str(self.served), (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2,
                    (0, 0, 255), 2)
        ok, jpeg = cv2.imencode(".jpg", image)
        assert ok
        data = jpeg.tobytes()
        return (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                + data + b"\r\n")

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()

    def close(self) -> None:
        self.closing = True
        self.paused.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def mjpeg() -> Iterator[MjpegServer]:
    server = MjpegServer()
    try:
        yield server
    finally:
        server.close()


def test_stream_urls_are_streams() -> None:
    for url in ("rtsp://cam.local:554/live", "http://127.0.0.1:8090/stream.mjpg",
                "HTTPS://host/x?a=1", "srt://host:9000"):
        assert is_stream_spec(url)
    for spec in ("camera:0", "demo", "clip.mp4", "/dev/video0", "shots/*.png", "file:///x"):
        assert not is_stream_spec(spec)


def test_a_password_in_the_url_is_never_shown() -> None:
    assert redact("rtsp://admin:s3cret@cam.local:554/live?x=1") == \
        "rtsp://admin:***@cam.local:554/live?x=1"
    assert redact("http://127.0.0.1:8090/stream.mjpg") == "http://127.0.0.1:8090/stream.mjpg"
    source = open_source("rtsp://admin:s3cret@cam.local/live")
    assert isinstance(source, StreamSource) and source.live
    assert "s3cret" not in source.name and "s3cret" not in source.label


def test_a_server_that_is_not_there_is_a_clear_error_without_the_password() -> None:
    source = StreamSource("http://viewer:s3cret@127.0.0.1:9/stream.mjpg", open_timeout_s=2.0)
    with pytest.raises(SourceError) as caught:
        source.open()
    message = str(caught.value)
    assert "stream http://viewer:***@127.0.0.1:9/stream.mjpg" in message
    assert "s3cret" not in message and "server" in message


def test_an_http_mjpeg_stream_plays_live(mjpeg: MjpegServer) -> None:
    source = open_source(mjpeg.url)
    assert isinstance(source, StreamSource)
    with source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 5:
                break
    assert [f.image.shape for f in frames] == [(120, 160, 3)] * 5
    assert [f.index for f in frames] == list(range(5))
    assert all(b.t > a.t for a, b in zip(frames, frames[1:], strict=False))  # capture times


def test_a_stream_that_drops_is_lost_then_back_by_itself(mjpeg: MjpegServer) -> None:
    source = StreamSource(mjpeg.url, stall_s=0.3, retry_initial_s=0.1, retry_max_s=0.3,
                          open_timeout_s=2.0)
    with source:
        assert source.state == "ok"
        mjpeg.pause()  # the server restarts: connections dropped, new ones refused
        assert wait_until(lambda: source.state in ("lost", "reconnecting"), 5.0)
        assert source.losses == 1
        mjpeg.resume()
        assert wait_until(lambda: source.state == "ok", 10.0), source.state
        served_before = mjpeg.served
        assert wait_until(lambda: mjpeg.served > served_before + 3, 5.0)
        frames = source.frames(heartbeat_s=0.2)
        fresh = next(f for f in frames if f is not None)
        assert fresh.image.shape == (120, 160, 3)


def test_run_plays_a_stream_as_its_source(mjpeg: MjpegServer) -> None:
    config = Config()
    config.source.input = mjpeg.url
    config.scene.name = "energize"
    config.control.port = config.http.port = 0
    config.scene.watch = False
    out = RecordingOutput()
    runtime = Runtime(config, [out])
    assert isinstance(runtime.source, StreamSource)
    runtime.run(2.0)
    assert runtime.capture.latest.frames > 5  # frames came over HTTP and were analysed
    assert out.notes_on and runtime.capture.error is None
