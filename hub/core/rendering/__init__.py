"""Rendering: templates -> one message per channel, within each channel's byte and length rules (see renderer)."""
