"""``mcpi-hub dashboard``: a live, read-only web page of the jobs of this control node."""
