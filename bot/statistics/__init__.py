"""Statistics for coordinators: recorded as cases move, figured by period, suppressed, charted, exported."""
