"""The only code that knows transformers classes and module paths."""
