"""sonify.util.net: allow lists (shared by the config and the control servers) and Host checks."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from sonify.util.net import (
    host_header_allowed,
    host_header_name,
    is_allowed,
    parse_allow,
    parse_allow_entry,
)


def test_allow_entries_are_addresses_or_networks() -> None:
    assert parse_allow_entry("192.168.1.20") == ipaddress.ip_network("192.168.1.20/32")
    assert parse_allow_entry(" 10.0.0.0/24 ") == ipaddress.ip_network("10.0.0.0/24")
    assert parse_allow_entry("::1") == ipaddress.ip_network("::1/128")
    assert parse_allow_entry("fd00::/8") == ipaddress.ip_network("fd00::/8")
    assert parse_allow(None) is None
    assert parse_allow("127.0.0.1") == (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(("entry", "words"), [
    ("box.local", "host names are not accepted"),
    ("10.0.0.5/24", "write the network as 10.0.0.0/24"),
    ("10.0.0.0/33", "not an IP address or network"),
    ("", "not an IP address or network"),
])
def test_bad_allow_entries_say_what_is_expected(entry: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_allow_entry(entry)


def test_membership_handles_networks_mapped_and_scoped_addresses() -> None:
    allow = parse_allow(["192.168.1.0/24", "fe80::/10"])
    assert is_allowed("192.168.1.77", allow)
    assert is_allowed("::ffff:192.168.1.77", allow)  # how a dual-stack socket reports IPv4
    assert is_allowed("fe80::1%eth0", allow)
    assert not is_allowed("192.168.2.1", allow)
    assert not is_allowed("::ffff:10.0.0.1", allow)
    assert not is_allowed("not-an-address", allow)
    assert is_allowed("203.0.113.9", None)  # no list: everyone
    assert not is_allowed("127.0.0.1", ())  # an empty list: no one


def test_host_header_names() -> None:
    assert host_header_name("Example.COM:8080") == "example.com"
    assert host_header_name("[::1]:9001") == "::1"
    assert host_header_name("box.local.") == "box.local"
    assert host_header_name("10.0.0.1") == "10.0.0.1"


def test_host_headers_on_loopback_must_be_loopback() -> None:
    for ok in ("localhost:9001", "127.0.0.1", "[::1]:9001", None, ""):
        assert host_header_allowed(ok, "127.0.0.1"), ok
    for bad in ("evil.example", "10.0.0.1", "box.local"):
        assert not host_header_allowed(bad, "127.0.0.1"), bad


def test_host_headers_elsewhere_may_be_addresses_or_this_machine() -> None:
    short = socket.gethostname().lower().split(".")[0]
    for ok in ("10.0.0.1:9001", "[fd00::2]", "localhost", short, f"{short}.local",
               "box.lan", "BOX.LAN.:9001"):
        assert host_header_allowed(ok, "0.0.0.0", extra_names=["box.lan"]), ok
    for bad in ("evil.example", "10.0.0.1.evil.example", "box.lan.evil.example"):
        assert not host_header_allowed(bad, "0.0.0.0", extra_names=["box.lan"]), bad
    assert host_header_allowed("sonify.lan", "sonify.lan")  # bound by that name
