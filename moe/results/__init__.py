"""What is measured and shown from trained models (evaluate, analyze, compare, report): an edit here
never reruns training."""
