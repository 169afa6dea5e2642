"""The AI broker's pure model and rules: no I/O."""
