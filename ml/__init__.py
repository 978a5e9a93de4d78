"""Features, segments, models, metrics and the train/score steps."""
