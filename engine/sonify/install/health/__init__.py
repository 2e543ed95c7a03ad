"""Health, metrics and the control page for an unattended installation.

``Metrics`` (Prometheus, on its own registry), ``HealthServer`` (``/health``, ``/metrics``,
``/`` the performance page, ``/api/state``, ``/api/stream`` (pushed), ``/api/command``,
``/thumbnail.jpg``) and ``RecentErrors`` (the last
warnings for ``/health``) and ``Thumbnailer`` (``/thumbnail.jpg`` from the latest frame).
"""

from sonify.install.health.metrics import Metrics
from sonify.install.health.recent import RecentErrors
from sonify.install.health.server import CommandError, HealthServer, is_loopback, validate_command
from sonify.install.health.thumbnail import Thumbnailer

__all__ = ["CommandError", "HealthServer", "Metrics", "RecentErrors", "is_loopback",
           "Thumbnailer", "validate_command"]
