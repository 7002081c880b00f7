"""Thin Typer commands, one per pipeline stage: read params, call ``moe``, write outputs."""
