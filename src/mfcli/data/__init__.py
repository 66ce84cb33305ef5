"""Datasets: built-in offline tasks, the papers' prompts, and `prepare`."""
