"""A cheap, picklable scorer with a planted optimum, for testing the schedule search without a model."""

import time

import numpy as np


class PlantedOptimum:
    """Squared distance in log10 from `planted` (lowest, 0, exactly there); `delay` seconds per score."""

    def __init__(self, planted, delay: float = 0.0):
        self.planted, self.delay = [float(b) for b in planted], delay

    def settings(self) -> dict:
        return {"planted": self.planted}

    def __call__(self):
        target = np.log10(self.planted)

        def score(betas):
            time.sleep(self.delay)
            return float(np.sum((np.log10(betas) - target) ** 2))

        return score
