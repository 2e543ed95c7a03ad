"""The live engine: the runtime (threads and lifecycle), its wiring and the preview window."""
