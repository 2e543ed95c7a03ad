"""The installation box: systemd notify and watchdog, panic, the health page and metrics,
and sonify doctor."""
