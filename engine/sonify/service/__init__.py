"""Running sonify as a service on an installation box: the systemd notify protocol and its
watchdog (``notify``), opening hours (``hours``) and the panic run after the process is gone
(``panic``). Units and the install guide live in ``systemd/``."""
