"""Scores for answers that are not one label of a label set: VQA accuracy (`vqa`) and multiple-choice
matching (`choice`). Pure functions over strings, each checked against its benchmark's own values."""
