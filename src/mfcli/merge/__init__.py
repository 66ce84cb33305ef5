"""Merging a fine-tuned checkpoint back toward its pre-trained parent: Model Tailor and baselines."""
