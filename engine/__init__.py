"""fedspark."""
