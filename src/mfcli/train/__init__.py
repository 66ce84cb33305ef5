"""Fine-tuning: one module per method over one shared training loop."""
