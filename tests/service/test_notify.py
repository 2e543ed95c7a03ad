"""The systemd notify protocol against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sonify.install.notify import Notifier, socket_address, status_text, watchdog_interval_s


class FakeSystemd:
    """Binds the socket systemd would pass in NOTIFY_SOCKET and reads what the service sent."""

    def __init__(self, address: str) -> None:
        self.env_value = address  # as systemd writes it: a path or "@name"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(socket_address(address))
        self.sock.settimeout(2.0)

    def receive(self) -> list[str]:
        """One datagram's assignments."""
        return self.sock.recv(4096).decode("utf-8").split("\n")

    def nothing_pending(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.sock.recv(4096)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(2.0)
        return False


@pytest.fixture
def systemd_socket() -> Iterator[FakeSystemd]:
    # a short path: AF_UNIX paths are limited to 107 bytes, pytest's tmp_path can be longer
    directory = Path(tempfile.mkdtemp(prefix="sonify-notify-", dir="/tmp"))
    fake = FakeSystemd(str(directory / "notify"))
    try:
        yield fake
    finally:
        fake.sock.close()
        (directory / "notify").unlink(missing_ok=True)
        directory.rmdir()


@pytest.fixture
def abstract_socket() -> Iterator[FakeSystemd]:
    fake = FakeSystemd(f"@sonify-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield fake
    finally:
        fake.sock.close()


def test_ready_status_watchdog_and_stopping_arrive_as_datagrams(
        systemd_socket: FakeSystemd) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": systemd_socket.env_value})
    assert n.enabled
    assert n.ready("playing gallery | 29.9 fps | mood calm")
    assert systemd_socket.receive() == ["READY=1", "STATUS=playing gallery | 29.9 fps | mood calm"]
    assert n.status("closed (opens 10:00)")
    assert systemd_socket.receive() == ["STATUS=closed (opens 10:00)"]
    assert n.watchdog()
    assert systemd_socket.receive() == ["WATCHDOG=1"]
    assert n.watchdog_trigger()
    assert systemd_socket.receive() == ["WATCHDOG=trigger"]
    assert n.extend_timeout(90)
    assert systemd_socket.receive() == ["EXTEND_TIMEOUT_USEC=90000000"]
    assert n.stopping()
    assert systemd_socket.receive() == ["STOPPING=1"]
    n.close()


def test_an_abstract_namespace_socket_works_too(abstract_socket: FakeSystemd) -> None:
    assert abstract_socket.env_value.startswith("@")
    n = Notifier(environ={"NOTIFY_SOCKET": abstract_socket.env_value})
    assert n.ready()
    assert abstract_socket.receive() == ["READY=1"]
    assert n.watchdog()
    assert abstract_socket.receive() == ["WATCHDOG=1"]


def test_notify_socket_is_read_from_the_environment(
        systemd_socket: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd_socket.env_value)
    assert Notifier().ready()
    assert systemd_socket.receive() == ["READY=1"]


def test_a_status_with_newlines_stays_one_assignment(systemd_socket: FakeSystemd) -> None:
    n = Notifier(systemd_socket.env_value)
    n.status("camera lost\nREADY=1")  # must not smuggle a second assignment in
    assert systemd_socket.receive() == ["STATUS=camera lost READY=1"]


def test_outside_systemd_everything_is_a_quiet_no_op(caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier(environ={})
    assert not n.enabled
    with caplog.at_level(logging.DEBUG):
        assert not n.ready("x") and not n.status("x") and not n.watchdog() and not n.stopping()
    assert caplog.records == []


def test_a_vanished_supervisor_is_logged_once_and_never_raises(
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="sonify.install.notify"):
        assert not n.watchdog()
        assert not n.watchdog()
    assert len(caplog.records) == 1 and "cannot notify systemd" in caplog.text


def test_an_unsupported_address_turns_notifications_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sonify.install.notify"):
        n = Notifier(environ={"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and not n.ready()
    assert "vsock:2:1234" in caplog.text


def test_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abc") == "\0abc"
    for bad in ("", "@", "relative/path", "vsock:1:2"):
        with pytest.raises(ValueError):
            socket_address(bad)


def test_watchdog_usec_is_the_interval_in_seconds() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000",
                                "WATCHDOG_PID": str(os.getpid())}) == 30.0


def test_no_watchdog_when_unset_invalid_or_meant_for_another_process() -> None:
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}) is None


def test_status_text_shows_fps_scene_and_mood() -> None:
    assert status_text(scene="gallery", fps=29.87, mood="calm", notes_per_s=2.5) == (
        "playing | scene gallery | 29.9 fps | mood calm | 2.5 notes/s")
    assert status_text(scene="night", fps=0.0, mood="-", state="camera lost, idle") == (
        "camera lost, idle | scene night | 0.0 fps | mood -")
