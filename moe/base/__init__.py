"""What a task is and how its files are read and written (every stage depends on this folder)."""
