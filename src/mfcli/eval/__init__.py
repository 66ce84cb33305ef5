"""Evaluation: EMT generation and the judges that score free-text answers."""
