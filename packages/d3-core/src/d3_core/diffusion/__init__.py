"""The method: transition graphs, noise schedules, the score-entropy loss, samplers, guidance."""
