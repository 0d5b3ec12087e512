"""Training a domain: the recipe, the fit loop, checkpoints, run folders, distribution, sweep plans."""
