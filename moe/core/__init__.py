"""The models and how they are made and trained (pretrain, merge, train, comparison variants)."""
