"""Music: theory (notes, scales, chords, voicing) and rhythm (Euclid, steps, swing, humanise)."""
