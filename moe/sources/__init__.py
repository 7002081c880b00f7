"""Where a task's data comes from (the fetch stage)."""
