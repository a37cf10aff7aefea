"""Oracles: the activity predictors that score designs; loading, running and training."""
