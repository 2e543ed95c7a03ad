"""Time: clocks, the scheduler, real-time tuning, sync sources (MIDI clock, Link)."""
